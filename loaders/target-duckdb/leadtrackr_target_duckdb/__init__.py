"""target-duckdb 0.8.0, the last release on PyPI, loading every row with any DuckDB.

target-duckdb writes each batch to a CSV file without a header line and loads it with
`COPY ... FROM`, which lets DuckDB guess whether the first line is a header. DuckDB takes
it for one when the batch's first row looks like column names next to the rows below it:
often with DuckDB 1.3 and newer, sometimes with older ones (a table whose columns are all
text), and that row is silently lost, one per batch and stream. target-duckdb's main
branch says `HEADER false` since 2026-02 but has not been released; this is that one
change, as a subclass of the released `DbSync`, run by the released entry point.

Drop this package for `target-duckdb>0.8.0` once a release carries the fix.
"""

from __future__ import annotations

import csv
import os
import typing as t

import target_duckdb
from target_duckdb.db_sync import DbSync

__all__ = ["HeaderlessCsvDbSync", "main"]


class HeaderlessCsvDbSync(DbSync):  # type: ignore[misc]
    """`DbSync` whose batch COPY reads every line of the CSV file as a row."""

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
    """`target-duckdb`, with every stream loaded through `HeaderlessCsvDbSync`."""
    # `persist_lines` builds one `DbSync` per stream from the module's global name.
    target_duckdb.DbSync = HeaderlessCsvDbSync
    target_duckdb.main()
