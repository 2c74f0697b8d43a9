"""GET /api/leads/getLeads against the documentation: envelope, every filter, sorting, paging."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from http.client import HTTPConnection
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

from tests.sandbox.conftest import JSON, LEADS, fetch_all, get_json, instant

Lead = dict[str, Any]


def test_default_envelope(api: requests.Session, sandbox, leads: list[Lead]) -> None:
    body = get_json(api, sandbox.url + LEADS)
    assert list(body) == ["message", "leads", "total", "page", "limit", "totalPages", "hasMore"]
    assert body["message"] == "Leads retrieved"
    assert (body["total"], body["page"], body["limit"]) == (len(leads), 1, 50)
    assert body["totalPages"] == math.ceil(len(leads) / 50)
    assert body["hasMore"] is True
    assert len(body["leads"]) == 50
    # The default sort is createdAt:desc: the first page holds the newest leads.
    newest = max(instant(lead["createdAt"]) for lead in leads)
    assert instant(body["leads"][0]["createdAt"]) == newest
    stamps = [instant(lead["createdAt"]) for lead in body["leads"]]
    assert stamps == sorted(stamps, reverse=True)


def test_leads_are_served_exactly_as_stored(api, sandbox, leads: list[Lead]) -> None:
    by_id = {lead["id"]: lead for lead in leads}
    served = fetch_all(api, sandbox, {})
    assert len(served) == len(leads)
    for lead in served:
        assert lead == by_id[lead["id"]]
        assert list(lead) == list(by_id[lead["id"]])


@pytest.mark.parametrize(
    ("limit", "page"), [(1, 1), (7, 3), (100, 1), (100, 12), (100, 13), (50, 24), (50, 25)]
)
def test_page_arithmetic(api, sandbox, leads: list[Lead], limit: int, page: int) -> None:
    body = get_json(api, sandbox.url + LEADS, {"limit": limit, "page": page})
    total = len(leads)
    total_pages = math.ceil(total / limit)
    expected_count = max(0, min(limit, total - (page - 1) * limit))
    assert (body["total"], body["page"], body["limit"]) == (total, page, limit)
    assert body["totalPages"] == total_pages
    assert body["hasMore"] == (page < total_pages)
    assert len(body["leads"]) == expected_count


def test_page_past_the_end_is_empty(api, sandbox, leads: list[Lead]) -> None:
    body = get_json(api, sandbox.url + LEADS, {"limit": 100, "page": 999})
    assert body["leads"] == []
    assert body["hasMore"] is False
    assert body["total"] == len(leads)


def test_no_match_gives_zero_pages(api, sandbox) -> None:
    body = get_json(api, sandbox.url + LEADS, {"status": "no such status"})
    assert (body["leads"], body["total"], body["totalPages"], body["hasMore"]) == ([], 0, 0, False)


def _has(key: str) -> Callable[[Lead], bool]:
    def check(lead: Lead) -> bool:
        attribution = lead["attributionData"]
        return isinstance(attribution, dict) and attribution.get(key) not in (None, "")

    return check


def _lacks(key: str) -> Callable[[Lead], bool]:
    has = _has(key)
    return lambda lead: not has(lead)


def _first_repeated(leads: list[Lead], field: str) -> str:
    counts = Counter(lead[field] for lead in leads if lead[field])
    return next(value for value, count in counts.most_common() if count > 1)


def _filter_cases(leads: list[Lead]) -> list[tuple[str, dict[str, str], Callable[[Lead], bool]]]:
    """(name, params, expectation) for every documented filter, built from the data itself."""
    middle = leads[len(leads) // 2]["createdAt"]
    late = leads[len(leads) * 3 // 4]["createdAt"]
    day = middle[:10]
    plus_phone = next(lead["phone"] for lead in leads if (lead["phone"] or "").startswith("+31 6"))
    identifier = next(lead["uniqueIdentifier"] for lead in leads if lead["uniqueIdentifier"])

    def between(low: str | None, high: str | None) -> Callable[[Lead], bool]:
        def check(lead: Lead) -> bool:
            moment = instant(lead["createdAt"])
            return (low is None or moment >= instant(low)) and (
                high is None or moment <= instant(high)
            )

        return check

    def search(needle: str) -> Callable[[Lead], bool]:
        fields = ("firstName", "lastName", "email", "phone", "companyName")
        return lambda lead: any(needle.lower() in (lead[field] or "").lower() for field in fields)

    email = _first_repeated(leads, "email")
    cases: list[tuple[str, dict[str, str], Callable[[Lead], bool]]] = [
        ("status", {"status": "open"}, lambda lead: lead["status"] == "open"),
        (
            "statuses",
            {"status": "pending,lost"},
            lambda lead: lead["status"] in ("pending", "lost"),
        ),
        (
            "statuses, spaced",
            {"status": "pending , lost"},
            lambda lead: lead["status"] in ("pending", "lost"),
        ),
        (
            "conversion label",
            {"status": "Afspraak gepland"},
            lambda lead: lead["status"] == "Afspraak gepland",
        ),
        ("formName", {"formName": "Contact"}, lambda lead: lead["formName"] == "Contact"),
        (
            "uniqueIdentifier",
            {"uniqueIdentifier": identifier},
            lambda lead: lead["uniqueIdentifier"] == identifier,
        ),
        ("email", {"email": email}, lambda lead: lead["email"] == email),
        ("phone with +", {"phone": plus_phone}, lambda lead: lead["phone"] == plus_phone),
        ("gte", {"createdAt[gte]": middle}, between(middle, None)),
        ("lte", {"createdAt[lte]": middle}, between(None, middle)),
        (
            "gte and lte",
            {"createdAt[gte]": middle, "createdAt[lte]": late},
            between(middle, late),
        ),
        ("date only", {"createdAt[gte]": day}, between(f"{day}T00:00:00.000Z", None)),
        (
            "offset",
            {"createdAt[lte]": "2026-01-01T02:00:00+02:00"},
            between(None, "2026-01-01T00:00:00.000Z"),
        ),
        (
            "no milliseconds",
            {"createdAt[gte]": "2025-06-01T12:00:00Z"},
            between("2025-06-01T12:00:00.000Z", None),
        ),
        ("search name", {"search": "zoË"}, search("zoë")),
        ("search email", {"search": "GMAIL.COM"}, search("gmail.com")),
        ("search phone", {"search": "+49 151"}, search("+49 151")),
        ("search company", {"search": "żabka"}, search("żabka")),
        ("search cjk", {"search": "陈@"}, search("陈@")),
        (
            "combined",
            {"status": "open,Sale", "createdAt[gte]": middle, "gclid[exists]": "true"},
            lambda lead: (
                lead["status"] in ("open", "Sale")
                and between(middle, None)(lead)
                and _has("gclid")(lead)
            ),
        ),
    ]
    for key in ("gclid", "cid", "fbp", "fbc"):
        cases.append((f"{key} exists", {f"{key}[exists]": "true"}, _has(key)))
        cases.append((f"{key} absent", {f"{key}[exists]": "false"}, _lacks(key)))
    return cases


def test_every_filter_selects_exactly_the_expected_leads(api, sandbox, leads: list[Lead]) -> None:
    for name, params, expect in _filter_cases(leads):
        expected = {lead["id"] for lead in leads if expect(lead)}
        served = fetch_all(api, sandbox, params)
        ids = [lead["id"] for lead in served]
        assert len(ids) == len(set(ids)), name
        assert set(ids) == expected, name
        assert name in ("search cjk",) or expected, f"{name} selects nothing: a weak test"


def test_range_bounds_are_inclusive_to_the_millisecond(api, sandbox, leads: list[Lead]) -> None:
    stamp = leads[500]["createdAt"]
    same = {lead["id"] for lead in leads if lead["createdAt"] == stamp}
    params = {"createdAt[gte]": stamp, "createdAt[lte]": stamp}
    assert {lead["id"] for lead in fetch_all(api, sandbox, params)} == same
    # One millisecond later as the lower bound excludes them all.
    later = instant(stamp).timestamp() * 1000 + 1
    shifted = f"{stamp[:20]}{int(later) % 1000:03d}Z"
    body = get_json(api, sandbox.url + LEADS, {"createdAt[gte]": shifted, "createdAt[lte]": stamp})
    assert body["total"] == 0


@pytest.mark.parametrize(
    "raw",
    [
        "createdAt[gte]={gte}&createdAt[lte]={lte}",
        "createdAt%5Bgte%5D={gte}&createdAt%5Blte%5D={lte}",
        "createdAt%5bgte%5d={gte}&createdAt[lte]={lte}",
    ],
)
def test_brackets_literal_or_percent_encoded(sandbox, leads: list[Lead], raw: str) -> None:
    gte, lte = leads[300]["createdAt"], leads[700]["createdAt"]
    query = raw.format(gte=quote(gte, safe=""), lte=quote(lte, safe="")) + "&limit=100"
    sandbox.clear_requests()
    # http.client, because requests percent-encodes brackets even in a literal URL.
    connection = HTTPConnection(urlsplit(sandbox.url).netloc, timeout=10)
    connection.request("GET", f"{LEADS}?{query}", headers={"X-API-Key": sandbox.api_key})
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    expected = [
        lead for lead in leads if instant(gte) <= instant(lead["createdAt"]) <= instant(lte)
    ]
    assert response.status == 200
    assert body["total"] == len(expected)
    recorded = sandbox.requests[-1]
    assert recorded.params == {"createdAt[gte]": gte, "createdAt[lte]": lte, "limit": "100"}
    assert recorded.raw_query == query


SORT_FIELDS = ("createdAt", "firstName", "lastName", "email", "price", "status")


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("field", SORT_FIELDS)
def test_sort_on_every_field(api, sandbox, leads: list[Lead], field: str, direction: str) -> None:
    served = fetch_all(api, sandbox, {"sort": f"{field}:{direction}"})
    assert sorted(lead["id"] for lead in served) == sorted(lead["id"] for lead in leads)

    def key(lead: Lead) -> tuple[bool, Any]:
        value = lead[field]
        if field == "createdAt":
            value = instant(value)
        return (value is not None, value if value is not None else 0)

    keys = [key(lead) for lead in served]
    assert keys == sorted(keys, reverse=direction == "desc")
    if field in ("price", "email", "lastName"):
        # Nulls exist in these fields and come first ascending, last descending.
        nulls_at = [index for index, lead in enumerate(served) if lead[field] is None]
        assert nulls_at
        edge = nulls_at[0] if direction == "asc" else len(served) - len(nulls_at)
        assert nulls_at == list(range(edge, edge + len(nulls_at)))
        assert (edge == 0) == (direction == "asc")


def _burst(leads: list[Lead]) -> tuple[str, set[int]]:
    stamp, count = Counter(lead["createdAt"] for lead in leads).most_common(1)[0]
    assert count > 100
    return stamp, {lead["id"] for lead in leads if lead["createdAt"] == stamp}


def test_ties_are_stable_across_pages_and_requests(api, sandbox, leads: list[Lead]) -> None:
    stamp, burst = _burst(leads)
    by_hundred = [lead["id"] for lead in fetch_all(api, sandbox, {"sort": "createdAt:asc"})]
    by_seven = [lead["id"] for lead in fetch_all(api, sandbox, {"sort": "createdAt:asc"}, 7)]
    assert by_hundred == by_seven
    assert len(by_hundred) == len(set(by_hundred)) == len(leads)
    # The tied burst spans page boundaries yet every one of its leads comes exactly once.
    in_burst = [lead_id for lead_id in by_hundred if lead_id in burst]
    assert len(in_burst) == len(burst)
    params = {"createdAt[gte]": stamp, "createdAt[lte]": stamp, "limit": 100}
    first = get_json(api, sandbox.url + LEADS, params)["leads"]
    again = get_json(api, sandbox.url + LEADS, params)["leads"]
    assert [lead["id"] for lead in first] == [lead["id"] for lead in again]


def test_ties_are_not_in_id_order(api, sandbox, leads: list[Lead]) -> None:
    _, burst = _burst(leads)
    for direction in ("asc", "desc"):
        served = fetch_all(api, sandbox, {"sort": f"createdAt:{direction}"})
        tied = [lead["id"] for lead in served if lead["id"] in burst]
        assert tied != sorted(tied)
        assert tied != sorted(tied, reverse=True)


def test_ties_on_other_fields_are_stable(api, sandbox) -> None:
    first = fetch_all(api, sandbox, {"sort": "status:asc"}, 100)
    second = fetch_all(api, sandbox, {"sort": "status:asc"}, 33)
    assert [lead["id"] for lead in first] == [lead["id"] for lead in second]


def test_unicode_survives(api, sandbox, leads: list[Lead]) -> None:
    body = get_json(api, sandbox.url + LEADS, {"search": "Łukasz", "limit": 5})
    assert body["leads"]
    assert all("Łukasz" in (lead["firstName"] or "") for lead in body["leads"])
    response = api.get(sandbox.url + LEADS, params={"limit": 1})
    assert response.headers["Content-Type"] == JSON
    assert int(response.headers["Content-Length"]) == len(response.content)


def test_an_answer_in_process_equals_the_answer_over_http(api, sandbox) -> None:
    params = {"limit": 7, "page": 3, "sort": "email:desc", "status": "open,pending"}
    over_http = api.get(sandbox.url + LEADS, params=params, timeout=10)
    status, body = sandbox.answer(LEADS, params)
    assert (status, body) == (over_http.status_code, over_http.content)
    assert sandbox.answer(LEADS, {"limit": 0})[0] == 400
    assert sandbox.answer(LEADS, {}, api_key="wrong")[0] == 401
