"""Servers on 127.0.0.1 for the remote-data tests, started and stopped by the test: a plain HTTP file server (thread
or subprocess, ephemeral port) and an S3-compatible one (moto's server mode)."""
from __future__ import annotations

import contextlib
import functools
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def http_server(directory: Path, handler: type = QuietHandler) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    """(base URL, server) serving ``directory`` from a thread; the server is shut down on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def http_server_process(directory: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, process) of ``python -m http.server`` on an ephemeral port; killed on exit."""
    process = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                                str(directory)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        port = int(line.split(" port ")[1].split()[0])
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """Endpoint URL of a moto S3 server on an ephemeral port (in-memory buckets, gone when it stops)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def upload_folder(endpoint: str, folder: Path, bucket: str) -> str:
    """Copy ``folder``'s files into a new bucket; returns the ``s3://bucket`` URL of its root."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket=bucket)
    for path in sorted(folder.iterdir()):
        if path.is_file():
            client.upload_file(str(path), bucket, f"data/{path.name}")
    return f"s3://{bucket}/data"
