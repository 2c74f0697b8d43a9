"""Paging bugs of a server: hasMore stuck or false too early, a wrongly typed envelope."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tests.sandbox.conftest import LEADS, get_json, session_for

LEAD_COUNT = 60


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(Project(generate_leads(LEAD_COUNT, seed=8))) as running:
        yield running


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[requests.Session]:
    yield session_for(sandbox)
    sandbox.faults = Faults()


def envelope(api: requests.Session, sandbox: Sandbox, page: int, limit: int = 10) -> dict:
    body = get_json(api, sandbox.url + LEADS, {"limit": limit, "page": page})
    return {key: value for key, value in body.items() if key != "leads"} | {
        "count": len(body["leads"])
    }


def test_stuck_true_says_true_on_every_page_even_past_the_end(api, sandbox) -> None:
    sandbox.faults = Faults(has_more="stuck_true")
    for page in (1, 5, 6, 7, 100):
        body = envelope(api, sandbox, page)
        assert body["hasMore"] is True
        assert (body["total"], body["totalPages"], body["page"]) == (LEAD_COUNT, 6, page)
        assert body["count"] == (10 if page <= 6 else 0)


def test_false_early_says_false_on_page_two(api, sandbox) -> None:
    sandbox.faults = Faults(has_more="false_early")
    pages = [envelope(api, sandbox, page) for page in range(1, 8)]
    assert [body["hasMore"] for body in pages] == [True, False, True, True, True, False, False]
    assert all(body["totalPages"] == 6 for body in pages)
    assert pages[1]["count"] == pages[2]["count"] == 10
    # A query with one page has nothing to lie about.
    assert envelope(api, sandbox, 1, limit=100)["hasMore"] is False


def test_honest_by_default(api, sandbox) -> None:
    assert [envelope(api, sandbox, page)["hasMore"] for page in (1, 2, 6, 7)] == [
        True,
        True,
        False,
        False,
    ]


def test_total_string(api, sandbox) -> None:
    sandbox.faults = Faults(bad_envelope="total_string")
    body = envelope(api, sandbox, 2)
    assert body["total"] == str(LEAD_COUNT)
    assert (body["totalPages"], body["page"], body["limit"], body["hasMore"]) == (6, 2, 10, True)
    assert body["count"] == 10


def test_total_pages_null(api, sandbox) -> None:
    sandbox.faults = Faults(bad_envelope="total_pages_null")
    response = api.get(sandbox.url + LEADS, params={"limit": 10}, timeout=10)
    assert response.content.endswith(b'"totalPages":null,"hasMore":true}')
    body = response.json()
    assert body["totalPages"] is None
    assert (body["total"], body["hasMore"], len(body["leads"])) == (LEAD_COUNT, True, 10)


def test_faults_combine(api, sandbox) -> None:
    sandbox.faults = Faults(has_more="stuck_true", bad_envelope="total_string")
    body = envelope(api, sandbox, 9)
    assert (body["total"], body["hasMore"], body["count"]) == ("60", True, 0)


def test_errors_keep_their_shape(api, sandbox) -> None:
    sandbox.faults = Faults(has_more="stuck_true", bad_envelope="total_pages_null")
    assert get_json(api, sandbox.url + LEADS, {"limit": 0}, status=400) == {
        "message": "Invalid value for limit: must be an integer between 1 and 100"
    }


def test_a_page_cap_serves_fewer_than_asked_and_pages_by_the_cap(api, sandbox) -> None:
    sandbox.faults = Faults(page_cap=8)
    everything = get_json(api, sandbox.url + LEADS, {"limit": 100, "sort": "createdAt:asc"})
    sandbox.faults = Faults(page_cap=8)
    pages = [
        get_json(api, sandbox.url + LEADS, {"limit": 20, "page": page, "sort": "createdAt:asc"})
        for page in (1, 2, 8)
    ]
    assert len(everything["leads"]) == 8
    assert [len(body["leads"]) for body in pages] == [8, 8, 4]
    # Offsets follow the cap: page 2 starts where page 1 ended.
    sandbox.faults = Faults()
    whole = get_json(api, sandbox.url + LEADS, {"limit": 100, "sort": "createdAt:asc"})["leads"]
    assert [lead["id"] for lead in pages[0]["leads"] + pages[1]["leads"]] == [
        lead["id"] for lead in whole[:16]
    ]
    # The envelope repeats the limit asked for; its count and pages follow the cap.
    assert (pages[0]["limit"], pages[0]["totalPages"], pages[0]["hasMore"]) == (20, 8, True)
    assert (pages[2]["hasMore"], pages[2]["total"]) == (False, LEAD_COUNT)


def test_an_overstated_total_counts_leads_that_never_come(api, sandbox) -> None:
    sandbox.faults = Faults(overstate_total=1000)
    last = envelope(api, sandbox, 7)
    beyond = envelope(api, sandbox, 50)
    assert (last["total"], last["totalPages"], last["hasMore"], last["count"]) == (
        LEAD_COUNT + 1000,
        106,
        True,
        0,
    )
    assert beyond["count"] == 0


def test_an_understated_total_counts_fewer_leads_than_the_pages_hold(api, sandbox) -> None:
    sandbox.faults = Faults(understate_total=25)
    first, fourth = envelope(api, sandbox, 1), envelope(api, sandbox, 4)
    assert (first["total"], first["totalPages"], first["hasMore"]) == (LEAD_COUNT - 25, 4, True)
    # Page 4 says it is the last, and page 5 still holds leads.
    assert (fourth["hasMore"], fourth["count"]) == (False, 10)
    assert envelope(api, sandbox, 5)["count"] == 10
    sandbox.faults = Faults(understate_total=1000)
    assert envelope(api, sandbox, 1)["total"] == 0
