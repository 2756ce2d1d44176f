"""Prepared data read from URLs (data_pipelines.data_root) against real servers on 127.0.0.1: the same samples as from
disk over HTTP and S3 (moto), retries of transient errors, truncated downloads counted as broken samples, and a server
that goes away or hangs ending the read with an error naming the URL within a bounded time."""
import logging
import socket
import time
from pathlib import Path

import pytest
import torch

from data_pipelines.data_root import DataRoot, RemoteDataError
from data_pipelines.manifest import dataset_fingerprint, read_manifest
from data_pipelines.stream import TrainLoaderOptions, build_eval_loader
from data_pipelines.stream_samples import BrokenSampleCounter, read_tar_samples
from data_pipelines.train_stream import build_lane_loader
from data_pipelines.vocab import Vocabulary
from tests.remote_servers import QuietHandler, http_server, s3_server, upload_folder
from trainer.scst.df_cache import CACHE_NAME, load_document_frequencies

OPTIONS = TrainLoaderOptions(batch_size=2, num_workers=1, image_size=32, captions_per_image=2, shuffle_buffer=4)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setenv("SHOWATTEND_REMOTE_ATTEMPTS", "3")
    monkeypatch.setenv("SHOWATTEND_REMOTE_BACKOFF_S", "0.05")
    monkeypatch.setenv("SHOWATTEND_REMOTE_TIMEOUT_S", "2")


def eval_batches(root, split="test", **options) -> list[dict]:
    return list(build_eval_loader(root, split, batch_size=2, num_workers=0, image_size=32, **options))


def lane_batches(root, vocab, start_step=0) -> list[dict]:
    return list(build_lane_loader(root, vocab, OPTIONS, global_batch_size=2, lanes=range(1), epoch=1,
                                  start_step=start_step))


def assert_same_batches(ours: list[dict], reference: list[dict]) -> None:
    assert [b["image_id"] for b in ours] == [b["image_id"] for b in reference]
    for mine, theirs in zip(ours, reference):
        assert torch.equal(mine["pixels"], theirs["pixels"])
        for key in ("captions", "references"):
            if key in theirs:
                assert (torch.equal(mine[key], theirs[key]) if key == "captions" else mine[key] == theirs[key])


def test_http_root_reads_manifest_vocab_and_the_same_batches_as_disk(tiny_prepared):
    vocab = Vocabulary.load(tiny_prepared / "vocab.json")
    with http_server(tiny_prepared) as (url, _):
        assert read_manifest(url) == read_manifest(tiny_prepared)
        assert dataset_fingerprint(url) == dataset_fingerprint(tiny_prepared)
        assert Vocabulary.load(f"{url}/vocab.json").itos == vocab.itos
        assert_same_batches(eval_batches(url), eval_batches(tiny_prepared))
        straight = lane_batches(url, vocab)
        assert_same_batches(straight, lane_batches(tiny_prepared, vocab))
        assert_same_batches(lane_batches(url, vocab, start_step=1), straight[1:])  # resume at a step: exact


def test_s3_root_reads_the_same_batches_as_disk(tiny_prepared, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    vocab = Vocabulary.load(tiny_prepared / "vocab.json")
    with s3_server() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        url = upload_folder(endpoint, tiny_prepared, "prepared")
        assert dataset_fingerprint(url) == dataset_fingerprint(tiny_prepared)
        assert_same_batches(eval_batches(url), eval_batches(tiny_prepared))
        assert_same_batches(lane_batches(url, vocab), lane_batches(tiny_prepared, vocab))
        batches = iter(build_eval_loader(url, "train", batch_size=1, num_workers=0, image_size=32))
        next(batches)
        server_gone_at = time.monotonic()
    with pytest.raises(RemoteDataError, match="s3://prepared/data/train-00000"):
        list(batches)  # the moto server stopped with the with-block above
    assert time.monotonic() - server_gone_at < 60


class FlakyHandler(QuietHandler):
    """Answers the first ``failures`` shard downloads with 503, then serves normally."""

    failures = 2

    def do_GET(self):
        if self.path.endswith(".tar") and FlakyHandler.failures > 0:
            FlakyHandler.failures -= 1
            self.send_error(503, "busy")
            return
        super().do_GET()


def test_transient_errors_are_retried_and_logged(tiny_prepared, caplog):
    FlakyHandler.failures = 2
    with caplog.at_level(logging.WARNING, logger="data_pipelines.data_root"), \
            http_server(tiny_prepared, FlakyHandler) as (url, _):
        assert_same_batches(eval_batches(url), eval_batches(tiny_prepared))
    retries = [record.getMessage() for record in caplog.records if "retry" in record.getMessage()]
    assert len(retries) == 2 and all("test-000000.tar" in message for message in retries)


class CuttingHandler(QuietHandler):
    """Announces the whole test shard but sends only half of it, then closes the connection."""

    def do_GET(self):
        if not self.path.endswith("test-000000.tar"):
            return super().do_GET()
        payload = Path(self.directory, self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        self.wfile.flush()
        self.close_connection = True


def test_truncated_download_counts_as_broken_samples(tiny_prepared):
    with http_server(tiny_prepared, CuttingHandler) as (url, _):
        loader = build_eval_loader(url, "test", batch_size=2, num_workers=0, image_size=32)
        images = [image_id for batch in loader for image_id in batch["image_id"]]
    assert len(images) < 4 and loader.broken_samples >= 1
    complete = [image_id for batch in eval_batches(tiny_prepared) for image_id in batch["image_id"]]
    assert images == complete[: len(images)]


def test_server_that_goes_away_ends_the_read_naming_the_url(tiny_prepared):
    with http_server(tiny_prepared) as (url, server):
        batches = iter(build_eval_loader(url, "train", batch_size=1, num_workers=0, image_size=32))
        next(batches)
        server.shutdown()
        server.server_close()
        started = time.monotonic()
        with pytest.raises(RemoteDataError, match=f"{url}/train-00000.\\.tar: unreadable after 3 attempt"):
            list(batches)
    assert time.monotonic() - started < 10


def test_server_that_hangs_times_out_naming_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOWATTEND_REMOTE_TIMEOUT_S", "0.5")
    listener = socket.create_server(("127.0.0.1", 0))  # accepts connections (backlog), never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/train-000000.tar"
    started = time.monotonic()
    try:
        with pytest.raises(RemoteDataError, match=url):
            list(read_tar_samples([url], BrokenSampleCounter()))
    finally:
        listener.close()
    assert time.monotonic() - started < 15


def test_shard_locations_are_opened_never_interpreted(tmp_path):
    marker = tmp_path / "ran"
    counter = BrokenSampleCounter()
    assert list(read_tar_samples([f"pipe:touch {marker}"], counter)) == []
    assert counter.count == 1 and not marker.exists()


def test_document_frequency_cache_of_a_remote_root_is_local(tiny_prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("SHOWATTEND_CACHE_DIR", str(tmp_path / "cache"))
    local = load_document_frequencies(tiny_prepared, cache_path=tmp_path / "local.safetensors")
    with http_server(tiny_prepared) as (url, _):
        remote = load_document_frequencies(url)
        cached = list((tmp_path / "cache").rglob(CACHE_NAME))
        assert len(cached) == 1 and load_document_frequencies(url).digest() == remote.digest()
    assert remote.digest() == local.digest() and not (tiny_prepared / CACHE_NAME).exists()
    assert DataRoot(url).remote and not DataRoot(tiny_prepared).remote



def test_baselines_read_a_url_like_a_folder(tiny_prepared):
    from trainer.evaluation.caption_baselines import caption_baselines

    with http_server(tiny_prepared) as (url, _):
        assert caption_baselines(url, "test") == caption_baselines(tiny_prepared, "test")


@pytest.mark.slow
def test_evaluate_reads_a_url_like_a_folder(tiny_checkpoint, tmp_path):
    from trainer import evaluate_checkpoint

    checkpoint, data, _ = tiny_checkpoint
    common = ["--checkpoint", str(checkpoint), "--split", "test", "--beam-size", "2", "--max-len", "5",
              "--num-workers", "0"]
    assert evaluate_checkpoint.main([*common, "--data", str(data), "--out", str(tmp_path / "disk.json")]) == 0
    with http_server(data) as (url, _):
        assert evaluate_checkpoint.main([*common, "--data", url, "--out", str(tmp_path / "http.json")]) == 0
    assert (tmp_path / "http.json").read_bytes() == (tmp_path / "disk.json").read_bytes()


class TarsUnavailable(QuietHandler):
    """Answers HEAD for every file but 503 to a GET of a shard: the data looks fine at set-up, decoding fails."""

    def do_GET(self) -> None:
        if self.path.endswith(".tar"):
            self.send_error(503)
        else:
            super().do_GET()


@pytest.mark.slow
def test_evaluate_names_an_unreadable_shard_in_one_line(tiny_checkpoint, tmp_path, monkeypatch):
    from trainer import evaluate_checkpoint

    for name, value in {"SHOWATTEND_REMOTE_ATTEMPTS": "2", "SHOWATTEND_REMOTE_BACKOFF_S": "0.1"}.items():
        monkeypatch.setenv(name, value)
    checkpoint, data, _ = tiny_checkpoint
    with http_server(data, TarsUnavailable) as (url, _), pytest.raises(SystemExit) as exit_info:
        evaluate_checkpoint.main(["--checkpoint", str(checkpoint), "--split", "test", "--beam-size", "2",
                                  "--max-len", "5", "--num-workers", "0", "--data", url,
                                  "--out", str(tmp_path / "results.json")])
    message = str(exit_info.value)
    assert message.startswith(f"error: {url}/test-") and "unreadable after 2 attempt" in message, message
    assert "\n" not in message and not (tmp_path / "results.json").exists()
