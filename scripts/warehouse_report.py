"""What the DuckDB warehouse holds: lead counts, statuses, forms and click-id shares.

With several projects (the tap's `projects` setting), leads are also counted per project,
and a lead is one `(project, id)`: two projects' leads may share an id.

    python scripts/warehouse_report.py [output/sandbox.duckdb]

target-duckdb writes column names in lower case (`formName` becomes `formname`) and keeps
nested objects such as `attributionData` as JSON columns, queried with `->>`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

SCHEMA = "leadtrackr"
"""The loader's `default_target_schema` in meltano.yml."""

# Client-side tags send "" for a click id they did not find: that is no click id.
_HAS = "coalesce(attributiondata->>'{key}', '') <> ''"
GOOGLE_CLICK = _HAS.format(key="gclid")
META_CLICK = f"({_HAS.format(key='fbc')} or {_HAS.format(key='fbp')})"


@dataclass
class Warehouse:
    """A snapshot of the `leads` table."""

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

    def rows_written_since(self, path: Path, earlier: Warehouse) -> int:
        """Rows this table got or had rewritten after `earlier` was taken."""
        if not self.leads:
            return 0
        if earlier.last_batched is None:
            return self.leads
        with _connect(path) as db:
            row = db.execute(
                f"select count(*) from {SCHEMA}.leads where _sdc_batched_at > ?::timestamp",
                [earlier.last_batched],
            ).fetchone()
        return int(row[0]) if row else 0


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    # Read-only: a report never changes the warehouse, nor locks out a writer for longer.
    return duckdb.connect(str(path), read_only=True)


def read_warehouse(path: Path) -> Warehouse:
    """Read the snapshot; an absent file or table is an empty warehouse."""
    if not path.exists():
        return Warehouse()
    with _connect(path) as db:
        if not _has_table(db, "leads"):
            return Warehouse()
        leads = f"{SCHEMA}.leads"
        projects = _has_column(db, "leads", "project")
        key = "(project, id)" if projects else "id"
        total, distinct, newest, batched, google, meta = db.execute(
            f"select count(*), count(distinct {key}), "
            "strftime(max(createdat), '%Y-%m-%dT%H:%M:%S.%gZ'), max(_sdc_batched_at)::varchar, "
            f"count(*) filter ({GOOGLE_CLICK}), "
            f"count(*) filter ({META_CLICK}) from {leads}"
        ).fetchone() or (0, 0, None, None, 0, 0)
        by_status = db.execute(
            f"select coalesce(status, '(none)'), count(*) from {leads} "
            "group by 1 order by 2 desc, 1"
        ).fetchall()
        by_form = db.execute(
            f"select coalesce(formname, '(none)'), count(*) from {leads} "
            "group by 1 order by 2 desc, 1"
        ).fetchall()
        by_project = []
        if projects:
            by_project = db.execute(
                f"select project, count(*) from {leads} group by 1 order by 1"
            ).fetchall()
        touchpoints, with_journey = 0, 0
        if _has_table(db, "lead_touchpoints"):
            journey = "(project, lead_id)" if projects else "lead_id"
            touchpoints, with_journey = db.execute(
                f"select count(*), count(distinct {journey}) from {SCHEMA}.lead_touchpoints"
            ).fetchone() or (0, 0)
    return Warehouse(
        leads=total,
        distinct_ids=distinct,
        newest_created=newest,
        last_batched=batched,
        by_status=by_status,
        by_form=by_form,
        with_google_click=google,
        with_meta_click=meta,
        touchpoints=touchpoints,
        leads_with_journey=with_journey,
        by_project=by_project,
    )


def _has_table(db: duckdb.DuckDBPyConnection, table: str) -> bool:
    found = db.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [SCHEMA, table],
    ).fetchone()
    return bool(found and found[0])


def _has_column(db: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    found = db.execute(
        "select count(*) from information_schema.columns "
        "where table_schema = ? and table_name = ? and column_name = ?",
        [SCHEMA, table, column],
    ).fetchone()
    return bool(found and found[0])


def _share(part: int, whole: int) -> str:
    return f"{part:>7,}  {100 * part / whole:5.1f}%" if whole else f"{part:>7,}"


def format_report(warehouse: Warehouse, *, top: int = 10) -> str:
    """The report as lines of text."""
    total = warehouse.leads
    lines = [f"  leads in the warehouse   {total:,}"]
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
        lines.append(f"  touchpoints ({SCHEMA}.lead_touchpoints)")
        lines.append(f"    {'sessions':<22}{warehouse.touchpoints:>7,}")
        lines.append(
            f"    {'leads with a journey':<22}{_share(warehouse.leads_with_journey, total)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the report of a warehouse file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=Path("output/sandbox.duckdb"))
    args = parser.parse_args(argv)
    if not args.path.exists():
        print(f"No warehouse at {args.path}: run `make demo` first.", file=sys.stderr)
        return 1
    print(format_report(read_warehouse(args.path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
