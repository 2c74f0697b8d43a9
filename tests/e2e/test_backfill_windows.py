"""Parallel backfills: monthly windows, run at once, land every lead exactly once.

`orchestrate/backfill.py` runs one `meltano run --state-id-suffix=<window>` per month, four
at a time, against a sandbox project whose leads sit on and around the window edges: a
lead created exactly at midnight on the 1st belongs to the new month (`start_date` is
inclusive), one created 1 ms earlier to the old one (`end_date` is exclusive).
"""

from __future__ import annotations

import subprocess
import sys
import typing as t
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import psycopg
import pytest
from psycopg import sql

from tap_leadtrackr.channel_flow import parse_channel_flow
from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.timestamps import ONE_MILLISECOND, format_timestamp
from tests.e2e.conftest import ROOT, Meltano, lead_requests, sandbox_env
from tests.e2e.test_meltano_postgres import postgres_url, sqlalchemy_url  # noqa: F401

BACKFILL = ROOT / "orchestrate" / "backfill.py"
BOUNDARIES = [datetime(2026, month, 1, tzinfo=timezone.utc) for month in (1, 2, 3, 4, 5)]
"""The edges of four monthly windows, January to April 2026."""
WINDOWS = [f"{start:%Y-%m-%d}_{end:%Y-%m-%d}" for start, end in zip(BOUNDARIES, BOUNDARIES[1:])]
REGULAR_LEADS = 400


def edge_instants() -> list[datetime]:
    """Leads on and around every edge: two exactly on it (one instant), 1 ms before, 1 ms after.

    The outer edges count too: 1 ms before January and exactly at May 1 fall in no window.
    """
    instants = []
    for boundary in BOUNDARIES:
        instants += [boundary, boundary, boundary - ONE_MILLISECOND, boundary + ONE_MILLISECOND]
    return instants


def backfill_project() -> Project:
    """Leads spread over the four months plus the edge leads, ids in creation order."""
    span = BOUNDARIES[-1] - BOUNDARIES[0]
    instants = [BOUNDARIES[0] + span * (i + 0.5) / REGULAR_LEADS for i in range(REGULAR_LEADS)]
    instants = sorted(instants + edge_instants())
    leads = generate_leads(len(instants), seed=61)
    for lead, instant in zip(leads, instants):
        lead["createdAt"] = format_timestamp(instant)
    return Project(leads)


def window_of(lead: dict[str, t.Any]) -> str | None:
    """The window a lead belongs to, or None outside all four."""
    for window, start, end in zip(WINDOWS, BOUNDARIES, BOUNDARIES[1:]):
        if format_timestamp(start) <= lead["createdAt"] < format_timestamp(end):
            return window
    return None


def expected_ids(leads: list[dict[str, t.Any]]) -> dict[str, set[int]]:
    ids = defaultdict(set)
    for lead in leads:
        if (window := window_of(lead)) is not None:
            ids[window].add(lead["id"])
    return dict(ids)


def with_journey(leads: list[dict[str, t.Any]], ids: set[int]) -> set[int]:
    return {
        lead["id"]
        for lead in leads
        if lead["id"] in ids and parse_channel_flow(lead["channelFlow"])
    }


def backfill(meltano: Meltano, sandbox: Sandbox, *args: str, **env: str | Path) -> str:
    """Run `orchestrate/backfill.py` for January to April 2026, four windows at once."""
    command = [sys.executable, str(BACKFILL), "2026-01", "2026-04", "--jobs", "4"]
    command += ["--environment", "dev", "--env-file", str(meltano.env_file), *args]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={**meltano.base_env, **sandbox_env(sandbox, **env)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def edge_leads(leads: list[dict[str, t.Any]]) -> dict[str, list[int]]:
    """The ids of the leads created at each edge instant, by instant."""
    instants = {format_timestamp(instant) for instant in edge_instants()}
    by_instant = defaultdict(list)
    for lead in leads:
        if lead["createdAt"] in instants:
            by_instant[lead["createdAt"]].append(lead["id"])
    return by_instant


def test_monthly_windows_run_at_once_into_duckdb_files_hold_every_lead_once(
    meltano: Meltano, tmp_path: Path
) -> None:
    files = tmp_path / "backfill"
    state_ids = [f"dev:tap-leadtrackr-to-target-duckdb:{window}" for window in WINDOWS]
    with Sandbox(backfill_project()) as sandbox:
        leads = sandbox.project.leads
        report = backfill(meltano, sandbox, "--duckdb-dir", str(files))
        assert all(f"{window}  ok" in report for window in WINDOWS), report

        # One state id per window, each with the window's newest lead as its bookmark.
        listed = meltano("state", "list").stdout.split()
        assert sorted(listed) == sorted(state_ids)
        bookmarks = {}
        for window, state_id in zip(WINDOWS, state_ids):
            bookmarks[window] = meltano.state(state_id)["bookmarks"]["leads"][
                "replication_key_value"
            ]
            in_window = [lead["createdAt"] for lead in leads if window_of(lead) == window]
            assert bookmarks[window] == max(in_window)
        # January's newest lead is the one 1 ms before February.
        assert bookmarks[WINDOWS[0]] == "2026-01-31T23:59:59.999Z"

        # Again, all at once: each window resumes from its own bookmark, not another's.
        sandbox.clear_requests()
        backfill(meltano, sandbox, "--duckdb-dir", str(files))
        first_request = {}
        for request in lead_requests(sandbox):
            first_request.setdefault(request.params["createdAt[lte]"], request.params)
        for window, end in zip(WINDOWS, BOUNDARIES[1:]):
            params = first_request[format_timestamp(end - ONE_MILLISECOND)]
            assert params["createdAt[gte]"] == bookmarks[window]

    expected = expected_ids(leads)
    loaded: dict[str, list[int]] = {}
    touched: dict[str, set[int]] = {}
    for window in WINDOWS:
        # Read-only: the loader pins an older duckdb, which must be able to open them again.
        with duckdb.connect(str(files / f"{window}.duckdb"), read_only=True) as db:
            loaded[window] = [
                row[0] for row in db.sql("select id from leadtrackr.leads").fetchall()
            ]
            touched[window] = {
                row[0]
                for row in db.sql("select lead_id from leadtrackr.lead_touchpoints").fetchall()
            }
    # Each file holds exactly its window's leads, once; together, every lead once.
    for window in WINDOWS:
        assert sorted(loaded[window]) == sorted(expected[window]), window
        assert touched[window] == with_journey(leads, expected[window]), window
    everything = [lead_id for ids in loaded.values() for lead_id in ids]
    assert len(everything) == len(set(everything)) == sum(map(len, expected.values()))

    # The edges, spelled out: on the boundary -> the later window, 1 ms before -> the earlier.
    edges = edge_leads(leads)
    for earlier, later, boundary in zip(WINDOWS, WINDOWS[1:], BOUNDARIES[1:-1]):
        on_it = edges[format_timestamp(boundary)]
        assert len(on_it) == 2
        assert set(on_it) <= set(loaded[later])
        assert set(edges[format_timestamp(boundary - ONE_MILLISECOND)]) <= set(loaded[earlier])
    outside = edges[format_timestamp(BOUNDARIES[0] - ONE_MILLISECOND)]
    outside += edges[format_timestamp(BOUNDARIES[-1])]
    assert len(outside) == 3
    assert not set(outside) & set(everything)


def test_monthly_windows_run_at_once_into_one_postgres_schema_hold_every_lead_once(
    meltano: Meltano,
    postgres_url: str,  # noqa: F811
) -> None:
    schema = f"leadtrackr_backfill_{uuid.uuid4().hex[:8]}"
    try:
        with Sandbox(backfill_project()) as sandbox:
            leads = sandbox.project.leads
            backfill(
                meltano,
                sandbox,
                "--loader",
                "target-postgres",
                TARGET_POSTGRES_SQLALCHEMY_URL=sqlalchemy_url(postgres_url),
                TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=schema,
            )
        listed = meltano("state", "list").stdout.split()
        assert sorted(listed) == sorted(
            f"dev:tap-leadtrackr-to-target-postgres:{w}" for w in WINDOWS
        )
        with psycopg.connect(postgres_url) as connection:
            ids = [row[0] for row in connection.execute(f'select id from "{schema}".leads')]
            touchpoints = connection.execute(
                f'select count(*), count(distinct (lead_id, position)) from "{schema}".lead_touchpoints'
            ).fetchone()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema))
            )

    expected = set().union(*expected_ids(leads).values())
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    sessions = sum(
        len(parse_channel_flow(lead["channelFlow"]) or [])
        for lead in leads
        if lead["id"] in expected
    )
    assert touchpoints == (sessions, sessions)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["2026-01", "2026-04", "--jobs", "4"], "DuckDB takes one writer per file"),
        (["2026-04", "2026-01"], "the last month is before the first"),
    ],
)
def test_backfill_refuses_what_cannot_work(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BACKFILL), *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_monthly_windows_cover_the_months_back_to_back() -> None:
    sys.path.insert(0, str(BACKFILL.parent))
    try:
        from backfill import monthly_windows  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(BACKFILL.parent))
    windows = monthly_windows(
        BOUNDARIES[0].date().replace(year=2025, month=11), BOUNDARIES[1].date()
    )
    assert [w.state_id_suffix for w in windows] == [
        "2025-11-01_2025-12-01",
        "2025-12-01_2026-01-01",
        "2026-01-01_2026-02-01",
        "2026-02-01_2026-03-01",
    ]
    assert all(a.end == b.start for a, b in zip(windows, windows[1:]))
    assert windows[-1].end - windows[0].start == timedelta(days=30 + 31 + 31 + 28)
