"""Serving throughput: ``showattend-serve`` with dynamic batching vs the same server with batching off, in one run.

    python -m benchmarks.bench_serve [--quick] [--clients 32] [--requests 8] [--json PATH]

Each server runs in its own process on 127.0.0.1; 32 client threads each send ``--requests`` caption requests one
after the other (closed loop: a client sends its next request when the last one is answered). The model is a random
Captioner with a synthetic vocabulary of 10,000 words (beam 5, at most 20 words; random weights never end a caption
early, so every request decodes all 20 steps); images of 64 px are captioned at 32 px, so the decoder, not the frozen
ResNet-50, is what is measured. Reports requests/s, p50/p99 latency and failed requests of both servers, and the
ratio (target: batching >= 4x with zero failed requests). ``--threads``: torch threads of each server (default 1:
on a shared machine, more threads than free cores make every matrix product wait for a descheduled thread).
"""
from __future__ import annotations

import io
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image

from benchmarks.common import benchmark_parser, write_result
from data_pipelines.vocab import Vocabulary
from modeling import Captioner, CaptionerConfig
from tests.serve_process import serving


def random_checkpoint(folder: Path, vocab_size: int, image_size: int) -> Path:
    """A random-weight checkpoint with a synthetic vocabulary of ``vocab_size`` words (specials included)."""
    torch.manual_seed(0)
    vocab = Vocabulary([f"word{index}" for index in range(vocab_size - 4)])
    Captioner(CaptionerConfig(vocab_size=len(vocab), encoder_weights="none")).save_pretrained(folder)
    vocab.save(folder / "vocab.json")
    (folder / "trainer_state.json").write_text(json.dumps({"train_config": {"data": {"image_size": image_size}}}))
    return folder


def test_image(size: int = 64) -> bytes:
    generator = torch.Generator().manual_seed(1)
    pixels = (torch.rand(size, size, 3, generator=generator) * 255).to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def load(server, image: bytes, clients: int, requests: int, fields: dict) -> dict:
    """Requests/s, latency percentiles and failures of ``clients`` closed-loop clients x ``requests`` each."""
    def client(_index: int) -> list[tuple[int, float]]:
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            try:
                status = server.caption(image, "image/png", timeout=600, **fields)[0]
            except OSError:
                status = 0
            timings.append((status, time.perf_counter() - started))
        return timings

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        timings = [timing for result in pool.map(client, range(clients)) for timing in result]
    seconds = time.perf_counter() - started
    latencies = sorted(latency for status, latency in timings if status == 200)
    percentile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None  # noqa: E731
    return {"requests_per_s": len(latencies) / seconds, "p50_ms": 1000 * percentile(0.50),
            "p99_ms": 1000 * percentile(0.99), "mean_ms": 1000 * statistics.fmean(latencies),
            "failed": sum(status != 200 for status, _ in timings), "requests": len(timings), "seconds": seconds}


def batch_totals(server) -> tuple[float, float]:
    """(images, batches) decoded so far, from the server's /metrics."""
    lines = dict(line.rsplit(" ", 1) for line in server.get("/metrics")[1].decode().splitlines()
                 if line.startswith("showattend_batch_size_"))
    return float(lines["showattend_batch_size_sum"]), float(lines["showattend_batch_size_count"])


def main() -> None:
    parser = benchmark_parser(__doc__, "8 clients x 2 requests (a smoke run; the ratio is not meaningful)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=8, help="requests per client")
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each server (showattend-serve --threads)")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.requests = 8, 2
    fields = {"beam_size": args.beam_size, "max_len": args.max_len}
    result = {"clients": args.clients, "requests_per_client": args.requests, "vocab_size": args.vocab_size,
              "beam_size": args.beam_size, "max_len": args.max_len, "image_size": args.image_size, "threads": args.threads,
              "load_average_before": os.getloadavg()[0]}
    image = test_image()
    with tempfile.TemporaryDirectory(prefix="bench_serve-") as folder:
        checkpoint = random_checkpoint(Path(folder), args.vocab_size, args.image_size)
        for name, flags in (("batching_off", ("--max-batch", "1", "--max-wait-ms", "0")),
                            ("batching", ("--max-batch", str(args.clients), "--max-wait-ms", str(args.max_wait_ms)))):
            with serving(checkpoint, "--threads", str(args.threads), "--max-queue", str(4 * args.clients),
                         "--request-timeout-s", "600", *flags) as server:
                load(server, image, min(args.clients, 4), 1, fields)  # warm-up
                images_before, batches_before = batch_totals(server)
                result[name] = load(server, image, args.clients, args.requests, fields)
                images, batches = batch_totals(server)
                result[name]["mean_batch"] = (images - images_before) / max(1.0, batches - batches_before)
            print(name, json.dumps(result[name]), flush=True)
    result["load_average_after"] = os.getloadavg()[0]
    result["speedup"] = result["batching"]["requests_per_s"] / result["batching_off"]["requests_per_s"]
    print(json.dumps(result, indent=1))
    write_result(result, args.json)


if __name__ == "__main__":
    main()
