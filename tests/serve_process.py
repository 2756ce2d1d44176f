"""``showattend-serve`` in its own process on 127.0.0.1 for the serving tests and benchmark: start it on a free port,
wait until the model is loaded, send requests, stop it with SIGTERM (killed after a bounded wait)."""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
START_SECONDS = 180


class ServeProcess:
    """A running server: ``url``, ``process``, and its stderr collected in ``log``."""

    def __init__(self, checkpoint: Path | str, *flags: str, env: dict | None = None):
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "trainer.serve", "--checkpoint", str(checkpoint), "--port", "0", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
        self.log: list[str] = []
        self.reader = threading.Thread(target=lambda: self.log.extend(self.process.stderr), daemon=True)
        self.reader.start()
        line = self.process.stdout.readline()  # "serving http://127.0.0.1:PORT", or "" when it died
        if not line.startswith("serving "):
            self.process.kill()
            self.process.wait(timeout=30)
            raise RuntimeError(f"server did not start: {line!r} {''.join(self.log)[-2000:]}")
        self.url = line.split()[1]
        threading.Thread(target=lambda: self.process.stdout.read(), daemon=True).start()

    def wait_ready(self, seconds: float = START_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while self.get("/readyz")[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server not ready: {''.join(self.log)[-2000:]}")
            time.sleep(0.2)

    def get(self, path: str) -> tuple[int, bytes, dict]:
        return request(self.url + path)

    def caption(self, body: bytes, content_type: str = "image/png", timeout: float = 120, **fields) -> tuple[int, dict, dict]:
        """(status, JSON answer, headers) of a raw-body caption request with ``fields`` in the query string."""
        query = "&".join(f"{name}={value}" for name, value in fields.items())
        status, data, headers = request(f"{self.url}/v1/captions?{query}", body, content_type, timeout)
        return status, json.loads(data), headers

    def wait(self, seconds: float = 60) -> int:
        """The exit status once the process ended and its stderr is all in ``log`` (killed after ``seconds``)."""
        try:
            status = self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
            raise
        self.reader.join(timeout=30)
        return status

    def stop(self, seconds: float = 60) -> int:
        """SIGTERM, then the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(seconds)


@contextlib.contextmanager
def serving(checkpoint: Path | str, *flags: str, env: dict | None = None) -> Iterator[ServeProcess]:
    """A ready server, stopped on exit."""
    server = ServeProcess(checkpoint, *flags, env=env)
    try:
        server.wait_ready()
        yield server
    finally:
        if server.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.stop()


def request(url: str, body: bytes | None = None, content_type: str | None = None,
            timeout: float = 120) -> tuple[int, bytes, dict]:
    """(status, body, headers) of a GET (no body) or POST; HTTP errors are returned, not raised."""
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=timeout) as answer:
            return answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def multipart(fields: dict[str, str], image: bytes, filename: str = "image.png") -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart/form-data request with an ``image`` file field and text ``fields``."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + image + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def encoded(image: Image.Image, format: str = "PNG", **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **save)
    return buffer.getvalue()
