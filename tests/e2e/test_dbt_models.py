"""The dbt models of transform/, built from sandbox leads in DuckDB and in PostgreSQL.

Every figure of `lead_journeys` and `channel_performance` is compared with one worked out
here from the sandbox's own leads, with `tests/touchpoint_reference.py` for the journeys:
nothing is read back from the tap's parser or the models' SQL. One build per warehouse,
shared by the tests of that warehouse (dbt starts slowly).
"""

from __future__ import annotations

import shutil
import typing as t
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import duckdb
import psycopg
import pytest

from scripts.warehouse_report import format_report, read_warehouse
from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tests import touchpoint_reference as reference
from tests.e2e.conftest import Meltano, query_duckdb, sandbox_env
from tests.e2e.test_meltano_postgres import query, sqlalchemy_url

LEADS = 800
NONE = "(none)"
CLICK_CHANNELS = (
    ("gclid", "google", "cpc"),
    ("gbraid", "google", "cpc"),
    ("wbraid", "google", "cpc"),
    ("dclid", "google", "display"),
    ("msclkid", "bing", "cpc"),
    ("fbc", "facebook", "cpc"),
    ("ttclid", "tiktok", "cpc"),
    ("li_fat_id", "linkedin", "cpc"),
)
"""docs/models.md's rule for a lead without a journey: the first of these click ids it has."""
JOURNEY_COLUMNS = (
    "lead_id, created_at, status, status_group, price_cents, touchpoints, first_touch_at, "
    "first_touch_source, first_touch_medium, first_touch_campaign, last_touch_source, "
    "last_touch_medium, last_touch_campaign, has_google_click, has_meta_click"
)
PERFORMANCE_COLUMNS = (
    "month, attribution_model, source, medium, campaign, leads, converted_leads, lost_leads, "
    "conversion_rate, value_cents"
)


def _millis(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%dT%H:%M:%S}.{moment:%f}"[:23] + "Z"


def _channel(session: dict[str, t.Any]) -> tuple[str, str, str]:
    return tuple(session[part] or NONE for part in ("source", "medium", "campaign"))  # type: ignore[return-value]


def expected_journeys(leads: list[dict[str, t.Any]]) -> dict[int, tuple[t.Any, ...]]:
    """`lead_journeys` by lead id, from the raw leads."""
    rows = {}
    for lead in leads:
        sessions = reference.expected_touchpoints(lead)
        ids = {
            key
            for key, value in (lead.get("attributionData") or {}).items()
            if isinstance(value, str) and value.strip()
        }
        status = lead["status"]
        if status is None:
            group = "open"
        elif status.lower() in ("open", "pending", "lost"):
            group = status.lower()
        else:
            group = "converted"
        if sessions:
            first, last = _channel(sessions[0]), _channel(sessions[-1])
        else:
            source, medium = next(
                ((source, medium) for key, source, medium in CLICK_CHANNELS if key in ids),
                (NONE, NONE),
            )
            first = last = (source, medium, NONE)
        rows[lead["id"]] = (
            lead["id"],
            lead["createdAt"],
            status,
            group,
            lead["price"],
            len(sessions),
            sessions[0]["occurred_at"] if sessions else None,
            *first,
            *last,
            bool(ids & {"gclid", "gbraid", "wbraid"}),
            bool(ids & {"fbc", "fbp"}),
        )
    return rows


def expected_performance(
    journeys: dict[int, tuple[t.Any, ...]],
) -> dict[tuple[t.Any, ...], tuple[int, int, int, int]]:
    """`channel_performance` by key: leads, converted, lost, value."""
    figures: dict[tuple[t.Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in journeys.values():
        month = date.fromisoformat(row[1][:7] + "-01")
        for model, channel in (("first_touch", row[7:10]), ("last_touch", row[10:13])):
            counts = figures[(month, model, *channel)]
            counts[0] += 1
            counts[1] += row[3] == "converted"
            counts[2] += row[3] == "lost"
            counts[3] += row[4] or 0
    return {key: tuple(counts) for key, counts in figures.items()}  # type: ignore[misc]


def assert_models_match(
    leads: list[dict[str, t.Any]],
    journey_rows: list[tuple[t.Any, ...]],
    performance_rows: list[tuple[t.Any, ...]],
) -> None:
    """Both marts hold exactly the figures worked out from `leads`."""
    journeys = expected_journeys(leads)
    loaded = {
        row[0]: (row[0], _millis(row[1]), *row[2:6], _millis(row[6]), *row[7:])
        for row in journey_rows
    }
    assert len(journey_rows) == len(leads)
    assert loaded == journeys

    performance = expected_performance(journeys)
    assert len(performance_rows) == len(performance)
    for month, model, source, medium, campaign, *figures in performance_rows:
        leads_count, converted, lost, rate, value = figures
        key = (month, model, source, medium, campaign)
        assert (leads_count, converted, lost, value) == performance[key], key
        assert rate == pytest.approx(converted / leads_count)
    for model in ("first_touch", "last_touch"):
        assert sum(row[5] for row in performance_rows if row[1] == model) == len(leads)


# DuckDB: the main job, as `make demo` runs it.


class Built(t.NamedTuple):
    warehouse: Path
    leads: list[dict[str, t.Any]]
    meltano: Meltano


@pytest.fixture(scope="module")
def duckdb_built(meltano_installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The job `leads-to-warehouse` (load, then `dbt build`) run once on sandbox leads."""
    workdir = tmp_path_factory.mktemp("dbt-duckdb")
    meltano = Meltano(workdir / "meltano", meltano_installed)
    warehouse = workdir / "warehouse.duckdb"
    with Sandbox(Project(generate_leads(LEADS, seed=61))) as sandbox:
        meltano(
            "run", "leads-to-warehouse", env=sandbox_env(sandbox, TARGET_DUCKDB_FILEPATH=warehouse)
        )
        leads = sandbox.project.leads
    return Built(warehouse, leads, meltano)


def read_marts(built: Built, path: Path | None = None) -> tuple[list, list]:
    path = path or built.warehouse
    return (
        query_duckdb(path, f"select {JOURNEY_COLUMNS} from analytics.lead_journeys"),
        query_duckdb(path, f"select {PERFORMANCE_COLUMNS} from analytics.channel_performance"),
    )


def test_the_job_builds_marts_that_match_the_raw_leads_in_duckdb(duckdb_built: Built) -> None:
    journeys, performance = read_marts(duckdb_built)
    assert_models_match(duckdb_built.leads, journeys, performance)
    # The sandbox serves leads with and without journeys, with and without click ids.
    sources = {row[7] for row in journeys if row[5] == 0}
    assert {"google", NONE} <= sources
    assert {row[3] for row in journeys} == {"open", "pending", "lost", "converted"}


def as_two_projects(warehouse: Path) -> None:
    """Make the leads and touchpoints of `warehouse` those of two projects, `alpha` and
    `beta`, whose leads share their ids (as the `projects` setting loads them)."""
    with duckdb.connect(str(warehouse)) as db:
        for table in ("leads", "lead_touchpoints"):
            db.execute(
                "create table leadtrackr.two as "
                f"select 'alpha' as project, * from leadtrackr.{table} union all "
                f"select 'beta' as project, * from leadtrackr.{table}"
            )
            db.execute(f"drop table leadtrackr.{table}")
            db.execute(f"alter table leadtrackr.two rename to {table}")


def test_with_a_project_column_every_model_carries_it_and_keys_include_it(
    duckdb_built: Built, tmp_path: Path
) -> None:
    # Two projects whose leads share their ids, as the `projects` setting will load them.
    warehouse = tmp_path / "projects.duckdb"
    shutil.copy(duckdb_built.warehouse, warehouse)
    as_two_projects(warehouse)
    with duckdb.connect(str(warehouse)) as db:
        db.execute("update leadtrackr.leads set status = 'lost' where project = 'beta'")
    duckdb_built.meltano("invoke", "dbt-duckdb:build", env={"TARGET_DUCKDB_FILEPATH": warehouse})

    for model in (
        "stg_leadtrackr__leads",
        "stg_leadtrackr__lead_touchpoints",
        "lead_journeys",
        "channel_performance",
        "lead_attribution",
        "channel_attribution",
        "conversion_paths",
    ):
        columns = query_duckdb(
            warehouse,
            "select column_name from information_schema.columns "
            "where table_schema = 'analytics' and table_name = ? order by ordinal_position",
            model,
        )
        assert columns[0] == ("project",), model
    journeys = query_duckdb(
        warehouse, f"select {JOURNEY_COLUMNS} from analytics.lead_journeys where project = 'alpha'"
    )
    performance = query_duckdb(
        warehouse,
        f"select {PERFORMANCE_COLUMNS} from analytics.channel_performance where project = 'alpha'",
    )
    assert_models_match(duckdb_built.leads, journeys, performance)
    lost = query_duckdb(
        warehouse,
        "select attribution_model, sum(leads), sum(lost_leads) from analytics.channel_performance "
        "where project = 'beta' group by 1 order by 1",
    )
    assert lost == [("first_touch", LEADS, LEADS), ("last_touch", LEADS, LEADS)]


def test_a_touchpoint_without_its_lead_fails_the_models_tests(
    duckdb_built: Built, tmp_path: Path
) -> None:
    warehouse = tmp_path / "orphan.duckdb"
    shutil.copy(duckdb_built.warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as db:
        db.execute(
            "insert into leadtrackr.lead_touchpoints (lead_id, position, is_first_touch, "
            "is_last_touch, createdat) values (999999, 1, true, true, now())"
        )
    result = duckdb_built.meltano(
        "invoke", "dbt-duckdb:test", env={"TARGET_DUCKDB_FILEPATH": warehouse}, check=False
    )
    assert result.returncode != 0
    log = result.stdout + result.stderr
    assert "FAIL 1 belongs_to_stg_leadtrackr__lead_touchpoints_lead_id" in log
    # That test alone: the keys, the status groups and the attribution still pass.
    assert "WARN=0 ERROR=1 SKIP=0" in log


# PostgreSQL: the same models through target-postgres and dbt-postgres.


def dbt_postgres_env(url: str, source_schema: str, models_schema: str) -> dict[str, str]:
    """dbt-postgres's settings for the server at a libpq URL."""
    parts = urlsplit(url)
    host = parts.hostname or parse_qs(parts.query).get("host", ["127.0.0.1"])[0]
    return {
        "DBT_POSTGRES_HOST": host,
        "DBT_POSTGRES_PORT": str(parts.port or 5432),
        "DBT_POSTGRES_USER": unquote(parts.username or "postgres"),
        "DBT_POSTGRES_PASSWORD": unquote(parts.password or ""),
        "DBT_POSTGRES_DATABASE": parts.path.lstrip("/") or "postgres",
        "DBT_POSTGRES_SOURCE_SCHEMA": source_schema,
        "DBT_POSTGRES_SCHEMA": models_schema,
    }


def test_the_models_on_postgres_match_the_raw_leads(
    meltano: Meltano,
    postgres_url: str,
    schema: str,
) -> None:
    models = f"{schema}_models"
    with Sandbox(Project(generate_leads(LEADS // 2, seed=62))) as sandbox:
        env = sandbox_env(
            sandbox,
            TARGET_POSTGRES_SQLALCHEMY_URL=sqlalchemy_url(postgres_url),
            TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=schema,
            **dbt_postgres_env(postgres_url, source_schema=schema, models_schema=models),
        )
        try:
            meltano("run", "tap-leadtrackr", "target-postgres", "dbt-postgres:build", env=env)
            journeys = query(postgres_url, f"select {JOURNEY_COLUMNS} from {models}.lead_journeys")
            performance = query(
                postgres_url, f"select {PERFORMANCE_COLUMNS} from {models}.channel_performance"
            )
            report = read_warehouse(postgres_url, schema=schema, models_schema=models)
        finally:
            with psycopg.connect(postgres_url, autocommit=True) as connection:
                connection.execute(f"drop schema if exists {models} cascade")  # type: ignore[arg-type]
        leads = sandbox.project.leads
    assert_models_match(leads, journeys, performance)

    # The demo's report reads PostgreSQL too: the same counts and top channels.
    assert (report.leads, report.distinct_ids) == (len(leads), len(leads))
    assert report.newest_created == max(lead["createdAt"] for lead in leads)
    expected = expected_performance(expected_journeys(leads))
    for model, channels in (("first_touch", report.first_touch), ("last_touch", report.last_touch)):
        assert sum(channel.leads for channel in channels) == len(leads)
        top = channels[0]
        assert top.leads == sum(
            figures[0]
            for key, figures in expected.items()
            if key[1:4] == (model, top.source, top.medium)
        )
        assert top.leads == max(
            sum(figures[0] for key, figures in expected.items() if key[1:4] == (model, *channel))
            for channel in {key[2:4] for key in expected}
        )
    assert "top channels by last touch" in format_report(report)
