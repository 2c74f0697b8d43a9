"""Sandbox -> `meltano run tap-leadtrackr target-postgres` -> a real PostgreSQL server
(the `postgres_url` fixture of tests/e2e/conftest.py)."""

from __future__ import annotations

import typing as t
from collections import Counter
from pathlib import Path

import psycopg

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tests.e2e.agency import run_agency_scenario
from tests.e2e.conftest import Meltano, sandbox_env

LEADS = 1200


def sqlalchemy_url(url: str) -> str:
    """The libpq URL with the psycopg 3 driver the loader uses."""
    scheme, separator, rest = url.partition("://")
    assert separator, url
    assert scheme in ("postgresql", "postgres"), url
    return f"postgresql+psycopg://{rest}"


def query(url: str, statement: str, *params: t.Any) -> list[tuple[t.Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(statement, params).fetchall()  # type: ignore[arg-type]


def test_postgres_holds_each_lead_once_and_updates_changed_leads_in_place(
    meltano: Meltano, postgres_url: str, schema: str, tmp_path: Path
) -> None:
    leads_table = f'"{schema}".leads'
    with Sandbox(Project(generate_leads(LEADS, seed=21))) as sandbox:
        env = sandbox_env(
            sandbox,
            TARGET_POSTGRES_SQLALCHEMY_URL=sqlalchemy_url(postgres_url),
            TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=schema,
        )
        meltano("run", "tap-leadtrackr", "target-postgres", env=env)

        leads = sandbox.project.leads
        ids = [row[0] for row in query(postgres_url, f"select id from {leads_table} order by id")]
        assert ids == sorted(lead["id"] for lead in leads)
        # The loader keeps LeadTrackr's field names; nested objects are jsonb.
        gclids = dict(
            query(
                postgres_url,
                f"""select id, "attributionData"->>'gclid' from {leads_table}
                where coalesce("attributionData"->>'gclid', '') <> ''""",
            )
        )
        assert gclids == {
            lead["id"]: lead["attributionData"]["gclid"]
            for lead in leads
            if (lead["attributionData"] or {}).get("gclid")
        }

        # Rating a lead changes its status and price, never its createdAt. A lookback
        # window reads recent leads again, so the change lands in place, with the new leads.
        rated = max(
            (
                lead
                for lead in leads
                if lead["createdAt"] < max(lead["createdAt"] for lead in leads)
            ),
            key=lambda lead: lead["createdAt"],
        )
        sandbox.project.update_lead(rated["id"], status="Offerte", price=99_900)
        added = sandbox.project.add_leads(30)
        env["TAP_LEADTRACKR_LOOKBACK_WINDOW_DAYS"] = "30"
        meltano("run", "tap-leadtrackr", "target-postgres", env=env)

    total = LEADS + len(added)
    counts = query(postgres_url, f"select count(*), count(distinct id) from {leads_table}")
    assert counts == [(total, total)]
    newest = query(postgres_url, f"select id from {leads_table} order by id desc limit 30")
    assert sorted(row[0] for row in newest) == [lead["id"] for lead in added]
    rated_row = query(
        postgres_url, f"select status, price from {leads_table} where id = %s", rated["id"]
    )
    assert rated_row == [("Offerte", 99_900)]


def test_three_projects_land_side_by_side_and_a_lapsed_one_fails_the_run_alone(
    meltano: Meltano, postgres_url: str, schema: str
) -> None:
    leads_table = f'"{schema}".leads'

    def rows() -> Counter[str]:
        return Counter(
            dict(query(postgres_url, f"select project, count(*) from {leads_table} group by 1"))
        )

    def distinct_ids() -> int:
        return query(postgres_url, f"select count(distinct id) from {leads_table}")[0][0]

    env = {
        "TARGET_POSTGRES_SQLALCHEMY_URL": sqlalchemy_url(postgres_url),
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }
    run_agency_scenario(meltano, env, rows, distinct_ids, "tap-leadtrackr", "target-postgres")
