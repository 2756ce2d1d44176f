"""The dynamic batcher and the service's readiness, in process (no model): same-options requests are decoded together
up to ``max_batch`` after at most ``max_wait_s``, other options wait for their own batch, the queue is bounded,
requests whose client gave up never reach the model, closing decodes what waits; ``/readyz`` and captions are 503
with Retry-After until the model is loaded."""
import asyncio
import threading

import pytest

from modeling import DecodingOptions
from trainer.serving.app import Batching, CaptionService, create_app
from trainer.serving.batcher import Batcher, QueueFull
from trainer.serving.limits import ServeLimits
from trainer.serving.metrics import ServeMetrics


def recording_batcher(max_batch=4, max_wait_s=0.05, max_queue=16):
    calls = []

    def decode(items, key):
        calls.append((key, list(items)))
        return [f"{key}:{item}" for item in items]

    return Batcher(decode, max_batch, max_wait_s, max_queue, ServeMetrics()), calls


def test_same_key_requests_are_decoded_together_up_to_max_batch():
    async def scenario():
        batcher, calls = recording_batcher(max_batch=4, max_wait_s=0.5)
        results = await asyncio.gather(*(batcher.submit(index, "a") for index in range(6)),
                                       batcher.submit(99, "b"))
        await batcher.close()
        return results, calls, batcher.metrics

    results, calls, metrics = asyncio.run(scenario())
    assert results == [f"a:{index}" for index in range(6)] + ["b:99"]
    assert calls[0] == ("a", [0, 1, 2, 3])  # full batch without waiting out max_wait_s
    assert sorted(calls[1:]) == [("a", [4, 5]), ("b", [99])]
    assert metrics.batch_size.count == 3 and metrics.queue_depth == 0


def test_the_queue_is_bounded_and_abandoned_requests_never_reach_the_model():
    async def scenario():
        gate = threading.Event()
        calls = []

        def decode(items, key):
            calls.append(list(items))
            gate.wait(timeout=30)
            return items

        batcher = Batcher(decode, 1, 0.0, 2, ServeMetrics())
        first = asyncio.ensure_future(batcher.submit("first", "k"))
        await asyncio.sleep(0.05)  # the model thread now holds "first"
        waiting = [asyncio.ensure_future(batcher.submit(name, "k")) for name in ("second", "third")]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit("fourth", "k")
        waiting[0].cancel()  # its client gave up (e.g. the per-request timeout)
        gate.set()
        assert await first == "first" and await waiting[1] == "third"
        await batcher.close()
        return calls

    assert asyncio.run(scenario()) == [["first"], ["third"]]


def test_close_decodes_what_waits():
    async def scenario():
        batcher, calls = recording_batcher(max_batch=8, max_wait_s=5.0)
        pending = [asyncio.ensure_future(batcher.submit(index, "a")) for index in range(3)]
        await asyncio.sleep(0)
        await batcher.close()  # does not wait out the 5 s
        return [future.result() for future in pending], calls

    results, calls = asyncio.run(scenario())
    assert results == ["a:0", "a:1", "a:2"] and calls == [("a", [0, 1, 2])]


def test_readyz_and_captions_are_503_until_the_model_is_loaded():
    from aiohttp.test_utils import TestClient, TestServer

    loaded = threading.Event()

    def load():
        loaded.wait(timeout=60)
        raise ValueError("no model in this test")

    async def scenario():
        service = CaptionService(load, DecodingOptions(), ServeLimits(), Batching())
        async with TestClient(TestServer(create_app(service), host="127.0.0.1")) as client:
            answers = []
            for path, method in (("/readyz", "get"), ("/v1/captions", "post"), ("/healthz", "get")):
                response = await getattr(client, method)(path, data=b"x" if method == "post" else None,
                                                         headers={"Content-Type": "image/png"})
                answers.append((response.status, response.headers.get("Retry-After"), await response.json()))
            loaded.set()
            while service.load_error is None:
                await asyncio.sleep(0.01)
            response = await client.get("/readyz")
            answers.append((response.status, None, await response.json()))
        return answers

    answers = asyncio.run(scenario())
    assert answers[0] == (503, "1", {"error": "model is loading"})
    assert answers[1] == (503, "1", {"error": "model is loading"})
    assert answers[2][0] == 200
    assert answers[3][0] == 503 and "no model in this test" in answers[3][2]["error"]
