"""Training runs reading their prepared data over HTTP (127.0.0.1): the same weights as the run from disk, an exact
resume, and a server killed mid-run ending the run with an error naming the URL, its last checkpoint kept."""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.remote_servers import http_server, http_server_process
from tests.test_trainer_train import PYTHON, REPO, TINY, prepare_synthetic, train
from trainer.checkpointing.checkpoint import step_checkpoint_dir, verify_checkpoint
from trainer.checkpointing.run_dir import find_resume_checkpoint

pytestmark = pytest.mark.slow
COMMON = ["train.max_steps=4", "checkpoint.every_steps=2", "data.num_workers=1"]
QUICK_RETRIES = {"SHOWATTEND_REMOTE_ATTEMPTS": "3", "SHOWATTEND_REMOTE_BACKOFF_S": "0.1",
                 "SHOWATTEND_REMOTE_TIMEOUT_S": "5"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return prepare_synthetic(tmp_path_factory.mktemp("data"))


def test_run_over_http_equals_the_run_from_disk_and_resumes_exactly(dataset, tmp_path):
    from_disk, over_http = tmp_path / "disk", tmp_path / "http"
    train(dataset, from_disk, *COMMON)
    with http_server(dataset) as (url, _):
        train(url, over_http, *COMMON, "train.stop_at_step=2", env=QUICK_RETRIES)
        assert find_resume_checkpoint("auto", over_http) == step_checkpoint_dir(over_http, 2)
        train(url, over_http, *COMMON, resume="latest", env=QUICK_RETRIES)
    for name in ("model.safetensors", "optimizer.safetensors"):
        assert (step_checkpoint_dir(from_disk, 4) / name).read_bytes() == \
               (step_checkpoint_dir(over_http, 4) / name).read_bytes(), name


def test_server_killed_mid_run_ends_it_naming_the_url_and_keeps_the_checkpoint(dataset, tmp_path):
    with http_server_process(dataset) as (url, server):
        command = [PYTHON, str(REPO / "trainer" / "train.py"), f"data.root={url}", f"output_dir={tmp_path}", *TINY,
                   "train.max_steps=10000", "checkpoint.every_steps=2", "data.num_workers=1"]
        run = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1", **QUICK_RETRIES})
        deadline = time.monotonic() + 240
        while find_resume_checkpoint("auto", tmp_path) is None and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        server.kill()
        killed_at = time.monotonic()
        _, stderr = run.communicate(timeout=120)
    assert time.monotonic() - killed_at < 90
    assert run.returncode == 1, stderr[-2000:]
    errors = re.findall(r"error: .*", stderr)  # the progress bar may precede it on its line
    assert len(errors) == 1 and errors[0].startswith(f"error: {url}/") and \
        "unreadable after 3 attempt(s)" in errors[0], stderr[-2000:]
    latest = find_resume_checkpoint("auto", tmp_path)
    assert latest is not None and verify_checkpoint(latest)["step"] >= 2
