"""A reconcile: every lead read again, and what LeadTrackr no longer has flagged after.

The API has no "changed since" filter and no deleted flag: ratings older than the
lookback window and deleted leads only show in a read of every lead. With `reconcile`,
both streams read in full (FULL_TABLE: no bookmark read or written, `start_date` still
applies), and their records carry a table version, the run's start in milliseconds.
Once every lead of every project has been read, the tap writes ACTIVATE_VERSION with
that version, the Singer standard for deletions: the target flags the rows of an older
version, or of none, as deleted (`_sdc_deleted_at`; or deletes them, with its
`hard_delete`). A read that fails, is interrupted or cannot read one project writes no
ACTIVATE_VERSION, so nothing is flagged from an incomplete read.
"""

from __future__ import annotations

import logging
import sys
import typing as t

from singer_sdk import typing as th
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE

from tap_leadtrackr.sdk_hooks import EndOfSyncCheck, TableVersion

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

RECONCILE = "reconcile"

RECONCILE_SETTING = th.Property(
    RECONCILE,
    th.BooleanType(nullable=False),
    default=False,
    title="Reconcile",
    description=(
        "Read every lead again, bookmark aside (`start_date` still applies), and once every "
        "lead of every project has been read, send ACTIVATE_VERSION: the target flags the "
        "leads it holds that LeadTrackr no longer has (`_sdc_deleted_at`). For a job of its "
        "own, weekly, beside the daily one; the bookmark is left as it was. A read that "
        "fails or is interrupted flags nothing."
    ),
)


def reconcile_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """Settings a reconcile cannot run with, each naming the setting."""
    if not config.get(RECONCILE):
        return []
    errors = []
    if config.get("end_date"):
        errors.append(
            "`reconcile` reads every lead up to now: with `end_date` set, the target would "
            "flag every lead created after it as deleted. Unset `end_date` for the reconcile."
        )
    if config.get("batch_config"):
        errors.append(
            "`reconcile` cannot write BATCH files (`batch_config`): their records carry no "
            "table version, so the target would flag every lead as deleted. Unset "
            "`batch_config` for the reconcile."
        )
    return errors


class FullRead(TableVersion):
    """A stream that, with `reconcile`, reads in full and carries a table version."""

    @property
    def reconciling(self) -> bool:
        """Whether this run is a reconcile."""
        return bool(self.config.get(RECONCILE))

    @override
    @property
    def replication_method(self) -> str:
        # Neither reads nor moves the bookmark: the daily job's stays where it is.
        return REPLICATION_FULL_TABLE if self.reconciling else super().replication_method

    @override
    @property
    def emit_activate_version_messages(self) -> bool:
        # The SDK would write it as the sync starts, before a lead is read; `Reconcile`
        # writes it after a complete read.
        return False


class Reconcile(FullRead, EndOfSyncCheck):
    """The stream that reads the leads: it knows when every project has been read to its end."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_to_end: set[str | None] = set()
        self._versioned: list[FullRead] = []

    def begin_reconcile(self, version: int, derived: FullRead | None) -> None:
        """Stamp this run's records, and those of a stream `derived` from them, with `version`."""
        if not self.reconciling:
            return
        self._versioned = [self] if derived is None else [self, derived]
        for stream in self._versioned:
            stream.use_table_version(version)

    def read_to_end(self, context: Context | None, refused: t.Collection[str]) -> None:
        """Note that the project of `context` (None: `api_key`'s) was read, unless `refused`."""
        project = context.get("project") if context else None
        if self.reconciling and project not in refused:
            self._read_to_end.add(project)

    @override
    def check_sync_finished(self) -> None:
        # A refused project fails the run here, before anything is activated.
        super().check_sync_finished()
        if self.reconciling:
            self.activate_after_full_read()

    def activate_after_full_read(self) -> None:
        """Write ACTIVATE_VERSION for each versioned stream, if every project was read."""
        projects = {p["project"] for p in self.partitions} if self.partitions else {None}
        if unread := projects - self._read_to_end:
            self.log(
                "Reconcile: %d project(s) not read to the end; no lead is flagged as deleted.",
                len(unread),
                level=logging.WARNING,
            )
            return
        activated = [stream for stream in self._versioned if stream.selected]
        for stream in activated:
            stream.activate_table_version()
        if activated:
            self.log(
                "Reconcile: every lead was read; ACTIVATE_VERSION sent for %s: the target "
                "flags what it holds of an older version as deleted.",
                ", ".join(stream.name for stream in activated),
            )
