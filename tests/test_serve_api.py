"""The caption service on 127.0.0.1 (a real ``trainer.serve`` process): captions equal ``CaptionPipeline``'s for each
image alone, raw and multipart bodies, controls by ``DecodingOptions`` names, JSON errors, health, readiness, metrics,
and concurrent requests decoded together in batches."""
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_process import ServeProcess, encoded, multipart, request, serving

from trainer.inference import CaptionPipeline

SERVER_FLAGS = ("--max-batch", "8", "--max-wait-ms", "300", "--max-pixels", "1000000", "--max-body-mb", "1")


@pytest.fixture(scope="module")
def server(tiny_checkpoint):
    with serving(tiny_checkpoint[0], *SERVER_FLAGS) as running:
        yield running


@pytest.fixture(scope="module")
def pipe(tiny_checkpoint):
    return CaptionPipeline.from_checkpoint(tiny_checkpoint[0])


@pytest.fixture(scope="module")
def images(tiny_checkpoint):
    return sorted(tiny_checkpoint[2].glob("*.jpg"))[:8]


def alone(pipe, path, **options) -> list[dict]:
    """What CaptionPipeline gives for this image alone."""
    result = pipe([path], **options)[0]
    return [{"text": caption.text, "score": caption.score} for caption in result.captions]


def assert_same_captions(answer: dict, expected: list[dict]) -> None:
    """Same words, in the same order, with the same scores (to float rounding: batched matrix products)."""
    assert [caption["text"] for caption in answer["captions"]] == [caption["text"] for caption in expected]
    assert [caption["score"] for caption in answer["captions"]] == pytest.approx([c["score"] for c in expected], rel=1e-5)


def test_raw_and_multipart_captions_equal_the_pipeline(server, pipe, images):
    status, answer, _ = server.caption(images[0].read_bytes(), "image/jpeg")
    assert status == 200
    assert_same_captions(answer, alone(pipe, images[0]))

    controls = {"beam_size": "4", "n_best": "2", "max_len": "6", "length_penalty": "0.5", "suppress_unk": "true",
                "attention": "1"}
    body, content_type = multipart(controls, images[1].read_bytes(), "photo.jpg")
    status, data, _ = request(server.url + "/v1/captions", body, content_type)
    answer = json.loads(data)
    assert status == 200, answer
    expected = alone(pipe, images[1], beam_size=4, n_best=2, max_len=6, length_penalty=0.5, suppress_unk=True)
    assert_same_captions(answer, expected)
    grid = pipe.model.config.grid_size
    for caption in answer["captions"]:
        assert caption["grid_size"] == grid
        assert len(caption["attention"]) == len(caption["text"].split())
        assert all(len(word) == grid * grid and sum(word) == pytest.approx(1, abs=1e-3) for word in caption["attention"])


def test_sampling_seeds_each_request_as_if_alone(server, pipe, images):
    fields = {"sample": "1", "seed": "7", "top_k": "5", "max_len": "8", "n_best": "2"}
    status, answer, _ = server.caption(images[2].read_bytes(), "image/jpeg", **fields)
    assert status == 200
    assert_same_captions(answer, alone(pipe, images[2], sample=True, seed=7, top_k=5, max_len=8, n_best=2))


def test_concurrent_requests_are_batched_and_each_equals_its_caption_alone(server, pipe, images):
    before = metric(server, "showattend_batch_size_count")
    with ThreadPoolExecutor(len(images)) as pool:
        answers = list(pool.map(lambda path: server.caption(path.read_bytes(), "image/jpeg", beam_size=3), images))
    assert [status for status, _, _ in answers] == [200] * len(images)
    for path, (_, answer, _) in zip(images, answers):
        assert_same_captions(answer, alone(pipe, path, beam_size=3))
    batches = metric(server, "showattend_batch_size_count") - before
    assert batches < len(images)  # some requests were decoded together


@pytest.mark.parametrize("query, named", [
    ({"beam_size": "0"}, "beam_size"), ({"beam_size": "three"}, "beam_size"), ({"top_p": "0.5"}, "top_p"),
    ({"n_best": "5", "beam_size": "2"}, "n_best"), ({"temperature": "nan", "sample": "1"}, "temperature"),
    ({"beams": "2"}, "beams"), ({"beam_size": "1000"}, "beam_size"), ({"attention": "maybe"}, "attention")])
def test_a_bad_control_is_a_400_naming_it(server, images, query, named):
    status, answer, _ = server.caption(images[0].read_bytes(), "image/jpeg", **query)
    assert status == 400 and named in answer["error"], answer


def test_errors_are_json_with_their_status(server, images):
    status, answer, _ = server.caption(b"hello", "text/plain")
    assert status == 415 and "Content-Type" in answer["error"]
    status, answer, _ = server.caption(b"not an image at all", "application/octet-stream")
    assert status == 415 and "not an image" in answer["error"]
    status, answer, _ = server.caption(b"", "image/png")
    assert status == 400 and "empty" in answer["error"]
    body, content_type = multipart({"beam_size": "2"}, b"")
    status, data, _ = request(server.url + "/v1/captions", body.replace(b'name="image"', b'name="picture"'), content_type)
    assert status == 400 and "'image'" in json.loads(data)["error"]
    status, data, _ = request(server.url + "/nowhere")
    assert status == 404 and "error" in json.loads(data)
    status, data, _ = request(server.url + "/v1/captions")  # GET
    assert status == 405 and "error" in json.loads(data)


def test_health_readiness_metrics_and_page(server):
    assert server.get("/healthz")[0] == 200 and server.get("/readyz")[0] == 200
    status, body, headers = server.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    for name in ('showattend_requests_total{status="200"}', "showattend_request_seconds_bucket",
                 "showattend_batch_size_bucket", "showattend_queue_depth", "showattend_model_ready 1"):
        assert name in text, name
    status, body, headers = server.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"/v1/captions" in body


def test_a_checkpoint_that_cannot_load_ends_the_server_with_one_line(tmp_path):
    server = ServeProcess(tmp_path / "missing")
    assert server.wait(120) == 1
    errors = [line for line in server.log if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: model not loaded:") and "missing" in errors[0]


def test_a_load_that_fails_before_the_server_listens_still_ends_it(monkeypatch, capsys):
    """The load starts when the app starts; one that fails while the socket is still being opened stops the server."""
    import asyncio

    from aiohttp import web

    from modeling import DecodingOptions
    from trainer.serve import serve
    from trainer.serving.app import Batching, CaptionService
    from trainer.serving.limits import ServeLimits

    def load():
        raise FileNotFoundError("checkpoint gone")

    listen = web.TCPSite.start

    async def slow_listen(site):
        await asyncio.sleep(0.5)  # the failed load is reported before the server listens
        await listen(site)

    monkeypatch.setattr(web.TCPSite, "start", slow_listen)
    service = CaptionService(load, DecodingOptions(), ServeLimits(), Batching(1, 0.0))
    assert asyncio.run(asyncio.wait_for(serve(service, "127.0.0.1", 0, 1.0), 30)) == 1
    assert "error: model not loaded: checkpoint gone" in capsys.readouterr().err


def metric(server, name: str) -> float:
    text = server.get("/metrics")[1].decode()
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


def test_image_kinds_are_answered_or_refused_with_4xx(server, images):
    from PIL import Image

    photo = Image.open(images[0]).convert("RGB")
    answered = {"16-bit": encoded(photo.convert("I;16")), "palette": encoded(photo.convert("P")),
                "cmyk": encoded(photo.convert("CMYK"), "JPEG"), "grey+alpha": encoded(photo.convert("LA")),
                "animated": encoded(photo, "GIF", save_all=True, append_images=[photo.rotate(90)], duration=100)}
    for kind, body in answered.items():
        status, answer, _ = server.caption(body, "application/octet-stream")
        assert status == 200 and answer["captions"][0]["text"], (kind, answer)
    truncated = encoded(photo, "PNG")[:-40]
    status, answer, _ = server.caption(truncated, "image/png")
    assert status == 400 and "bad image" in answer["error"], answer
