"""How the command-line tools end on an error the user can fix: one line, ``error: ...``, exit status 1."""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from data_pipelines.data_root import RemoteDataError
from data_pipelines.redact import redact
from trainer.checkpointing.checkpoint import CheckpointError

USER_ERRORS = (CheckpointError, FileNotFoundError, ValueError)


@contextlib.contextmanager
def exit_on_user_error(errors: tuple[type[BaseException], ...] = USER_ERRORS) -> Iterator[None]:
    """Errors caused by the config, data or checkpoint paths (``errors``) and unreadable remote data end the command
    with their message and no traceback."""
    try:
        yield
    except RemoteDataError as error:  # raised again by a DataLoader worker: the message's last line is the cause
        sys.exit(f"error: {redact(str(error).strip().splitlines()[-1])}")
    except errors as error:
        sys.exit(f"error: {redact(error)}")
