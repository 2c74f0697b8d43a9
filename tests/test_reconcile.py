"""`reconcile`: every lead read again, and ACTIVATE_VERSION only after a complete read.

A target flags every row of an older table version as deleted when it gets
ACTIVATE_VERSION, so the message must never follow a read that missed anything: a
failure, an interruption, a refused key, one refused project among several.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import typing as t

import pytest

from tap_leadtrackr.sandbox import Faults, Project, Sandbox, age, generate_leads
from tests.conftest import SyncResult, bookmark_of, config_for, lead_requests, run_tap
from tests.test_touchpoints import TOUCHPOINTS, catalog_selecting

LEADS = 1000
PAGE_SIZE = 100


def reconcile_config(server: Sandbox, **settings: t.Any) -> dict[str, t.Any]:
    return config_for(server, reconcile=True, **settings)


def both_streams(config: dict[str, t.Any]) -> dict[str, t.Any]:
    return catalog_selecting(config, "leads", TOUCHPOINTS)


def activations(messages: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    return [m for m in messages if m["type"] == "ACTIVATE_VERSION"]


def assert_nothing_activated(result: SyncResult) -> None:
    assert result.error is not None
    assert activations(result.messages) == []


@pytest.fixture
def project() -> Project:
    return Project(generate_leads(LEADS, seed=17))


def test_every_lead_comes_with_the_version_that_is_activated_after_the_last_record(
    project: Project,
) -> None:
    with Sandbox(project) as server:
        daily = run_tap(config_for(server))
        # Weeks later: leads rated (recent and old), deleted and added.
        aged = age(project, seed=1)
        server.clear_requests()
        config = reconcile_config(server)
        result = run_tap(config, state=daily.last_state, catalog=both_streams(config))
        requests = lead_requests(server)
        server.clear_requests()
        run_tap(config_for(server))
        full_sync_requests = lead_requests(server)

    leads = {lead["id"]: lead for lead in project.leads}
    records = {record["id"]: record for record in result.records if "lead_id" not in record}
    assert records.keys() == leads.keys()
    for lead_id in aged.rated:
        assert records[lead_id]["status"] == leads[lead_id]["status"]
        assert records[lead_id]["price"] == leads[lead_id]["price"]
    assert not set(aged.deleted) & records.keys()

    record_messages = [m for m in result.messages if m["type"] == "RECORD"]
    versions = {m["version"] for m in record_messages}
    assert len(versions) == 1
    (version,) = versions
    assert {m["stream"] for m in record_messages} == {"leads", TOUCHPOINTS}
    # One ACTIVATE_VERSION per stream, with that version, after every record.
    activated = activations(result.messages)
    assert sorted(m["stream"] for m in activated) == ["lead_touchpoints", "leads"]
    assert {m["version"] for m in activated} == {version}
    last_record = max(i for i, m in enumerate(result.messages) if m["type"] == "RECORD")
    assert all(result.messages.index(m) > last_record for m in activated)
    # A full read from the start, as a first sync: no `createdAt[gte]`, as many requests.
    assert "createdAt[gte]" not in requests[0].params
    assert len(requests) == len(full_sync_requests)
    assert len(requests) <= math.ceil(len(leads) / PAGE_SIZE) * 1.3


def test_a_reconcile_starts_at_start_date_and_its_version_grows_run_by_run(
    project: Project,
) -> None:
    start_date = sorted(lead["createdAt"] for lead in project.leads)[LEADS // 2]
    with Sandbox(project) as server:
        first = run_tap(reconcile_config(server, start_date=start_date))
        second = run_tap(reconcile_config(server, start_date=start_date))
        requests = lead_requests(server)

    assert requests[0].params["createdAt[gte]"] == start_date
    assert {lead["id"] for lead in project.leads if lead["createdAt"] >= start_date} == set(
        first.ids
    )
    (before,), (after,) = activations(first.messages), activations(second.messages)
    assert after["version"] > before["version"]


def test_a_daily_run_sends_no_version_and_no_activate_version(project: Project) -> None:
    with Sandbox(project) as server:
        result = run_tap(config_for(server, lookback_window_days=30))

    assert activations(result.messages) == []
    assert all("version" not in m for m in result.messages if m["type"] == "RECORD")


# Never infer a deletion from an incomplete read. ------------------------------------------


def test_a_request_that_fails_for_good_activates_nothing(project: Project) -> None:
    with Sandbox(project, faults=Faults(script={4: "503"})) as server:
        result = run_tap(reconcile_config(server, max_retries=0), expect_error=True)

    assert_nothing_activated(result)
    assert "503" in str(result.error)
    assert 0 < len(result.records) < LEADS


@pytest.mark.parametrize("refusal", ["revoked", "inactive"])
def test_a_refused_key_activates_nothing(project: Project, refusal: str) -> None:
    if refusal == "revoked":
        faults = Faults(revoke_key_after_request=3)
    else:
        project.active = False
        faults = Faults()
    with Sandbox(project, faults=faults) as server:
        result = run_tap(reconcile_config(server), expect_error=True)

    assert_nothing_activated(result)
    expected = "rejected the API key" if refusal == "revoked" else "subscription is inactive"
    assert expected in str(result.error)


def test_with_one_project_refused_the_others_are_read_and_nothing_is_activated() -> None:
    projects = {f"key-{n}": Project(generate_leads(300, seed=n)) for n in (1, 2, 3)}
    projects["key-2"].active = False
    with Sandbox(Project(), projects=projects) as server:
        config = {
            "api_url": server.url,
            "projects": [{"name": f"p{n}", "api_key": f"key-{n}"} for n in (1, 2, 3)],
            "reconcile": True,
        }
        result = run_tap(config, catalog=both_streams(config), expect_error=True)

    assert_nothing_activated(result)
    assert "`p2`" in str(result.error)
    read = {(r["project"], r["id"]) for r in result.records if "lead_id" not in r}
    assert read == {(f"p{n}", lead["id"]) for n in (1, 3) for lead in projects[f"key-{n}"].leads}


def test_when_every_project_is_read_each_stream_is_activated_once_after_all() -> None:
    projects = {f"key-{n}": Project(generate_leads(250, seed=n)) for n in (1, 2)}
    with Sandbox(Project(), projects=projects) as server:
        config = {
            "api_url": server.url,
            "projects": [{"name": f"p{n}", "api_key": f"key-{n}"} for n in (1, 2)],
            "reconcile": True,
        }
        result = run_tap(config, catalog=both_streams(config))

    activated = activations(result.messages)
    assert sorted(m["stream"] for m in activated) == ["lead_touchpoints", "leads"]
    last_record = max(i for i, m in enumerate(result.messages) if m["type"] == "RECORD")
    assert all(result.messages.index(m) > last_record for m in activated)
    assert len([r for r in result.records if "lead_id" not in r]) == 500


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_reconcile_activates_nothing(
    project: Project, tmp_path: t.Any, stop_with: signal.Signals
) -> None:
    config_file = tmp_path / "config.json"
    # Slow pages, so the signal lands mid-read.
    with Sandbox(project, faults=Faults(latency_ms=150)) as server:
        config_file.write_text(json.dumps(reconcile_config(server, page_size=50)))
        tap = subprocess.Popen(
            [sys.executable, "-m", "tap_leadtrackr", "--config", str(config_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        watchdog = threading.Timer(60, tap.kill)
        watchdog.start()
        try:
            assert tap.stdout is not None
            lines = []
            for line in tap.stdout:
                lines.append(line)
                if '"type":"RECORD"' in line:
                    tap.send_signal(stop_with)
                    break
            lines += tap.stdout.readlines()
            tap.wait()
        finally:
            watchdog.cancel()

    messages = [json.loads(line) for line in lines if line.startswith("{")]
    records = [m for m in messages if m["type"] == "RECORD"]
    assert 0 < len(records) < LEADS
    assert activations(messages) == []


# Settings a reconcile cannot run with. ------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value"),
    [("end_date", "2026-06-01"), ("batch_config", {"encoding": {"format": "jsonl"}})],
)
def test_settings_that_would_flag_live_leads_are_refused_before_any_request(
    project: Project, setting: str, value: t.Any
) -> None:
    with Sandbox(project) as server:
        result = run_tap(reconcile_config(server, **{setting: value}), expect_error=True)
        requests = lead_requests(server)

    assert f"`{setting}`" in str(result.error)
    assert "`reconcile`" in str(result.error)
    assert requests == []


# The daily job's bookmark. ---------------------------------------------------------------


def test_daily_then_reconcile_then_daily_skips_no_lead_and_never_moves_the_bookmark_back(
    project: Project,
) -> None:
    with Sandbox(project) as server:
        daily = run_tap(config_for(server))
        created_before_reconcile = project.add_leads(30)
        # The worst case: the reconcile given the daily job's own state.
        reconcile = run_tap(reconcile_config(server), state=daily.last_state)
        created_after_reconcile = project.add_leads(20)
        next_daily = run_tap(config_for(server), state=reconcile.last_state)

    assert all(bookmark_of(state) == daily.bookmark for state in reconcile.states)
    new = {lead["id"] for lead in created_before_reconcile + created_after_reconcile}
    assert new <= set(next_daily.ids)
    assert next_daily.ids[0] not in new  # the lead at the old bookmark comes again first
    assert next_daily.bookmark == max(lead["createdAt"] for lead in created_after_reconcile)
    assert {lead["id"] for lead in created_before_reconcile} <= set(reconcile.ids)
