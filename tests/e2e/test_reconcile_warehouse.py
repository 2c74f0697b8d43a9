"""The warehouse follows LeadTrackr: daily runs, then a reconcile, through Meltano.

One scenario, on DuckDB (the main job and the reconcile job of meltano.yml) with
`projects`, and on PostgreSQL (target-postgres and dbt-postgres) with one project (its
step 4 also on PostgreSQL with `projects`; DuckDB with one project is the demo's test):

1. a daily run loads every lead;
2. the projects age (leads rated, deleted, added): the next daily run brings the new
   leads and the ratings inside its lookback window, nothing older, and flags nothing;
3. (`projects`) a reconcile with one project refused fails and flags nothing anywhere;
4. the reconcile brings every rating, flags exactly the deleted leads and their
   touchpoints (the rows stay), the models and the report count the live leads only, and
   the daily job's bookmark has not moved;
5. a daily run after it loads the leads created meanwhile, from the same bookmark.
"""

from __future__ import annotations

import json
import typing as t
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from scripts.warehouse_report import read_warehouse
from tap_leadtrackr.sandbox import Aging, Project, Sandbox, age, generate_leads
from tests import touchpoint_reference as reference
from tests.e2e.conftest import Meltano, query_duckdb
from tests.e2e.test_dbt_models import (
    JOURNEY_COLUMNS,
    PERFORMANCE_COLUMNS,
    assert_models_match,
    dbt_postgres_env,
)
from tests.e2e.test_meltano_postgres import query, sqlalchemy_url

#: A round of aging big enough to show in every check; ratings inside a 30-day lookback.
AGING = Aging(new_leads=20, recent_ratings=6, old_ratings=12, deletions=8)
LEADS = 700
PROJECT_NAMES = ("acme", "globex", "initech")

Key = tuple[t.Any, ...]


@dataclass
class Warehouse:
    """Where a scenario loads, and how to read it back."""

    kind: str
    query: Callable[..., list[tuple[t.Any, ...]]]
    raw: str
    """The loader's schema."""
    models: str
    """The dbt models' schema."""
    location: Path | str
    """What the report reads: the DuckDB file or the PostgreSQL URL."""
    env: dict[str, str]
    load: tuple[str, ...]
    """The daily load alone, where a step checks only the loaded rows."""
    daily: tuple[str, ...]
    reconcile: tuple[str, ...]

    def state(self, meltano: Meltano, tap: str) -> dict[str, t.Any]:
        return meltano.state(f"dev:{tap}-to-target-{self.kind}")


@pytest.fixture
def duckdb_warehouse(tmp_path: Path) -> Warehouse:
    path = tmp_path / "warehouse.duckdb"
    return Warehouse(
        kind="duckdb",
        query=lambda sql, *params: query_duckdb(path, sql, *params),
        raw="leadtrackr",
        models="analytics",
        location=path,
        env={"TARGET_DUCKDB_FILEPATH": str(path)},
        # The jobs of meltano.yml: each loads, then builds and tests the models.
        load=("tap-leadtrackr", "target-duckdb"),
        daily=("leads-to-warehouse",),
        reconcile=("reconcile-leads-to-warehouse",),
    )


@pytest.fixture
def postgres_warehouse(postgres_url: str, schema: str) -> t.Iterator[Warehouse]:
    models = f"{schema}_models"
    yield Warehouse(
        kind="postgres",
        query=lambda sql, *params: query(postgres_url, sql, *params),
        raw=schema,
        models=models,
        location=postgres_url,
        env={
            "TARGET_POSTGRES_SQLALCHEMY_URL": sqlalchemy_url(postgres_url),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
            **dbt_postgres_env(postgres_url, source_schema=schema, models_schema=models),
        },
        load=("tap-leadtrackr", "target-postgres"),
        daily=("tap-leadtrackr", "target-postgres", "dbt-postgres:build"),
        reconcile=("tap-leadtrackr--reconcile", "target-postgres", "dbt-postgres:build"),
    )
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"drop schema if exists {models} cascade")  # type: ignore[arg-type]


class Source:
    """The sandbox projects of a scenario, by the name the warehouse knows them by."""

    def __init__(self, several: bool) -> None:
        names = PROJECT_NAMES if several else (None,)
        self.several = several
        self.projects = {
            name: Project(generate_leads(LEADS, seed=70 + number))
            for number, name in enumerate(names)
        }
        keys = {name: f"key-{name}" for name in names}
        self.sandbox = Sandbox(
            self.projects[names[0]],
            projects={keys[name]: self.projects[name] for name in names} if several else None,
        )
        self.keys = keys

    def env(self) -> dict[str, str]:
        if not self.several:
            return {
                "TAP_LEADTRACKR_API_URL": self.sandbox.url,
                "TAP_LEADTRACKR_API_KEY": "sandbox-key",
            }
        listed = [{"name": name, "api_key": key} for name, key in self.keys.items()]
        return {
            "TAP_LEADTRACKR_API_URL": self.sandbox.url,
            "TAP_LEADTRACKR_API_KEY": "",
            "TAP_LEADTRACKR_PROJECTS": json.dumps(listed),
        }

    def key(self, name: str | None, lead_id: int) -> Key:
        return (name, lead_id) if self.several else (lead_id,)

    def leads(self) -> dict[Key, dict[str, t.Any]]:
        return {
            self.key(name, lead["id"]): lead
            for name, project in self.projects.items()
            for lead in project.leads
        }

    def age(self, seed: int) -> dict[str, set[Key]]:
        """Age every project by a round; the keys of the leads each change touched."""
        changed: dict[str, set[Key]] = {"recent": set(), "old": set(), "deleted": set()}
        for name, project in self.projects.items():
            aged = age(project, AGING, seed=seed)
            for change, ids in (
                ("recent", aged.rated_recent),
                ("old", aged.rated_old),
                ("deleted", aged.deleted),
            ):
                changed[change] |= {self.key(name, i) for i in ids}
        return changed


def loaded(warehouse: Warehouse, several: bool) -> dict[Key, tuple[t.Any, ...]]:
    """Each row's status, price and whether it is flagged, by key."""
    key = "project, id" if several else "id"
    rows = warehouse.query(
        f"select {key}, status, price, _sdc_deleted_at is not null from {warehouse.raw}.leads"
    )
    return {
        tuple(row[:-3]): (row[-3], None if row[-2] is None else int(row[-2]), row[-1])
        for row in rows
    }


def values(lead: dict[str, t.Any]) -> tuple[t.Any, ...]:
    return (lead["status"], lead["price"], False)


def daily_bookmarks(warehouse: Warehouse, meltano: Meltano) -> list[t.Any]:
    leads = warehouse.state(meltano, "tap-leadtrackr")["bookmarks"]["leads"]
    return [p.get("replication_key_value") for p in [leads, *leads.get("partitions", [])]]


@pytest.mark.parametrize(
    ("kind", "several"),
    # Each warehouse once, each with one of the two ways to name projects; DuckDB with
    # one project is the demo's path (tests/e2e/test_demo.py runs its reconcile).
    [("duckdb", True), ("postgres", False)],
    ids=["duckdb-projects", "postgres-one project"],
)
def test_ratings_and_deletions_reach_the_warehouse_and_the_marts_count_live_leads(
    meltano: Meltano, request: pytest.FixtureRequest, kind: str, several: bool
) -> None:
    warehouse: Warehouse = request.getfixturevalue(f"{kind}_warehouse")
    source = Source(several)
    with source.sandbox:
        env = {**warehouse.env, **source.env()}

        def run(tasks: tuple[str, ...], *, check: bool = True) -> t.Any:
            # At `info`, Meltano shows the tap's log, where a failure is explained.
            return meltano("run", *tasks, env={**env, "MELTANO_CLI_LOG_LEVEL": "info"}, check=check)

        # 1. Every lead (the models are built at steps 2 and 4).
        run(warehouse.load)
        assert loaded(warehouse, several) == {k: values(v) for k, v in source.leads().items()}

        # 2. Weeks later, the daily run: new leads and recent ratings, nothing older.
        first = source.age(seed=1)
        originals = loaded(warehouse, several)
        run(warehouse.daily)
        after_daily = loaded(warehouse, several)
        leads = source.leads()
        assert set(after_daily) == set(originals) | set(leads)
        for key in first["recent"]:
            assert after_daily[key] == values(leads[key])
        for key in first["old"] | first["deleted"]:
            assert after_daily[key] == originals[key]
        bookmarks = daily_bookmarks(warehouse, meltano)

        # 3. One project refused: the reconcile fails and flags nothing, in any project.
        second = source.age(seed=2)
        if several:
            source.projects["globex"].active = False
            failed = run(warehouse.reconcile, check=False)
            log = failed.stdout + failed.stderr
            assert failed.returncode != 0
            assert "`globex`" in log, log[-3000:]
            assert not any(flagged for *_, flagged in loaded(warehouse, several).values())
            source.projects["globex"].active = True

        # 4. The reconcile: every rating, every deletion flagged; the rows stay.
        run(warehouse.reconcile)
        deleted = first["deleted"] | second["deleted"]
        assert_warehouse_follows(warehouse, source, deleted)
        # The daily job's bookmark did not move; the reconcile kept its own state.
        assert daily_bookmarks(warehouse, meltano) == bookmarks
        state_ids = meltano("state", "list").stdout.split()
        assert f"dev:tap-leadtrackr--reconcile-to-target-{warehouse.kind}" in state_ids

        # 5. The next daily run: the leads created meanwhile, from the same bookmark.
        created = {
            source.key(name, lead["id"])
            for name, project in source.projects.items()
            for lead in project.add_leads(7)
        }
        run(warehouse.load)
        final = loaded(warehouse, several)
        assert created <= {k for k, v in final.items() if not v[2]}
        assert {k for k, (*_, flagged) in final.items() if flagged} == deleted
        assert all(
            after > before
            for before, after in zip(bookmarks, daily_bookmarks(warehouse, meltano), strict=True)
            if before is not None
        )


def test_a_reconcile_of_projects_in_postgres_flags_their_deletions_and_the_marts_count_live_leads(
    meltano: Meltano, postgres_warehouse: Warehouse
) -> None:
    # The scenario's step 4 for the combination it leaves out, after one load.
    source = Source(several=True)
    with source.sandbox:
        env = {**postgres_warehouse.env, **source.env()}
        meltano("run", *postgres_warehouse.load, env=env)
        deleted = source.age(seed=3)["deleted"]
        meltano("run", *postgres_warehouse.reconcile, env=env)
    assert {key[0] for key in deleted} == set(PROJECT_NAMES)
    assert_warehouse_follows(postgres_warehouse, source, deleted)


def assert_warehouse_follows(warehouse: Warehouse, source: Source, deleted: set[Key]) -> None:
    """After a reconcile: every live lead as LeadTrackr has it, exactly `deleted` flagged with
    their touchpoints (the rows stay), and the models and the report count the live leads."""
    several, leads = source.several, source.leads()
    after_reconcile = loaded(warehouse, several)
    assert {k for k, (*_, flagged) in after_reconcile.items() if flagged} == deleted
    assert {k: v for k, v in after_reconcile.items() if not v[2]} == {
        k: values(v) for k, v in leads.items()
    }
    assert_touchpoints_of_deleted_leads_flagged(warehouse, source, deleted, several)
    assert_marts_count_live_leads(warehouse, source, several)
    report = read_warehouse(
        warehouse.location, schema=warehouse.raw, models_schema=warehouse.models
    )
    assert (report.leads, report.deleted) == (len(leads), len(deleted))


def assert_touchpoints_of_deleted_leads_flagged(
    warehouse: Warehouse, source: Source, deleted: set[Key], several: bool
) -> None:
    key = "project, lead_id" if several else "lead_id"
    rows = warehouse.query(
        f"select {key}, _sdc_deleted_at is not null from {warehouse.raw}.lead_touchpoints"
    )
    flagged = {tuple(row[:-1]) for row in rows if row[-1]}
    live = {tuple(row[:-1]) for row in rows if not row[-1]}
    with_journeys = {
        key for key, lead in source.leads().items() if reference.expected_touchpoints(lead)
    }
    assert flagged  # some deleted leads had a journey
    assert flagged <= deleted
    assert live == with_journeys


def assert_marts_count_live_leads(warehouse: Warehouse, source: Source, several: bool) -> None:
    for name, project in source.projects.items():
        where = f"where project = '{name}'" if several else ""
        journeys = warehouse.query(
            f"select {JOURNEY_COLUMNS} from {warehouse.models}.lead_journeys {where}"
        )
        performance = warehouse.query(
            f"select {PERFORMANCE_COLUMNS} from {warehouse.models}.channel_performance {where}"
        )
        assert_models_match(project.leads, journeys, performance)
