"""Tie order: leads tied on the sort field reordered per request or per page, as allowed."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tap_leadtrackr.sandbox.instants import format_instant
from tap_leadtrackr.sandbox.query import parse_leads_request, shuffle_ties
from tests.sandbox.conftest import LEAD, LEADS, get_json, instant, session_for

Lead = dict[str, Any]
LEAD_COUNT = 1000
BULK = 250
SORT_FIELDS = ("createdAt", "firstName", "lastName", "email", "price", "status")


@pytest.fixture(scope="module")
def leads() -> list[Lead]:
    # A 250-lead bulk import (ids 376..625) besides the generator's own CRM import burst.
    return generate_leads(LEAD_COUNT, seed=13, bulk_ties=BULK)


@pytest.fixture
def sandbox(leads: list[Lead]) -> Iterator[Sandbox]:
    """A fresh sandbox per test, so request numbers (and per_request shuffles) repeat."""
    with Sandbox(Project(leads)) as running:
        yield running


@pytest.fixture
def api(sandbox: Sandbox) -> requests.Session:
    return session_for(sandbox)


def bulk_stamp(leads: list[Lead]) -> str:
    stamp, count = Counter(lead["createdAt"] for lead in leads).most_common(1)[0]
    assert count == BULK
    return stamp


def sort_key(field: str) -> Any:
    def key(lead: Lead) -> tuple[bool, Any]:
        value = instant(lead[field]) if field == "createdAt" else lead[field]
        return (value is not None, value if value is not None else 0)

    return key


def ids(body: dict[str, Any]) -> list[int]:
    return [lead["id"] for lead in body["leads"]]


def get_page(api: requests.Session, sandbox: Sandbox, params: dict[str, Any]) -> list[int]:
    return ids(get_json(api, sandbox.url + LEADS, params))


@pytest.mark.parametrize("tie_order", ["per_request", "per_offset"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("field", SORT_FIELDS)
def test_every_page_is_sorted_and_only_ties_move(
    api, sandbox, leads: list[Lead], field: str, direction: str, tie_order: str
) -> None:
    sandbox.faults = Faults(tie_order=tie_order)
    key = sort_key(field)
    expected_keys = sorted((key(lead) for lead in leads), reverse=direction == "desc")
    by_id = {lead["id"]: lead for lead in leads}
    served: list[int] = []
    limit = 37  # cuts tie groups at odd places
    for page in range(1, LEAD_COUNT // limit + 2):
        body = get_json(
            api, sandbox.url + LEADS, {"sort": f"{field}:{direction}", "limit": limit, "page": page}
        )
        assert (body["total"], body["hasMore"]) == (LEAD_COUNT, page * limit < LEAD_COUNT)
        page_ids = ids(body)
        assert len(page_ids) == len(set(page_ids))
        offset = (page - 1) * limit
        # Position by position the same sort value as the fixed order: a slice of one order
        # that respects the sort, with only tied leads swapped.
        assert [key(by_id[lead_id]) for lead_id in page_ids] == expected_keys[
            offset : offset + limit
        ]
        assert [by_id[lead_id] for lead_id in page_ids] == body["leads"]
        served += page_ids
    assert set(served) <= set(by_id)


def test_per_request_reorders_the_same_page(api, sandbox, leads: list[Lead]) -> None:
    stamp = bulk_stamp(leads)
    params = {"sort": "createdAt:asc", "limit": 100, "page": 5}  # inside the bulk import
    fixed = get_page(api, sandbox, params)
    assert get_page(api, sandbox, params) == fixed
    sandbox.faults = Faults(tie_order="per_request")
    pages = [get_page(api, sandbox, params) for _ in range(4)]
    by_id = {lead["id"]: lead for lead in leads}
    for page in pages:
        assert all(by_id[lead_id]["createdAt"] == stamp for lead_id in page)
    assert len({tuple(page) for page in pages}) == 4
    # 100 of the 250 tied leads: another 100 every time, not the same ones reordered.
    assert len({frozenset(page) for page in pages}) == 4


def test_per_request_pages_overlap_and_miss(api, sandbox, leads: list[Lead]) -> None:
    stamp = bulk_stamp(leads)
    sandbox.faults = Faults(tie_order="per_request")
    only_bulk = {"createdAt[gte]": stamp, "createdAt[lte]": stamp, "limit": 100}
    covered = []
    for _ in range(5):
        first = get_page(api, sandbox, {**only_bulk, "page": 1})
        second = get_page(api, sandbox, {**only_bulk, "page": 2})
        covered.append(len(set(first) | set(second)))
    # Two pages of one tied group, each from another shuffle: some leads twice, some never.
    assert min(covered) < 200
    # A whole sync by page number loses leads that existed throughout.
    sandbox.faults = Faults(tie_order="per_request")
    seen: set[int] = set()
    for page in range(1, LEAD_COUNT // 100 + 1):
        seen |= set(get_page(api, sandbox, {"sort": "createdAt:asc", "limit": 100, "page": page}))
    assert len(seen) < LEAD_COUNT


def test_per_offset_repeats_a_page_but_pages_disagree(api, sandbox, leads: list[Lead]) -> None:
    stamp = bulk_stamp(leads)
    only_bulk = {"createdAt[gte]": stamp, "createdAt[lte]": stamp, "limit": 100}
    fixed = [get_page(api, sandbox, {**only_bulk, "page": page}) for page in (1, 2, 3)]
    assert len(set().union(*fixed)) == BULK
    sandbox.faults = Faults(tie_order="per_offset")
    first = get_page(api, sandbox, {**only_bulk, "page": 1})
    second = get_page(api, sandbox, {**only_bulk, "page": 2})
    assert first != fixed[0]
    for _ in range(3):
        assert get_page(api, sandbox, {**only_bulk, "page": 1}) == first
        assert get_page(api, sandbox, {**only_bulk, "page": 2}) == second
    assert len(set(first) | set(second)) < 200
    # The same offset with another limit is another top-N sort: another order.
    assert get_page(api, sandbox, {**only_bulk, "limit": 99, "page": 1}) != first[:99]


def test_leads_without_ties_never_move(api, sandbox, leads: list[Lead]) -> None:
    counts = Counter(lead["createdAt"] for lead in leads)
    single = {lead["id"] for lead in leads if counts[lead["createdAt"]] == 1}
    fixed = [get_page(api, sandbox, {"limit": 100, "page": page}) for page in range(1, 11)]
    sandbox.faults = Faults(tie_order="per_request")
    for page, expected in enumerate(fixed, start=1):
        served = get_page(api, sandbox, {"limit": 100, "page": page})
        assert [(index, x) for index, x in enumerate(served) if x in single] == [
            (index, x) for index, x in enumerate(expected) if x in single
        ]


def test_get_lead_ignores_tie_order_and_paging_faults(api, sandbox) -> None:
    params = {"email": get_json(api, sandbox.url + LEAD, {"leadId": 400})["lead"]["email"]}
    before = api.get(sandbox.url + LEAD, params=params, timeout=10).content
    sandbox.faults = Faults(
        tie_order="per_request", has_more="stuck_true", bad_envelope="total_string"
    )
    for _ in range(3):
        assert api.get(sandbox.url + LEAD, params=params, timeout=10).content == before


def test_shuffle_ties_permutes_whole_groups_and_slices() -> None:
    order = list(range(100, 120))
    starts = [0, 1, 4, 14, 15]  # groups of 1, 3, 10, 1 and 5
    groups = [set(order[a:b]) for a, b in zip(starts, [*starts[1:], len(order)], strict=True)]
    moved = False
    for seed in range(30):
        for offset, limit in ((0, 20), (2, 5), (5, 3), (13, 4), (18, 10), (20, 5)):
            page = shuffle_ties(order, starts, offset, limit, random.Random(seed))
            assert len(page) == len(set(page)) == max(0, min(limit, len(order) - offset))
            for position, lead_id in zip(range(offset, offset + limit), page, strict=False):
                # Every position holds a member of the group that owns it in `order`.
                owner = next(group for group in groups if order[position] in group)
                assert lead_id in owner
            moved |= page != order[offset : offset + limit]
        whole = shuffle_ties(order, starts, 0, 20, random.Random(seed))
        assert sorted(whole) == order
    assert moved
    assert shuffle_ties([], [], 0, 10, random.Random(1)) == []


def test_fast_on_a_hundred_thousand_leads() -> None:
    # Bare leads (the encoding of full ones would dominate): ties of ten, and 5,000 in one.
    stamps = [1_700_000_000_000 + index // 10 for index in range(100_000)]
    stamps[50_000:55_000] = [stamps[50_000]] * 5_000
    project = Project(
        {"id": index + 1, "createdAt": format_instant(stamp)} for index, stamp in enumerate(stamps)
    )
    query = parse_leads_request([("sort", "createdAt:asc")]).query
    for offset in range(0, 100_000, 100):  # builds the cached order and encodes every lead
        project.page(query, offset, 100)
    started = time.perf_counter()
    for number in range(1000):
        total, page = project.page(
            query, (number * 100) % 100_000, 100, tie_order="per_request", request_number=number
        )
        assert total == 100_000
        assert len(page) == 100
    # About 0.2 ms a page; re-sorting 100,000 leads for every request would take 50 ms or more.
    assert time.perf_counter() - started < 2
