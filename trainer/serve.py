"""Serve a checkpoint over HTTP: captions as JSON, dynamic batching, a page to try it (docs/serving.md).

    showattend-serve --checkpoint CKPT_OR_HUB_NAME [--host 127.0.0.1] [--port 8000] [--max-batch 32] [--max-wait-ms 10]
    python -m trainer.serve ...

Prints ``serving http://HOST:PORT`` once it listens (``--port 0``: a free port). The decoding flags set the defaults
of requests that do not give a control. SIGTERM or Ctrl-C: stop accepting, answer the requests in flight (up to
``--drain-s``), exit 0.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from trainer.inference.arguments import add_checkpoint_arguments, add_decoding_arguments, at_least, options_from_args, real_in
from trainer.inference.pipeline import DECODE_DTYPE_HELP, DECODE_DTYPES, CaptionPipeline
from trainer.serving.app import Batching, CaptionService, create_app
from trainer.serving.limits import ServeLimits

LIMITS = ServeLimits()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trainer.serve", description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    parser.add_argument("--port", type=at_least(0), default=8000, help="0: any free port")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--dtype", choices=sorted(DECODE_DTYPES), default="float32", help=DECODE_DTYPE_HELP)
    parser.add_argument("--threads", type=at_least(1), default=None,
                        help="torch CPU threads (default: torch's choice, one per core); 1 per replica when several "
                             "replicas share a machine")
    add_decoding_arguments(parser)
    group = parser.add_argument_group("batching and limits")
    group.add_argument("--max-batch", type=at_least(1), default=32, help="images decoded together (1: no batching)")
    group.add_argument("--max-wait-ms", type=real_in(0.0, 10_000.0), default=10.0,
                       help="how long a request waits for others with the same options")
    group.add_argument("--max-queue", type=at_least(1), default=LIMITS.max_queue, help="waiting requests (503 above)")
    group.add_argument("--max-body-mb", type=real_in(0.0, 1024.0, low_open=True), default=LIMITS.max_body_bytes / 2**20)
    group.add_argument("--max-pixels", type=at_least(1), default=LIMITS.max_pixels, help="width x height at most")
    group.add_argument("--request-timeout-s", type=real_in(0.0, 3600.0, low_open=True), default=LIMITS.request_timeout_s,
                       help="from a request's arrival to its captions (504 after)")
    group.add_argument("--read-timeout-s", type=real_in(0.0, 3600.0, low_open=True), default=LIMITS.read_timeout_s,
                       help="time for a request's body to arrive (408 after)")
    group.add_argument("--max-beam-size", type=at_least(1), default=LIMITS.max_beam_size)
    group.add_argument("--max-len-limit", type=at_least(1), default=LIMITS.max_len, help="the largest max_len asked")
    group.add_argument("--drain-s", type=real_in(0.0, 3600.0), default=30.0,
                       help="on SIGTERM, how long requests in flight get to finish")
    return parser.parse_args(argv)


async def serve(service: CaptionService, host: str, port: int, drain_s: float) -> int:
    """Listen until SIGTERM/SIGINT, then drain: stop accepting, finish requests in flight, stop the model thread.
    Exit status 0, or 1 when the model could not be loaded."""
    from aiohttp import web

    stop = asyncio.Event()
    service.on_load_error = stop.set  # before setup starts the load: a load that fails at once still stops us
    runner = web.AppRunner(create_app(service), handle_signals=False, shutdown_timeout=drain_s, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    print(f"serving http://{bound_host}:{bound_port}", flush=True)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    if service.load_error is None:
        print("draining: answering the requests in flight", file=sys.stderr, flush=True)
    await runner.cleanup()
    return 1 if service.load_error else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        defaults = options_from_args(args)
    except ValueError as error:
        sys.exit(f"error: {error}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    limits = ServeLimits(max_body_bytes=int(args.max_body_mb * 2**20), max_pixels=args.max_pixels,
                         max_queue=args.max_queue, request_timeout_s=args.request_timeout_s,
                         read_timeout_s=args.read_timeout_s, max_beam_size=args.max_beam_size,
                         max_len=args.max_len_limit)

    def load() -> CaptionPipeline:
        return CaptionPipeline.from_pretrained(args.checkpoint, revision=args.revision, device=args.device,
                                               dtype=args.dtype)

    service = CaptionService(load, defaults, limits, Batching(args.max_batch, args.max_wait_ms / 1000), args.suppress_unk)
    try:
        return asyncio.run(serve(service, args.host, args.port, args.drain_s))
    except OSError as error:  # e.g. the port is taken
        sys.exit(f"error: cannot listen on {args.host}:{args.port}: {error.strerror or error}")


if __name__ == "__main__":
    sys.exit(main())
