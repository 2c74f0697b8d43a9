"""The reader alone (`paging.py`): handed a fetch that asks the sandbox in this process.

No HTTP and no tap: what is checked is only which pages the reader asks for, and that
what it yields is every lead there all along, once, oldest first. Fast enough to run
under mutation testing.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import typing as t
from collections import Counter
from dataclasses import replace

import pytest

from tap_leadtrackr.paging import (
    NAME_FIELDS,
    TIE_ORDERS,
    TIE_PASSES,
    Cursor,
    InstantProof,
    Page,
    PageRequest,
    Pages,
    UnreadableInstantError,
    read_instant,
    read_keyset,
    read_range,
    read_windows,
    served_page_size,
    sort_value,
    window_cuts,
    windows,
)
from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tap_leadtrackr.sandbox.server import LEADS_PATH
from tap_leadtrackr.sending import FetchCancelledError


class API:
    """The sandbox answering in this process, with every request it was asked."""

    def __init__(self, project: Project, faults: Faults | None = None) -> None:
        self.sandbox = Sandbox(project, faults=faults)
        self.asked: list[PageRequest] = []
        self.lock = threading.Lock()
        self.logged: list[str] = []
        self.levels: list[int] = []

    def fetch(self, ask: PageRequest, cancelled: threading.Event | None = None) -> Page:
        params = {"page": ask.page, "limit": ask.limit, "sort": ask.sort}
        if ask.since is not None:
            params["createdAt[gte]"] = ask.since
        if ask.until is not None:
            params["createdAt[lte]"] = ask.until
        with self.lock:
            self.asked.append(ask)
        status, body = self.sandbox.answer(LEADS_PATH, params)
        assert status == 200, body
        data = json.loads(body)
        return Page(
            ask, data["leads"], data["total"], data["totalPages"], data["hasMore"], data["limit"]
        )

    def log(self, message: str, *args: object, level: int = logging.INFO) -> None:
        self.logged.append(message % args)
        self.levels.append(level)

    def pages(self, page_size: int = 100) -> Pages:
        return Pages(self.fetch, page_size, self.log)

    def instant_asks(self) -> list[PageRequest]:
        return [ask for ask in self.asked if ask.since is not None and ask.since == ask.until]


def everything(api: API, pages: t.Iterable[list[dict]]) -> list[dict]:
    return [lead for page in pages for lead in page]


def assert_each_once_in_order(leads: list[dict], expected_ids: set[int]) -> None:
    ids = [lead["id"] for lead in leads]
    assert len(ids) == len(set(ids)), "a lead came twice"
    assert set(ids) >= expected_ids, f"missing {sorted(expected_ids - set(ids))[:5]}"
    created = [lead["createdAt"] for lead in leads]
    assert created == sorted(created)


def tied_project(count: int, tied: int, seed: int, **fields: object) -> tuple[Project, str]:
    leads = generate_leads(count, seed=seed, bulk_ties=tied)
    instant = Counter(lead["createdAt"] for lead in leads).most_common(1)[0][0]
    for lead in leads:
        if lead["createdAt"] == instant:
            lead.update(fields)
    return Project(leads), instant


# Keyset pages. --------------------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 2, 7, 50, 100])
def test_keyset_pages_yield_every_lead_once_oldest_first(page_size) -> None:
    project = Project(generate_leads(400, seed=1))
    api = API(project)
    leads = everything(api, read_keyset(api.pages(page_size), None, None))
    assert_each_once_in_order(leads, {lead["id"] for lead in project.leads})
    assert len(leads) == 400
    # Page 1 from the last instant each time: no page number is ever trusted.
    assert {ask.page for ask in api.asked if ask.since != ask.until} == {1}


def test_keyset_pages_cost_one_request_a_page_and_one_more() -> None:
    # Each page re-reads its last lead only; the one instant shared by more leads than a
    # page holds (a CRM import) costs the pages it fills, and one more.
    project = Project(generate_leads(1000, seed=2))
    tied = max(Counter(lead["createdAt"] for lead in project.leads).values())
    api = API(project)
    everything(api, read_keyset(api.pages(), None, None))
    assert len(api.asked) <= math.ceil(1000 / 99) + 1 + math.ceil(tied / 100) + 1
    assert len(api.instant_asks()) == math.ceil(tied / 100)


def test_keyset_pages_stay_within_the_range() -> None:
    project = Project(generate_leads(600, seed=3))
    created = sorted(lead["createdAt"] for lead in project.leads)
    since, until = created[100], created[450]
    api = API(project)
    leads = everything(api, read_keyset(api.pages(50), since, until))
    expected = {lead["id"] for lead in project.leads if since <= lead["createdAt"] <= until}
    assert {lead["id"] for lead in leads} == expected
    assert all(ask.since >= since and ask.until == until for ask in api.asked)


def test_a_page_that_is_not_full_ends_the_read_whatever_the_envelope_says() -> None:
    project = Project(generate_leads(250, seed=4))
    api = API(project, Faults(has_more="stuck_true", overstate_total=1))
    leads = everything(api, read_keyset(api.pages(), None, None))
    assert len(leads) == 250
    # The last page says more follow: two requests check, without an offset, that none do:
    # page 1 after its last instant, and that instant by email.
    assert len(api.asked) <= 5
    assert api.logged == [
        "LeadTrackr said more leads follow (`hasMore: true`, `total` 53) on a page of 52 "
        "leads where it serves 100: the read ends here, as the page is not full."
    ]
    assert api.levels == [logging.WARNING]


def test_a_full_last_page_is_followed_by_one_that_shows_the_end() -> None:
    project = Project(generate_leads(200, seed=5))
    api = API(project, Faults(has_more="false_early"))
    leads = everything(api, read_keyset(api.pages(), None, None))
    assert len(leads) == 200
    assert len(api.asked) == 3


# The server's page size. ----------------------------------------------------------------------


def test_a_cap_shown_by_short_pages_is_learned_once_and_asked_for() -> None:
    project = Project(generate_leads(500, seed=6))
    api = API(project, Faults(page_cap=40))
    pages = api.pages(100)
    leads = everything(api, read_keyset(pages, None, None))
    assert len(leads) == 500
    assert pages.size == 40
    assert api.logged == [
        "LeadTrackr serves 40 leads a page where 100 were asked for; asking for 40 from now on."
    ]
    assert api.levels == [logging.WARNING]
    assert pages.first_total == 500
    assert [ask.limit for ask in api.asked[:2]] == [100, 100]
    assert {ask.limit for ask in api.asked[2:]} == {40}


def test_a_cap_said_in_the_envelope_is_taken_at_its_word() -> None:
    page = Page(PageRequest(limit=100), [{"id": 1}] * 30, 500, 17, True, 30)
    assert served_page_size(page) == 30
    assert served_page_size(Page(PageRequest(limit=100), [], 500, 17, True, 1)) == 1
    assert served_page_size(Page(PageRequest(limit=100), [], 500, 17, True, 0)) is None


def test_a_cap_is_confirmed_by_the_leads_after_the_short_page() -> None:
    # Two pages of 40 and 30: the page after the first holds leads, the one after it not.
    project = Project(generate_leads(70, seed=8))
    api = API(project, Faults(page_cap=40))
    leads = everything(api, read_keyset(api.pages(), None, None))
    assert len(leads) == 70
    first, probe = api.asked[:2]
    assert (first.page, first.limit, first.since) == (1, 100, None)
    # Page 1 of the leads after the short page's last instant, not page 2 (an offset).
    assert (probe.page, probe.limit, probe.sort) == (1, 100, "createdAt:asc")
    assert probe.since is not None
    assert probe.since > project.leads[39]["createdAt"]


def test_a_short_page_is_taken_for_the_last_only_when_its_count_agrees() -> None:
    lead = {"id": 1, "createdAt": "2026-01-01T00:00:00.000Z"}
    ask = PageRequest(limit=100, page=3)
    assert served_page_size(Page(ask, [lead] * 30, 230, 3, False, 100)) is None
    # A `total` beyond it or short of the leads already served: more leads are looked for
    # (`Pages.confirms_cap`) before the short page ends anything; `hasMore` plays no part.
    assert served_page_size(Page(ask, [lead] * 30, 231, 3, True, 100)) == 30
    assert served_page_size(Page(ask, [lead] * 30, 231, 3, False, 100)) == 30
    assert served_page_size(Page(ask, [lead] * 30, 201, 3, False, 100)) == 30
    assert served_page_size(Page(ask, [lead] * 30, 230, 3, True, 100)) is None
    assert served_page_size(Page(ask, [lead], 231, 3, True, 100)) == 1
    assert served_page_size(Page(ask, [], 500, 5, True, 100)) is None
    assert served_page_size(Page(ask, [lead] * 100, 500, 5, True, None)) is None


@pytest.mark.parametrize("cap_envelope", ["served", "asked"])
@pytest.mark.parametrize("parallelism", [1, 4])
def test_a_cap_is_confirmed_by_leads_no_deletion_can_move(cap_envelope, parallelism) -> None:
    # 50 leads, the server serves 40 a page (`hasMore` from the limit asked for, or from
    # the cap), and the 10 oldest are deleted after page 1: page 2 would now be empty,
    # though the 10 newest were never read.
    leads = generate_leads(50, seed=12)
    faults = Faults(page_cap=40, cap_envelope=cap_envelope, delete_after_request=1, delete_count=10)
    api = API(Project(leads), faults)
    pages = api.pages(100)
    read = everything(api, read_windows(pages, None, None, parallelism))
    assert {lead["id"] for lead in leads[10:]} <= {lead["id"] for lead in read}
    assert pages.cap == 40


@pytest.mark.parametrize("deleted", [0, 20])
def test_an_instant_read_in_pages_the_server_caps_is_read_whole(deleted) -> None:
    # Keyset pages of 50 are full; the server caps at 70 the instant's pages of 100 (90
    # leads; `hasMore` false, from the limit asked for), and 20 of the instant may be
    # deleted as it is read: a short page 1 is no proof.
    project, instant = tied_project(600, 90, seed=5)
    before = {lead["id"] for lead in project.leads if lead["createdAt"] == instant}
    faults = Faults(
        page_cap=70,
        cap_envelope="asked",
        delete_after_request=3,
        delete_count=deleted,
        delete_from="tied",
    )
    api = API(project, faults)
    read = everything(api, read_range(api.pages(50), instant, None, 1))
    stayed = before & {lead["id"] for lead in project.leads}
    assert stayed <= {lead["id"] for lead in read}


@pytest.mark.parametrize("page_size", [1, 100])
def test_a_cap_behind_an_understated_count_is_still_learned(page_size) -> None:
    # 35 leads share each instant; the server serves 7 a page and counts 30 too few, so
    # `hasMore` is false on page 1 of every instant: only the count short of the page
    # itself shows that it is not the last.
    leads = generate_leads(350, seed=9)
    for number, lead in enumerate(leads):
        lead["createdAt"] = f"2026-01-01T00:00:{number // 35:02d}.000Z"
    api = API(Project(leads), Faults(page_cap=7, understate_total=30))
    pages = api.pages(page_size)
    read = everything(api, read_keyset(pages, None, None))
    assert_each_once_in_order(read, {lead["id"] for lead in leads})
    assert pages.cap == 7


def test_an_overstated_count_teaches_no_smaller_page_size() -> None:
    project = Project(generate_leads(230, seed=7))
    api = API(project, Faults(overstate_total=5000))
    pages = api.pages(100)
    assert len(everything(api, read_keyset(pages, None, None))) == 230
    assert pages.size == 100


# Cursor. ---------------------------------------------------------------------------------------


def test_the_cursor_drops_the_leads_it_emitted_at_its_instant_only() -> None:
    a, b = "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.001Z"
    cursor = Cursor(None)
    assert [
        x["id"] for x in cursor.take([{"id": 1, "createdAt": a}, {"id": 2, "createdAt": b}])
    ] == [
        1,
        2,
    ]
    assert (cursor.at, cursor.ids) == (b, {2})
    again = [{"id": 2, "createdAt": b}, {"id": 3, "createdAt": b}, {"id": 4, "createdAt": b}]
    assert [x["id"] for x in cursor.take(again)] == [3, 4]
    assert cursor.ids == {2, 3, 4}
    cursor.step_past(b)
    assert (cursor.at, cursor.ids) == ("2026-01-01T00:00:00.002Z", set())
    assert cursor.take([]) == []


# A shared instant. ------------------------------------------------------------------------------


def read_the_instant(api: API, instant: str, page_size: int = 100) -> list[dict]:
    # `page_size` does not matter: an instant is read in the largest pages.
    return everything(api, read_instant(api.pages(page_size), instant, Cursor(None)))


def test_a_stable_order_reads_an_instant_in_as_many_pages_as_it_fills() -> None:
    project, instant = tied_project(600, 250, seed=10)
    api = API(project)
    leads = read_the_instant(api, instant)
    assert {lead["id"] for lead in leads} == {
        lead["id"] for lead in project.leads if lead["createdAt"] == instant
    }
    assert len(api.asked) == 3


def test_an_instant_that_fits_a_page_takes_one_request() -> None:
    project, instant = tied_project(300, 60, seed=11)
    api = API(project, Faults(tie_order="per_request"))
    assert len(read_the_instant(api, instant)) == 60
    assert len(api.asked) == 1


def test_an_order_that_changes_with_the_offset_moves_the_read_to_the_next_order() -> None:
    project, instant = tied_project(600, 250, seed=12)
    api = API(project, Faults(tie_order="per_offset"))
    leads = read_the_instant(api, instant)
    assert len({lead["id"] for lead in leads}) == 250
    sorts = [ask.sort for ask in api.asked]
    assert sorts[:3] == ["createdAt:asc"] * 3
    assert sorts[3] == TIE_ORDERS[1]


def test_a_second_order_reads_backwards_from_the_last_page_the_first_found() -> None:
    project, instant = tied_project(600, 250, seed=12)
    api = API(project, Faults(tie_order="per_offset"))
    read_the_instant(api, instant)
    second = [(ask.page, ask.limit) for ask in api.asked if ask.sort == TIE_ORDERS[1]]
    assert second == [(3, 100), (2, 100), (1, 100)]


@pytest.mark.parametrize("every", [1, 2, 3])
@pytest.mark.parametrize("tie_order", ["fixed", "per_offset", "per_request"])
def test_deletions_while_an_instant_is_read_lose_no_lead_that_stayed(every, tie_order) -> None:
    project, instant = tied_project(600, 250, seed=13 + every)
    before = {lead["id"] for lead in project.leads if lead["createdAt"] == instant}
    faults = Faults(delete_every=every, delete_count=1, delete_from="tied", tie_order=tie_order)
    api = API(project, faults)
    leads = read_the_instant(api, instant)
    stayed = before & {lead["id"] for lead in project.leads}
    assert stayed <= {lead["id"] for lead in leads}
    assert len(leads) == len({lead["id"] for lead in leads})


def test_an_instant_no_answer_shows_whole_fails_after_every_pass() -> None:
    alike = {"email": None, "firstName": None, "lastName": None, "price": None, "status": "open"}
    project, instant = tied_project(600, 250, seed=17, **alike)
    faults = Faults(tie_order="per_request", delete_every=1, delete_count=1, delete_from="tied")
    api = API(project, faults)
    with pytest.raises(UnreadableInstantError, match=f"createdAt {instant}") as failed:
        read_the_instant(api, instant)
    assert f"after {len(api.asked)} requests in every order" in str(failed.value)
    firsts = [ask.sort for ask in api.asked if ask.page == 1]
    assert firsts == list(TIE_ORDERS) * TIE_PASSES
    # Each pass asks at most as many pages as the leads seen fill, plus two, twice.
    assert len(api.asked) <= TIE_PASSES * len(TIE_ORDERS) * 2 * (math.ceil(250 / 100) + 2)


def test_an_overstated_count_on_an_instant_is_shown_whole_by_a_backward_pass() -> None:
    project, instant = tied_project(600, 250, seed=18)
    api = API(project, Faults(overstate_total=10_000))
    assert len(read_the_instant(api, instant)) == 250
    assert len(api.asked) <= 10


def test_a_server_that_sends_the_same_page_again_is_not_walked_forever() -> None:
    project, instant = tied_project(600, 250, seed=19)
    api = API(project)
    original = api.fetch

    asked: list[PageRequest] = []

    def first_page_only(ask: PageRequest, cancelled=None) -> Page:
        asked.append(ask)
        return original(
            PageRequest(since=ask.since, until=ask.until, sort=ask.sort, limit=ask.limit), cancelled
        )

    api.fetch = first_page_only  # type: ignore[method-assign]
    with pytest.raises(UnreadableInstantError):
        read_the_instant(api, instant)
    assert [ask.sort for ask in asked if ask.page == 1] == list(TIE_ORDERS) * TIE_PASSES
    # The same leads on every page of an order: a pass stops one page past what the
    # leads seen fill.
    assert len(api.asked) <= TIE_PASSES * len(TIE_ORDERS) * (math.ceil(250 / 100) + 1)


# What shows an instant whole. --------------------------------------------------------------------


def page_of(values: list[object], *, page: int = 1, limit: int = 4, total: int = 99) -> Page:
    leads = [
        {"id": index, "createdAt": "2026-01-01T00:00:00.000Z", "email": value}
        for index, value in enumerate(values, start=page * 100)
    ]
    return Page(PageRequest(page=page, limit=limit, sort="email:asc"), leads, total, 9, True)


def test_pages_parted_by_different_values_show_no_lead_slipped_between() -> None:
    proof = InstantProof()
    assert proof.parts(page_of(["a", "b", "c", "d"]), page_of(["e", "f"], page=2), "email")
    assert not proof.parts(page_of(["a", "b", "c", "d"]), page_of(["d", "f"], page=2), "email")
    # Case, accents and marks may compare equal on a server.
    assert not proof.parts(page_of(["a", "b", "c", "Dé"]), page_of(["de", "f"], page=2), "email")
    # A page in front that is not full, or an empty page after it, leaves no room.
    assert proof.parts(page_of(["a", "b", "d"]), page_of(["d", "f"], page=2), "email")
    assert proof.parts(page_of(["a", "b", "c", "d"]), page_of([], page=2), "email")


def test_a_value_seen_whole_on_one_page_parts_two_pages_that_share_it() -> None:
    proof = InstantProof()
    before, after = page_of(["a", "b", "c", "d"]), page_of(["d", "f"], page=2)
    proof.note_runs(page_of(["c", "d", "e", "f"], page=3), "email", ended=False)
    assert proof.parts(before, after, "email")


@pytest.mark.parametrize(
    ("values", "page", "ended", "whole"),
    [
        (["c", "d", "e", "f"], 3, False, {"d", "e"}),
        (["c", "d", "e", "f"], 1, False, {"c", "d", "e"}),
        (["c", "d", "e"], 3, True, {"d", "e"}),
        (["d", "d", "d", "d"], 3, False, set()),
        (["d", "d", "d", "d"], 1, True, {"d"}),
    ],
)
def test_a_run_is_whole_with_another_value_or_an_end_on_each_side(values, page, ended, whole):
    proof = InstantProof()
    proof.note_runs(page_of(values, page=page), "email", ended=ended)
    assert proof.whole["email"] == whole


def test_runs_are_noted_for_names_only() -> None:
    proof = InstantProof()
    proof.note_runs(page_of(["c", "d", "e", "f"], page=3), "status", ended=False)
    assert "status" not in proof.whole
    assert {"email", "lastName", "firstName"} == NAME_FIELDS


def test_a_run_of_answers_shows_an_instant_whole_once_it_holds_the_length_a_pass_showed():
    proof = InstantProof()
    first = page_of(["a", "b", "c", "d"], page=1, total=99)
    again = page_of(["c", "e"], page=2, total=99)
    again.records[0]["id"] = first.records[2]["id"]
    # Neither `total` (here overstated) nor a page alone says how many there are.
    assert not proof.take(first, "email", ended=False)
    assert not proof.take(again, "email", ended=True)
    # Pages 1 and 2 show a list of 6, of which the run holds 5: not yet.
    assert not proof.take_pass([first, again])
    assert proof.length == 6
    assert proof.take(page_of(["f"], page=2, total=99), "email", ended=True)
    # Another total starts the run again, and forgets the length.
    assert not proof.take(page_of(["g"], page=3, total=98), "email", ended=True)
    assert proof.length is None
    # An understated total does not end the read early either.
    proof = InstantProof()
    assert not proof.take(page_of(["a", "b", "c", "d"], page=1, total=3), "email", ended=False)


def test_pages_that_share_no_lead_split_the_list_between_them() -> None:
    first, second = page_of(["a", "b", "c", "d"], total=6), page_of(["e", "f"], page=2, total=6)

    def shows(pages: list) -> bool:
        proof = InstantProof()
        for page in pages:
            if page is not None:
                proof.take(page, "email", ended=False)
        return proof.take_pass(pages)

    assert shows([first, second])
    # A page missing, read twice over (a lead on two), of another total or too short.
    assert not shows([first, None])
    assert not shows([])
    again = page_of(["d", "f"], page=2, total=6)
    again.records[0]["id"] = first.records[-1]["id"]
    assert not shows([first, again])
    assert not shows([first, page_of(["e", "f"], page=2, total=7)])
    assert not shows([page_of(["a", "b", "c"], total=6), second])
    assert not shows([first, page_of(["e", "f", "g", "h"], page=2, total=6)])
    assert shows([page_of(["a"], total=6)])


def test_an_overstated_count_and_ties_on_every_name_are_shown_whole_by_one_clean_pass() -> None:
    # No name tells the leads apart and `total` is wrong: a pass whose pages share no
    # lead still splits the list between them.
    alike = {"email": None, "firstName": None, "lastName": None}
    project, instant = tied_project(700, 250, seed=33, **alike)
    api = API(project, Faults(overstate_total=500))
    assert len(read_the_instant(api, instant)) == 250
    assert len(api.asked) <= 4


def test_an_instant_is_read_in_the_largest_pages_whatever_the_page_size() -> None:
    project, instant = tied_project(400, 60, seed=34)
    api = API(project, Faults(tie_order="per_offset"))
    assert len(read_the_instant(api, instant, page_size=1)) == 60
    assert [(ask.page, ask.limit) for ask in api.asked] == [(1, 100)]


def assert_read_whole_or_refused(api: API, instant: str, page_size: int = 100) -> None:
    """Every lead of `instant` that is still there was yielded, or the read said it could not."""
    before = {lead["id"] for lead in api.sandbox.project.leads if lead["createdAt"] == instant}
    try:
        read = everything(api, read_instant(api.pages(page_size), instant, Cursor(None)))
    except UnreadableInstantError:
        return
    stayed = before & {lead["id"] for lead in api.sandbox.project.leads}
    missed = stayed - {lead["id"] for lead in read}
    assert not missed, (
        f"read_instant returned after {len(api.asked)} requests "
        f"({[(ask.sort, ask.page) for ask in api.asked]}) without lead(s) {sorted(missed)}, "
        "which existed throughout"
    )


@pytest.mark.parametrize(("tie_order", "seed"), [("per_offset", 0), ("per_request", 1)])
def test_an_understated_total_ends_a_read_of_pages_in_two_orders_early(tie_order, seed) -> None:
    # The count is 30 short (a cached count). The first order's pages overlap (ties change
    # with the request); the run of one `total` goes on into the second order's pages and
    # reaches 220 distinct leads with pages of the second order still unread.
    project, instant = tied_project(600, 250, seed=seed)
    faults = Faults(understate_total=30, tie_order=tie_order)
    assert_read_whole_or_refused(API(project, faults), instant)


INSTANT = "2026-05-05T10:00:00.000Z"


def case_variant_emails(shift: int) -> Project:
    """15 leads of one instant whose emails a case-sensitive (binary) collation splits.

    In the server's order: A0..A3, the pair "Bob@x.com", a00..a04, "bob@x.com", d00..d02.
    With pages of 5, the pair straddles pages 1 and 2, and "bob@x.com" is alone mid-page 3.
    """
    leads = generate_leads(15 + shift, seed=1)[shift:]
    emails = [
        *(f"A{i}@x.com" for i in range(4)),
        "Bob@x.com",
        "Bob@x.com",
        *(f"a{i:02d}@x.com" for i in range(5)),
        "bob@x.com",
        *(f"d{i:02d}@x.com" for i in range(3)),
    ]
    for lead, email in zip(leads, emails, strict=True):
        lead.update(createdAt=INSTANT, email=email)
    return Project(leads)


@pytest.mark.parametrize("shift", [1, 6])
def test_a_case_sensitive_collation_makes_a_value_seen_whole_that_was_not(shift) -> None:
    # No lead changes. The server orders emails byte by byte (MongoDB's and PostgreSQL's
    # "C" default), serves 5 a page, and reorders equal ones on every request. "bob@x.com"
    # seen alone mid-page must not count for "Bob@x.com", whose pair straddles pages 1
    # and 2 and may swap between the two requests.
    api = API(case_variant_emails(shift), Faults(tie_order="per_request", page_cap=5))
    for _ in range(shift):
        # Other requests first: the server's reordering follows its request count.
        api.sandbox.answer("/api/leads/getLeads", {"limit": 1})
    assert_read_whole_or_refused(api, INSTANT)


def test_a_range_that_ends_on_a_shared_instant_asks_for_no_empty_range() -> None:
    # A strict server may answer 400 to `createdAt[gte]` after `createdAt[lte]`.
    project, instant = tied_project(600, 250, seed=1)
    api = API(project)
    leads = everything(api, read_keyset(api.pages(100), None, instant))
    assert len(leads) == len([lead for lead in project.leads if lead["createdAt"] <= instant])
    assert not [ask for ask in api.asked if ask.since and ask.until and ask.since > ask.until]


def test_sort_values_compare_as_loosely_as_a_collation_might() -> None:
    assert sort_value("Émile.B@x.com") == sort_value("emileb@X.COM ")
    assert [sort_value(""), sort_value("  "), sort_value(None)] == [None, None, None]
    assert sort_value(100) == sort_value(100.0)
    assert sort_value("a") != sort_value("b")


# Windows. ---------------------------------------------------------------------------------------


def test_windows_yield_what_keyset_pages_yield_in_the_same_order() -> None:
    project = Project(generate_leads(5000, seed=20))
    api = API(project)
    in_line = everything(api, read_keyset(api.pages(50), None, None))
    api = API(project)
    windows = everything(api, read_windows(api.pages(50), None, None, 4))
    assert [lead["id"] for lead in windows] == [lead["id"] for lead in in_line]


def test_windows_cost_two_requests_each_more_than_keyset_pages() -> None:
    project = Project(generate_leads(10_000, seed=21))
    api = API(project)
    everything(api, read_keyset(api.pages(), None, None))
    in_line = len(api.asked)
    api = API(project)
    everything(api, read_windows(api.pages(), None, None, 4))
    cuts = [ask for ask in api.asked if ask.limit == 1]
    assert len(cuts) == 3
    assert len(api.asked) <= in_line + 2 * (len(cuts) + 1)


def test_window_cuts_follow_the_count_and_rise() -> None:
    project = Project(generate_leads(12_000, seed=22))
    api = API(project)
    pages = api.pages()
    first = pages.get(since=None, until=None)
    cuts = window_cuts(pages, first, None, None, 4)
    # 12,000 leads: 8 windows of 1,500 (two rounds of four), each under 25 pages.
    assert len(cuts) == 7
    assert cuts == sorted(set(cuts))
    assert cuts[0] > first.records[-1]["createdAt"]


@pytest.mark.parametrize(("count", "cuts"), [(800, 1), (1500, 2), (3999, 3), (4000, 3)])
def test_windows_are_as_many_as_whole_pages_allow(count, cuts) -> None:
    # At least MIN_WINDOW_PAGES pages a window, and as many as `parallelism` at most.
    api = API(Project(generate_leads(count, seed=28)))
    pages = api.pages()
    assert len(window_cuts(pages, pages.get(since=None, until=None), None, None, 4)) == cuts


def test_windows_stay_within_the_range() -> None:
    project = Project(generate_leads(6000, seed=29))
    created = sorted(lead["createdAt"] for lead in project.leads)
    since, until = created[500], created[5200]
    api = API(project)
    leads = everything(api, read_windows(api.pages(50), since, until, 4))
    expected = [
        lead["id"]
        for lead in sorted(project.leads, key=lambda lead: lead["createdAt"])
        if since <= lead["createdAt"] <= until
    ]
    assert sorted(lead["id"] for lead in leads) == sorted(expected)
    assert all(since <= ask.since and ask.until is not None for ask in api.asked if ask.since)
    assert all(ask.until <= until for ask in api.asked if ask.until)
    assert all(ask.since is not None for ask in api.asked)


def test_a_tie_group_from_the_first_page_across_every_cut_makes_no_window() -> None:
    # The first page ends inside a group of 2,700 leads of one millisecond, and every
    # window start falls in it: a window starting there would read its leads again.
    leads = sorted(generate_leads(3000, seed=30), key=lambda lead: lead["createdAt"])
    for lead in leads[99:2800]:
        lead["createdAt"] = leads[99]["createdAt"]
    project = Project(leads)
    api = API(project)
    read = everything(api, read_windows(api.pages(), None, None, 4))
    assert_each_once_in_order(read, {lead["id"] for lead in leads})
    assert len(read) == 3000


def test_a_tie_group_across_two_cuts_makes_no_empty_window() -> None:
    leads = sorted(generate_leads(4000, seed=31), key=lambda lead: lead["createdAt"])
    for lead in leads[900:2200]:
        lead["createdAt"] = leads[900]["createdAt"]
    api = API(Project(leads))
    read = everything(api, read_windows(api.pages(), None, None, 4))
    assert_each_once_in_order(read, {lead["id"] for lead in leads})
    assert all(ask.since <= ask.until for ask in api.asked if ask.since and ask.until)


def test_a_window_waits_while_its_pages_are_not_taken(monkeypatch) -> None:
    # Threads hold at most WINDOW_PAGES pages not yet yielded, and lose none of them.
    monkeypatch.setattr(windows, "WINDOW_PAGES", 2)
    project = Project(generate_leads(3000, seed=32))
    api = API(project)
    read = []
    for leads in read_windows(api.pages(50), None, None, 4):
        time.sleep(0.06)
        read.extend(leads)
    assert_each_once_in_order(read, {lead["id"] for lead in project.leads})


def test_no_windows_for_a_range_of_a_few_pages() -> None:
    project = Project(generate_leads(350, seed=23))
    api = API(project)
    pages = api.pages()
    assert window_cuts(pages, pages.get(since=None, until=None), None, None, 4) == []


def test_window_cuts_stop_at_the_first_that_finds_no_lead() -> None:
    project = Project(generate_leads(900, seed=24))
    api = API(project, Faults(overstate_total=1_000_000))
    pages = api.pages()
    first = pages.get(since=None, until=None)
    window_cuts(pages, first, None, None, 4)
    assert len([ask for ask in api.asked if ask.limit == 1]) <= 4


@pytest.mark.parametrize("tie_order", ["fixed", "per_offset"])
def test_a_tie_group_across_a_window_cut_is_read_whole(tie_order) -> None:
    project, instant = tied_project(2000, 150, seed=25)
    api = API(project, Faults(tie_order=tie_order))
    leads = everything(api, read_windows(api.pages(50), None, None, 4))
    assert_each_once_in_order(leads, {lead["id"] for lead in project.leads})
    assert any(ask.since == instant == ask.until for ask in api.asked)


def test_a_window_error_is_raised_once_the_windows_before_it_are_yielded() -> None:
    # The third window fails at once; the last one waits to retry until the read stops.
    project = Project(generate_leads(5000, seed=26))
    api = API(project)
    original = api.fetch
    created = sorted(lead["createdAt"] for lead in project.leads)
    waited: list[bool] = []

    def fetch(ask: PageRequest, cancelled=None) -> Page:
        if ask.limit > 1 and ask.since is not None and ask.since >= created[3750]:
            waited.append(cancelled.wait(5))
            raise FetchCancelledError("no longer wanted")
        if ask.limit > 1 and ask.since is not None and ask.since >= created[2500]:
            raise RuntimeError("window failed")
        return original(ask, cancelled)

    api.fetch = fetch  # type: ignore[method-assign]
    yielded: list[dict] = []

    def read() -> None:
        for leads in read_windows(api.pages(50), None, None, 4):
            yielded.extend(leads)

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="window failed"):
        read()
    emitted = [lead["createdAt"] for lead in yielded]
    assert emitted == sorted(emitted)
    assert len(yielded) >= 2400
    # The waiting window is told at once that the read stopped.
    deadline = time.monotonic() + 5
    while not waited and time.monotonic() < deadline:
        time.sleep(0.01)
    assert waited == [True]
    assert time.monotonic() - started < 4


def test_read_range_reads_in_line_with_one_request_at_a_time() -> None:
    project = Project(generate_leads(3000, seed=27))
    api = API(project)
    everything(api, read_range(api.pages(), None, None, 1))
    assert all(ask.limit > 1 for ask in api.asked)


@pytest.mark.parametrize("parallelism", [1, 4])
def test_an_instant_whose_leads_share_every_value_is_read_whole_under_a_cap(parallelism) -> None:
    # 39 leads of one instant without an email (phone-only leads), in an order among ties
    # that follows the offset asked for; pages of 7 are full, so only the instant's page
    # of 100 meets the cap of 38: no order can show the 39th, the count is taken at its word.
    project, _ = tied_project(200, 39, seed=5, email=None)
    api = API(project, Faults(page_cap=38, tie_order="per_offset"))
    pages = api.pages(7)
    read = everything(api, read_range(pages, None, None, parallelism))
    assert_each_once_in_order(read, {lead["id"] for lead in project.leads})
    assert pages.cap == 38


def test_a_count_below_the_leads_seen_proves_no_instant_whole() -> None:
    # The count says 0 (a stale one) while leads of a 30-lead instant are deleted: answers
    # of one `total` are then not one set of leads, and cannot show the instant whole.
    leads = generate_leads(30, seed=993869 % 97, bulk_ties=30)
    for lead in leads:
        lead["email"] = None
    project = Project(leads)
    faults = Faults(
        page_cap=7,
        tie_order="per_request",
        understate_total=50,
        delete_every=3,
        delete_count=1,
        delete_from="newest",
    )
    api = API(project, faults)
    read = everything(api, read_keyset(api.pages(50), None, None))
    assert {lead["id"] for lead in project.leads} <= {lead["id"] for lead in read}


def test_a_page_request_names_its_page_range_and_order() -> None:
    assert str(PageRequest(limit=5)) == "page 1 of leads created -inf .. +inf (createdAt:asc)"
    ask = PageRequest(since="2026-01-01T00:00:00.000Z", until="2026-02-01T00:00:00.000Z", limit=5)
    assert str(replace(ask, page=3, sort="email:desc")) == (
        "page 3 of leads created 2026-01-01T00:00:00.000Z .. 2026-02-01T00:00:00.000Z (email:desc)"
    )


class Scripted:
    """A fetch that answers each request from `answers` (ids by request) and notes them."""

    def __init__(self, answers: dict[tuple[str | None, str | None, int, str], list[int]]) -> None:
        self.answers = answers
        self.asked: list[PageRequest] = []

    def __call__(self, ask: PageRequest, cancelled: threading.Event | None = None) -> Page:
        self.asked.append(ask)
        ids = self.answers.get((ask.since, ask.until, ask.page, ask.sort), [])
        records = [{"id": i, "createdAt": AT} for i in ids]
        return Page(ask, records, len(ids), 1, False, ask.limit)


AT, AFTER = "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.001Z"


def short_page(ids: list[int], *, page: int = 1, since: str | None = None, until=None) -> Page:
    ask = PageRequest(since=since, until=until, page=page, limit=100)
    records = [{"id": i, "createdAt": "2025-12-31T00:00:00.000Z"} for i in ids[:-1]]
    return Page(ask, [*records, {"id": ids[-1], "createdAt": AT}], 500, 5, True, 100)


def test_a_cap_is_looked_for_after_the_short_page_then_at_its_last_instant() -> None:
    # After a page of several instants: page 1 after its last instant, then that instant
    # by email; the first lead not on the page settles it, and nothing more is asked.
    fetch = Scripted({(AT, AT, 1, "email:asc"): [3, 4]})
    assert Pages(fetch, 100, print).confirms_cap(short_page([1, 2, 3]))
    assert [(a.since, a.until, a.page, a.sort) for a in fetch.asked] == [
        (AFTER, None, 1, "createdAt:asc"),
        (AT, AT, 1, "email:asc"),
    ]
    # Nothing new anywhere: no cap; a page all of one instant adds email:desc and page 2.
    fetch = Scripted({(AT, AT, 1, "email:asc"): [9], (AT, AT, 1, "email:desc"): [9]})
    assert not Pages(fetch, 100, print).confirms_cap(short_page([9]))
    assert [(a.since, a.until, a.page, a.sort) for a in fetch.asked] == [
        (AFTER, None, 1, "createdAt:asc"),
        (AT, AT, 1, "email:asc"),
        (AT, AT, 1, "email:desc"),
        (None, None, 2, "createdAt:asc"),
    ]
    fetch = Scripted({(None, None, 2, "createdAt:asc"): [10]})
    assert Pages(fetch, 100, print).confirms_cap(short_page([9]))
    # A range that ends at the page's last instant has nothing after it to ask for.
    fetch = Scripted({})
    assert not Pages(fetch, 100, print).confirms_cap(short_page([1, 2], until=AT))
    assert AFTER not in {a.since for a in fetch.asked}
    # A later page (inside an instant's pass): the next page.
    fetch = Scripted({(AT, AT, 3, "email:asc"): [7]})
    later = replace(
        short_page([5], since=AT, until=AT),
        request=PageRequest(since=AT, until=AT, page=2, sort="email:asc", limit=100),
    )
    assert Pages(fetch, 100, print).confirms_cap(later)
    assert [(a.page, a.sort) for a in fetch.asked] == [(3, "email:asc")]
    assert not Pages(Scripted({}), 100, print).confirms_cap(later)
