"""`make demo`'s script: a first run loads the sandbox, the next one only its new leads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ROOT, Meltano, query_duckdb

LEADS = 600


def run_demo(meltano: Meltano, output: Path, *options: str) -> str:
    """Run `make demo`'s script with these options into `output`; return what it printed."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo.py"),
            *options,
            *("--output", str(output), "--env-file", str(meltano.env_file)),
        ],
        env=meltano.base_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_demo_loads_the_sandbox_and_then_only_what_is_new(meltano: Meltano, tmp_path: Path) -> None:
    output = tmp_path / "output"

    def demo() -> str:
        return run_demo(meltano, output, "--leads", str(LEADS))

    first = demo()
    assert "environment `dev`" in first
    assert f"First sync: {LEADS} leads loaded." in first
    assert "Google (gclid)" in first
    # The job ends with the dbt models built and tested; the report reads them.
    assert "dbt build  PASS=" in first
    assert "WARN=0 ERROR=0 SKIP=0" in first
    assert "top channels by first touch (analytics.channel_performance)" in first
    assert "top channels by last touch (analytics.channel_performance)" in first
    # The terminal report names the page of charts (tests/e2e/test_html_report.py opens one).
    assert f"HTML report: {output / 'report.html'}" in first
    assert "<canvas" in (output / "report.html").read_text(encoding="utf-8")

    second = demo()
    assert "25 of them new since the last run" in second
    assert f"warehouse  {LEADS} -> {LEADS + 25} leads" in second
    assert "only what is new was loaded, 25 leads" in second
    rows = query_duckdb(
        output / "sandbox.duckdb", "select count(*), count(distinct id) from leadtrackr.leads"
    )
    assert rows == [(LEADS + 25, LEADS + 25)]
    # The models were rebuilt with the new leads.
    journeys = query_duckdb(
        output / "sandbox.duckdb", "select count(*) from analytics.lead_journeys"
    )
    assert journeys == [(LEADS + 25,)]


def test_demo_of_three_projects_loads_them_side_by_side_and_reports_each(
    meltano: Meltano, tmp_path: Path
) -> None:
    output = tmp_path / "output"

    def demo() -> str:
        return run_demo(meltano, output, "--projects", "3", "--leads", "200")

    first = demo()
    assert "environment `agency`" in first
    assert "3 projects (acme, globex, initech)" in first
    assert "First sync: 600 leads loaded." in first
    for name in ("acme", "globex", "initech"):
        assert f"    {name:<22}    200   33.3%" in first
    assert f"HTML report: {output / 'agency-report.html'}" in first

    second = demo()
    assert "75 of them new since the last run" in second
    assert "warehouse  600 -> 675 leads" in second
    assert "only what is new was loaded, 75 leads" in second
    rows = query_duckdb(
        output / "agency.duckdb",
        "select count(*), count(distinct (project, id)), count(distinct id) from leadtrackr.leads",
    )
    assert rows == [(675, 675, 225)]
    # The models carry each lead's project, and count every (project, lead) once.
    journeys = query_duckdb(
        output / "agency.duckdb",
        "select count(*), count(distinct project) from analytics.lead_journeys",
    )
    assert journeys == [(675, 3)]
