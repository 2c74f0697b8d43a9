"""Faults: periodic and scripted failures, data changes mid-sync, a revoked key; recording."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tests.sandbox.conftest import JSON, LEAD, LEADS, session_for

LEAD_COUNT = 60


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(Project(generate_leads(LEAD_COUNT, seed=4)), api_key="k") as running:
        yield running


@pytest.fixture
def api(sandbox: Sandbox) -> requests.Session:
    return session_for(sandbox)


def statuses(api: requests.Session, sandbox: Sandbox, count: int) -> list[int]:
    return [api.get(sandbox.url + LEADS, timeout=10).status_code for _ in range(count)]


def test_no_faults_by_default(api, sandbox) -> None:
    assert statuses(api, sandbox, 5) == [200] * 5


def test_rate_limit_every(api, sandbox) -> None:
    sandbox.faults = Faults(rate_limit_every=3)
    responses = [api.get(sandbox.url + LEADS, timeout=10) for _ in range(6)]
    assert [response.status_code for response in responses] == [200, 200, 429, 200, 200, 429]
    limited = responses[2]
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["Content-Type"] == JSON
    assert limited.json() == {"message": "Too many requests"}


@pytest.mark.parametrize("retry_after", [None, "0", "Wed, 21 Oct 2026 07:28:00 GMT"])
def test_retry_after_header(api, sandbox, retry_after: str | None) -> None:
    sandbox.faults = Faults(rate_limit_every=1, retry_after=retry_after)
    response = api.get(sandbox.url + LEADS, timeout=10)
    assert response.status_code == 429
    assert response.headers.get("Retry-After") == retry_after


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_every(api, sandbox, status: int) -> None:
    sandbox.faults = Faults(server_error_every=2, server_error_status=status)
    responses = [api.get(sandbox.url + LEADS, timeout=10) for _ in range(4)]
    assert [response.status_code for response in responses] == [200, status, 200, status]
    assert set(responses[1].json()) == {"message"}


def test_truncated_every(api, sandbox) -> None:
    sandbox.faults = Faults(truncated_every=2)
    full = api.get(sandbox.url + LEADS, timeout=10)
    cut = api.get(sandbox.url + LEADS, timeout=10)
    assert cut.status_code == 200
    assert cut.headers["Content-Type"] == JSON
    assert int(cut.headers["Content-Length"]) == len(cut.content) == len(full.content) // 2
    assert full.content.startswith(cut.content)
    with pytest.raises(requests.JSONDecodeError):
        cut.json()
    # The connection stays usable after a truncated body: Content-Length was honest.
    assert api.get(sandbox.url + LEADS, timeout=10).json() == full.json()


def test_html_every(api, sandbox) -> None:
    sandbox.faults = Faults(html_every=1)
    response = api.get(sandbox.url + LEADS, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.text.startswith("<!DOCTYPE html>")


def test_slow_every_and_latency(api, sandbox) -> None:
    sandbox.faults = Faults(slow_every=2, slow_seconds=0.3)
    assert api.get(sandbox.url + LEADS, timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.get(sandbox.url + LEADS, timeout=0.1)
    sandbox.faults = Faults(latency_ms=80)
    started = time.perf_counter()
    assert api.get(sandbox.url + LEADS, timeout=10).status_code == 200
    assert time.perf_counter() - started >= 0.08


def test_script_overrides_periodic_faults(api, sandbox) -> None:
    full = api.get(sandbox.url + LEADS, timeout=10).content
    sandbox.clear_requests()
    script = {2: "500", 3: "502", 4: "503", 5: "504", 6: "truncated", 7: "html", 8: "slow"}
    script |= {9: "reset", 10: "429"}
    sandbox.faults = Faults(rate_limit_every=1, slow_seconds=0.05, script=script)
    seen: list[tuple[int, str, bytes] | str] = []
    for _ in range(11):
        try:
            response = api.get(sandbox.url + LEADS, timeout=10)
        except requests.ConnectionError:
            seen.append("reset")
            continue
        seen.append((response.status_code, response.headers["Content-Type"], response.content))
    statuses = [item if isinstance(item, str) else item[0] for item in seen]
    assert statuses == [429, 500, 502, 503, 504, 200, 200, 200, "reset", 429, 429]
    assert seen[5] == (200, JSON, full[: len(full) // 2])
    assert seen[6][1] == "text/html; charset=utf-8"
    assert seen[7] == (200, JSON, full)
    assert [(record.number, record.status) for record in sandbox.requests][7:10] == [
        (8, 200),
        (9, 0),
        (10, 429),
    ]


def test_unknown_scripted_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="teapot"):
        Faults(script={1: "teapot"})


def test_faulted_requests_do_not_change_data(api, sandbox) -> None:
    sandbox.faults = Faults(server_error_every=2, rate_limit_every=3, truncated_every=5)
    for _ in range(10):
        api.get(sandbox.url + LEADS, timeout=10)
    assert len(sandbox.project) == LEAD_COUNT
    sandbox.faults = Faults()
    assert api.get(sandbox.url + LEADS, timeout=10).json()["total"] == LEAD_COUNT


def test_insert_after_request(api, sandbox) -> None:
    sandbox.faults = Faults(insert_after_request=2, insert_count=5)
    totals = [api.get(sandbox.url + LEADS, timeout=10).json()["total"] for _ in range(4)]
    assert totals == [LEAD_COUNT, LEAD_COUNT, LEAD_COUNT + 5, LEAD_COUNT + 5]
    newest = api.get(sandbox.url + LEADS, params={"limit": 5}, timeout=10).json()["leads"]
    assert sorted(lead["id"] for lead in newest) == list(range(LEAD_COUNT + 1, LEAD_COUNT + 6))


def test_delete_after_request_shifts_pages(api, sandbox) -> None:
    oldest_first = [lead["id"] for lead in sorted(sandbox.project.leads, key=lambda x: x["id"])]
    sandbox.faults = Faults(delete_after_request=1, delete_count=3)
    seen = []
    for page in (1, 2):
        params = {"sort": "createdAt:asc", "limit": 10, "page": page}
        seen += [lead["id"] for lead in api.get(sandbox.url + LEADS, params=params).json()["leads"]]
    # The first three leads went after page 1, so page 2 starts three leads later:
    # a page-number sync silently skips as many leads as were deleted before its position.
    assert seen[:10] == oldest_first[:10]
    assert seen[10:] == oldest_first[13:23]
    assert len(sandbox.project) == LEAD_COUNT - 3
    assert {lead["id"] for lead in sandbox.project.leads}.isdisjoint(oldest_first[:3])


def test_revoke_key_after_request(api, sandbox) -> None:
    sandbox.faults = Faults(revoke_key_after_request=2)
    responses = [api.get(sandbox.url + LEADS, timeout=10) for _ in range(4)]
    assert [response.status_code for response in responses] == [200, 200, 401, 401]
    assert responses[2].json() == {"message": "Invalid API key"}
    bare = requests.get(sandbox.url + LEADS, timeout=10)
    assert bare.json() == {"message": "Missing X-API-Key header"}


def test_recorded_requests(api, sandbox) -> None:
    api.get(sandbox.url + LEADS, params={"createdAt[gte]": "2026-01-01", "limit": 5}, timeout=10)
    requests.get(sandbox.url + "/health", timeout=10)
    api.get(f"{sandbox.url}{LEAD}?email=zo%C3%AB%2B1%40x.nl", timeout=10)
    first, other, third = sandbox.requests
    assert (first.method, first.path, first.status, first.number) == ("GET", LEADS, 200, 1)
    assert first.params == {"createdAt[gte]": "2026-01-01", "limit": "5"}
    assert first.raw_query == "createdAt%5Bgte%5D=2026-01-01&limit=5"
    assert first.headers["X-API-Key"] == "k"
    assert first.headers["x-api-key"] == "k"
    assert "X-Api-Key" in first.headers
    assert (other.path, other.status, other.number) == ("/health", 404, 0)
    assert third.params == {"email": "zoë+1@x.nl"}
    assert first.received_at <= other.received_at <= third.received_at
    assert (third.number, third.status) == (2, 404)
    with pytest.raises(AttributeError):
        third.status = 200  # type: ignore[misc]


def test_clear_requests_restarts_numbering(api, sandbox) -> None:
    statuses(api, sandbox, 3)
    sandbox.clear_requests()
    assert sandbox.requests == []
    sandbox.faults = Faults(script={1: "503"})
    assert statuses(api, sandbox, 2) == [503, 200]
    assert [record.number for record in sandbox.requests] == [1, 2]


def test_concurrent_requests_are_all_recorded(sandbox) -> None:
    def worker() -> None:
        session = session_for(sandbox)
        for _ in range(10):
            assert session.get(sandbox.url + LEADS, timeout=10).status_code == 200

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(record.number for record in sandbox.requests) == list(range(1, 81))


def test_stop_is_quick_with_open_and_slow_connections() -> None:
    reached = threading.Event()

    class Watched(Faults):
        def is_slow(self, number: int) -> bool:
            if number == 2:
                reached.set()
            return super().is_slow(number)

    sandbox = Sandbox(leads=20, faults=Watched(script={2: "slow"}, slow_seconds=30)).start()
    port = sandbox.url.rsplit(":", 1)[1]
    idle = session_for(sandbox)
    idle.get(sandbox.url + LEADS, timeout=10)  # leaves a keep-alive connection open
    outcome: list[object] = []

    def slow() -> None:
        try:
            outcome.append(session_for(sandbox).get(sandbox.url + LEADS, timeout=10).status_code)
        except requests.RequestException as error:
            outcome.append(error)

    waiting = threading.Thread(target=slow)
    waiting.start()
    assert reached.wait(5)
    started = time.perf_counter()
    sandbox.stop()
    assert time.perf_counter() - started < 2
    waiting.join(5)
    assert outcome
    assert not [thread for thread in threading.enumerate() if f":{port}:" in thread.name]
    sandbox.stop()  # stopping twice is harmless
    with pytest.raises(RuntimeError):
        _ = sandbox.url
