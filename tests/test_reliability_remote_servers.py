"""Remote servers that lie, stall or never end, and secrets in locations: each row is a case tried as a hostile user
would, and the test that pins the fix (docs/reliability.md, "Remote servers" and "Secrets in locations").

| case | input | what happened | what happens now | test |
|---|---|---|---|---|
| secret | `data.root=http://user:password@host/...` | the password was in the model card, `trainer_state.json`, `config.yaml`, TensorBoard hparams, tracker config and every retry WARNING | `data_pipelines.redact.redact` shows `http://***@host/...` (and `X-Amz-Signature=***`, `sig=***`, `token=***`) in everything recorded, logged or shown; the run reads the real URL | `test_a_run_over_a_url_with_a_password_records_it_nowhere`, `test_locations_are_shown_without_secrets`, `test_retry_warnings_and_error_lines_hide_the_password` |
| endless manifest | a `manifest.json` that never ends | 5 GB after 60 s, growing | small files (manifest, vocabulary, stats) stop at `SMALL_FILE_MAX_BYTES`, one line naming the URL | `test_a_manifest_that_never_ends_stops_at_the_bound` |
| endless shard | a remote input shard of `prepare webdataset --shards http://...` that never ends | copied until the disk was full; the error named no file | a shard stops at `SHOWATTEND_MAX_SHARD_BYTES`, one line naming the URL | `test_a_shard_that_never_ends_stops_at_the_bound_naming_the_url` |
| no size | shards served without Content-Length | the first checkpoint failed (`int(None)` in `DataRoot.size`) | the size is unknown (`None`): read to the end (within the bound), fingerprinted as unknown | `test_shards_without_content_length_are_read_and_fingerprinted` |
| timeout 0 | `SHOWATTEND_REMOTE_TIMEOUT_S=0` | no timeout: a stalled server was waited for forever | refused, one line naming the variable (so are negative, NaN and non-numbers) | `test_remote_settings_are_checked` |
| 404 | a 404 answer to HEAD | retried five times | a 4xx (but 408 and 429) ends the read at once | `test_a_missing_file_is_not_retried` |
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from conftest import REPO

from data_pipelines import data_root
from data_pipelines.data_root import DataRoot, RemoteDataError, RemoteReader, read_location
from data_pipelines.manifest import dataset_fingerprint, read_manifest
from tests.remote_servers import QuietHandler, http_server
from trainer.config.schema import load_config
from trainer.inference.model_card import write_model_card
from trainer.user_errors import exit_on_user_error

TINY = ["model.encoder_weights=none", "model.feature_dim=16", "model.embed_dim=16", "model.attention_dim=16",
        "model.hidden_dim=32", "data.image_size=48", "data.num_workers=0", "train.global_batch_size=2",
        "eval.batch_size=4", "eval.max_len=4", "eval.beam_size=1", "logging.every_steps=1"]


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setenv("SHOWATTEND_REMOTE_ATTEMPTS", "3")
    monkeypatch.setenv("SHOWATTEND_REMOTE_BACKOFF_S", "0.05")
    monkeypatch.setenv("SHOWATTEND_REMOTE_TIMEOUT_S", "2")


def with_password(url: str) -> str:
    return url.replace("http://", "http://alice:s3cr3t-pw@")


@pytest.mark.parametrize("location, shown", [
    ("http://alice:s3cr3t-pw@host:8000/data", "http://***@host:8000/data"),
    ("https://TOKEN@host/data", "https://***@host/data"),
    ("s3://bucket/x?X-Amz-Credential=AKIA&X-Amz-Signature=abc123&part=1",
     "s3://bucket/x?X-Amz-Credential=***&X-Amz-Signature=***&part=1"),
    ("https://a.blob.core.windows.net/c/x.tar?sv=1&sig=Zm9v%3D", "https://a.blob.core.windows.net/c/x.tar?sv=1&sig=***"),
    ("error: http://u:p@h/m.json?token=abc: unreadable", "error: http://***@h/m.json?token=***: unreadable"),
    ("/data/prepared", "/data/prepared"),
    ("user@example.com wrote it", "user@example.com wrote it"),
])
def test_locations_are_shown_without_secrets(location, shown):
    from data_pipelines.redact import redact

    assert redact(location) == shown


class FlakyHandler(QuietHandler):
    failures = 0

    def do_GET(self):
        if self.path.endswith(".tar") and FlakyHandler.failures > 0:
            FlakyHandler.failures -= 1
            self.send_error(503)
            return
        super().do_GET()


def test_retry_warnings_and_error_lines_hide_the_password(tiny_prepared, caplog, tmp_path):
    FlakyHandler.failures = 1
    with caplog.at_level(logging.WARNING, logger="data_pipelines.data_root"), \
            http_server(tiny_prepared, FlakyHandler) as (url, _):
        secret_url = with_password(url)
        with RemoteReader(f"{secret_url}/test-000000.tar") as reader:
            assert reader.read(10)
    retries = [record.getMessage() for record in caplog.records]
    assert retries and all("s3cr3t" not in message and "http://***@127.0.0.1" in message for message in retries)
    with pytest.raises(SystemExit) as stopped, exit_on_user_error():
        read_manifest(f"{secret_url}/nowhere")
    assert "s3cr3t" not in str(stopped.value.code) and "***@127.0.0.1" in str(stopped.value.code)


def test_a_run_over_a_url_with_a_password_records_it_nowhere(tiny_prepared, tmp_path):
    out = tmp_path / "run"
    with http_server(tiny_prepared) as (url, _):
        result = subprocess.run([sys.executable, str(REPO / "trainer" / "train.py"), f"data.root={with_password(url)}",
                                 f"output_dir={out}", *TINY, "train.max_steps=1", "eval.every_steps=1"], cwd=REPO,
                                capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line for line in (result.stderr + result.stdout).splitlines() if "s3cr3t" in line] == []
    recorded = [path for path in out.rglob("*") if path.is_file()]
    names = {path.name for path in recorded}
    assert {"config.yaml", "trainer_state.json", "README.md"} <= names and any("events" in n for n in names)
    assert [path for path in recorded if b"s3cr3t" in path.read_bytes()] == []
    assert "http://***@127.0.0.1" in (out / "config.yaml").read_text()


def test_the_model_card_and_config_of_a_config_with_a_password_hide_it(tiny_checkpoint, tmp_path):
    config = load_config(None, ["data.root=http://alice:s3cr3t-pw@127.0.0.1:9/data?token=t0k"])
    card = (tmp_path / "card")
    card.mkdir()
    (card / "config.json").write_bytes((tiny_checkpoint[0] / "config.json").read_bytes())
    text = write_model_card(card, config).read_text()
    config.save(tmp_path / "config.yaml")
    for written in (text, (tmp_path / "config.yaml").read_text()):
        assert "s3cr3t" not in written and "t0k" not in written and "http://***@127.0.0.1:9/data" in written
    assert config.data.root.startswith("http://alice:s3cr3t-pw@")  # the run itself uses the real location


class EndlessHandler(QuietHandler):
    """Sends ``manifest.json`` and every ``.tar`` without a size and (nearly) without end."""

    def _headers(self) -> bool:
        if not self.path.endswith((".json", ".tar")):
            return False
        self.send_response(200)
        self.end_headers()
        return True

    def do_HEAD(self):
        if not self._headers():
            super().do_HEAD()

    def do_GET(self):
        if not self._headers():
            return super().do_GET()
        try:
            for _ in range(256):  # 64 MiB: far past the bounds the tests set, ends a test of the old code too
                self.wfile.write(b" " * (1 << 18))
        except OSError:
            pass


@pytest.mark.parametrize("chunk", [None, 1 << 16])  # however the network splits it: 64 KiB reads end on the bound
def test_a_manifest_that_never_ends_stops_at_the_bound(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(data_root, "SMALL_FILE_MAX_BYTES", 1 << 20)
    if chunk:
        read_some = RemoteReader._read_some
        monkeypatch.setattr(RemoteReader, "_read_some", lambda reader, size: read_some(reader, min(size, chunk)))
    with http_server(tmp_path, EndlessHandler) as (url, _):
        with pytest.raises(RemoteDataError) as stopped:
            read_manifest(with_password(url))
    message = str(stopped.value)
    assert message.startswith(f"{with_password(url).replace('alice:s3cr3t-pw', '***')}/manifest.json: more than "
                              f"1048576 bytes") and "\n" not in message


def test_a_shard_that_never_ends_stops_at_the_bound_naming_the_url(tmp_path):
    out = tmp_path / "out"
    with http_server(tmp_path, EndlessHandler) as (url, _):
        result = subprocess.run([sys.executable, "-m", "data_pipelines.prepare", "webdataset", "--shards",
                                 f"{with_password(url)}/part-0.tar", "--out", str(out)], cwd=REPO, capture_output=True,
                                text=True, timeout=300, env={**os.environ, "SHOWATTEND_MAX_SHARD_BYTES": str(1 << 20),
                                                             "SHOWATTEND_REMOTE_TIMEOUT_S": "2"})
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert last.startswith(f"error: http://***@127.0.0.1:{url.rsplit(':', 1)[1]}/part-0.tar: ") and \
        "more than the 1048576 bytes" in last and not out.exists()


class NoLengthHandler(QuietHandler):
    """Serves files like a plain server, but never says their size (no Content-Length, close-delimited)."""

    def send_header(self, keyword, value):
        if keyword.lower() != "content-length":
            super().send_header(keyword, value)


def test_shards_without_content_length_are_read_and_fingerprinted(tiny_prepared):
    with http_server(tiny_prepared, NoLengthHandler) as (url, _):
        root = DataRoot(url)
        assert root.size("test-000000.tar") is None
        with RemoteReader(root.join("test-000000.tar")) as reader:
            assert reader.read() == (tiny_prepared / "test-000000.tar").read_bytes()
        fingerprint = dataset_fingerprint(url)
    assert len(fingerprint) == 64 and fingerprint != dataset_fingerprint(tiny_prepared)


@pytest.mark.parametrize("name, value", [("SHOWATTEND_REMOTE_TIMEOUT_S", "0"), ("SHOWATTEND_REMOTE_TIMEOUT_S", "-1"),
                                         ("SHOWATTEND_REMOTE_TIMEOUT_S", "nan"), ("SHOWATTEND_REMOTE_ATTEMPTS", "0"),
                                         ("SHOWATTEND_REMOTE_BACKOFF_S", "soon"), ("SHOWATTEND_MAX_SHARD_BYTES", "0")])
def test_remote_settings_are_checked(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"^environment variable {name}='{value}': expected an? "):
        RemoteReader("http://127.0.0.1:9/x.tar")


class CountingNotFound(QuietHandler):
    requests: list[str] = []

    def do_HEAD(self):
        CountingNotFound.requests.append("HEAD")
        self.send_error(404)

    def do_GET(self):
        CountingNotFound.requests.append("GET")
        self.send_error(404)


def test_a_missing_file_is_not_retried(tmp_path):
    CountingNotFound.requests = []
    with http_server(tmp_path, CountingNotFound) as (url, _):
        with pytest.raises(RemoteDataError, match=f"{url}/missing.tar"):
            RemoteReader(f"{url}/missing.tar")
        with pytest.raises(RemoteDataError, match="missing.json"):
            read_location(f"{url}/missing.json")
    assert len(CountingNotFound.requests) <= 4  # fsspec asks HEAD, then GET; once per file

