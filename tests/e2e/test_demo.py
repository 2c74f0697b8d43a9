"""`make demo`'s script: a first run loads the sandbox, the next one only its new leads,
apart from what the Meltano commands of the docs use, and its hints are the commands to run."""

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


@pytest.fixture
def demo_script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """scripts/demo.py as a module (it imports its neighbour, warehouse_report)."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    return importlib.import_module("demo")


def test_demo_loads_the_sandbox_and_then_only_what_is_new(meltano: Meltano, tmp_path: Path) -> None:
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
    # Its bookmark is its own: `meltano run leads-to-warehouse` by hand starts from nothing.
    states = meltano("state", "list").stdout.split()
    assert states == [f"{STATE_ID}:demo"]
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

    second = demo()
    assert "75 of them new since the last run" in second
    assert "warehouse  600 -> 675 leads" in second
    assert "only what is new was loaded, 75 leads" in second
    # Its hints run the same three projects again.
    assert 'Run `make demo ARGS="--projects 3"` again' in second
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
    demo = demo_script.Demo("dev", tmp_path / "sandbox.duckdb", env=dict(os.environ))

    with pytest.raises(SystemExit) as exited:
        demo_script.sync(demo, full_refresh=True, mark_before=None)

    shown = re.findall(r"^\$ (.+)$", capsys.readouterr().out, flags=re.MULTILINE)
    assert shown == [f"meltano --environment dev run --state-id-suffix=demo --full-refresh {JOB}"]
    assert str(exited.value) == f"`{shown[0]}` failed (exit code 2)"
