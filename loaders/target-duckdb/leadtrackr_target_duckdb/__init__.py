"""target-duckdb 0.8.0, the last release on PyPI, loading every row with any DuckDB.

target-duckdb writes each batch to a CSV file without a header line and loads it with
`COPY ... FROM`, which lets DuckDB guess whether the first line is a header. DuckDB takes
it for one when the batch's first row looks like column names next to the rows below it:
often with DuckDB 1.3 and newer, sometimes with older ones (a table whose columns are all
text), and that row is silently lost, one per batch and stream. target-duckdb's main
branch says `HEADER false` since 2026-02 but has not been released; this is that one
change, as a subclass of the released `DbSync`, run by the released entry point.

The subclass also turns a record into its key and its CSV row in one pass over the
record's fields when nothing is flattened (`data_flattening_max_level` 0, this project's
setting), with the same result: the released loader builds its flattened copy of every
record twice, which is most of its CPU time.

It also applies ACTIVATE_VERSION, which the released loader ignores, as MeltanoLabs'
target-postgres does: `activate_version.py`.

Drop the CSV fix for `target-duckdb>0.8.0` once a release carries it.
"""

from __future__ import annotations

import csv
import json
import os
import typing as t

import target_duckdb
from target_duckdb.db_sync import DbSync

from leadtrackr_target_duckdb.activate_version import (
    activating_versions,
    with_version_column,
    with_version_value,
)

__all__ = ["HeaderlessCsvDbSync", "main"]

_JSON_TYPES = {"null", "object", "array"}


class HeaderlessCsvDbSync(DbSync):  # type: ignore[misc]
    """`DbSync` whose batch COPY reads every line of the CSV file as a row."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        if self.stream_schema_message is not None:
            # Columns that `flatten_record` writes as JSON even for a scalar value.
            self._json_columns = {
                name
                for name, schema in self.flatten_schema.items()
                if set(schema.get("type", ())) == _JSON_TYPES
            }

    def _value(self, name: str, value: t.Any) -> t.Any:
        """A top-level field as `flatten_record` leaves it: objects and lists as JSON."""
        if isinstance(value, dict | list) or name in self._json_columns:
            return json.dumps(value)
        return value

    def record_primary_key_string(self, record: dict[str, t.Any]) -> str | None:
        """The record's key as the released method makes it, without flattening it all."""
        keys = self.stream_schema_message["key_properties"]
        if self.data_flattening_max_level or not keys or not all(k in record for k in keys):
            return super().record_primary_key_string(record)  # incl. its missing-key error
        return ",".join(str(self._value(key, record[key])) for key in keys)

    def record_to_flattened(self, record: dict[str, t.Any]) -> list[t.Any]:
        """The CSV row, one value per column, as the released method makes it."""
        if self.data_flattening_max_level:
            return super().record_to_flattened(record)  # type: ignore[no-any-return]
        row = []
        for name in self.flatten_schema:
            value = self._value(name, record[name]) if name in record else None
            row.append(value if value == 0 or value else None)
        return row

    def load_rows(self, records: t.Iterable[dict[str, t.Any]], count: int, temp_dir: str) -> None:
        """Load one batch: CSV file, temporary table, upsert on the key.

        Line for line target-duckdb 0.8.0's `load_rows`, except `HEADER false` in the COPY.
        """
        stream = self.stream_schema_message["stream"]
        self.logger.info("Loading %d rows into '%s'", count, self.table_name(stream, False))

        temp_table = self.table_name(stream, is_temporary=True)
        temp_file_csv = os.path.join(temp_dir, f"{temp_table}.csv")
        self.conn.execute(self.create_table_query(table_name=temp_table, is_temporary=True))
        with open(temp_file_csv, "w") as f:
            writer = csv.writer(
                f, delimiter=self.delimiter, quotechar=self.quotechar, quoting=csv.QUOTE_MINIMAL
            )
            for record in records:
                writer.writerow(self.record_to_flattened(record))
        self.conn.execute(
            f"COPY {temp_table} FROM '{temp_file_csv}' WITH (HEADER false, new_line '\\r\\n')"
        )
        if self.stream_schema_message["key_properties"]:
            self.conn.execute(self.update_from_temp_table(temp_table))
        self.conn.execute(self.insert_from_temp_table(temp_table))
        self.conn.execute(f"DROP TABLE {temp_table}")
        os.unlink(temp_file_csv)


def main() -> None:
    """`target-duckdb`, loading through `HeaderlessCsvDbSync` and applying ACTIVATE_VERSION."""
    # The released loop calls these by their module's global names.
    target_duckdb.DbSync = HeaderlessCsvDbSync
    released = target_duckdb.persist_lines
    target_duckdb.add_metadata_columns_to_schema = with_version_column(
        target_duckdb.add_metadata_columns_to_schema
    )
    target_duckdb.add_metadata_values_to_record = with_version_value(
        target_duckdb.add_metadata_values_to_record
    )

    def persist_lines(connection: t.Any, config: dict[str, t.Any], lines: t.Any) -> None:
        released(connection, config, activating_versions(lines, connection, config))

    target_duckdb.persist_lines = persist_lines
    target_duckdb.main()
