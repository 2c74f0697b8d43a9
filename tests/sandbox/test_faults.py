"""Faults: periodic and scripted failures, data changes mid-sync, a revoked key; recording."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tests.sandbox.conftest import JSON, LEAD, LEADS, instant, session_for

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


@pytest.mark.parametrize("name", ["tie_order", "has_more", "bad_envelope", "delete_from"])
def test_unknown_choices_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Faults(**{name: "sometimes"})  # type: ignore[arg-type]


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


def totals(api: requests.Session, sandbox: Sandbox, count: int) -> list[int]:
    return [api.get(sandbox.url + LEADS, timeout=10).json()["total"] for _ in range(count)]


def ids_now(sandbox: Sandbox) -> set[int]:
    return {lead["id"] for lead in sandbox.project.leads}


def test_insert_every(api, sandbox) -> None:
    sandbox.faults = Faults(insert_every=2, insert_count=3)
    assert totals(api, sandbox, 6) == [60, 60, 63, 63, 66, 66]
    assert ids_now(sandbox) == set(range(1, LEAD_COUNT + 10))


def test_insert_every_and_once_at_the_same_request_insert_once(api, sandbox) -> None:
    sandbox.faults = Faults(insert_after_request=2, insert_every=2, insert_count=3)
    assert totals(api, sandbox, 3) == [60, 60, 63]


def test_insert_tied_is_a_bulk_import_after_the_newest(api, sandbox) -> None:
    newest = max(instant(lead["createdAt"]) for lead in sandbox.project.leads)
    sandbox.faults = Faults(insert_every=1, insert_count=4, insert_tied=True)
    totals(api, sandbox, 2)
    by_id = {lead["id"]: instant(lead["createdAt"]) for lead in sandbox.project.leads}
    first, second = {by_id[61 + i] for i in range(4)}, {by_id[65 + i] for i in range(4)}
    assert len(first) == len(second) == 1
    assert newest < min(first) < min(second)


def test_delete_every_oldest_newest_and_middle(api, sandbox) -> None:
    by_age = sorted(ids_now(sandbox))  # generated ids are in createdAt order
    sandbox.faults = Faults(delete_every=2, delete_count=5)
    assert totals(api, sandbox, 5) == [60, 60, 55, 55, 50]
    assert ids_now(sandbox) == set(by_age[10:])
    sandbox.faults = Faults(delete_every=1, delete_count=5, delete_from="newest")
    totals(api, sandbox, 1)
    assert ids_now(sandbox) == set(by_age[10:-5])
    sandbox.faults = Faults(delete_every=1, delete_count=5, delete_from="middle")
    totals(api, sandbox, 1)
    left = by_age[10:-5]  # 45 leads: the middle five are the 21st to the 25th
    assert ids_now(sandbox) == set(left[:20] + left[25:])


def test_delete_every_random_is_spread_and_repeatable(sandbox) -> None:
    faults = Faults(delete_every=2, delete_count=4, delete_from="random")
    runs = []
    for _ in range(2):
        with Sandbox(Project(generate_leads(LEAD_COUNT, seed=4)), faults=faults) as fresh:
            assert totals(session_for(fresh), fresh, 6) == [60, 60, 56, 56, 52, 52]
            runs.append(ids_now(fresh))
    assert runs[0] == runs[1]
    deleted = sorted(set(range(1, LEAD_COUNT + 1)) - runs[0])
    assert len(deleted) == 12
    assert deleted != list(range(1, 13))
    assert deleted != list(range(LEAD_COUNT - 11, LEAD_COUNT + 1))
    # Seeded by the request number: the same deletion after another request takes others.
    left = []
    for after in (2, 3):
        faults = Faults(delete_after_request=after, delete_count=4, delete_from="random")
        with Sandbox(Project(generate_leads(LEAD_COUNT, seed=4)), faults=faults) as fresh:
            totals(session_for(fresh), fresh, 3)
            left.append(ids_now(fresh))
    assert len(left[0]) == len(left[1]) == LEAD_COUNT - 4
    assert left[0] != left[1]


@pytest.mark.parametrize("where", ["oldest", "newest", "middle", "random"])
def test_insert_and_delete_at_the_same_request_keep_total(api, sandbox, where: str) -> None:
    newest = max(instant(lead["createdAt"]) for lead in sandbox.project.leads)
    sandbox.faults = Faults(
        insert_every=1, insert_count=2, delete_every=1, delete_count=2, delete_from=where
    )
    assert totals(api, sandbox, 5) == [LEAD_COUNT] * 5
    assert len(sandbox.project) == LEAD_COUNT
    # Deleted first, then created: the last request's new leads all survive, the newest.
    stamps = {lead["id"]: instant(lead["createdAt"]) for lead in sandbox.project.leads}
    last = (LEAD_COUNT + 9, LEAD_COUNT + 10)
    assert set(last) <= set(stamps)
    assert sorted(stamps, key=lambda lead_id: (stamps[lead_id], lead_id))[-2:] == list(last)
    assert stamps[last[0]] > newest
    assert max(stamps) == LEAD_COUNT + 10


def test_balanced_changes_shift_pages_unseen(api, sandbox) -> None:
    by_age = sorted(ids_now(sandbox))
    sandbox.faults = Faults(insert_every=1, insert_count=3, delete_every=1, delete_count=3)
    pages = [
        api.get(sandbox.url + LEADS, params={"sort": "createdAt:asc", "limit": 10, "page": page})
        for page in (1, 2)
    ]
    assert [page.json()["total"] for page in pages] == [LEAD_COUNT, LEAD_COUNT]
    seen = [lead["id"] for page in pages for lead in page.json()["leads"]]
    assert seen == by_age[:10] + by_age[13:23]


def test_rate_limit_storm(api, sandbox) -> None:
    sandbox.faults = Faults(rate_limit_from_request=3, rate_limit_count=4, retry_after="2")
    responses = [api.get(sandbox.url + LEADS, timeout=10) for _ in range(9)]
    assert [response.status_code for response in responses] == [200, 200] + [429] * 4 + [200] * 3
    for response in responses[2:6]:
        assert response.headers["Retry-After"] == "2"
        assert response.json() == {"message": "Too many requests"}
    assert [record.status for record in sandbox.requests] == [r.status_code for r in responses]
    stamps = [record.received_at for record in sandbox.requests]
    assert stamps == sorted(stamps)


def test_rate_limit_storm_with_script_and_periodic_faults(api, sandbox) -> None:
    sandbox.faults = Faults(
        rate_limit_from_request=2,
        rate_limit_count=3,
        server_error_every=3,
        script={3: "503", 6: "429"},
        retry_after=None,
    )
    responses = [api.get(sandbox.url + LEADS, timeout=10) for _ in range(7)]
    # The script wins over the storm, the storm over periodic faults.
    assert [response.status_code for response in responses] == [200, 429, 503, 429, 200, 429, 200]
    assert "Retry-After" not in responses[1].headers


def test_rate_limit_storm_counts_zero_is_off(api, sandbox) -> None:
    sandbox.faults = Faults(rate_limit_from_request=1, rate_limit_count=0)
    assert statuses(api, sandbox, 3) == [200] * 3


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


def test_leads_stamped_in_the_past_land_between_the_oldest_and_the_newest() -> None:
    project = Project(generate_leads(200, seed=41))
    before = {lead["id"]: lead["createdAt"] for lead in project.leads}
    oldest, newest = min(before.values()), max(before.values())
    faults = Faults(insert_every=1, insert_count=2, insert_stamp="past")
    with Sandbox(project, faults=faults) as server:
        session = requests.Session()
        session.headers["X-API-Key"] = server.api_key
        for _ in range(5):
            session.get(server.url + "/api/leads/getLeads", timeout=10).raise_for_status()
    added = [lead for lead in project.leads if lead["id"] not in before]
    assert len(added) == 10
    assert all(oldest <= lead["createdAt"] <= newest for lead in added)
    assert len({lead["createdAt"] for lead in added}) > 1
    assert max(lead["id"] for lead in added) > max(before)


def test_deletions_from_the_tied_group_take_only_its_leads() -> None:
    project = Project(generate_leads(400, seed=42, bulk_ties=120))
    groups: dict[str, list[int]] = {}
    for lead in project.leads:
        groups.setdefault(lead["createdAt"], []).append(lead["id"])
    tied = max(groups.values(), key=len)
    faults = Faults(delete_every=1, delete_count=3, delete_from="tied")
    with Sandbox(project, faults=faults) as server:
        session = requests.Session()
        session.headers["X-API-Key"] = server.api_key
        for _ in range(4):
            session.get(server.url + "/api/leads/getLeads", timeout=10).raise_for_status()
    gone = {lead_id for ids in groups.values() for lead_id in ids} - {
        lead["id"] for lead in project.leads
    }
    assert len(gone) == 12
    assert gone <= set(tied)


def test_leads_inserted_tied_join_the_instant_the_most_leads_share() -> None:
    project = Project(generate_leads(400, seed=43, bulk_ties=120))
    counts: dict[str, int] = {}
    for lead in project.leads:
        counts[lead["createdAt"]] = counts.get(lead["createdAt"], 0) + 1
    busiest = max(counts, key=counts.__getitem__)
    before = {lead["id"] for lead in project.leads}
    faults = Faults(insert_every=1, insert_count=2, insert_stamp="tied")
    with Sandbox(project, faults=faults) as server:
        session = requests.Session()
        session.headers["X-API-Key"] = server.api_key
        for _ in range(3):
            session.get(server.url + "/api/leads/getLeads", timeout=10).raise_for_status()
    added = [lead for lead in project.leads if lead["id"] not in before]
    assert len(added) == 6
    assert {lead["createdAt"] for lead in added} == {busiest}


def test_ratings_between_requests_toggle_statuses_in_the_largest_tie_group() -> None:
    project = Project(generate_leads(400, seed=43, bulk_ties=120))
    groups: dict[str, list[int]] = {}
    for lead in project.leads:
        groups.setdefault(lead["createdAt"], []).append(lead["id"])
    tied = set(max(groups.values(), key=len))
    before = {lead["id"]: lead["status"] for lead in project.leads}
    with Sandbox(project, faults=Faults(rate_every=2, rate_count=5)) as server:
        session = requests.Session()
        session.headers["X-API-Key"] = server.api_key
        for _ in range(4):
            session.get(server.url + "/api/leads/getLeads", timeout=10).raise_for_status()
    after = {lead["id"]: lead["status"] for lead in project.leads}
    changed = {lead_id for lead_id in before if before[lead_id] != after[lead_id]}
    assert 5 <= len(changed) <= 10
    assert changed <= tied
    assert all((before[i] == "open") == (after[i] == "lost") for i in changed)
    assert all(after[i] in ("open", "lost") for i in changed)
