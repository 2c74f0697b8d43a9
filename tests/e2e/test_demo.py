"""`make demo`'s script: a first run loads the sandbox; later ones follow it as it ages.

Between two runs the sandbox project ages by a round (`age`, seeded by the round): the
daily job brings the new leads and the recent ratings, `--reconcile` the rest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tap_leadtrackr.sandbox import Project, age, generate_leads
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


def test_demo_loads_the_sandbox_then_follows_it_daily_and_with_a_reconcile(
    meltano: Meltano, tmp_path: Path
) -> None:
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

    # The demo's sandbox, aged here as the demo ages it.
    project = Project(generate_leads(LEADS, seed=1))
    first_round = age(project, seed=1)
    second = demo()
    rated = len(first_round.rated)
    assert f"since the last run 25 new, {rated} rated" in second
    assert f"warehouse  {LEADS} -> {LEADS + 25} leads" in second
    recent, old = len(first_round.rated_recent), len(first_round.rated_old)
    assert f"the lookback window read again: 25 new, {recent} updated, 0 deleted." in second
    assert (
        f"Not in the warehouse yet: {old} ratings older than the lookback window, 5 deleted"
        in second
    )
    rows = query_duckdb(
        output / "sandbox.duckdb", "select count(*), count(distinct id) from leadtrackr.leads"
    )
    assert rows == [(LEADS + 25, LEADS + 25)]

    second_round = age(project, seed=2)
    third = run_demo(meltano, output, "--leads", str(LEADS), "--reconcile")
    assert "Meltano job `reconcile-leads-to-warehouse`" in third
    updated = set(first_round.rated_old) | set(second_round.rated)
    live = len(project)
    assert (
        f"Reconcile: every lead read again; 25 new, {len(updated - set(second_round.deleted))} "
        "updated, 10 deleted." in third
    )
    assert f"The warehouse equals LeadTrackr: {live:,} leads" in third
    assert f"leads in the warehouse   {live:,}" in third
    assert "deleted in LeadTrackr    10 (flagged in leadtrackr.leads" in third
    # The deleted leads stay, flagged; the models were rebuilt without them.
    flagged = query_duckdb(
        output / "sandbox.duckdb",
        "select count(*) filter (where _sdc_deleted_at is not null), count(*) "
        "from leadtrackr.leads",
    )
    assert flagged == [(10, live + 10)]
    journeys = query_duckdb(
        output / "sandbox.duckdb", "select count(*) from analytics.lead_journeys"
    )
    assert journeys == [(live,)]


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

    projects = [Project(generate_leads(200, seed=seed)) for seed in (1, 2, 3)]
    recent = sum(len(age(each, seed=1).rated_recent) for each in projects)
    second = demo()
    assert "since the last run 75 new" in second
    assert "warehouse  600 -> 675 leads" in second
    assert f"the lookback window read again: 75 new, {recent} updated, 0 deleted." in second
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
