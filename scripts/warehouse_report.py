"""What the warehouse holds: lead counts, statuses, forms, click-id shares and top channels.

Leads a reconcile found deleted in LeadTrackr (`_sdc_deleted_at` set by the loader) stay
in the table but are left out of every figure, and counted on a line of their own.

With several projects (the tap's `projects` setting), leads are also counted per project,
and a lead is one `(project, id)`: two projects' leads may share an id.

    python scripts/warehouse_report.py [output/sandbox.duckdb]
    python scripts/warehouse_report.py postgresql://user:password@host:5432/db

A DuckDB file or a PostgreSQL database (which needs `psycopg`), as the main job's loaders
write them: target-duckdb lower-cases column names (`formName` becomes `formname`) while
target-postgres keeps them; both keep nested objects such as `attributionData` as JSON,
queried with `->>`. The queries quote LeadTrackr's spelling, which DuckDB matches in any
case. The top channels come from the dbt models (transform/), when they have been built.
"""

from __future__ import annotations

import argparse
import sys
import typing as t
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

SCHEMA = "leadtrackr"
"""The loader's `default_target_schema` in meltano.yml."""
MODELS_SCHEMA = "analytics"
"""The dbt utilities' `schema` in meltano.yml: where `channel_performance` is."""

# Client-side tags send "" for a click id they did not find: that is no click id.
_HAS = """coalesce("attributionData"->>'{key}', '') <> ''"""
GOOGLE_CLICK = _HAS.format(key="gclid")
META_CLICK = f"({_HAS.format(key='fbc')} or {_HAS.format(key='fbp')})"

#: A row the loader has not flagged after a reconcile: LeadTrackr still has the lead.
_LIVE = "_sdc_deleted_at is null"

Location = Path | str
"""A DuckDB file, or a PostgreSQL URL (`postgresql://...`)."""


@dataclass(frozen=True)
class Channel:
    """A source / medium under one attribution model, from `channel_performance`."""

    source: str
    medium: str
    leads: int
    converted_leads: int
    value_cents: int

    @property
    def conversion_rate(self) -> float:
        """Converted leads per lead."""
        return self.converted_leads / self.leads if self.leads else 0.0


@dataclass
class Warehouse:
    """A snapshot of the `leads` table and of the channel model."""

    leads: int = 0
    distinct_ids: int = 0
    newest_created: str | None = None
    last_batched: str | None = None
    by_status: list[tuple[str, int]] = field(default_factory=list)
    by_form: list[tuple[str, int]] = field(default_factory=list)
    with_google_click: int = 0
    with_meta_click: int = 0
    touchpoints: int = 0
    leads_with_journey: int = 0
    by_project: list[tuple[str, int]] = field(default_factory=list)
    """Leads per project, when the tap read several; else empty."""
    deleted: int = 0
    """Leads flagged as deleted in LeadTrackr, kept in the table and left out of the rest."""
    first_touch: list[Channel] = field(default_factory=list)
    last_touch: list[Channel] = field(default_factory=list)
    schema: str = SCHEMA
    models_schema: str = MODELS_SCHEMA

    def rows_written_since(self, location: Location, earlier: Warehouse) -> int:
        """Rows this table got or had rewritten after `earlier` was taken."""
        if not self.leads:
            return 0
        if earlier.last_batched is None:
            return self.leads
        with _Database(location) as db:
            row = db.one(
                f"select count(*) from {self.schema}.leads "
                "where _sdc_batched_at > cast(? as timestamp)",
                earlier.last_batched,
            )
        return int(row[0]) if row else 0


class _Database:
    """A read-only connection to a DuckDB file or a PostgreSQL database; `?` parameters."""

    def __init__(self, location: Location) -> None:
        self.postgres = isinstance(location, str) and location.startswith(
            ("postgresql://", "postgres://")
        )
        if self.postgres:
            import psycopg  # only for PostgreSQL: not a dependency of the DuckDB demo

            self._connection: t.Any = psycopg.connect(str(location), autocommit=True)
            self._connection.execute("set default_transaction_read_only = on")
        else:
            # Read-only: a report never changes the warehouse, nor locks out a writer for longer.
            self._connection = duckdb.connect(str(location), read_only=True)

    def __enter__(self) -> _Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self._connection.close()

    def all(self, sql: str, *params: t.Any) -> list[tuple[t.Any, ...]]:
        """Every row of a query."""
        if self.postgres:
            sql = sql.replace("%", "%%").replace("?", "%s")
        return [tuple(row) for row in self._connection.execute(sql, list(params)).fetchall()]

    def one(self, sql: str, *params: t.Any) -> tuple[t.Any, ...] | None:
        """The first row of a query, or None."""
        rows = self.all(sql, *params)
        return rows[0] if rows else None

    def has_column(self, schema: str, table: str, column: str) -> bool:
        """Whether `schema.table` has `column`."""
        found = self.one(
            "select count(*) from information_schema.columns "
            "where table_schema = ? and table_name = ? and column_name = ?",
            schema,
            table,
            column,
        )
        return bool(found and found[0])

    def has_table(self, schema: str, table: str) -> bool:
        """Whether `schema.table` exists (a table or a view)."""
        found = self.one(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            schema,
            table,
        )
        return bool(found and found[0])


def _exists(location: Location) -> bool:
    return not isinstance(location, Path) or location.exists()


def read_warehouse(
    location: Location, *, schema: str = SCHEMA, models_schema: str = MODELS_SCHEMA
) -> Warehouse:
    """Read the snapshot; an absent file or table is an empty warehouse."""
    empty = Warehouse(schema=schema, models_schema=models_schema)
    if not _exists(location):
        return empty
    with _Database(location) as db:
        if not db.has_table(schema, "leads"):
            return empty
        leads = f"{schema}.leads"
        deleted = 0
        if db.has_column(schema, "leads", "_sdc_deleted_at"):
            deleted = int(
                (db.one(f"select count(*) from {leads} where _sdc_deleted_at is not null") or (0,))[
                    0
                ]
            )
            leads = f"(select * from {leads} where {_LIVE}) as leads"
        projects = db.has_column(schema, "leads", "project")
        key = "(project, id)" if projects else "id"
        # The loader's metadata column, when it writes one (`add_metadata_columns`).
        batched_at = (
            "max(_sdc_batched_at)" if db.has_column(schema, "leads", "_sdc_batched_at") else "null"
        )
        total, distinct, newest, batched, google, meta = db.one(
            f'select count(*), count(distinct {key}), max("createdAt"), '
            f"cast({batched_at} as varchar), "
            f"count(*) filter (where {GOOGLE_CLICK}), "
            f"count(*) filter (where {META_CLICK}) from {leads}"
        ) or (0, 0, None, None, 0, 0)
        by_status = db.all(
            f"select coalesce(status, '(none)'), count(*) from {leads} "
            "group by 1 order by 2 desc, 1"
        )
        by_form = db.all(
            f"""select coalesce("formName", '(none)'), count(*) from {leads} """
            "group by 1 order by 2 desc, 1"
        )
        by_project = []
        if projects:
            by_project = db.all(f"select project, count(*) from {leads} group by 1 order by 1")
        touchpoints, with_journey = 0, 0
        if db.has_table(schema, "lead_touchpoints"):
            journey = "(project, lead_id)" if projects else "lead_id"
            live = (
                f"where {_LIVE}"
                if db.has_column(schema, "lead_touchpoints", "_sdc_deleted_at")
                else ""
            )
            touchpoints, with_journey = db.one(
                f"select count(*), count(distinct {journey}) from {schema}.lead_touchpoints {live}"
            ) or (0, 0)
        channels: dict[str, list[Channel]] = {"first_touch": [], "last_touch": []}
        if db.has_table(models_schema, "channel_performance"):
            channels = {model: _channels(db, models_schema, model) for model in channels}
    return Warehouse(
        leads=int(total),
        distinct_ids=int(distinct),
        newest_created=_millis(newest),
        last_batched=batched,
        by_status=[(name, int(count)) for name, count in by_status],
        by_form=[(name, int(count)) for name, count in by_form],
        with_google_click=int(google),
        with_meta_click=int(meta),
        touchpoints=int(touchpoints),
        leads_with_journey=int(with_journey),
        by_project=[(name, int(count)) for name, count in by_project],
        deleted=deleted,
        first_touch=channels["first_touch"],
        last_touch=channels["last_touch"],
        schema=schema,
        models_schema=models_schema,
    )


def _channels(db: _Database, models_schema: str, attribution_model: str) -> list[Channel]:
    """Every source / medium under one attribution model, most leads first."""
    rows = db.all(
        "select source, medium, sum(leads), sum(converted_leads), sum(value_cents) "
        f"from {models_schema}.channel_performance where attribution_model = ? "
        "group by source, medium order by 3 desc, 1, 2",
        attribution_model,
    )
    return [Channel(source, medium, *map(int, figures)) for source, medium, *figures in rows]


def _millis(moment: datetime | None) -> str | None:
    """A loaded `createdAt` (UTC, without a zone) in the tap's spelling."""
    if moment is None:
        return None
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _share(part: int, whole: int) -> str:
    return f"{part:>7,}  {100 * part / whole:5.1f}%" if whole else f"{part:>7,}"


def _channel_lines(title: str, channels: list[Channel], top: int, models_schema: str) -> list[str]:
    lines = [
        f"  top channels by {title} ({models_schema}.channel_performance)",
        f"    {'source / medium':<26}{'leads':>7}{'conv. rate':>11}{'value':>14}",
    ]
    for channel in channels[:top]:
        name = f"{channel.source} / {channel.medium}"
        lines.append(
            f"    {name:<26}{channel.leads:>7,}{channel.conversion_rate:>11.1%}"
            f"{channel.value_cents / 100:>14,.2f}"
        )
    if len(channels) > top:
        rest = sum(channel.leads for channel in channels[top:])
        lines.append(f"    {f'({len(channels) - top} more)':<26}{rest:>7,}")
    return lines


def format_report(warehouse: Warehouse, *, top: int = 10) -> str:
    """The report as lines of text."""
    total = warehouse.leads
    lines = [f"  leads in the warehouse   {total:,}"]
    if warehouse.deleted:
        lines.append(
            f"  deleted in LeadTrackr    {warehouse.deleted:,} (flagged in "
            f"{warehouse.schema}.leads, left out here and in the models)"
        )
    if not total:
        return "\n".join(lines)
    if warehouse.distinct_ids != total:
        lines.append(f"  !! only {warehouse.distinct_ids:,} distinct ids: duplicated leads")
    lines.append(f"  newest lead created      {warehouse.newest_created}")
    if warehouse.by_project:
        lines.append("  by project")
        for name, count in warehouse.by_project:
            lines.append(f"    {name:<22}{_share(count, total)}")
    for title, groups in (("by status", warehouse.by_status), ("by form", warehouse.by_form)):
        lines.append(f"  {title}")
        for name, count in groups[:top]:
            lines.append(f"    {name:<22}{_share(count, total)}")
        if len(groups) > top:
            rest = sum(count for _, count in groups[top:])
            lines.append(f"    {f'({len(groups) - top} more)':<22}{_share(rest, total)}")
    lines.append("  with an ad click id")
    lines.append(f"    {'Google (gclid)':<22}{_share(warehouse.with_google_click, total)}")
    lines.append(f"    {'Meta (fbc or fbp)':<22}{_share(warehouse.with_meta_click, total)}")
    if warehouse.touchpoints:
        lines.append(f"  touchpoints ({warehouse.schema}.lead_touchpoints)")
        lines.append(f"    {'sessions':<22}{warehouse.touchpoints:>7,}")
        lines.append(
            f"    {'leads with a journey':<22}{_share(warehouse.leads_with_journey, total)}"
        )
    if warehouse.first_touch:
        for title, channels in (
            ("first touch", warehouse.first_touch),
            ("last touch", warehouse.last_touch),
        ):
            lines += _channel_lines(title, channels, 5, warehouse.models_schema)
    return "\n".join(lines)


def add_warehouse_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments both reports take: the warehouse, and its dbt models' schema."""
    parser.add_argument(
        "location",
        nargs="?",
        default="output/sandbox.duckdb",
        help="a DuckDB file (default output/sandbox.duckdb) or a postgresql:// URL",
    )
    parser.add_argument(
        "--models-schema",
        default=MODELS_SCHEMA,
        help=f"the dbt models' schema (default {MODELS_SCHEMA})",
    )


def named_location(text: str) -> Location | None:
    """The warehouse a command line names: a PostgreSQL URL, or a DuckDB file that exists.

    None, once it has said so, when there is no such file.
    """
    if "://" in text:
        return text
    if not Path(text).exists():
        print(f"No warehouse at {text}: run `make demo` first.", file=sys.stderr)
        return None
    return Path(text)


def main(argv: list[str] | None = None) -> int:
    """Print the report of a warehouse file or PostgreSQL database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_warehouse_arguments(parser)
    parser.add_argument("--schema", default=SCHEMA, help=f"the loader's schema (default {SCHEMA})")
    args = parser.parse_args(argv)
    location = named_location(args.location)
    if location is None:
        return 1
    print(
        format_report(
            read_warehouse(location, schema=args.schema, models_schema=args.models_schema)
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
