"""How a run ends when it cannot finish: one line for a fatal error, 130 or 143 for a signal.

A fatal error is logged once, as the message the tap wrote for it (the key, the URL, the
setting, the server's message), with its traceback at DEBUG only. A signal stops the sync
at once with the status a shell gives it (128 + the signal's number), so that an
orchestrator that cancelled a run does not record a success; the last STATE written
resumes the sync without loss, since each one follows the records it covers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import time
import typing as t

from singer_sdk.exceptions import ConfigValidationError, FatalAPIError

from tap_leadtrackr.redaction import hide_query
from tap_leadtrackr.sdk_hooks import SignalStops
from tap_leadtrackr.state import StateError

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from types import TracebackType

    import click

#: How long the sync may take to unwind after a signal before the process exits anyway:
#: a page fetched in another thread may wait for its answer up to `request_timeout`.
UNWIND_SECONDS = 3.0

#: Errors whose message the tap wrote to be read as it is.
EXPLAINED_ERRORS: tuple[type[Exception], ...] = (FatalAPIError, ConfigValidationError, StateError)

_interrupted = threading.Event()


class SyncInterrupted(SystemExit):
    """A signal stopped the sync; the exit status is 128 + the signal's number."""


def interrupt(signum: int, logger: logging.Logger) -> t.NoReturn:
    """Stop the sync for a signal: say so, then unwind with status 128 + `signum`.

    Raised in the main thread wherever it is (waiting on a page, writing a record), so
    that nothing after that point is written; a second signal, or an unwinding that takes
    longer than `UNWIND_SECONDS`, ends the process at once.
    """
    status = 128 + signum
    if _interrupted.is_set():
        _exit_now(status)
    _interrupted.set()
    logger.warning(
        "Interrupted by %s: the sync stopped before its end (exit status %d). Run it again "
        "from the last STATE it wrote, which resumes it without loss.",
        signal.Signals(signum).name,
        status,
    )
    threading.Thread(
        target=_exit_after, args=(UNWIND_SECONDS, status), name="exit-after-signal", daemon=True
    ).start()
    raise SyncInterrupted(status)


def _exit_after(seconds: float, status: int) -> None:
    time.sleep(seconds)
    _exit_now(status)


def _exit_now(status: int) -> t.NoReturn:
    # Flushed from another thread, so that a reader that stopped reading cannot hold us.
    flusher = threading.Thread(target=_flush_output, name="flush-before-exit", daemon=True)
    flusher.start()
    flusher.join(1.0)
    os._exit(status)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            stream.flush()


def fatal_message(error: BaseException) -> str:
    """The one line a fatal error is reported as."""
    if isinstance(error, (*EXPLAINED_ERRORS, FileNotFoundError)):
        return str(error)  # the SDK's FileNotFoundError names the file
    # json's or simplejson's (the SDK reads `--config`, `--state` and `--catalog` with it).
    if isinstance(error, ValueError) and type(error).__name__ == "JSONDecodeError":
        return f"A file given with --config, --state or --catalog is not JSON: {error}"
    # Not an error the tap foresaw: its type helps a bug report; its text may hold a URL.
    return (
        f"{type(error).__name__}: {hide_query(str(error))} (an error the tap does not "
        "explain: its traceback is logged at DEBUG, e.g. with TAP_LEADTRACKR_LOGLEVEL=DEBUG)"
    )


def log_fatal_error(
    logger: logging.Logger,
    error_type: type[BaseException],
    error: BaseException,
    traceback: TracebackType | None,
) -> None:
    """Log an error that ends the run as one line; its traceback only at DEBUG."""
    if issubclass(error_type, KeyboardInterrupt):
        sys.__excepthook__(error_type, error, traceback)
        return
    logger.error("%s", fatal_message(error))
    logger.debug("Traceback of the error above:", exc_info=(error_type, error, traceback))


class ClearExits(SignalStops):
    """A tap that reports a fatal error in one line, and stops for a signal with 130 or 143."""

    @override
    def stop_for_signal(self, signum: int) -> None:
        interrupt(signum, self.logger)

    @override
    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        hook = functools.partial(log_fatal_error, cls.logger)
        # The SDK's hook logs the message, then the traceback, which ends in the message
        # again. It installs its hook when the sync starts; `--test` and `--discover` run
        # before that, so ours is installed now as well.
        command.excepthook = hook  # type: ignore[attr-defined]
        sys.excepthook = hook
        return command

    @override
    @classmethod
    def invoke(cls, **kwargs: t.Any) -> None:  # type: ignore[override]
        try:
            super().invoke(**kwargs)
        except ConfigValidationError as exc:
            # One line per problem; the SDK adds a summary that carries the whole schema.
            for error in exc.errors:
                cls.logger.error("%s", error)
            sys.exit(1)
