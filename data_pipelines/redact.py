"""Locations without their secrets, for everything that is recorded, logged or shown.

``data.root=https://user:password@host/data`` or a pre-signed ``...?X-Amz-Signature=...`` URL works as given, but
what the framework writes where others can read it (config.yaml, trainer_state.json, model cards, tracker configs,
log lines, error messages) shows ``https://***@host/data`` and ``X-Amz-Signature=***``. ``redact`` is the one
function that does it; ``redacted`` applies it to every string of a config, ``RedactingFilter`` to log records.
"""
from __future__ import annotations

import logging
import re

HIDDEN = "***"
# scheme://user:password@ (or a bare token@) up to the host
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s]+@")
# query parameters that carry credentials: AWS / GCS signed URLs, Azure SAS, generic tokens and keys
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;](?:x-amz-(?:signature|credential|security-token)|x-goog-(?:signature|credential)|sig|signature|"
    r"token|access_token|id_token|auth|api_key|apikey|key|password|passwd|secret|client_secret)=)[^&#\s:'\"]*",
    re.IGNORECASE)


def redact(text: object) -> str:
    """``text`` with passwords / tokens of any URL in it replaced by ``***`` (the rest kept, for a reader to
    recognise the location)."""
    text = _USERINFO.sub(lambda match: f"{match.group('scheme')}{HIDDEN}@", str(text))
    return _SECRET_PARAMETER.sub(lambda match: f"{match.group('name')}{HIDDEN}", text)


def redacted(values):
    """A copy of ``values`` (nested dicts / lists / scalars) with every string redacted."""
    if isinstance(values, dict):
        return {key: redacted(value) for key, value in values.items()}
    if isinstance(values, (list, tuple)):
        return type(values)(redacted(value) for value in values)
    return redact(values) if isinstance(values, str) else values


class RedactingFilter(logging.Filter):
    """Redacts a log record's message (arguments merged in first), whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def redact_logs() -> None:
    """Add ``RedactingFilter`` to every handler of the root logger (call after ``logging.basicConfig``)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(RedactingFilter())
