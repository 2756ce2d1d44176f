"""Where a prepared dataset (or feature cache) lives: a local folder or an ``http(s)://``, ``s3://``, ``gs://`` URL.

Remote files are read through fsspec (``s3fs`` / ``gcsfs`` are the optional extras ``s3`` / ``gcs``). Shards are
opened as streams, never copied whole first. Every remote read retries transient errors with bounded exponential
backoff (each retry logged) and reopens the file at the byte it had reached; a socket timeout bounds every attempt,
so a server that goes away ends the read with ``RemoteDataError`` naming the URL, never a hang. A download that ends
before the file's size raises ``TruncatedDownload``, which the stream counts as a broken sample.

What is read is bounded, because a server may lie about a size or stream forever: a small file (manifest, vocabulary,
stats: ``read_location``) at ``SMALL_FILE_MAX_BYTES``, a shard at ``SHOWATTEND_MAX_SHARD_BYTES`` (default
``SHARD_MAX_BYTES``); past the bound the read stops with ``RemoteDataError`` naming the URL (without its secrets).
A server that sends no size (no Content-Length) is read up to the bound.

Tuning (environment): ``SHOWATTEND_REMOTE_ATTEMPTS`` (default 5), ``SHOWATTEND_REMOTE_TIMEOUT_S`` (socket connect
and read timeout, > 0, default 30), ``SHOWATTEND_REMOTE_BACKOFF_S`` (first delay, doubled per retry up to 16x; default
0.5). Endpoints and credentials come from fsspec's own configuration (e.g. ``FSSPEC_S3_ENDPOINT_URL``, AWS_* vars).
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from data_pipelines.redact import redact
from data_pipelines.remote_retries import (  # noqa: F401 - RemoteDataError, TruncatedDownload: imported from here
    EarlyEnd,
    RemoteDataError,
    RetryPolicy,
    TruncatedDownload,
    is_fatal,
    shard_max_bytes,
    with_retries,
)

REMOTE_SCHEMES = ("http", "https", "s3", "gs")
SMALL_FILE_MAX_BYTES = 256 << 20  # manifest.json, vocab.json, stats.json: a COCO vocabulary is ~0.3 MB


def is_remote(location: object) -> bool:
    """True for an ``http(s)://``, ``s3://`` or ``gs://`` URL."""
    scheme, separator, _ = str(location).partition("://")
    return bool(separator) and scheme.lower() in REMOTE_SCHEMES


def _filesystem(url: str, policy: RetryPolicy):
    """fsspec filesystem of ``url`` with socket timeouts (cached by fsspec per process and options)."""
    import fsspec

    scheme = url.partition("://")[0].lower()
    options: dict = {}
    if scheme in ("http", "https"):
        import aiohttp

        options["client_kwargs"] = {"timeout": aiohttp.ClientTimeout(total=None, sock_connect=policy.timeout_s,
                                                                     sock_read=policy.timeout_s)}
    elif scheme == "s3":
        # botocore's and s3fs's own retries off: ours are the bounded, logged ones
        options["config_kwargs"] = {"connect_timeout": policy.timeout_s, "read_timeout": policy.timeout_s,
                                    "retries": {"max_attempts": 1}}
    try:
        return fsspec.filesystem(scheme, **options)
    except ImportError as error:
        extra = {"s3": "s3", "gs": "gcs"}.get(scheme, "")
        raise RemoteDataError(f"{redact(url)}: reading {scheme}:// needs an fsspec backend ({error}); "
                              f"pip install 'showattend[{extra}]'") from None


class RemoteReader(io.RawIOBase):
    """A read-only stream of one remote file that survives dropped connections: after a transient error it reopens
    the file and continues at the byte it had reached (a seek, or reading up to it where the server cannot seek)."""

    def __init__(self, url: str, policy: RetryPolicy | None = None, max_bytes: int | None = None):
        super().__init__()
        self.url, self.policy = url, policy or RetryPolicy.from_environment()
        self.max_bytes = shard_max_bytes() if max_bytes is None else max_bytes
        self.fs = _filesystem(url, self.policy)
        self.size = with_retries(url, self.policy, lambda: self.fs.size(url))
        if self.size is not None and self.size > self.max_bytes:
            raise self._too_large(f"says it has {self.size} bytes")
        self.position, self._file = 0, None

    def _too_large(self, what: str) -> RemoteDataError:
        return RemoteDataError(f"{redact(self.url)}: {what}, more than the {self.max_bytes} bytes read from one "
                               f"file of this kind; not read further")

    def readable(self) -> bool:
        return True

    def _reopen(self):
        streaming = {"block_size": 0} if self.url.lower().startswith("http") else {}
        handle = self.fs.open(self.url, "rb", **streaming)
        try:
            handle.seek(self.position)
        except (ValueError, OSError):  # a plain HTTP stream cannot seek: read up to where we were
            left = self.position
            while left:
                chunk = handle.read(min(left, 1 << 20))
                if not chunk:
                    raise OSError(f"stream ended at byte {self.position - left} while skipping to {self.position}")
                left -= len(chunk)
        return handle

    def _read_some(self, size: int) -> bytes:
        if self._file is None:
            self._file = self._reopen()
        try:
            data = self._file.read(size)
            if not data and self.size is not None and self.position < self.size:
                raise EarlyEnd(f"connection ended at byte {self.position} of {self.size}")
            return data
        except BaseException:
            self._drop()
            raise

    def readinto(self, buffer) -> int:
        if self.size is not None and self.position >= self.size:
            return 0
        # One byte past the bound is read, so a caller that asks for max_bytes + 1 learns "more" itself, however the
        # network splits the stream; past that byte a server that sends no size, or more than it said, is refused.
        if self.position > self.max_bytes:
            self._drop()
            raise self._too_large(f"sent {self.position} bytes and goes on")
        wanted = min(len(buffer), self.max_bytes + 1 - self.position)
        data = with_retries(self.url, self.policy, lambda: self._read_some(wanted))
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)

    def _drop(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too; it is dropped either way
                pass
            self._file = None

    def close(self) -> None:
        self._drop()
        super().close()


def open_location(location: str, max_bytes: int | None = None) -> io.BufferedIOBase:
    """A binary stream of a local file or a remote URL (``RemoteReader``, buffered, reading at most ``max_bytes``:
    default ``shard_max_bytes()``)."""
    if is_remote(location):
        return io.BufferedReader(RemoteReader(location, max_bytes=max_bytes), buffer_size=1 << 20)
    return open(location, "rb")


def read_location(location: str | Path, max_bytes: int | None = None) -> bytes:
    """The whole content of a small local file or remote URL; RemoteDataError naming it when it holds more than
    ``max_bytes`` (default ``SMALL_FILE_MAX_BYTES``; a stream that never ends stops there)."""
    max_bytes = SMALL_FILE_MAX_BYTES if max_bytes is None else max_bytes
    with open_location(str(location), max_bytes) as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RemoteDataError(f"{redact(location)}: more than {max_bytes} bytes, the most read from a file of this "
                              f"kind (manifest, vocabulary, stats); not read further")
    return data


class DataRoot:
    """A prepared dataset's folder or URL. Names joined to it must come from ``data_pipelines.manifest`` (checked
    there) or be the framework's own file names (manifest.json, vocab.json)."""

    def __init__(self, location: str | Path | "DataRoot"):
        text = location.location if isinstance(location, DataRoot) else str(location)
        self.remote = is_remote(text)
        self.location = text.rstrip("/") if self.remote else str(Path(text))

    def __str__(self) -> str:
        return self.location

    def __repr__(self) -> str:
        return f"DataRoot({self.location!r})"

    def join(self, name: str) -> str:
        """Location (path or URL) of the file ``name`` in this root."""
        return f"{self.location}/{name}" if self.remote else str(Path(self.location) / name)

    def is_file(self, name: str) -> bool:
        if not self.remote:
            return Path(self.join(name)).is_file()
        url, policy = self.join(name), RetryPolicy.from_environment()
        fs = _filesystem(url, policy)

        def info() -> dict | None:  # fsspec's isfile says False for any error, an unreachable server included
            try:
                return fs.info(url)
            except FileNotFoundError as error:
                if is_fatal(error):  # truly missing; an unreachable server is retried
                    return None
                raise

        found = with_retries(url, policy, info)
        return found is not None and found.get("type") == "file"

    def size(self, name: str) -> int | None:
        """The file's size in bytes; None when a server does not say (no Content-Length)."""
        if not self.remote:
            return Path(self.join(name)).stat().st_size
        url, policy = self.join(name), RetryPolicy.from_environment()
        fs = _filesystem(url, policy)
        size = with_retries(url, policy, lambda: fs.size(url))
        return None if size is None else int(size)

    def read_bytes(self, name: str) -> bytes:
        return read_location(self.join(name))

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode("utf-8")


def local_cache_dir(root: DataRoot, purpose: str) -> Path:
    """A local folder for what the framework would write next to a remote root (``$SHOWATTEND_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/showattend``, else ``~/.cache/showattend``), one sub-folder per root URL."""
    base = os.environ.get("SHOWATTEND_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache",
                                                          "showattend")
    folder = Path(base) / purpose / hashlib.sha256(root.location.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder
