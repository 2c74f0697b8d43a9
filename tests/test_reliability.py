"""Every failure is survived or reported clearly, and no lead is lost."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from tap_leadtrackr.client import LeadTrackrStream
from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tap_leadtrackr.sending import Sender
from tests.conftest import config_for, lead_requests, run_tap

LEADS = 450  # five pages of 100


# Every test here runs with one request at a time and with four (see `parallelism`).
pytestmark = pytest.mark.usefixtures("parallelism")


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry waits instead of sleeping through them."""
    recorded: list[float] = []
    monkeypatch.setattr(
        Sender, "sleep", staticmethod(lambda seconds, cancelled: recorded.append(seconds))
    )
    monkeypatch.setattr(Sender, "pause", staticmethod(lambda seconds, cancelled: None))
    return recorded


@pytest.fixture
def project() -> Project:
    return Project(generate_leads(LEADS, seed=11))


def all_ids(project: Project) -> set[int]:
    return {lead["id"] for lead in project.leads}


def run_cli(config: dict, tmp_path, state: dict | None = None) -> subprocess.CompletedProcess:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    command = [sys.executable, "-m", "tap_leadtrackr", "--config", str(config_file)]
    if state is not None:
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        command += ["--state", str(state_file)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def records_of(stdout: str) -> list[dict]:
    messages = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [m["record"] for m in messages if m["type"] == "RECORD"]


# Fatal answers: stop at once, say why, never show the key. ------------------------------


def test_a_wrong_api_key_stops_at_once_and_says_where_to_get_one(tmp_path, project) -> None:
    with Sandbox(project, api_key="the-right-key") as server:
        started = time.monotonic()
        run = run_cli({"api_key": "sk-wrong-9f8e7d", "api_url": server.url}, tmp_path)

        assert run.returncode != 0
        assert time.monotonic() - started < 15
        assert len(server.requests) == 1
    assert "Invalid API key" in run.stderr
    assert "API Integration" in run.stderr
    assert "sk-wrong-9f8e7d" not in run.stderr + run.stdout
    assert records_of(run.stdout) == []


def test_an_inactive_subscription_stops_at_once(tmp_path, project) -> None:
    project.active = False
    with Sandbox(project) as server:
        run = run_cli(config_for(server), tmp_path)

        assert len(server.requests) == 1
    assert run.returncode != 0
    assert "subscription is inactive" in run.stderr
    assert server.api_key not in run.stderr


def test_a_400_quotes_the_server_and_names_the_setting(project) -> None:
    with Sandbox(project) as server:
        from tap_leadtrackr.tap import TapLeadTrackr

        tap = TapLeadTrackr(config=config_for(server, page_size=0), validate_config=False)
        with pytest.raises(Exception, match=r"limit.*Check the setting `page_size`") as error:
            list(tap.streams["leads"].get_records(None))

        assert len(server.requests) == 1
    assert "rejected the request" in str(error.value)


def test_a_404_names_the_url_setting(project) -> None:
    with Sandbox(project) as server:
        result = run_tap(
            config_for(server, api_url=server.url + "/wrong-prefix"), expect_error=True
        )

    assert result.error is not None
    assert "404" in str(result.error)
    assert "api_url" in str(result.error)
    assert result.records == []


def test_a_key_revoked_mid_sync_stops_with_state_at_the_last_emitted_page(project) -> None:
    with Sandbox(project, faults=Faults(revoke_key_after_request=2)) as server:
        result = run_tap(config_for(server), expect_error=True)

    assert "rejected the API key" in str(result.error)
    assert_a_prefix_with_its_checkpoint(result, project)


def assert_a_prefix_with_its_checkpoint(result, project: Project) -> None:
    """What a failed sync emitted: the oldest leads, and a state at the last of them."""
    assert len(result.records) >= 99
    assert result.bookmark == result.records[-1]["createdAt"]
    older = {lead["id"] for lead in project.leads if lead["createdAt"] < result.bookmark}
    assert older <= set(result.ids)
    assert all(record["createdAt"] <= result.bookmark for record in result.records)
    assert result.messages[-1]["type"] == "STATE"


# Transient failures: retried, waits honoured, nothing lost or doubled. -----------------


@pytest.mark.parametrize("fault", ["429", "500", "502", "503", "504", "truncated", "html", "reset"])
def test_a_transient_failure_is_retried_and_the_sync_completes(project, waits, fault) -> None:
    with Sandbox(project) as server:
        run_tap(config_for(server))
        unfaulted = len(lead_requests(server))
        server.clear_requests()
        server.faults = Faults(script={2: fault, 3: fault, 5: fault})
        result = run_tap(config_for(server))

        assert result.error is None
        assert sorted(result.ids) == sorted(all_ids(project))
        assert len(lead_requests(server)) == unfaulted + 3
    assert len(waits) == 3
    assert result.log.count("/api/leads/getLeads failed") == 3


def test_a_read_timeout_is_retried(project, waits) -> None:
    faults = Faults(script={2: "slow"}, slow_seconds=1.5)
    with Sandbox(project, faults=faults) as server:
        result = run_tap(config_for(server, request_timeout=0.5))

    assert result.error is None
    assert sorted(result.ids) == sorted(all_ids(project))
    assert "no answer within `request_timeout`" in result.log


@pytest.mark.parametrize("retry_after", ["7", "0"])
def test_retry_after_in_seconds_is_honoured_exactly(project, waits, retry_after) -> None:
    faults = Faults(script={1: "429", 4: "429"}, retry_after=retry_after)
    with Sandbox(project, faults=faults) as server:
        result = run_tap(config_for(server))

    assert result.error is None
    assert waits == [float(retry_after)] * 2


def test_retry_after_as_an_http_date_is_honoured(project, waits) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    faults = Faults(script={2: "429"}, retry_after=format_datetime(when, usegmt=True))
    with Sandbox(project, faults=faults) as server:
        run_tap(config_for(server))

    assert len(waits) == 1
    assert 27 <= waits[0] <= 30


def test_a_huge_retry_after_is_capped(project, waits) -> None:
    with Sandbox(project, faults=Faults(script={2: "429"}, retry_after="86400")) as server:
        result = run_tap(config_for(server))

    assert waits == [600.0]
    assert "longer than" in result.log


def test_no_retry_comes_sooner_than_retry_after(project) -> None:
    # The one test that really waits: the sandbox's clock sees the gap.
    with Sandbox(project, faults=Faults(script={2: "429"}, retry_after="1")) as server:
        result = run_tap(config_for(server))

        requests = lead_requests(server)
    assert result.error is None
    limited = next(r for r in requests if r.status == 429)
    retry = next(r for r in requests if r.number > limited.number and r.params == limited.params)
    assert retry.received_at - limited.received_at >= 1.0


@pytest.mark.parametrize("storm", [1, 3])
def test_after_a_429_no_request_leaves_any_thread_before_retry_after(storm) -> None:
    # Really waits, like the test above; the sandbox's clock sees every thread's requests.
    # With four pages in flight, the fourth meets the 429 while the first three are slow:
    # when they come back, the pages after them are due, and must wait for Retry-After.
    faults = Faults(
        script=dict.fromkeys([4, 5, 6], "slow"),
        slow_seconds=0.3,
        rate_limit_from_request=7,
        rate_limit_count=storm,
        retry_after="1",
    )
    with Sandbox(Project(generate_leads(3000, seed=5)), faults=faults) as server:
        result = run_tap(config_for(server))

        requests = sorted(lead_requests(server), key=lambda r: r.received_at)
    assert sorted(result.ids) == list(range(1, 3001))
    for limited in (r for r in requests if r.status == 429):
        # Requests already on the wire when the 429 came back are the only exception.
        on_the_wire = limited.received_at + 0.1
        early = [
            r.number for r in requests if on_the_wire < r.received_at < limited.received_at + 1.0
        ]
        assert early == [], f"requests {early} left within Retry-After of #{limited.number}"


def test_back_off_without_retry_after_grows_exponentially_with_jitter(waits) -> None:
    # One page, so that every try is of the same request in both modes.
    faults = Faults(script=dict.fromkeys(range(1, 6), "503"))
    with Sandbox(Project(generate_leads(60, seed=1)), faults=faults) as server:
        result = run_tap(config_for(server))

    assert result.error is None
    assert len(waits) == 5
    for attempt, wait in enumerate(waits, start=1):
        nominal = 2.0 ** (attempt - 1)
        assert nominal * 0.5 <= wait <= nominal


def test_exhausted_retries_name_the_status_and_path_and_the_state_resumes(project, waits) -> None:
    faults = Faults(script=dict.fromkeys(range(3, 12), "503"))
    with Sandbox(project, faults=faults) as server:
        failed = run_tap(config_for(server, max_retries=2), expect_error=True)

        assert "503" in str(failed.error)
        assert "/api/leads/getLeads" in str(failed.error)
        assert "3 tries" in str(failed.error)
        assert_a_prefix_with_its_checkpoint(failed, project)

        server.faults = Faults()
        resumed = run_tap(config_for(server, max_retries=2), state=failed.last_state)

    assert resumed.error is None
    assert set(failed.ids) | set(resumed.ids) == all_ids(project)
    overlap = set(failed.ids) & set(resumed.ids)
    boundary = {lead["id"] for lead in project.leads if lead["createdAt"] == failed.bookmark}
    assert overlap <= boundary


def test_the_cli_exits_non_zero_when_retries_run_out(project, tmp_path) -> None:
    faults = Faults(server_error_every=1, server_error_status=502)
    with Sandbox(project, faults=faults) as server:
        run = run_cli(config_for(server, max_retries=0), tmp_path)

    assert run.returncode != 0
    assert "502" in run.stderr
    assert "/api/leads/getLeads" in run.stderr
    assert server.api_key not in run.stderr


# Data that moves while the sync pages. -------------------------------------------------


def test_leads_created_during_the_sync_arrive_in_this_run_or_the_next(project) -> None:
    with Sandbox(project, faults=Faults(insert_after_request=2, insert_count=130)) as server:
        first = run_tap(config_for(server))
        second = run_tap(config_for(server), state=first.last_state)

    original = {lead["id"] for lead in generate_leads(LEADS, seed=11)}
    assert original <= set(first.ids)
    assert set(first.ids) | set(second.ids) == all_ids(server.project)
    assert len(server.project.leads) == LEADS + 130


def test_leads_deleted_during_the_sync_do_not_push_other_leads_out_of_view(project) -> None:
    faults = Faults(delete_after_request=2, delete_count=37)
    with Sandbox(project, faults=faults) as server:
        result = run_tap(config_for(server))

        survivors = all_ids(server.project)
    assert result.error is None
    assert survivors <= set(result.ids)


# Contract breaks are loud. --------------------------------------------------------------


def break_page_with(monkeypatch: pytest.MonkeyPatch, lead_id: int, damage) -> None:
    """Damage the first page that holds lead `lead_id`, as a faulty server would."""
    original = LeadTrackrStream.decode_page
    damaged = False

    def decode(self, response, ask):
        nonlocal damaged
        page = original(self, response, ask)
        ids = [lead["id"] for lead in page.records]
        if not damaged and lead_id in ids:
            damaged = True
            damage(page.records, ids.index(lead_id))
        return page

    monkeypatch.setattr(LeadTrackrStream, "decode_page", decode)


@pytest.mark.parametrize("missing", ["id", "createdAt"])
def test_a_lead_without_its_key_fields_stops_the_sync(monkeypatch, missing) -> None:
    leads = generate_leads(250, seed=4)
    broken = leads[150]
    break_page_with(monkeypatch, broken["id"], lambda page, at: page[at].pop(missing))
    with Sandbox(Project(leads)) as server:
        result = run_tap(config_for(server), expect_error=True)

    assert "without `id` or `createdAt`" in str(result.error)
    assert "page 1 of leads created" in str(result.error)
    assert broken["email"] not in str(result.error)
    assert 0 < len(result.records) <= 150
    assert broken["id"] not in result.ids
    assert result.bookmark == result.records[-1]["createdAt"]


def test_leads_out_of_created_at_order_stop_the_sync(monkeypatch) -> None:
    leads = generate_leads(250, seed=4)
    break_page_with(monkeypatch, leads[0]["id"], lambda page, at: page.reverse())
    with Sandbox(Project(leads)) as server:
        result = run_tap(config_for(server), expect_error=True)

    assert "out of `createdAt` order" in str(result.error)
    assert result.records == []


def test_leads_outside_the_requested_window_stop_the_sync(monkeypatch) -> None:
    # What a server that ignored `createdAt[gte]` would send.
    leads = generate_leads(250, seed=4)
    break_page_with(monkeypatch, leads[100]["id"], lambda page, at: page.insert(0, dict(leads[0])))
    with Sandbox(Project(leads)) as server:
        result = run_tap(config_for(server, start_date=leads[100]["createdAt"]), expect_error=True)

    assert "did not apply the date filter" in str(result.error)
    assert result.records == []


def test_a_redirect_is_not_followed_and_names_the_url_setting() -> None:
    import http.server
    import threading

    sent_to_target: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/elsewhere"):
                sent_to_target.append(self.headers.get("X-API-Key"))
                self.send_response(200)
            else:
                self.send_response(301)
                self.send_header("Location", f"http://127.0.0.1:{port}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_tap(
            {"api_key": "k-secret", "api_url": f"http://127.0.0.1:{port}"}, expect_error=True
        )
    finally:
        server.shutdown()

    assert "301" in str(result.error)
    assert "api_url" in str(result.error)
    assert sent_to_target == []


def test_the_api_key_is_cut_from_anything_the_server_echoes(project) -> None:
    import requests as http

    from tap_leadtrackr.tap import TapLeadTrackr

    tap = TapLeadTrackr(config={"api_key": "sk-echoed-123", "api_url": "http://127.0.0.1:9"})
    response = http.Response()
    response.status_code = 400
    response._content = b"<html>Bad request; headers: X-API-Key: sk-echoed-123</html>"
    response.url = "http://127.0.0.1:9/api/leads/getLeads"

    message = tap.streams["leads"].fatal_error_message(response)

    assert "sk-echoed-123" not in message
    assert "<api_key>" in message


def test_an_unreadable_bookmark_in_the_state_is_named(project) -> None:
    state = {
        "bookmarks": {
            "leads": {"replication_key": "createdAt", "replication_key_value": "last tuesday"}
        }
    }
    with Sandbox(project) as server:
        result = run_tap(config_for(server), state=state, expect_error=True)

        assert server.requests == []
    assert "'last tuesday' is not an ISO 8601 timestamp" in str(result.error)
