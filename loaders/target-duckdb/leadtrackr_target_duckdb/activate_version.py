"""ACTIVATE_VERSION for target-duckdb 0.8.0, applied as MeltanoLabs' target-postgres does.

A tap that has read a whole table sends its records with a table version, then
ACTIVATE_VERSION with that version: rows of an older version, or of none, are gone from
the source. target-duckdb 0.8.0 ignores the message. Here it means what it means to
target-postgres 0.8.1 (`SQLSink.activate_version`):

- each row keeps the version of the record that last wrote it, `_sdc_table_version`
  (null for a record without one, as an incremental sync sends), and every record sets
  `_sdc_deleted_at` to null again: a row that comes back is live;
- on ACTIVATE_VERSION the stream's pending rows are loaded first; then rows of an older
  version or none, not yet flagged, get `_sdc_deleted_at` (soft delete, the default), or
  with `hard_delete` they are deleted. `activate_version: false` ignores the message.

The released loop (`target_duckdb.persist_lines`) stays as it is: `activating_versions`
stands between it and the input, and has the loop load a stream's pending rows by
repeating the stream's SCHEMA message, which the loop answers by loading them.
"""

from __future__ import annotations

import json
import typing as t
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone

import target_duckdb
from target_duckdb.db_sync import DbSync

VERSION_COLUMN = "_sdc_table_version"
DELETED_AT_COLUMN = "_sdc_deleted_at"
#: A BIGINT column (target-duckdb makes an integer without a maximum a HUGEINT).
_VERSION_SCHEMA = {"type": ["null", "integer"], "maximum": 2**63 - 1}

Message = dict[str, t.Any]


def with_version_column(
    released: Callable[[Message], Message],
) -> Callable[[Message], Message]:
    """target-duckdb's `add_metadata_columns_to_schema`, adding `_sdc_table_version`."""

    def add_metadata_columns_to_schema(schema_message: Message) -> Message:
        schema_message = released(schema_message)
        schema_message["schema"]["properties"][VERSION_COLUMN] = dict(_VERSION_SCHEMA)
        return schema_message

    return add_metadata_columns_to_schema


def with_version_value(
    released: Callable[[Message], dict[str, t.Any]],
) -> Callable[[Message], dict[str, t.Any]]:
    """target-duckdb's `add_metadata_values_to_record`, adding the record's version."""

    def add_metadata_values_to_record(record_message: Message) -> dict[str, t.Any]:
        record = released(record_message)
        record[VERSION_COLUMN] = record_message.get("version")
        return record

    return add_metadata_values_to_record


def activating_versions(
    lines: Iterable[str], connection: t.Any, config: dict[str, t.Any]
) -> Iterator[str]:
    """The input lines, each ACTIVATE_VERSION applied once the rows before it are loaded."""
    schemas: dict[str, str] = {}
    for line in lines:
        # A cheap test first: most lines are records, which need no second parse.
        if '"SCHEMA"' in line or '"ACTIVATE_VERSION"' in line:
            message = json.loads(line)
            kind, stream = message.get("type"), message.get("stream")
            if kind == "SCHEMA":
                schemas[stream] = line
            elif kind == "ACTIVATE_VERSION" and stream in schemas:
                # The loop loads a stream's pending rows when its SCHEMA comes again.
                yield schemas[stream]
                activate_version(connection, config, json.loads(schemas[stream]), message)
        yield line


def activate_version(
    connection: t.Any, config: dict[str, t.Any], schema_message: Message, message: Message
) -> int:
    """Flag (or delete) the rows of an older table version than the message's; return how many."""
    stream, version = message["stream"], message["version"]
    logger = target_duckdb.LOGGER
    if config.get("activate_version") is False:
        logger.warning("ACTIVATE_VERSION for '%s' ignored: `activate_version` is false.", stream)
        return 0
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"ACTIVATE_VERSION for '{stream}' has no integer version: {version!r}")
    sync = DbSync(connection, config, target_duckdb.add_metadata_columns_to_schema(schema_message))
    table = sync.table_name(stream)
    loaded = sync.get_table_columns(sync.table_name(stream, without_schema=True))
    columns = {row["column_name"].lower() for row in loaded}
    if not columns:
        return 0  # nothing loaded yet, nothing to flag
    if not {VERSION_COLUMN, DELETED_AT_COLUMN} <= columns:
        raise ValueError(
            f"ACTIVATE_VERSION for '{stream}' needs the columns {VERSION_COLUMN} and "
            f"{DELETED_AT_COLUMN}: set `add_metadata_columns` (or `hard_delete`) to true, or "
            "`activate_version` to false to ignore the message."
        )
    older = f"({VERSION_COLUMN} is null or {VERSION_COLUMN} < ?)"
    if config.get("hard_delete"):
        done = "deleted"
        changed = connection.execute(f"delete from {table} where {older}", [version])
    else:
        # Rows already flagged keep the time they were first found gone.
        done = "flagged as deleted"
        now = datetime.now(timezone.utc).isoformat()
        changed = connection.execute(
            f"update {table} set {DELETED_AT_COLUMN} = ? "
            f"where {older} and {DELETED_AT_COLUMN} is null",
            [now, version],
        )
    count = int((changed.fetchone() or (0,))[0])
    logger.info("ACTIVATE_VERSION %d for '%s': %s %d rows.", version, stream, done, count)
    return count
