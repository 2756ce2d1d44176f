"""Retrying remote reads: which errors a retry can mend, the bounded exponential backoff, and the settings from the
environment (``SHOWATTEND_REMOTE_ATTEMPTS``, ``SHOWATTEND_REMOTE_TIMEOUT_S``, ``SHOWATTEND_REMOTE_BACKOFF_S``,
``SHOWATTEND_MAX_SHARD_BYTES``), each checked: a timeout of 0 would mean no timeout, so it is refused.
Messages name the URL without its secrets (``data_pipelines.redact``).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from data_pipelines.redact import redact

logger = logging.getLogger("data_pipelines.data_root")  # the retry warnings of data_root's reads, as before
SHARD_MAX_BYTES = 64 << 30  # webdataset shards are typically 0.1-4 GB


class RemoteDataError(OSError):
    """A remote file could not be read after the allowed attempts (or is missing / forbidden): the run must stop."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # webdataset appends context to ``args``; the message stays the one line we wrote
        return self.message


class TruncatedDownload(OSError):
    """A remote file ended before its size: the samples it held are broken, the read goes on with the next shard."""


class EarlyEnd(OSError):
    """The connection ended before the file's size (retried; ``TruncatedDownload`` when it keeps happening)."""


def _is_truncation(error: BaseException) -> bool:
    """A transfer cut short by a server that still answers (as opposed to one that cannot be reached)."""
    return isinstance(error, EarlyEnd) or type(error).__name__ in ("ClientPayloadError", "IncompleteReadError",
                                                                     "ContentLengthError")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    timeout_s: float = 30.0
    backoff_s: float = 0.5

    @classmethod
    def from_environment(cls) -> "RetryPolicy":
        return cls(attempts=int(_setting("SHOWATTEND_REMOTE_ATTEMPTS", cls.attempts, 1)),
                   timeout_s=_setting("SHOWATTEND_REMOTE_TIMEOUT_S", cls.timeout_s, 0.001),
                   backoff_s=_setting("SHOWATTEND_REMOTE_BACKOFF_S", cls.backoff_s, 0.0))

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): doubling, capped at 16x the first delay."""
        return self.backoff_s * 2 ** min(attempt - 1, 4)


def _setting(name: str, default: float, least: float) -> float:
    """A number from the environment variable ``name`` (``default`` when unset); ValueError naming it when it is not
    a finite number >= ``least`` (a timeout of 0 would mean no timeout: wait forever)."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not least <= value < float("inf") or (isinstance(default, int) and value != int(value)):
        kind = "an integer" if isinstance(default, int) else "a number"
        raise ValueError(f"environment variable {name}={text!r}: expected {kind} >= {least:g}")
    return value


def shard_max_bytes() -> int:
    """The most bytes read from one remote shard (``SHOWATTEND_MAX_SHARD_BYTES``)."""
    return int(_setting("SHOWATTEND_MAX_SHARD_BYTES", SHARD_MAX_BYTES, 1))


def _client_error(error: BaseException | None) -> bool:
    """An HTTP answer that says the request itself is wrong (4xx: not found, forbidden, ...), which no retry mends;
    408 (timeout) and 429 (too many requests) are transient."""
    status = getattr(error, "status", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


def is_fatal(error: BaseException) -> bool:
    """Errors a retry cannot mend: the file is missing, access is refused, a bug (fsspec's HTTP backend also says
    FileNotFoundError when the server cannot be reached: then the cause it chains is a connection error; when the
    server answered 404 it chains the HTTP error)."""
    if _client_error(error) or _client_error(error.__cause__):
        return True
    if isinstance(error, FileNotFoundError):
        return error.__cause__ is None or isinstance(error.__cause__, FileNotFoundError)
    return isinstance(error, (PermissionError, IsADirectoryError, TypeError, AttributeError, ImportError))


def with_retries(url: str, policy: RetryPolicy, action):
    """``action()``, retried on transient errors; ``RemoteDataError`` naming ``url`` (without its secrets) when
    attempts run out."""
    shown = redact(url)
    for attempt in range(1, policy.attempts + 1):
        try:
            return action()
        except (RemoteDataError, TruncatedDownload):
            raise
        except Exception as error:  # noqa: BLE001 - network stacks raise many types; sorted out here
            if is_fatal(error):
                raise RemoteDataError(redact(f"{shown}: {type(error).__name__}: {error}")) from None
            if attempt == policy.attempts and _is_truncation(error):
                raise TruncatedDownload(f"{shown}: download cut short after {attempt} attempt(s) ({error})") from None
            if attempt == policy.attempts:
                raise RemoteDataError(redact(f"{shown}: unreadable after {attempt} attempt(s) "
                                             f"({type(error).__name__}: {error})")) from None
            delay = policy.delay_s(attempt)
            logger.warning("%s: %s: %s; retry %d/%d in %.1f s", shown, type(error).__name__, redact(error), attempt,
                           policy.attempts - 1, delay)
            time.sleep(delay)
