"""Sandbox -> `meltano run leads-to-warehouse` -> DuckDB: touchpoints land next to the leads.

meltano.yml selects `lead_touchpoints` for the job; nothing here selects it again.
"""

from __future__ import annotations

import typing as t
from collections import Counter
from pathlib import Path

from scripts.warehouse_report import format_report, read_warehouse
from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tests import touchpoint_reference as reference
from tests.e2e.conftest import Meltano, lead_requests, query_duckdb, sandbox_env

LEADS = 600

TOUCHPOINT_ROWS = """
    select lead_id, position, strftime(occurred_at, '%Y-%m-%dT%H:%M:%S.%gZ'), source, medium,
        campaign, content, term, landing_page, is_first_touch, is_last_touch
    from leadtrackr.lead_touchpoints
"""
COLUMNS = (
    "lead_id",
    "position",
    "occurred_at",
    "source",
    "medium",
    "campaign",
    "content",
    "term",
    "landing_page",
    "is_first_touch",
    "is_last_touch",
)
"""The record fields `TOUCHPOINT_ROWS` selects, in its order."""


def expected_touchpoints(leads: list[dict[str, t.Any]]) -> set[tuple[t.Any, ...]]:
    """The rows the warehouse must hold: each lead's sessions, read without the tap's parser."""
    return {
        tuple(record[column] for column in COLUMNS)
        for lead in leads
        for record in reference.expected_touchpoints(lead)
    }


def sessions_per_lead(leads: list[dict[str, t.Any]]) -> Counter[int]:
    counts: Counter[int] = Counter()
    for lead in leads:
        if records := reference.expected_touchpoints(lead):
            counts[lead["id"]] = len(records)
    return counts


def test_touchpoints_reach_duckdb_through_meltano_next_to_the_leads(
    meltano: Meltano, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with Sandbox(Project(generate_leads(LEADS, seed=41))) as sandbox:
        env = sandbox_env(sandbox, TARGET_DUCKDB_FILEPATH=warehouse)
        meltano("run", "leads-to-warehouse", env=env)
        first_requests = len(lead_requests(sandbox))
        leads = sandbox.project.leads

        # Touchpoints come from the leads' own pages: no request more than the leads cost
        # (a page each, and one more every 99 leads: the lead at each page's start).
        assert first_requests == -(-LEADS // 99)
        counts = dict(
            query_duckdb(
                warehouse,
                "select lead_id, count(*) from leadtrackr.lead_touchpoints group by lead_id",
            )
        )
        assert counts == sessions_per_lead(leads)
        # The sandbox serves every form of channel flow, including ones without sessions.
        assert 0 < len(counts) < LEADS
        assert set(query_duckdb(warehouse, TOUCHPOINT_ROWS)) == expected_touchpoints(leads)
        orphans = query_duckdb(
            warehouse,
            "select count(*) from leadtrackr.lead_touchpoints t "
            "left join leadtrackr.leads l on l.id = t.lead_id where l.id is null",
        )
        assert orphans == [(0,)]

        # The next run brings the new leads' touchpoints; the leads at the bookmark come
        # again, and their touchpoints are upserted on (lead_id, position), not doubled.
        added = sandbox.project.add_leads(60)
        meltano("run", "tap-leadtrackr", "target-duckdb", env=env)  # the job's load alone
        leads = sandbox.project.leads

    assert sessions_per_lead(added), "no new lead has a journey: nothing new was checked"
    keys = query_duckdb(
        warehouse,
        "select count(*), count(distinct (lead_id, position)) from leadtrackr.lead_touchpoints",
    )
    total = sum(sessions_per_lead(leads).values())
    assert keys == [(total, total)]
    assert set(query_duckdb(warehouse, TOUCHPOINT_ROWS)) == expected_touchpoints(leads)
    assert query_duckdb(warehouse, "select count(*), count(distinct id) from leadtrackr.leads") == [
        (LEADS + len(added), LEADS + len(added))
    ]

    # `make demo`'s report counts them.
    report = format_report(read_warehouse(warehouse))
    assert f"sessions{total:>21,}" in report
    journeys = len(sessions_per_lead(leads))
    assert f"leads with a journey{journeys:>9,}" in report
