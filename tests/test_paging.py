"""Every lead, exactly once in order, whatever the server does with ties, deletions and paging.

Each test sets up a sandbox that behaves as LeadTrackr's documentation allows (ties in
another order on every request, leads deleted and created between requests, a paging
envelope that contradicts itself) and checks what reached the target, sequentially and
with pages fetched ahead.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest

from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tap_leadtrackr.sending import Sender
from tests.conftest import SyncResult, bookmark_of, config_for, lead_requests, run_tap

# Every test here runs with one request at a time and with four (see `parallelism`).
pytestmark = pytest.mark.usefixtures("parallelism")


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Sender, "sleep", staticmethod(lambda seconds, cancelled: None))
    monkeypatch.setattr(Sender, "pause", staticmethod(lambda seconds, cancelled: None))


def with_bulk_import(count: int, size: int, seed: int) -> Project:
    """A project of `count` leads, `size` of which share one millisecond in the middle."""
    return Project(generate_leads(count, seed=seed, bulk_ties=size))


def ids_of(project: Project) -> set[int]:
    return {lead["id"] for lead in project.leads}


def assert_in_order_with_checkpoints(result: SyncResult) -> None:
    """Records oldest first, and no state ever points past a lead not yet emitted."""
    newest = None
    for message in result.messages:
        if message["type"] == "RECORD":
            created = message["record"]["createdAt"]
            assert newest is None or created >= newest, "a lead older than one before it"
            newest = created
        elif message["type"] == "STATE" and (bookmark := bookmark_of(message["value"])):
            assert newest is not None
            assert bookmark == newest


# Ties in another order on every request. -------------------------------------------------


@pytest.mark.parametrize("tie_order", ["per_request", "per_offset"])
def test_a_bulk_import_larger_than_a_page_arrives_whole_when_ties_move(tie_order) -> None:
    # The case measured before: 250 leads in one millisecond among 2,537.
    project = with_bulk_import(2537, 250, seed=8)
    with Sandbox(project, faults=Faults(tie_order=tie_order)) as server:
        result = run_tap(config_for(server))

    assert Counter(result.ids) == Counter(ids_of(project))
    assert_in_order_with_checkpoints(result)
    assert result.bookmark == max(lead["createdAt"] for lead in project.leads)


@pytest.mark.parametrize("page_size", [2, 7, 100])
def test_small_ties_across_page_boundaries_are_read_whole_when_ties_move(page_size) -> None:
    leads = generate_leads(600, seed=9)  # about one lead in ten shares its millisecond
    with Sandbox(Project(leads), faults=Faults(tie_order="per_request")) as server:
        result = run_tap(config_for(server, page_size=page_size))

    assert sorted(result.ids) == sorted(lead["id"] for lead in leads)
    assert_in_order_with_checkpoints(result)


@pytest.mark.parametrize("parallelism", [1])  # pages ahead would read the group by number
def test_a_server_that_never_returns_some_ties_fails_loudly_and_resumes_at_them(
    monkeypatch, parallelism
) -> None:
    # The one case no client can read: a server whose every answer about one instant,
    # whatever page or order is asked for, is the same first page. The sync stops; the
    # state resumes at that instant.
    from dataclasses import replace

    project = with_bulk_import(600, 150, seed=10)
    instant = Counter(lead["createdAt"] for lead in project.leads).most_common(1)[0][0]
    original = Project.page

    def page(self, query, offset, limit, *args, **kwargs):
        if query.created_gte is not None and query.created_gte == query.created_lte:
            query, offset = replace(query, sort_field="createdAt", descending=False), 0
        return original(self, query, offset, limit, *args, **kwargs)

    monkeypatch.setattr(Project, "page", page)
    with Sandbox(project) as server:
        result = run_tap(config_for(server), expect_error=True)

    assert "150 leads share createdAt" in str(result.error)
    assert instant in str(result.error)
    assert result.bookmark is None or result.bookmark <= instant
    older = {lead["id"] for lead in project.leads if lead["createdAt"] < instant}
    assert older <= set(result.ids)


# Leads deleted and created between requests. ---------------------------------------------


@pytest.mark.parametrize("delete_from", ["oldest", "newest", "middle", "random"])
def test_deletions_balanced_by_creations_lose_no_lead_that_stayed(delete_from) -> None:
    # `total` never moves: only the leads themselves tell that pages shifted.
    project = Project(generate_leads(1500, seed=12))
    before = ids_of(project)
    faults = Faults(
        delete_every=2, delete_count=7, delete_from=delete_from, insert_every=2, insert_count=7
    )
    with Sandbox(project, faults=faults) as server:
        first = run_tap(config_for(server))
        stayed = before & ids_of(server.project)
        server.faults = Faults()
        second = run_tap(config_for(server), state=first.last_state)
        everything_now = ids_of(server.project)

    assert stayed <= set(first.ids)
    assert_in_order_with_checkpoints(first)
    # Leads created during the first run arrive in it or in the next.
    assert everything_now <= set(first.ids) | set(second.ids)


def test_the_40_oldest_deleted_and_40_created_at_one_request_lose_nothing() -> None:
    # The case measured before: every shifted lead was lost, in that run and all later ones.
    project = Project(generate_leads(2000, seed=13))
    faults = Faults(
        delete_after_request=3, delete_count=40, insert_after_request=3, insert_count=40
    )
    with Sandbox(project, faults=faults) as server:
        result = run_tap(config_for(server))
        survivors = ids_of(server.project)
        created = survivors - ids_of(Project(generate_leads(2000, seed=13)))

    assert survivors - created <= set(result.ids)
    assert_in_order_with_checkpoints(result)


def test_leads_leaving_a_status_filter_mid_sync_never_abort_a_long_sync() -> None:
    # A lead rated while the sync reads leaves `statuses=open` exactly like a deletion; a
    # long backfill may see it happen hundreds of times.
    project = Project(generate_leads(3000, seed=14))
    open_before = {lead["id"] for lead in project.leads if lead["status"] == "open"}
    faults = Faults(delete_every=1, delete_count=1, delete_from="random")
    with Sandbox(project, faults=faults) as server:
        result = run_tap(config_for(server, statuses="open", page_size=10))
        open_after = {lead["id"] for lead in server.project.leads if lead["status"] == "open"}

    assert open_before & open_after <= set(result.ids)
    assert len(open_before) > 300


def test_a_filter_leads_can_join_is_read_in_windows_as_in_line(parallelism) -> None:
    # Each window is read by keyset pages, as the whole range is in line: a filter on what
    # changes after creation needs nothing else.
    project = Project(generate_leads(3000, seed=15))
    wanted = [lead["id"] for lead in project.leads if lead["status"] in ("open", "pending")]
    with Sandbox(project) as server:
        result = run_tap(config_for(server, statuses="open,pending", page_size=50))
        cuts = [r for r in lead_requests(server) if r.params["limit"] == "1"]

    assert sorted(result.ids) == sorted(wanted)
    assert_in_order_with_checkpoints(result)
    assert bool(cuts) == (parallelism > 1), "windows start where one-lead pages say"


# A paging envelope that contradicts itself. -----------------------------------------------


def test_a_server_stuck_on_has_more_costs_no_request_more_and_is_named() -> None:
    project = Project(generate_leads(1000, seed=16))
    with Sandbox(project) as server:
        run_tap(config_for(server))
        honest = len(lead_requests(server))
        server.clear_requests()
        server.faults = Faults(has_more="stuck_true")
        result = run_tap(config_for(server))
        stuck = len(lead_requests(server))

    assert sorted(result.ids) == sorted(ids_of(project))
    assert stuck == honest
    assert result.log.count("hasMore: true") == 1


@pytest.mark.parametrize("page_size", [100, 50])
def test_an_empty_page_that_says_has_more_ends_the_stream_with_a_warning(page_size) -> None:
    # 200 leads: the last page is full, so the next one is empty (but for the lead at
    # the bookmark) and still says `hasMore: true`.
    project = Project(generate_leads(200, seed=17))
    with Sandbox(project, faults=Faults(has_more="stuck_true")) as server:
        result = run_tap(config_for(server, page_size=page_size))
        requests = len(lead_requests(server))

    assert sorted(result.ids) == sorted(ids_of(project))
    assert requests <= math.ceil(200 / (page_size - 1)) + 1
    assert result.log.count("the read ends here") == 1


def test_has_more_false_before_the_last_page_leaves_no_hole() -> None:
    project = Project(generate_leads(800, seed=18))
    with Sandbox(project, faults=Faults(has_more="false_early")) as server:
        result = run_tap(config_for(server))

    assert sorted(result.ids) == sorted(ids_of(project))
    assert_in_order_with_checkpoints(result)


@pytest.mark.parametrize(
    ("envelope", "field"), [("total_string", "total"), ("total_pages_null", "totalPages")]
)
def test_an_envelope_of_the_wrong_types_stops_with_a_message_naming_the_field(
    envelope, field
) -> None:
    project = Project(generate_leads(300, seed=19))
    with Sandbox(project, faults=Faults(bad_envelope=envelope)) as server:
        result = run_tap(config_for(server), expect_error=True)

    assert f"`{field}` is a" in str(result.error)
    assert result.records == []
    # The message names fields, never values: a page holds personal data.
    lead = project.leads[0]
    assert lead["email"] not in str(result.error)
    assert lead["email"] not in result.log


# Request budget. -------------------------------------------------------------------------


def without_large_ties(leads: list[dict], page_size: int = 100) -> list[dict]:
    """The leads, with any instant shared by a whole page spread over milliseconds."""
    from tap_leadtrackr.timestamps import format_timestamp, parse_timestamp

    shared = Counter(lead["createdAt"] for lead in leads)
    for instant, count in shared.items():
        if count >= page_size:
            members = [lead for lead in leads if lead["createdAt"] == instant]
            base = parse_timestamp(instant)
            for step, lead in enumerate(members):
                lead["createdAt"] = format_timestamp(
                    base.replace(microsecond=step * 1000 % 1_000_000)
                )
    return sorted(leads, key=lambda lead: lead["createdAt"])


@pytest.mark.parametrize("count", [1, 99, 100, 101, 2537, 10_000])
def test_a_full_sync_costs_at_most_two_percent_more_requests_than_pages(count, parallelism) -> None:
    leads = without_large_ties(generate_leads(count, seed=20))
    with Sandbox(Project(leads)) as server:
        result = run_tap(config_for(server))
        requests = len(lead_requests(server))
        server.clear_requests()
        again = run_tap(config_for(server), state=result.last_state)
        incremental = len(lead_requests(server))

    assert len(result.ids) == count
    if parallelism == 1:
        assert requests <= math.ceil(count / 100) * 1.02 + 1
    assert again.ids == [lead["id"] for lead in leads if lead["createdAt"] == result.bookmark]
    assert incremental == 1
