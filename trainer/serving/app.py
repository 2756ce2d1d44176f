"""The aiohttp application: ``POST /v1/captions``, ``GET /healthz``, ``/readyz``, ``/metrics`` and the page at ``/``.

The model loads in the background once the server listens (``/readyz`` and captions answer 503 until then). Every
error is JSON ``{"error": message}`` with its status. Bodies are read under ``read_timeout_s``, images are checked
and decoded off the event loop, and only their model inputs wait in the batcher's queue.
"""
from __future__ import annotations

import asyncio
import math
import sys
import time
import traceback
from dataclasses import dataclass
from importlib import resources
from typing import Callable

import torch
from aiohttp import web

from modeling import DecodingOptions
from trainer.inference.pipeline import CaptionPipeline
from trainer.serving.batcher import Batcher, QueueFull
from trainer.serving.controls import request_options
from trainer.serving.limits import RequestError, ServeLimits, decode_image
from trainer.serving.metrics import CONTENT_TYPE, ServeMetrics

RAW_TYPES = ("application/octet-stream",)  # besides image/*
CAPTIONS_PATH = "/v1/captions"


@dataclass(frozen=True)
class Batching:
    """max_batch: images decoded together at most (1: batching off). max_wait_s: how long the first waiting request
    waits for others with the same options."""

    max_batch: int = 32
    max_wait_s: float = 0.01


def caption_json(caption, grid_size: int, attention: bool) -> dict:
    line = {"text": caption.text, "score": caption.score if math.isfinite(caption.score) else None}
    if attention:
        line["attention"] = [[round(float(weight), 5) for weight in word] for word in caption.alphas]
        line["grid_size"] = grid_size
    return line


class CaptionService:
    """The state behind the routes: limits, default options, metrics, and (once loaded) the pipeline and batcher.
    ``load`` runs in a thread once the server listens."""

    def __init__(self, load: Callable[[], CaptionPipeline], defaults: DecodingOptions, limits: ServeLimits,
                 batching: Batching, suppress_unk: bool = False):
        self.load, self.defaults, self.limits, self.batching = load, defaults, limits, batching
        self.suppress_unk = suppress_unk  # the default of requests that do not say
        self.metrics = ServeMetrics()
        self.pipe: CaptionPipeline | None = None
        self.batcher: Batcher | None = None
        self.load_error: str | None = None
        self.load_task: asyncio.Task | None = None
        self.on_load_error: Callable[[], None] = lambda: None  # the CLI stops the server: nothing to serve

    def decode(self, pixels: list, options: DecodingOptions) -> list:
        """Runs on the model thread: each image's captions, decoded together, each seeded as if it were alone."""
        return self.pipe.caption_pixels(torch.stack(pixels), options, [options.seed] * len(pixels), attention=True)

    def prepare(self, body: bytes):
        """Off the event loop: the checked, decoded image's size and its model input (a few hundred KB, whatever
        the image's size: what waits in the queue is small)."""
        image = decode_image(body, self.limits)
        return image.size, self.pipe.transform(image)

    async def start(self, _app: web.Application) -> None:
        self.load_task = asyncio.get_running_loop().create_task(self.load_model())

    async def load_model(self) -> None:
        try:
            pipe = await asyncio.get_running_loop().run_in_executor(None, self.load)
        except Exception as error:  # noqa: BLE001 - reported by /readyz and every caption request
            self.load_error = f"model not loaded: {error}"
            print(f"error: {self.load_error}", file=sys.stderr, flush=True)
            self.on_load_error()
            return
        self.pipe = pipe
        self.batcher = Batcher(self.decode, self.batching.max_batch, self.batching.max_wait_s, self.limits.max_queue,
                               self.metrics)
        self.metrics.ready = True

    async def stop(self, _app: web.Application) -> None:
        """After the in-flight requests are answered: decode what still waits, stop the model thread."""
        self.load_task.cancel()
        if self.batcher is not None:
            await self.batcher.close()

    def unavailable(self) -> RequestError:
        message = self.load_error or "model is loading"
        return RequestError(503, message, {"Retry-After": str(self.limits.retry_after_s)})

    async def read_request(self, request: web.Request) -> tuple[bytes, dict[str, str]]:
        """(image bytes, fields): a raw image body with controls in the query string, or multipart/form-data with an
        ``image`` file field and control fields."""
        fields = dict(request.query)
        if request.content_type == "multipart/form-data":
            form = await request.post()
            image = form.get("image")
            if not isinstance(image, web.FileField):
                raise RequestError(400, "multipart body without a file field 'image'")
            fields.update({name: value for name, value in form.items() if isinstance(value, str)})
            return image.file.read(), fields
        if request.content_type.startswith("image/") or request.content_type in RAW_TYPES:
            return await request.read(), fields
        raise RequestError(415, f"Content-Type {request.content_type!r}: send image/*, application/octet-stream "
                                f"or multipart/form-data")

    async def captions(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        if self.batcher is None:
            raise self.unavailable()
        length = request.content_length
        if length is not None and length > self.limits.max_body_bytes:
            raise RequestError(413, f"body of {length:,} bytes exceeds the limit of {self.limits.max_body_bytes:,}")
        try:
            body, fields = await asyncio.wait_for(self.read_request(request), self.limits.read_timeout_s)
        except asyncio.TimeoutError:
            raise RequestError(408, f"the body did not arrive within {self.limits.read_timeout_s:g} s") from None
        options, suppress_unk, attention = request_options(fields, self.defaults, self.limits)
        options = self.pipe.options(options, self.suppress_unk if suppress_unk is None else suppress_unk)
        (width, height), pixels = await asyncio.get_running_loop().run_in_executor(None, self.prepare, body)
        try:
            captions = await asyncio.wait_for(self.batcher.submit(pixels, options),
                                              self.limits.request_timeout_s - (time.monotonic() - started))
        except QueueFull:
            raise RequestError(503, "too many requests waiting; retry later",
                               {"Retry-After": str(self.limits.retry_after_s)}) from None
        except asyncio.TimeoutError:
            raise RequestError(504, f"not captioned within {self.limits.request_timeout_s:g} s") from None
        grid = self.pipe.model.config.grid_size
        return web.json_response({"captions": [caption_json(c, grid, attention) for c in captions],
                                  "image": {"width": width, "height": height},
                                  "image_size": self.pipe.image_size})

    @web.middleware
    async def errors_as_json(self, request: web.Request, handler) -> web.StreamResponse:
        """Every error becomes JSON with its status; caption requests are counted and timed."""
        started = time.monotonic()
        try:
            response = await handler(request)
        except RequestError as error:
            response = web.json_response({"error": error.message}, status=error.status, headers=error.headers)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            response = web.json_response({"error": error.reason}, status=error.status)
        except Exception:  # noqa: BLE001 - one failing request must not take the service down
            traceback.print_exc(file=sys.stderr)
            response = web.json_response({"error": "internal error (see the server's log)"}, status=500)
        if request.path == CAPTIONS_PATH:
            self.metrics.request_done(response.status, time.monotonic() - started)
        return response


def create_app(service: CaptionService) -> web.Application:
    """The application serving ``service`` (bodies above ``limits.max_body_bytes`` are refused with 413)."""
    app = web.Application(client_max_size=service.limits.max_body_bytes, middlewares=[service.errors_as_json])
    page = resources.files("trainer.serving").joinpath("assets/index.html").read_bytes()

    async def index(_request):
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def healthz(_request):
        return web.json_response({"status": "ok"})

    async def readyz(_request):
        if service.batcher is None:
            raise service.unavailable()
        return web.json_response({"status": "ready"})

    async def metrics(_request):
        return web.Response(body=service.metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    app.add_routes([web.get("/", index), web.get("/healthz", healthz), web.get("/readyz", readyz),
                    web.get("/metrics", metrics), web.post(CAPTIONS_PATH, service.captions)])
    app.on_startup.append(service.start)
    app.on_cleanup.append(service.stop)
    return app
