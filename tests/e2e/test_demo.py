"""`make demo`'s script: a first run loads the sandbox; later ones follow it as it ages.

Between two runs the sandbox project ages by a round (`age`, seeded by the round): the
daily job brings the new leads and the recent ratings, `--reconcile` the rest. The demo
keeps apart from what the Meltano commands of the docs use, and its hints are the
commands to run.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tap_leadtrackr.sandbox import Project, age, generate_leads
from tests.e2e.conftest import ROOT, STATE_ID, Meltano, query_duckdb

LEADS = 600
JOB = "leads-to-warehouse"


def run_demo(meltano: Meltano, output: Path, *options: str) -> str:
    """Run `make demo`'s script with these options into `output`; return what it printed."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo.py"),
            *options,
            *("--output", str(output), "--report-dir", str(output)),
            *("--env-file", str(meltano.env_file)),
        ],
        env=meltano.base_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def demo_script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """scripts/demo.py as a module (it imports its neighbour, warehouse_report)."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    return importlib.import_module("demo")


def test_demo_loads_the_sandbox_then_follows_it_daily_and_with_a_reconcile(
    meltano: Meltano, tmp_path: Path
) -> None:
    output = tmp_path / "output"

    def demo() -> str:
        return run_demo(meltano, output, "--leads", str(LEADS))

    first = demo()
    assert "environment `dev`" in first
    assert f"$ meltano --environment dev run --state-id-suffix=demo --full-refresh {JOB}" in first
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
    # Its bookmarks are its own: `meltano run leads-to-warehouse` by hand starts from nothing.
    states = meltano("state", "list").stdout.split()
    assert f"{STATE_ID}:demo" in states
    assert all(state.endswith(":demo") for state in states), states
    assert f"Meltano state `{STATE_ID}:demo`" in second


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
    # Its hints run the same three projects again.
    assert 'Run `make demo ARGS="--projects 3"` again' in second
    assert '`make demo ARGS="--projects 3 --reconcile"` runs the weekly reconcile' in second
    assert '`make demo ARGS="--projects 3 --full-refresh"` reads every lead again' in second
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


def test_the_demo_writes_no_warehouse_of_a_meltano_environment(demo_script: ModuleType) -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    # The plugins' own config and each environment's: every DuckDB file Meltano may write.
    plugins = [project["plugins"], *(env["config"]["plugins"] for env in project["environments"])]
    warehouses = {
        Path(plugin["config"][setting].replace("${MELTANO_PROJECT_ROOT}", str(ROOT)))
        for each in plugins
        for kind, setting in (("loaders", "filepath"), ("utilities", "path"))
        for plugin in each.get(kind, [])
        if setting in plugin.get("config", {})
    }

    assert len(warehouses) >= 3
    assert not any(path.is_relative_to(demo_script.OUTPUT) for path in warehouses)


def test_a_failed_run_names_the_command_the_demo_showed(
    demo_script: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    failing = tmp_path / "meltano"
    failing.write_text("#!/bin/sh\necho 'Extractor failed' >&2\nexit 2\n", encoding="utf-8")
    failing.chmod(0o755)
    monkeypatch.setattr(demo_script, "MELTANO", failing)
    demo = demo_script.Demo(
        "dev", tmp_path / "sandbox.duckdb", tmp_path / "report.html", env=dict(os.environ)
    )

    with pytest.raises(SystemExit) as exited:
        demo_script.sync(demo, job=JOB, full_refresh=True, mark_before=None)

    shown = re.findall(r"^\$ (.+)$", capsys.readouterr().out, flags=re.MULTILINE)
    assert shown == [f"meltano --environment dev run --state-id-suffix=demo --full-refresh {JOB}"]
    assert str(exited.value) == f"`{shown[0]}` failed (exit code 2)"
