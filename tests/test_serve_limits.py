"""The caption service under bad input and load, each against a real ``trainer.serve`` process on 127.0.0.1: body
and pixel limits (a decompression bomb is refused from its header, never decoded), a slow client that cannot hold the
model, a bounded queue (503 + Retry-After), a per-request timeout (504), and SIGTERM answering what is in flight."""
import select
import socket
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_process import ServeProcess, encoded, request, serving

SLOW = {"beam_size": "10", "max_len": "50"}  # the most a request may ask for: a long decode


@pytest.fixture(scope="module")
def image(tiny_checkpoint) -> bytes:
    return sorted(tiny_checkpoint[2].glob("*.jpg"))[0].read_bytes()


@pytest.fixture(scope="module")
def server(tiny_checkpoint):
    with serving(tiny_checkpoint[0], "--max-body-mb", "0.05", "--max-pixels", "20000", "--read-timeout-s", "2") as running:
        yield running


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds none (what a bomb's header looks like)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_body_and_pixel_limits(server, image):
    from PIL import Image

    status, answer, _ = server.caption(image + b"\0" * 60_000, "image/jpeg")
    assert status == 413 and "exceeds" in answer["error"], answer
    status, answer, _ = server.caption(encoded(Image.new("RGB", (200, 200))), "image/png")
    assert status == 413 and "200 x 200" in answer["error"] and "20,000" in answer["error"], answer
    for width in (10_000, 100_000):  # over our limit / over Pillow's bomb limit: refused from the header alone
        status, answer, _ = server.caption(png_header(width, width), "image/png")
        assert status == 413 and "pixels" in answer["error"] and "exceeds" in answer["error"], answer
    status, answer, _ = server.caption(image, "image/jpeg")
    assert status == 200


def test_a_chunked_body_over_the_limit_is_refused(server):
    import http.client

    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    chunks = (b"\0" * 10_000 for _ in range(10))  # 100 KB, no Content-Length
    connection.request("POST", "/v1/captions", body=chunks, headers={"Content-Type": "image/png"}, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413
    connection.close()


def test_a_slow_client_cannot_hold_the_model(server, image):
    host, port = server.url.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)), timeout=60)
    slow.sendall(b"POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(image) + image[:10])
    status, answer, _ = server.caption(image, "image/jpeg")  # answered while the slow body is still arriving
    assert status == 200, answer
    for byte in image[10:40]:  # one byte a tenth of a second: longer than the 2 s read timeout allows
        if select.select([slow], [], [], 0)[0]:  # the server answered: stop sending
            break
        try:
            slow.sendall(bytes([byte]))
        except OSError:  # the server gave up on it and closed the connection
            break
        time.sleep(0.1)
    answer = slow.recv(4096)
    slow.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in answer, answer[:300]


def test_a_full_queue_answers_503_with_retry_after(tiny_checkpoint, image):
    with serving(tiny_checkpoint[0], "--max-queue", "1", "--max-batch", "1", "--max-wait-ms", "0") as server:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: server.caption(image, "image/jpeg", **SLOW), range(12)))
        statuses = sorted(status for status, _, _ in answers)
        assert set(statuses) == {200, 503} and statuses.count(200) >= 2, statuses
        for status, answer, headers in answers:
            if status == 503:
                assert headers["Retry-After"] == "1" and "retry later" in answer["error"]
        assert server.caption(image, "image/jpeg")[0] == 200  # and it recovers


def test_a_request_past_its_timeout_is_a_504_and_leaves_the_service_working(tiny_checkpoint, image):
    with serving(tiny_checkpoint[0], "--request-timeout-s", "0.001") as server:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: server.caption(image, "image/jpeg", **SLOW), range(4)))
        assert [status for status, _, _ in answers] == [504] * 4
        assert "not captioned within 0.001 s" in answers[0][1]["error"]
        assert server.get("/healthz")[0] == 200


def test_sigterm_answers_the_requests_in_flight_then_exits_0(tiny_checkpoint, image):
    server = ServeProcess(tiny_checkpoint[0], "--max-batch", "1", "--max-wait-ms", "0", "--drain-s", "600")
    try:
        server.wait_ready()
        with ThreadPoolExecutor(4) as pool:
            pending = [pool.submit(server.caption, image, "image/jpeg", **SLOW) for _ in range(4)]
            deadline = time.monotonic() + 60
            while b"showattend_queue_depth 0" in server.get("/metrics")[1] and not any(p.done() for p in pending):
                assert time.monotonic() < deadline, "requests never queued"
                time.sleep(0.02)
            assert server.stop(600) == 0
            answers = [future.result(timeout=600) for future in pending]
        assert [status for status, _, _ in answers] == [200] * 4
        assert all(answer["captions"][0]["text"] for _, answer, _ in answers)
        with pytest.raises(OSError):
            request(server.url + "/healthz", timeout=5)
    finally:
        if server.process.poll() is None:
            server.process.kill()
