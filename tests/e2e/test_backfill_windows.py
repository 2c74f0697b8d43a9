"""Parallel backfills: monthly windows, run at once, land every lead exactly once.

`orchestrate/backfill.py` runs one `meltano run --state-id-suffix=<window>` per month, four
at a time, against a sandbox project whose leads sit on and around the window edges: a
lead created exactly at midnight on the 1st belongs to the new month (`start_date` is
inclusive), one created 1 ms earlier to the old one (`end_date` is exclusive).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import typing as t
import uuid
from datetime import date, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import duckdb
import psycopg
import pytest
from psycopg import sql

from tap_leadtrackr.channel_flow import parse_channel_flow
from tap_leadtrackr.sandbox import Project, Sandbox
from tap_leadtrackr.timestamps import ONE_MILLISECOND, format_timestamp, parse_timestamp
from tests.e2e.conftest import (
    EDGE_OFFSETS,
    MAIN_JOB_LOOKBACK,
    ROOT,
    Meltano,
    created_in,
    lead_requests,
    leads_around_edges,
    sandbox_env,
)
from tests.e2e.test_meltano_postgres import sqlalchemy_url

BACKFILL = ROOT / "orchestrate" / "backfill.py"
EDGES = [datetime(2026, month, 1, tzinfo=timezone.utc) for month in (1, 2, 3, 4, 5)]
"""The edges of four monthly windows, January to April 2026."""
WINDOWS = {f"{start:%Y-%m-%d}_{end:%Y-%m-%d}": (start, end) for start, end in pairwise(EDGES)}
"""Each window by its state id suffix."""


def backfill_project() -> Project:
    """400 leads over the four months, and four on or around every edge."""
    return Project(leads_around_edges(EDGES, regular=400, seed=61))


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


def leads_at(leads: list[dict[str, t.Any]], instant: datetime) -> list[int]:
    return [lead["id"] for lead in leads if lead["createdAt"] == format_timestamp(instant)]


def test_monthly_windows_run_at_once_into_duckdb_files_hold_every_lead_once(
    meltano: Meltano, tmp_path: Path
) -> None:
    files = tmp_path / "backfill"
    with Sandbox(backfill_project()) as sandbox:
        leads = sandbox.project.leads
        report = backfill(meltano, sandbox, "--duckdb-dir", str(files))
        assert all(f"{window}  ok" in report for window in WINDOWS), report

        # One state id per window, each with the window's newest lead as its bookmark.
        state_ids = {window: f"dev:tap-leadtrackr-to-target-duckdb:{window}" for window in WINDOWS}
        assert sorted(meltano("state", "list").stdout.split()) == sorted(state_ids.values())
        bookmarks = {}
        for window, (_, end) in WINDOWS.items():
            state = meltano.state(state_ids[window])
            bookmarks[window] = state["bookmarks"]["leads"]["replication_key_value"]
            # The newest lead of a window is the one 1 ms before the next window.
            assert bookmarks[window] == format_timestamp(end - ONE_MILLISECOND)

        # Again, all at once: each window resumes from its own bookmark, not another's,
        # moved back the main job's lookback window but not before the window's start.
        sandbox.clear_requests()
        backfill(meltano, sandbox, "--duckdb-dir", str(files))
        first_request = {}
        for request in lead_requests(sandbox):
            first_request.setdefault(request.params["createdAt[lte]"], request.params)
        for window, (start, end) in WINDOWS.items():
            params = first_request[format_timestamp(end - ONE_MILLISECOND)]
            resumed = max(parse_timestamp(bookmarks[window]) - MAIN_JOB_LOOKBACK, start)
            assert params["createdAt[gte]"] == format_timestamp(resumed)

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
    # Each file holds exactly its window's leads, once, and their touchpoints.
    for window, (start, end) in WINDOWS.items():
        assert sorted(loaded[window]) == sorted(created_in(leads, start, end)), window
        assert touched[window] == with_journey(leads, created_in(leads, start, end)), window
    # Together, every lead of the four months once.
    everything = [lead_id for ids in loaded.values() for lead_id in ids]
    assert len(everything) == len(set(everything))
    assert set(everything) == created_in(leads, EDGES[0], EDGES[-1])

    # The edges, spelled out: a lead on an edge or 1 ms after it is the later window's,
    # one 1 ms before it the earlier window's; before January or from May 1 on, no window's.
    home = {lead_id: window for window, ids in loaded.items() for lead_id in ids}
    names = list(WINDOWS)
    for k, edge in enumerate(EDGES):
        before = names[k - 1] if k > 0 else None
        after = names[k] if k < len(names) else None
        assert len(leads_at(leads, edge)) == 2
        for offset in EDGE_OFFSETS:
            expected = before if offset < timedelta(0) else after
            at = leads_at(leads, edge + offset)
            assert {home.get(lead_id) for lead_id in at} == {expected}, edge + offset


def test_monthly_windows_run_at_once_into_one_postgres_schema_hold_every_lead_once(
    meltano: Meltano,
    postgres_url: str,
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
            f"dev:tap-leadtrackr-to-target-postgres:{window}" for window in WINDOWS
        )
        with psycopg.connect(postgres_url) as connection:
            ids = [row[0] for row in connection.execute(f'select id from "{schema}".leads')]
            touchpoints = connection.execute(
                "select count(*), count(distinct (lead_id, position)) "
                f'from "{schema}".lead_touchpoints'
            ).fetchone()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema))
            )

    expected = created_in(leads, EDGES[0], EDGES[-1])
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


def test_monthly_windows_cover_the_months_back_to_back_across_a_new_year(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = importlib.util.spec_from_file_location("backfill", BACKFILL)
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "backfill", script)
    spec.loader.exec_module(script)
    windows = script.monthly_windows(date(2025, 11, 1), date(2026, 2, 1))
    assert [window.state_id_suffix for window in windows] == [
        "2025-11-01_2025-12-01",
        "2025-12-01_2026-01-01",
        "2026-01-01_2026-02-01",
        "2026-02-01_2026-03-01",
    ]
    assert all(a.end == b.start for a, b in pairwise(windows))
