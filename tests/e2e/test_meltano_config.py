"""Meltano sees the tap's settings, passes them on, and offers the job to orchestrators."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from singer_sdk.helpers.capabilities import BATCH_CONFIG, FLATTENING_CONFIG, STREAM_MAPS_CONFIG

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.tap import TapLeadTrackr
from tests.e2e.conftest import ROOT, Meltano, lead_requests, sandbox_env


def tap_settings() -> list[str]:
    """The tap's own settings, without those every SDK tap has for its capabilities."""
    sdk = {*STREAM_MAPS_CONFIG["properties"], *FLATTENING_CONFIG["properties"]}
    sdk |= set(BATCH_CONFIG["properties"])
    return sorted(set(TapLeadTrackr.config_jsonschema["properties"]) - sdk)


def test_meltano_yml_declares_and_meltano_lists_every_setting_of_the_tap(
    meltano: Meltano,
) -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    extractors = {plugin["name"]: plugin for plugin in project["plugins"]["extractors"]}
    extractor = extractors["tap-leadtrackr"]
    # The reconcile's extractor is the same one, with its setting on (and its own state).
    assert extractors["tap-leadtrackr--reconcile"] == {
        "name": "tap-leadtrackr--reconcile",
        "inherit_from": "tap-leadtrackr",
        "config": {"reconcile": True},
    }
    declared = {setting["name"]: setting for setting in extractor["settings"]}
    assert sorted(declared) == tap_settings()
    for setting in declared.values():
        assert setting["kind"], setting
        assert setting["label"], setting
        assert setting["description"], setting
    assert declared["api_key"]["sensitive"] is True

    listing = meltano("config", "list", "--all", "tap-leadtrackr").stdout
    for name in declared:
        # `api_key` and `projects` say which group of settings (one or the other) needs them.
        line = rf"^{name}( \(required by group \d\))? \[env: TAP_LEADTRACKR_{name.upper()}\]"
        assert re.search(line, listing, flags=re.MULTILINE), name
    # The key is a secret: never printed, even when set.
    printed = meltano(
        "config", "print", "tap-leadtrackr", env={"TAP_LEADTRACKR_API_KEY": "my-secret-key"}
    ).stdout
    assert "my-secret-key" not in printed
    # So are the keys of `projects`, set as JSON in the environment.
    assert declared["projects"]["sensitive"] is True
    assert declared["projects"]["kind"] == "array"
    projects = '[{"name": "acme", "api_key": "acme-secret-key"}]'
    agency = {"TAP_LEADTRACKR_API_KEY": "", "TAP_LEADTRACKR_PROJECTS": projects}
    for command in (("config", "print"), ("config", "list")):
        shown = meltano(*command, "tap-leadtrackr", env=agency).stdout
        assert "acme-secret-key" not in shown
    assert re.search(r"^projects .*\] current value: \(redacted\)", shown, flags=re.MULTILINE)
    # From `.env` as well, as JSON: the tap gets the list.
    meltano.env_file.write_text(f"TAP_LEADTRACKR_PROJECTS='{projects}'\nTAP_LEADTRACKR_API_KEY=\n")
    try:
        dumped = meltano("invoke", "--dump=config", "tap-leadtrackr").stdout
    finally:
        meltano.env_file.write_text("")
    assert json.loads(dumped)["projects"] == json.loads(projects)


def test_settings_from_environment_variables_reach_the_tap(
    meltano: Meltano, tmp_path: Path
) -> None:
    with Sandbox(Project(generate_leads(400, seed=31))) as sandbox:
        env = sandbox_env(
            sandbox,
            TAP_LEADTRACKR_STATUSES='["open","lost"]',
            TAP_LEADTRACKR_GCLID_EXISTS="true",
            TAP_LEADTRACKR_PAGE_SIZE="25",
            TARGET_JSONL_DESTINATION_PATH=tmp_path,
        )
        meltano("run", "tap-leadtrackr", "target-jsonl", env=env)
        requests = lead_requests(sandbox)
        expected = [
            lead
            for lead in sandbox.project.leads
            if lead["status"] in ("open", "lost") and (lead["attributionData"] or {}).get("gclid")
        ]

    assert requests[-1].params["status"] == "open,lost"
    assert requests[-1].params["gclid[exists]"] == "true"
    assert requests[-1].params["limit"] == "25"
    assert len(requests) == -(-len(expected) // 25)
    lines = (tmp_path / "leads.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == [lead["id"] for lead in expected]


def test_the_jobs_have_a_daily_and_a_weekly_schedule_for_orchestrators(meltano: Meltano) -> None:
    schedules = json.loads(meltano("schedule", "list", "--format=json").stdout)
    jobs = {schedule["job"]["name"]: schedule for schedule in schedules["schedules"]["job"]}
    assert jobs["leads-to-warehouse"]["interval"] == "@daily"
    # Load, then build and test the dbt models in the same warehouse.
    assert jobs["leads-to-warehouse"]["job"]["tasks"] == [
        "tap-leadtrackr target-duckdb",
        "dbt-duckdb:build",
    ]
    # Every lead again once a week, hours after a daily run (DuckDB takes one writer).
    assert jobs["reconcile-leads-to-warehouse"]["interval"] == "0 4 * * 0"
    assert jobs["reconcile-leads-to-warehouse"]["job"]["tasks"] == [
        "tap-leadtrackr--reconcile target-duckdb",
        "dbt-duckdb:build",
    ]
    # The daily job re-reads a lookback window: ratings of recent leads arrive the next day.
    config = json.loads(meltano("invoke", "--dump=config", "tap-leadtrackr").stdout)
    assert config["lookback_window_days"] == 30
    assert config["reconcile"] is False


def test_settings_in_every_form_their_description_offers_reach_the_tap(meltano: Meltano) -> None:
    # `statuses` comma-separated, a number as text (`request_timeout`, which Meltano
    # cannot pass as a decimal) and a boolean, each from the environment.
    with Sandbox(Project(generate_leads(300, seed=32))) as sandbox:
        env = sandbox_env(
            sandbox,
            TAP_LEADTRACKR_STATUSES="open,lost",
            TAP_LEADTRACKR_REQUEST_TIMEOUT="2.5",
            TAP_LEADTRACKR_FBP_EXISTS="false",
        )
        dumped = json.loads(meltano("invoke", "--dump=config", "tap-leadtrackr", env=env).stdout)
        run = meltano("invoke", "tap-leadtrackr", env=env)
        requests = lead_requests(sandbox)
        expected = {
            lead["id"]
            for lead in sandbox.project.leads
            if lead["status"] in ("open", "lost") and not (lead["attributionData"] or {}).get("fbp")
        }

    assert dumped["statuses"] == "open,lost"
    keyset = [r for r in requests if r.params.get("createdAt[lte]") is None]
    assert {(r.params["status"], r.params["fbp[exists]"]) for r in keyset} == {
        ("open,lost", "false")
    }
    messages = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert {
        m["record"]["id"] for m in messages if m["type"] == "RECORD" and m["stream"] == "leads"
    } == expected


@pytest.mark.parametrize(
    ("settings", "message", "level"),
    [
        ({"TAP_LEADTRACKR_API_KEY": "not-the-key"}, "rejected the API key", "info"),
        ({"TAP_LEADTRACKR_API_KEY": "not-the-key"}, "rejected the API key", "warning"),
        ({"TAP_LEADTRACKR_SEARCH": "a"}, "`search` must be at least 2 characters", "warning"),
    ],
    ids=["refused key at info (the default)", "refused key at warning", "bad setting"],
)
def test_a_fatal_error_shows_through_meltano_as_one_error_line(
    meltano: Meltano, tmp_path: Path, settings: dict[str, str], message: str, level: str
) -> None:
    with Sandbox(Project(generate_leads(20, seed=33))) as sandbox:
        env = sandbox_env(
            sandbox, MELTANO_CLI_LOG_LEVEL=level, TARGET_JSONL_DESTINATION_PATH=tmp_path, **settings
        )
        run = meltano("run", "tap-leadtrackr", "target-jsonl", env=env, check=False)

    assert run.returncode != 0
    log = run.stdout + run.stderr
    errors = [line for line in log.splitlines() if "[error" in line and "meltano " not in line]
    assert len(errors) == 1, log[-5000:]
    assert message in errors[0]
    assert "Traceback" not in log
    assert "not-the-key" not in log
