"""Each way a review found to lose or stall leads, with the sandbox fault that opens it.

Every test runs with one request at a time and with four (see `parallelism`); each fails
on the reader that had the hole.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest

from tap_leadtrackr.paging import TIE_ORDERS, TIE_PASSES, UnreadableInstantError
from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tap_leadtrackr.sending import Sender
from tests.conftest import (
    assert_a_checkpoint_after_every_page,
    bookmark_of,
    config_for,
    lead_requests,
    run_tap,
)

pytestmark = pytest.mark.usefixtures("parallelism")


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Sender, "sleep", staticmethod(lambda seconds, cancelled: None))
    monkeypatch.setattr(Sender, "pause", staticmethod(lambda seconds, cancelled: None))


def ids_of(project: Project) -> list[int]:
    return sorted(lead["id"] for lead in project.leads)


def instant_requests(server: Sandbox) -> list:
    return [
        r
        for r in lead_requests(server)
        if r.params.get("createdAt[gte]")
        and r.params.get("createdAt[gte]") == r.params.get("createdAt[lte]")
    ]


def with_tied_group(count: int, tied: int, seed: int, **fields: object) -> Project:
    """`count` leads, `tied` of them sharing one millisecond (with `fields` set on those)."""
    leads = generate_leads(count, seed=seed, bulk_ties=tied)
    instant = Counter(lead["createdAt"] for lead in leads).most_common(1)[0][0]
    for lead in leads:
        if lead["createdAt"] == instant:
            lead.update(fields)
    return Project(leads)


# 1. A server that pages by fewer than `limit`. ---------------------------------------------


def test_a_server_that_pages_by_fewer_than_asked_is_read_whole() -> None:
    # 2,537 leads, 60 of them in one millisecond; the server serves 50 where 100 are asked.
    project = with_tied_group(2537, 60, seed=51)
    with Sandbox(project, faults=Faults(page_cap=50)) as server:
        result = run_tap(config_for(server))
        limits = [r.params["limit"] for r in lead_requests(server)]
        project.add_leads(30)
        later = run_tap(config_for(server), state=result.last_state)

    assert sorted(result.ids) == ids_of(project)[:2537]
    assert result.bookmark == max(lead["createdAt"] for lead in project.leads[:2537])
    assert result.log.count("serves 50 leads a page where 100 were asked for") == 1
    # Once seen, the server's page size is asked for: page numbers then mean one offset.
    assert "100" not in limits[limits.index("50") :]
    assert {lead["id"] for lead in later.records} >= set(ids_of(project)[2537:])
    assert_a_checkpoint_after_every_page(result, 100)


def test_a_server_cap_hidden_from_the_envelope_is_learned_from_the_page() -> None:
    # The cap only shows in the page's length: `limit` repeats what was asked.
    project = with_tied_group(700, 130, seed=52)
    with Sandbox(project, faults=Faults(page_cap=30, tie_order="per_offset")) as server:
        result = run_tap(config_for(server, page_size=80))

    assert sorted(result.ids) == ids_of(project)
    assert len(result.ids) == len(set(result.ids))


# 2. Leads deleted and leads stamped in the past while a range is read. -----------------------


@pytest.mark.parametrize("seed", range(6))
def test_deletions_and_leads_stamped_in_the_past_lose_no_lead_that_stayed(seed) -> None:
    project = Project(generate_leads(3000, seed=60 + seed))
    first = set(ids_of(project))
    faults = Faults(
        delete_every=3,
        delete_count=1,
        delete_from="random",
        insert_every=2,
        insert_count=1,
        insert_stamp="past",
        latency_ms=2,
    )
    with Sandbox(project, faults=faults) as server:
        result = run_tap(config_for(server, page_size=50))

    stayed = first & set(ids_of(project))
    assert stayed <= set(result.ids)
    assert len(result.ids) == len(set(result.ids))
    assert_a_checkpoint_after_every_page(result, 50)


# 4. Deletions inside a group of leads that share one millisecond. ----------------------------


@pytest.mark.parametrize("tie_order", ["fixed", "per_offset"])
@pytest.mark.parametrize("every", [1, 2, 3])
def test_deletions_inside_a_tie_group_are_no_failure(tie_order, every) -> None:
    project = with_tied_group(1200, 250, seed=70 + every)
    first = set(ids_of(project))
    faults = Faults(delete_every=every, delete_count=1, delete_from="tied", tie_order=tie_order)
    with Sandbox(project, faults=faults) as server:
        result = run_tap(config_for(server))

    assert result.error is None
    assert first & set(ids_of(project)) <= set(result.ids)
    assert len(result.ids) == len(set(result.ids))


# 5. An overstated `total`. -------------------------------------------------------------------


def test_an_overstated_total_on_a_tie_group_costs_a_few_requests() -> None:
    project = with_tied_group(1000, 250, seed=80)
    with Sandbox(project) as server:
        run_tap(config_for(server))
        honest = len(lead_requests(server))
        server.clear_requests()
        server.faults = Faults(overstate_total=100_000)
        result = run_tap(config_for(server))
        overstated = len(lead_requests(server))

    assert sorted(result.ids) == ids_of(project)
    # Each of the two tie groups is shown whole by pages read backwards in another order,
    # and a page that says more follow is checked by one request after it.
    assert overstated <= honest + 15


# The reader of a shared instant, order by order. ---------------------------------------------


def test_a_tie_order_that_changes_with_the_offset_is_read_in_the_next_order() -> None:
    project = with_tied_group(900, 250, seed=90)
    with Sandbox(project, faults=Faults(tie_order="per_offset")) as server:
        result = run_tap(config_for(server))
        sorts = [r.params["sort"] for r in instant_requests(server)]

    assert sorted(result.ids) == ids_of(project)
    assert sorts[0] == "createdAt:asc"
    assert "email:asc" in sorts
    assert sorts.index("email:asc") >= 3, "the first order was walked to its end"


def test_an_instant_that_cannot_be_shown_whole_fails_after_every_pass(monkeypatch) -> None:
    # Anonymous leads of one import: every sortable field alike, so every order ties; their
    # order changes on every request and one is deleted after each: nothing can show that
    # none was missed.
    alike = {"email": None, "firstName": None, "lastName": None, "price": None, "status": "open"}
    project = with_tied_group(600, 250, seed=91, **alike)
    instant = Counter(lead["createdAt"] for lead in project.leads).most_common(1)[0][0]
    faults = Faults(tie_order="per_request", delete_every=1, delete_count=1, delete_from="tied")
    with Sandbox(project, faults=faults) as server:
        result = run_tap(config_for(server), expect_error=True)
        sorts = [r.params["sort"] for r in instant_requests(server)]

    assert isinstance(result.error, UnreadableInstantError)
    assert str(result.error).count("\n") == 0
    assert f"createdAt {instant}" in str(result.error)
    # Every pass of every order was made, and no more: each order's first page comes once
    # per pass, in the order of TIE_ORDERS.
    firsts = [r.params["sort"] for r in instant_requests(server) if r.params["page"] == "1"]
    assert firsts == list(TIE_ORDERS) * TIE_PASSES
    seen = 250
    assert len(sorts) <= TIE_PASSES * len(TIE_ORDERS) * 2 * (math.ceil(seen / 100) + 2)
    # The state resumes at the instant: every lead before it was emitted.
    assert bookmark_of(result.last_state) <= instant
    before = {lead["id"] for lead in project.leads if lead["createdAt"] < instant}
    assert before <= set(result.ids)


def test_a_deleted_range_mid_sync_ends_the_read_without_a_crash() -> None:
    # Every lead deleted after the first answer: pages and window starts come back empty.
    project = Project(generate_leads(3000, seed=92))
    faults = Faults(delete_after_request=1, delete_count=3000)
    with Sandbox(project, faults=faults) as server:
        result = run_tap(config_for(server))

    assert result.error is None
    assert len(result.ids) == len(set(result.ids)) <= 100


def test_a_tie_group_across_a_window_start_is_read_whole() -> None:
    # 2,000 leads in pages of 50: windows start near offsets 500, 1000 and 1500, and the
    # 150 leads of one millisecond lie around offset 1000.
    project = with_tied_group(2000, 150, seed=93)
    with Sandbox(project, faults=Faults(tie_order="per_offset")) as server:
        result = run_tap(config_for(server, page_size=50))

    assert sorted(result.ids) == ids_of(project)
    assert len(result.ids) == len(set(result.ids))
    assert_a_checkpoint_after_every_page(result, 50)


# 3. `Retry-After` outlives the read that met it. -----------------------------------------------


def test_a_retry_after_met_by_a_refused_project_holds_the_next_one(monkeypatch) -> None:
    # The first project's 429 comes with a refusal: its read stops while a thread waits.
    # The next project's requests must still wait out the Retry-After.
    for wait in ("sleep", "pause"):
        monkeypatch.setattr(
            Sender, wait, staticmethod(lambda seconds, cancelled: cancelled.wait(seconds))
        )
    first = Project(generate_leads(3000, seed=94))
    second = Project(generate_leads(500, seed=95))
    faults = Faults(script={3: "429"}, retry_after="1", revoke_key_after_request=3)
    with Sandbox(first, faults=faults, projects={"second-key": second}) as server:
        config = config_for(
            server,
            projects=[
                {"name": "first", "api_key": server.api_key},
                {"name": "second", "api_key": "second-key"},
            ],
        )
        config.pop("api_key")
        result = run_tap(config, expect_error=True)
        requests_ = lead_requests(server)

    the_429 = next(r for r in requests_ if r.status == 429)
    seconds = [r for r in requests_ if r.headers.get("X-API-Key") == "second-key"]
    assert seconds, "the second project was read"
    assert min(r.received_at for r in seconds) - the_429.received_at >= 0.95
    assert {r["project"] for r in result.records} >= {"second"}
    assert "`first`" in str(result.error)


# Leads rated while a shared instant is read, under `statuses`. ----------------------------------


@pytest.mark.parametrize("tie_order", ["fixed", "per_request"])
def test_leads_rated_in_and_out_of_statuses_while_an_instant_is_read_lose_no_other(
    tie_order, monkeypatch
) -> None:
    # Under `statuses`, a lead rated into the filter joins the list a shared instant's
    # proofs count, as an insertion would. The instant is read whatever the status, and
    # filtered in the tap: every lead open all along comes, rated ones or not.
    project = with_tied_group(900, 250, seed=96)
    rated: set[int] = set()
    update = Project.update_lead

    def record(self, lead_id, **fields):
        rated.add(lead_id)
        return update(self, lead_id, **fields)

    monkeypatch.setattr(Project, "update_lead", record)
    open_before = {lead["id"] for lead in project.leads if lead["status"] == "open"}
    faults = Faults(rate_every=1, rate_count=3, tie_order=tie_order)
    with Sandbox(project, faults=faults) as server:
        result = run_tap(config_for(server, statuses="open"))
        instant_asks = instant_requests(server)

    assert instant_asks, "the tie group was read on its own"
    assert all("status" not in r.params for r in instant_asks)
    assert open_before - rated <= set(result.ids)
    assert {r["status"] for r in result.records} == {"open"}
    assert len(result.ids) == len(set(result.ids))
