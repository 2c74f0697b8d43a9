"""Project: validation, changes seen by the next request, and a property test of the filters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tests.sandbox.conftest import LEAD, LEADS, fetch_all, get_json, instant, session_for

Lead = dict[str, Any]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(leads=120, seed=3) as running:
        yield running


@pytest.mark.parametrize(
    ("leads", "message"),
    [
        ([{"createdAt": "2026-01-01"}], "integer id"),
        ([{"id": "1", "createdAt": "2026-01-01"}], "integer id"),
        ([{"id": True, "createdAt": "2026-01-01"}], "integer id"),
        ([{"id": 1}], "createdAt"),
        ([{"id": 1, "createdAt": "01/02/2026"}], "ISO 8601"),
        ([{"id": 1, "createdAt": "2026-01-01"}, {"id": 1, "createdAt": "2026-01-02"}], "two leads"),
    ],
)
def test_invalid_leads_are_refused(leads: list[Lead], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Project(leads)


def test_add_leads_continues_ids_and_is_newest(sandbox: Sandbox) -> None:
    session = session_for(sandbox)
    project = sandbox.project
    newest_before = max(instant(lead["createdAt"]) for lead in project.leads)
    version = project.version
    added = project.add_leads(3)
    assert project.version > version
    assert [lead["id"] for lead in added] == [121, 122, 123]
    stamps = [instant(lead["createdAt"]) for lead in added]
    assert newest_before < stamps[0] < stamps[1] < stamps[2]
    assert stamps[2] - newest_before < timedelta(milliseconds=20)
    assert all(set(lead) == set(project.leads[0]) for lead in added)
    body = get_json(session, sandbox.url + LEADS, {"limit": 3})
    assert body["total"] == 123
    assert [lead["id"] for lead in body["leads"]] == [123, 122, 121]


def test_add_leads_at_a_given_time(sandbox: Sandbox) -> None:
    added = sandbox.project.add_leads(2, created_at="2025-01-01T12:00:00+01:00")
    assert [lead["createdAt"] for lead in added] == ["2025-01-01T11:00:00.000Z"] * 2
    session = session_for(sandbox)
    params = {"createdAt[gte]": "2025-01-01T11:00:00Z", "createdAt[lte]": "2025-01-01T11:00:00Z"}
    served = fetch_all(session, sandbox, params)
    assert {lead["id"] for lead in added} <= {lead["id"] for lead in served}


def test_update_lead_is_served_at_once(sandbox: Sandbox) -> None:
    session = session_for(sandbox)
    before = get_json(session, sandbox.url + LEAD, {"leadId": 7})["lead"]
    sold = get_json(session, sandbox.url + LEADS, {"status": "Sale"})["total"]
    updated = sandbox.project.update_lead(7, status="Sale", price=123_456, note="Getekend ✍")
    assert updated["status"] == "Sale"
    after = get_json(session, sandbox.url + LEAD, {"leadId": 7})["lead"]
    assert after == {**before, "status": "Sale", "price": 123_456, "note": "Getekend ✍"}
    expected = sold + (before["status"] != "Sale")
    assert get_json(session, sandbox.url + LEADS, {"status": "Sale"})["total"] == expected
    # New fields pass through, as they might from a beta API.
    sandbox.project.update_lead(7, deviceData={"type": "mobile"})
    assert get_json(session, sandbox.url + LEAD, {"leadId": 7})["lead"]["deviceData"] == {
        "type": "mobile"
    }


def test_update_lead_refuses_unknown_ids_and_id_changes(sandbox: Sandbox) -> None:
    with pytest.raises(KeyError):
        sandbox.project.update_lead(999, status="lost")
    with pytest.raises(ValueError, match="id"):
        sandbox.project.update_lead(1, id=2)
    with pytest.raises(ValueError, match="ISO 8601"):
        sandbox.project.update_lead(1, createdAt="yesterday")


def test_update_created_at_moves_the_lead(sandbox: Sandbox) -> None:
    sandbox.project.update_lead(5, createdAt="2030-01-01T00:00:00.000Z")
    session = session_for(sandbox)
    assert get_json(session, sandbox.url + LEADS, {"limit": 1})["leads"][0]["id"] == 5


def test_delete_leads(sandbox: Sandbox) -> None:
    session = session_for(sandbox)
    assert sandbox.project.delete_leads([1, 2, 120, 999]) == 3
    assert get_json(session, sandbox.url + LEADS)["total"] == 117
    assert get_json(session, sandbox.url + LEAD, {"leadId": 120}, status=404)
    # Ids are never reused, even after the highest one was deleted.
    assert sandbox.project.add_leads(1)[0]["id"] == 121


def test_replacing_the_project(sandbox: Sandbox) -> None:
    session = session_for(sandbox)
    sandbox.project = Project(generate_leads(10, seed=9))
    assert get_json(session, sandbox.url + LEADS)["total"] == 10


# A property test: for any small project and any combination of filters and a sort, the
# sandbox returns exactly what a plain-Python reading of the documentation selects.
STAMPS = ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.001Z", "2026-03-04T05:06:07.089Z"]
WORDS = [None, "", "Zoë", "zoe", "Anna", "ANNA-Lena", "陈", "X@y.nl"]
STATUSES = ["open", "pending", "lost", "Sale", "Qualified lead"]

attribution = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["gclid", "cid", "fbp", "fbc", "wbraid"]),
        st.sampled_from(["", "abc", None]),
    ),
)
lead_fields = st.fixed_dictionaries(
    {
        "status": st.sampled_from(STATUSES),
        "formName": st.sampled_from([None, "Contact", "Offerte"]),
        "firstName": st.sampled_from(WORDS),
        "lastName": st.sampled_from(WORDS),
        "email": st.sampled_from(WORDS),
        "phone": st.sampled_from([None, "+31 6 1", "06-1"]),
        "companyName": st.sampled_from(WORDS),
        "price": st.one_of(st.none(), st.integers(0, 5)),
        "attributionData": attribution,
        "uniqueIdentifier": st.sampled_from([None, "crm-1", "crm-2"]),
        "createdAt": st.sampled_from(STAMPS),
    }
)
PARAMETERS = {
    "status": st.sampled_from(["open", "open,Sale", "Qualified lead,lost"]),
    "formName": st.sampled_from(["Contact", "Offerte"]),
    "email": st.sampled_from(["X@y.nl", "Zoë"]),
    "phone": st.just("+31 6 1"),
    "uniqueIdentifier": st.sampled_from(["crm-1", "crm-2"]),
    "createdAt[gte]": st.sampled_from([*STAMPS, "2026-01-01", "2026-01-01T01:00:00+01:00"]),
    "createdAt[lte]": st.sampled_from([*STAMPS, "2026-01-01T00:00:00Z"]),
    "search": st.sampled_from(["ZO", "zoË", "anna", "陈@", "@Y.", "+31"]),
    "sort": st.sampled_from(
        [f"{f}:{d}" for f in ("createdAt", "firstName", "price", "status") for d in ("asc", "desc")]
    ),
    "gclid[exists]": st.sampled_from(["true", "false"]),
    "fbc[exists]": st.sampled_from(["true", "false"]),
}
# Up to three filters at once: more would leave almost every example with no lead to check.
queries = st.tuples(st.permutations(sorted(PARAMETERS)), st.integers(1, 3)).flatmap(
    lambda drawn: st.fixed_dictionaries({name: PARAMETERS[name] for name in drawn[0][: drawn[1]]})
)


def expected_ids(leads: list[Lead], params: dict[str, str]) -> list[int]:
    def has(lead: Lead, key: str) -> bool:
        data = lead["attributionData"]
        return isinstance(data, dict) and data.get(key) not in (None, "")

    def keep(lead: Lead) -> bool:
        if "status" in params and lead["status"] not in params["status"].split(","):
            return False
        for field in ("formName", "email", "phone", "uniqueIdentifier"):
            if field in params and lead[field] != params[field]:
                return False
        if "createdAt[gte]" in params and instant(lead["createdAt"]) < instant(
            params["createdAt[gte]"] + ("T00:00:00Z" if len(params["createdAt[gte]"]) == 10 else "")
        ):
            return False
        if "createdAt[lte]" in params and instant(lead["createdAt"]) > instant(
            params["createdAt[lte]"]
        ):
            return False
        if "search" in params:
            needle = params["search"].lower()
            fields = ("firstName", "lastName", "email", "phone", "companyName")
            if not any(needle in (lead[field] or "").lower() for field in fields):
                return False
        for key in ("gclid", "fbc"):
            wanted = params.get(f"{key}[exists]")
            if wanted is not None and has(lead, key) != (wanted == "true"):
                return False
        return True

    return sorted(lead["id"] for lead in leads if keep(lead))


@pytest.fixture(scope="module")
def shared() -> Iterator[Sandbox]:
    with Sandbox(Project([])) as running:
        yield running


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.lists(lead_fields, min_size=5, max_size=30), params=queries, limit=st.integers(3, 10)
)
def test_filters_and_sort_match_a_plain_reading(
    shared: Sandbox, fields: list[Lead], params: dict[str, str], limit: int
) -> None:
    leads = [{"id": index * 3 + 1, **lead} for index, lead in enumerate(fields)]
    shared.project = Project(leads)
    served = fetch_all(session_for(shared), shared, params, limit)
    assert sorted(lead["id"] for lead in served) == expected_ids(leads, params)
    field, _, direction = params.get("sort", "createdAt:desc").partition(":")

    def key(lead: Lead) -> tuple[bool, Any]:
        value = instant(lead[field]) if field == "createdAt" else lead[field]
        return (value is not None, value if value is not None else 0)

    keys = [key(lead) for lead in served]
    assert keys == sorted(keys, reverse=direction == "desc")


def test_add_leads_tied_share_the_millisecond_after_the_newest(sandbox: Sandbox) -> None:
    project = sandbox.project
    newest_before = max(instant(lead["createdAt"]) for lead in project.leads)
    added = project.add_leads(150, tied=True)
    assert [lead["id"] for lead in added] == list(range(121, 271))
    assert {instant(lead["createdAt"]) for lead in added} == {
        newest_before + timedelta(milliseconds=1)
    }


def test_new_leads_are_newer_than_any_deleted_one(sandbox: Sandbox) -> None:
    project = sandbox.project
    newest = project.pick_ids(3, "newest")
    newest_stamp = max(instant(lead["createdAt"]) for lead in project.leads)
    assert project.delete_leads(newest) == 3
    # A server stamps creation time: a lead created now is newer than one deleted just now.
    for tied in (False, True):
        added = project.add_leads(2, tied=tied)
        assert all(instant(lead["createdAt"]) > newest_stamp for lead in added)


def test_pick_ids(sandbox: Sandbox) -> None:
    project = sandbox.project
    by_age = [
        lead["id"]
        for lead in sorted(project.leads, key=lambda lead: (instant(lead["createdAt"]), lead["id"]))
    ]
    assert project.pick_ids(4) == project.oldest_ids(4) == by_age[:4]
    assert project.pick_ids(4, "newest") == by_age[::-1][:4]
    assert project.pick_ids(4, "middle") == by_age[58:62]
    assert project.pick_ids(500, "oldest") == by_age
    drawn = project.pick_ids(10, "random", seed=3)
    assert len(set(drawn)) == 10
    assert set(drawn) <= set(by_age)
    assert drawn == project.pick_ids(10, "random", seed=3)
    assert drawn != project.pick_ids(10, "random", seed=4)
    with pytest.raises(ValueError, match="where"):
        project.pick_ids(1, "first")


@settings(max_examples=60, deadline=None)
@given(
    bounds=st.tuples(st.integers(0, 1200), st.integers(0, 1200)),
    descending=st.booleans(),
    offset=st.integers(0, 60),
    limit=st.integers(1, 100),
    statuses=st.sampled_from([None, frozenset({"open"}), frozenset({"open", "lost"})]),
)
def test_a_created_at_range_is_served_as_a_full_selection_would_serve_it(
    bounds, descending, offset, limit, statuses
) -> None:
    # The range is cut from the cached order without it (as an index would); the answer
    # must be what selecting and sorting the range afresh gives.
    from dataclasses import replace

    from tap_leadtrackr.sandbox.query import LeadsQuery

    project = _RANGE_PROJECT
    created = sorted(project._created_ms.values())
    low, high = sorted(bounds)
    query = LeadsQuery(
        statuses=statuses,
        created_gte=created[min(low, len(created) - 1)],
        created_lte=created[min(high, len(created) - 1)],
        descending=descending,
    )
    expected = query.select(project.leads, project._created_ms)
    total, page = project.page(query, offset, limit)
    assert total == len(expected)
    assert page == [project._json(lead_id) for lead_id in expected[offset : offset + limit]]
    unbounded = replace(query, created_gte=None, created_lte=None)
    assert project.page(unbounded, 0, 5)[0] == len(
        unbounded.select(project.leads, project._created_ms)
    )


_RANGE_PROJECT = Project(generate_leads(1200, seed=5))
