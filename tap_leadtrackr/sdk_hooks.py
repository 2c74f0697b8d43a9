"""Every private part of singer-sdk this tap relies on, each with why; nowhere else.

singer-sdk may change its underscore names in any release; `tests/test_sdk_hooks.py`
checks each one below against the installed SDK and names it if it went away. Whatever
has a public equivalent uses that instead (`state_manager`, `Tap.state_writer`, ...).
The mixins come before the SDK class in a stream's or tap's bases.
"""

from __future__ import annotations

import logging
import sys
import typing as t
from datetime import datetime, timezone
from functools import cached_property

from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.plugin_base import JSONSchemaValidator
from singer_sdk.singerlib import RecordMessage

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from types import FrameType

    from jsonschema.protocols import Validator
    from singer_sdk.helpers.types import Context

#: The private SDK members overridden or read here: (SDK class, name, why).
PRIVATE_HOOKS: tuple[tuple[type, str, str], ...] = (
    (Stream, "_increment_stream_state", "bookmarks move once per page, not per record"),
    (Stream, "_generate_record_messages", "skipping the per-record selection walk"),
    (Stream, "_stream_version", "the RECORD version: read by the fast path, set by `reconcile`"),
    (Stream, "_write_activate_version_message", "ACTIVATE_VERSION after a reconcile's read"),
    (Stream, "_write_schema_message", "one SCHEMA per run for a stream synced per page"),
    (Tap, "_validate_config", "config errors worded without the values (keys) they hold"),
    (Tap, "_config", "validated in place, as the SDK does, so that defaults are filled in"),
    (Tap, "_env_var_config", "every setting read from the environment as its type"),
    (Tap, "_handle_termination", "a signal ends the run with 130 or 143, not 0"),
)
#: Public by name, but documented as internal to the SDK: checked the same way.
INTERNAL_HOOKS: tuple[tuple[type, str, str], ...] = (
    (Stream, "finalize_state_progress_markers", "failing a run after its final STATE"),
    (Tap, "run_connection_test", "`--test` with one request per project (final in the SDK)"),
)


class PageCheckpoints(Stream):
    """A stream whose bookmark moves once per page written, in its own code."""

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Context | None = None
    ) -> None:
        # The SDK calls this for every record, and nothing public turns it off; its sort
        # check would refuse records read again through the lookback window. Pages are
        # checked whole (`check_page`) and the bookmark moves after each is written.
        return


class FastRecordMessages(Stream):
    """A stream that skips the SDK's per-record selection walk when nothing is deselected."""

    @cached_property
    def every_property_selected(self) -> bool:
        """Whether the catalog selects every property (nothing to drop per record)."""
        return self.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE and all(self.mask.values())

    @override
    def _generate_record_messages(
        self, record: dict[str, t.Any]
    ) -> t.Generator[RecordMessage, None, None]:
        # The SDK walks every record against the selection mask (a quarter of the CPU
        # per lead) and has no public hook to skip it; with every property selected
        # there is nothing to drop, so only the stream maps run.
        if not self.every_property_selected:
            yield from super()._generate_record_messages(record)
            return
        for stream_map in self.stream_maps:
            if (mapped := stream_map.transform(record)) is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    # Set by `sync()` for ACTIVATE_VERSION; no public accessor.
                    version=self._stream_version,
                    time_extracted=datetime.now(timezone.utc),
                )


class TableVersion(Stream):
    """A stream whose records carry a table version that the tap activates when it says.

    The SDK sets the version and writes ACTIVATE_VERSION together, as a FULL_TABLE sync
    starts: a target acting on it would drop every row before a single one was read.
    """

    def use_table_version(self, version: int) -> None:
        """Stamp every record written from now on with `version`."""
        # Read by `_generate_record_messages`; `sync()` sets it only with its early message.
        self._stream_version = version

    def activate_table_version(self) -> None:
        """Write ACTIVATE_VERSION for the version the records carry, once per stream map."""
        if self._stream_version is not None:
            self._write_activate_version_message(self._stream_version)


class OneSchemaPerRun(Stream):
    """A stream synced many times in a run (once per page) that writes its SCHEMA once."""

    schema_written = False

    @override
    def _write_schema_message(self) -> None:
        # `sync()` writes the SCHEMA each time and is final: nothing public skips it.
        if not self.schema_written:
            super()._write_schema_message()
            self.schema_written = True


class EndOfSyncCheck(Stream):
    """A stream that may fail its run once every partition's final STATE is written."""

    @override
    def finalize_state_progress_markers(self, state: dict | None = None) -> None:
        # The SDK's last step of a stream's sync (`Tap.sync_all` is final); public by name,
        # documented as internal.
        super().finalize_state_progress_markers(state)
        if state is None:
            self.check_sync_finished()

    def check_sync_finished(self) -> None:
        """Raise if the sync, now over and its state written, must fail."""


class ConfigChecks(Tap):
    """A tap that reads its settings from the environment and words its config errors itself."""

    @property
    @override
    def _env_var_config(self) -> dict[str, t.Any]:  # type: ignore[override]
        # The SDK's reading (`--config=ENV`) fails on a `oneOf` setting, reads a number as
        # text and `maybe` as false, and its errors quote the value: the tap reads its own.
        return self.settings_from_environment()

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # The only place the SDK validates config (from `__init__`, before any request).
        # Its messages quote the value that failed, a key however malformed, and nothing
        # public hands over its findings: `config_errors` uses its validator (which fills
        # in the defaults, in place) and words them itself.
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        errors = self.config_errors(self._config, JSONSchemaValidator(schema))
        if errors and raise_errors:
            raise ConfigValidationError(
                "Config validation failed: " + "; ".join(errors), errors=errors, schema=schema
            )
        return errors

    def settings_from_environment(self) -> dict[str, t.Any]:
        """The settings given as environment variables (with `--config=ENV`)."""
        return {}

    def config_errors(self, config: dict[str, t.Any], validator: Validator) -> list[str]:
        """What is wrong with the config, by the SDK's `validator`; may amend it in place."""
        return [failure.message for failure in validator.iter_errors(config)]


class ConnectionTest(Tap):
    """A tap whose `--test` checks the connection its own way."""

    @override  # type: ignore[misc]
    def run_connection_test(self) -> bool:
        # Public, but marked final: the SDK's own test syncs a first page of every stream.
        self.test_connection()
        return True

    def test_connection(self) -> None:
        """Check the URL and the keys; raise with what is wrong."""


class SignalStops(Tap):
    """A tap that a signal (SIGINT, SIGTERM) stops with a failure, not a success."""

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # The SDK's writes the state held in memory, logs "Gracefully shutting down" and
        # exits 0: an orchestrator that cancelled the run would record a success.
        self.stop_for_signal(signum)

    def stop_for_signal(self, signum: int) -> None:
        """Stop the run for a signal, with the status a shell gives it."""
        raise SystemExit(128 + signum)


#: What singer-sdk logs at ERROR when a stream's sync raises, before the error itself.
SDK_UNHANDLED_ERROR = "An unhandled error occurred while syncing"


class _QuietUnhandledError(logging.Filter):
    @override
    def filter(self, record: logging.LogRecord) -> bool:
        if SDK_UNHANDLED_ERROR not in str(record.msg):
            return True
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_QUIET_UNHANDLED_ERROR = _QuietUnhandledError()


def quiet_unhandled_error_line(stream_logger: logging.Logger) -> None:
    """Show the SDK's "An unhandled error occurred" line only at DEBUG.

    The error that follows it names the cause in one line; the SDK's own line adds a
    second error that says nothing more. Installing it again is a no-op.
    """
    stream_logger.addFilter(_QUIET_UNHANDLED_ERROR)
