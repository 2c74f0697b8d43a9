"""`projects`: several LeadTrackr projects in one sync, each with its own key and bookmark."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import typing as t
from collections import Counter

import pytest

from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tap_leadtrackr.sending import Sender
from tests.conftest import SyncResult, lead_requests, run_tap
from tests.test_secrets import assert_debug_logging_was_on, records_of
from tests.test_secrets import run_cli as debug_run
from tests.test_touchpoints import catalog_selecting

#: Each project's key; none of them appears in any message.
KEYS = {"acme": "lt_live_acme_7f3a9c", "globex": "lt_live_globex_2b8d4e", "initech": "lt_9x1"}
#: Leads per project: ids run from 1 in each, so they overlap.
SIZES = {"acme": 230, "globex": 170, "initech": 120}


def projects(**active: bool) -> dict[str, Project]:
    """The sandbox's projects by key; `name=False` makes one inactive (403)."""
    return {
        KEYS[name]: Project(generate_leads(size, seed=number), active=active.get(name, True))
        for number, (name, size) in enumerate(SIZES.items(), start=1)
    }


@pytest.fixture
def agency() -> t.Iterator[Sandbox]:
    """A sandbox serving three projects (its default project is read by none of them)."""
    with Sandbox(Project(generate_leads(5, seed=9)), projects=projects()) as server:
        yield server


def config_for(server: Sandbox, names: t.Iterable[str] = SIZES, **settings: t.Any) -> dict:
    listed = [{"name": name, "api_key": KEYS[name]} for name in names]
    return {"api_url": server.url, "projects": listed, "page_size": 50, **settings}


def leads_by_project(result: SyncResult) -> Counter[str]:
    return Counter(record["project"] for record in result.records if "lead_id" not in record)


def partitions(state: dict, stream: str = "leads") -> dict[str, str | None]:
    return {
        partition["context"]["project"]: partition.get("replication_key_value")
        for partition in state["bookmarks"][stream]["partitions"]
    }


def assert_nothing_secret(text: str) -> None:
    for key in KEYS.values():
        assert key not in text


def test_every_lead_of_every_project_lands_with_its_project(agency: Sandbox) -> None:
    result = run_tap(config_for(agency))

    assert leads_by_project(result) == SIZES
    keys = {(record["project"], record["id"]) for record in result.records}
    assert len(keys) == sum(SIZES.values()), "an overlapping id was lost"
    assert Counter(record["id"] for record in result.records)[1] == 3
    schema = next(m for m in result.messages if m["type"] == "SCHEMA")
    assert schema["key_properties"] == ["project", "id"]
    assert schema["schema"]["properties"]["project"]["type"] == ["string"]
    newest = {
        name: max(lead["createdAt"] for lead in project.leads)
        for name, project in zip(SIZES, projects().values(), strict=True)
    }
    assert partitions(result.last_state) == newest
    assert_nothing_secret(result.output + result.log)


def test_each_request_carries_its_own_projects_key(agency: Sandbox) -> None:
    run_tap(config_for(agency))

    sent = Counter(request.headers.get("X-API-Key") for request in lead_requests(agency))
    assert set(sent) == set(KEYS.values())
    assert all(request.status == 200 for request in agency.requests)


def test_with_api_key_alone_records_keys_and_state_are_as_before(agency: Sandbox) -> None:
    result = run_tap({"api_url": agency.url, "api_key": agency.api_key})

    assert all("project" not in record for record in result.records)
    schema = next(m for m in result.messages if m["type"] == "SCHEMA")
    assert schema["key_properties"] == ["id"]
    assert "project" not in schema["schema"]["properties"]
    assert "partitions" not in result.last_state["bookmarks"]["leads"]


def test_a_run_with_nothing_new_costs_one_request_per_project(agency: Sandbox) -> None:
    first = run_tap(config_for(agency))
    agency.clear_requests()

    again = run_tap(config_for(agency), state=copy.deepcopy(first.last_state))

    assert len(lead_requests(agency)) == len(SIZES)
    # Only the leads at each bookmark come again (at least once; targets upsert).
    assert set(leads_by_project(again)) <= set(SIZES)
    assert partitions(again.last_state) == partitions(first.last_state)


def test_new_leads_come_only_to_their_project(agency: Sandbox) -> None:
    first = run_tap(config_for(agency))
    added = agency.projects[KEYS["globex"]].add_leads(7)

    again = run_tap(config_for(agency), state=copy.deepcopy(first.last_state))

    new = {record["id"] for record in again.records if record["project"] == "globex"}
    assert {lead["id"] for lead in added} <= new
    assert partitions(again.last_state)["acme"] == partitions(first.last_state)["acme"]
    assert partitions(again.last_state)["globex"] > partitions(first.last_state)["globex"]


def test_a_project_added_later_starts_from_start_date(agency: Sandbox) -> None:
    start = "2026-01-01"
    first = run_tap(config_for(agency, names=["acme", "globex"], start_date=start))
    agency.clear_requests()

    again = run_tap(config_for(agency, start_date=start), state=copy.deepcopy(first.last_state))

    initech = [record for record in again.records if record["project"] == "initech"]
    expected = [
        lead["id"]
        for lead in agency.projects[KEYS["initech"]].leads
        if lead["createdAt"] >= "2026-01-01T00:00:00.000Z"
    ]
    assert sorted(record["id"] for record in initech) == sorted(expected)
    by_key: dict[str, str] = {}
    for request in lead_requests(agency):
        by_key.setdefault(request.headers["X-API-Key"], request.params["createdAt[gte]"])
    assert by_key[KEYS["initech"]] == "2026-01-01T00:00:00.000Z"
    assert by_key[KEYS["acme"]] == partitions(first.last_state)["acme"]


def test_a_project_removed_leaves_the_others_bookmarks(agency: Sandbox) -> None:
    first = run_tap(config_for(agency))

    again = run_tap(config_for(agency, names=["acme"]), state=copy.deepcopy(first.last_state))

    assert set(leads_by_project(again)) <= {"acme"}
    assert partitions(again.last_state) == partitions(first.last_state)


@pytest.mark.parametrize(
    ("refuse", "says"),
    [
        ("revoke", "rejected the API key (401: Invalid API key)"),
        ("inactive", "subscription is inactive"),
    ],
)
def test_a_refused_project_fails_the_run_after_the_others_complete(
    agency: Sandbox, refuse: str, says: str
) -> None:
    if refuse == "revoke":
        del agency.projects[KEYS["globex"]]
    else:
        agency.projects[KEYS["globex"]].active = False

    result = run_tap(config_for(agency), expect_error=True)

    assert result.error is not None
    message = str(result.error)
    assert "`globex`" in message
    assert says in message
    assert "acme" not in message
    assert "initech" not in message
    assert leads_by_project(result) == {"acme": SIZES["acme"], "initech": SIZES["initech"]}
    bookmarks = partitions(result.last_state)
    assert bookmarks["acme"]
    assert bookmarks["initech"]
    assert bookmarks["globex"] is None
    assert_nothing_secret(message + result.output + result.log)


def test_every_refused_project_is_named(agency: Sandbox) -> None:
    del agency.projects[KEYS["acme"]]
    agency.projects[KEYS["initech"]].active = False

    result = run_tap(config_for(agency), expect_error=True)

    message = str(result.error)
    assert "2 of 3 projects" in message
    assert "`acme`: LeadTrackr rejected the API key" in message
    assert "`initech`: LeadTrackr refused access" in message
    assert leads_by_project(result) == {"globex": SIZES["globex"]}


def test_a_key_revoked_mid_sync_keeps_that_projects_checkpoints(agency: Sandbox) -> None:
    acme_project = agency.projects.pop(KEYS["acme"])
    acme_leads = acme_project.leads

    class Revoking(dict):
        """Serves acme for its first three requests only."""

        served = 0

        def get(self, key: str, default: t.Any = None) -> t.Any:
            if key == KEYS["acme"]:
                Revoking.served += 1
                return acme_project if Revoking.served <= 3 else None
            return super().get(key, default)

    agency.projects = Revoking(agency.projects)

    result = run_tap(config_for(agency), expect_error=True)

    acme = [record for record in result.records if record["project"] == "acme"]
    acme_ids = [record["id"] for record in acme]
    assert len(set(acme_ids)) == len(acme_ids)
    last = acme[-1]["createdAt"]
    assert set(acme_ids) >= {lead["id"] for lead in acme_leads if lead["createdAt"] < last}
    assert 0 < len(acme_ids) < SIZES["acme"]
    bookmark = partitions(result.last_state)["acme"]
    assert bookmark == next(
        r["createdAt"] for r in reversed(result.records) if r["project"] == "acme"
    )
    assert "`acme`" in str(result.error)


def test_touchpoints_carry_the_project_and_keep_a_bookmark_per_project(agency: Sandbox) -> None:
    config = config_for(agency)

    result = run_tap(config, catalog=catalog_selecting(config, "leads", "lead_touchpoints"))

    touchpoints = [record for record in result.records if "lead_id" in record]
    assert {record["project"] for record in touchpoints} == set(SIZES)
    keys = Counter((r["project"], r["lead_id"], r["position"]) for r in touchpoints)
    assert max(keys.values()) == 1
    schema = next(
        m for m in result.messages if m["type"] == "SCHEMA" and m["stream"] == "lead_touchpoints"
    )
    assert schema["key_properties"] == ["project", "lead_id", "position"]
    assert partitions(result.last_state, "lead_touchpoints") == partitions(result.last_state)


@pytest.mark.parametrize("parallel", [1, 4])
def test_parallel_pages_and_lookback_apply_per_project(agency: Sandbox, parallel: int) -> None:
    config = config_for(agency, max_parallel_requests=parallel, lookback_window_days=30)
    first = run_tap(config)

    again = run_tap(config, state=copy.deepcopy(first.last_state))

    for name, project in zip(SIZES, agency.projects.values(), strict=True):
        ids = [record["id"] for record in first.records if record["project"] == name]
        assert sorted(ids) == sorted(lead["id"] for lead in project.leads)
        bookmark = partitions(first.last_state)[name]
        assert bookmark is not None
        reread = [record for record in again.records if record["project"] == name]
        oldest = min(record["createdAt"] for record in reread)
        assert oldest < bookmark, f"{name}: no lookback"


@pytest.mark.parametrize(
    ("listed", "says"),
    [
        ([{"name": "acme", "api_key": "k1"}, {"name": "acme", "api_key": "k2"}], "used twice"),
        ([{"name": "ac me", "api_key": "k1"}], "letters, digits"),
        ([{"name": "", "api_key": "k1"}], "letters, digits"),
        ([{"name": "acme", "api_key": "  "}], "no `api_key`"),
        ([{"name": "acme"}], "no `api_key`"),
        ([{"name": "acme", "api_key": "k 1"}], "space or a control character"),
        ([], "non-empty list"),
        (["acme"], "not an object"),
    ],
)
def test_bad_projects_are_refused_before_any_request(
    agency: Sandbox, listed: list, says: str
) -> None:
    result = run_tap({"api_url": agency.url, "projects": listed}, expect_error=True)

    errors = str(result.error) + " ".join(getattr(result.error, "errors", []))
    assert says in errors
    assert "projects" in errors
    assert "k1" not in errors
    assert "k2" not in errors
    assert "k 1" not in errors
    assert agency.requests == []


def test_api_key_and_projects_together_are_refused(agency: Sandbox) -> None:
    config = {**config_for(agency), "api_key": agency.api_key}

    result = run_tap(config, expect_error=True)

    assert "both set" in str(result.error)
    assert agency.requests == []


def run_cli(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TAP_LEADTRACKR_")}
    return subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr", "--config", "ENV"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_projects_from_the_environment_and_a_failed_project_exits_non_zero(
    agency: Sandbox,
) -> None:
    agency.projects[KEYS["initech"]].active = False
    listed = config_for(agency)["projects"]
    run = run_cli(
        {"TAP_LEADTRACKR_API_URL": agency.url, "TAP_LEADTRACKR_PROJECTS": json.dumps(listed)}
    )

    assert run.returncode != 0
    assert "`initech`" in run.stderr
    assert "subscription is inactive" in run.stderr
    records = [json.loads(line) for line in run.stdout.splitlines() if '"RECORD"' in line]
    assert Counter(m["record"]["project"] for m in records) == {
        "acme": SIZES["acme"],
        "globex": SIZES["globex"],
    }
    # Progress lines name the project.
    assert "project acme: reading leads" in run.stderr
    assert_nothing_secret(run.stdout + run.stderr)


@pytest.mark.parametrize("source", ["file", "env"])
def test_no_key_reaches_a_log_at_debug_even_when_a_project_is_refused(
    tmp_path, agency: Sandbox, source: str
) -> None:
    del agency.projects[KEYS["globex"]]
    agency.projects[KEYS["initech"]].active = False
    config = config_for(agency)
    # A key with white space around it, as a copy may leave: shown in neither spelling.
    config["projects"][0]["api_key"] = f" {KEYS['acme']}\r\n"
    env = {"TAP_LEADTRACKR_PROJECTS": json.dumps(config["projects"])}
    env["TAP_LEADTRACKR_API_URL"] = agency.url

    run = debug_run(tmp_path, None, env) if source == "env" else debug_run(tmp_path, config)

    assert run.returncode != 0
    assert_debug_logging_was_on(run)
    assert "`globex`: LeadTrackr rejected the API key" in run.stderr
    assert "`initech`: LeadTrackr refused access" in run.stderr
    assert_nothing_secret(run.stdout + run.stderr)
    assert len(records_of(run.stdout)) == SIZES["acme"]


def test_a_checkpoint_after_every_page_of_every_project(agency: Sandbox) -> None:
    result = run_tap(config_for(agency))

    emitted: dict[str, list[str]] = {name: [] for name in SIZES}
    checkpointed = dict.fromkeys(SIZES, 0)
    for message in result.messages:
        if message["type"] == "RECORD":
            record = message["record"]
            emitted[record["project"]].append(record["createdAt"])
            # At most a page of leads of the project being read past its last checkpoint.
            assert len(emitted[record["project"]]) - checkpointed[record["project"]] <= 50
        elif message["type"] == "STATE":
            bookmarks = partitions(message["value"]) if "bookmarks" in message["value"] else {}
            checkpointed = {
                name: sum(
                    1 for at in emitted[name] if bookmarks.get(name) and at <= bookmarks[name]
                )
                for name in SIZES
            }
    for name in SIZES:
        assert emitted[name] == sorted(emitted[name])
        assert partitions(result.last_state)[name] == emitted[name][-1]


def test_transient_failures_are_retried_in_every_project(
    agency: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(
        Sender, "sleep", staticmethod(lambda seconds, cancelled: waits.append(seconds))
    )
    monkeypatch.setattr(Sender, "pause", staticmethod(lambda seconds, cancelled: None))
    script = {2: "503", 5: "429", 9: "reset", 12: "truncated"}
    agency.faults = Faults(script=script)

    result = run_tap(config_for(agency, max_parallel_requests=3))

    assert leads_by_project(result) == SIZES
    assert len({(r["project"], r["id"]) for r in result.records}) == sum(SIZES.values())
    assert len(waits) == 4
    hit = {r.headers["X-API-Key"] for r in agency.requests if r.number in script}
    assert len(hit) >= 2, "the faults should hit more than one project"
