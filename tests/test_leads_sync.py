"""The leads stream end to end against the sandbox: values, requests, bookmarks, resumes."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.schemas import LEAD_FIELDS
from tests.conftest import (
    assert_a_checkpoint_after_every_page,
    bookmark_of,
    config_for,
    lead_requests,
    run_tap,
)


def emitted_lead(lead: dict) -> dict:
    """What the tap should emit for a sandbox lead."""
    flow = lead["channelFlow"]
    if flow is not None and not isinstance(flow, str):
        flow = json.dumps(flow, ensure_ascii=False, separators=(",", ":"))
    return {**lead, "channelFlow": flow}


def test_full_sync_emits_every_lead_once_with_its_values(sandbox: Sandbox) -> None:
    result = run_tap(config_for(sandbox))

    assert result.error is None
    assert len(result.ids) == len(set(result.ids)) == 1000
    expected = {lead["id"]: emitted_lead(lead) for lead in sandbox.project.leads}
    assert {record["id"]: record for record in result.records} == expected


def test_records_come_oldest_first_and_bookmark_is_the_newest_lead(sandbox: Sandbox) -> None:
    result = run_tap(config_for(sandbox))

    created = [record["createdAt"] for record in result.records]
    assert created == sorted(created)
    assert result.bookmark == max(lead["createdAt"] for lead in sandbox.project.leads)


@pytest.mark.parametrize(("leads", "page_size"), [(1000, 100), (1000, 7), (999, 100), (1, 100)])
def test_a_full_sync_asks_for_page_one_from_the_last_lead_read(leads: int, page_size: int) -> None:
    generated = generate_leads(leads, seed=3)
    with Sandbox(Project(generated)) as server:
        result = run_tap(config_for(server, page_size=page_size))

        requests = lead_requests(server)
    assert len(result.records) == leads
    keyset = [r for r in requests if r.params.get("createdAt[lte]") is None]
    assert {r.params["page"] for r in keyset} == {"1"}
    assert {r.params["limit"] for r in keyset} == {str(page_size)}
    # Each keyset page starts at the last lead emitted; instants that fill a page are
    # read on their own, in the largest pages.
    starts = [r.params.get("createdAt[gte]") for r in keyset]
    assert starts[1:] == sorted(starts[1:])
    assert {r.params["limit"] for r in requests if r not in keyset} <= {"100"}
    largest_tie = max(Counter(lead["createdAt"] for lead in generated).values())
    budget = math.ceil(leads / max(1, page_size - 1)) + math.ceil(largest_tie / 100) + 2
    assert len(requests) <= budget


def test_an_empty_project_costs_one_request_and_writes_no_bookmark() -> None:
    with Sandbox(Project([])) as server:
        result = run_tap(config_for(server))

        assert result.error is None
        assert result.records == []
        assert len(lead_requests(server)) == 1
        assert result.bookmark is None


def test_state_is_written_after_every_page_and_points_at_the_last_emitted_lead(
    sandbox: Sandbox,
) -> None:
    result = run_tap(config_for(sandbox, page_size=50))

    assert_a_checkpoint_after_every_page(result, 50)
    assert len(result.records) == 1000


@pytest.mark.parametrize("page", [1, 4, 9])
def test_a_sync_resumed_from_a_mid_sync_state_emits_every_lead_after_it(
    sandbox: Sandbox, page: int
) -> None:
    first = run_tap(config_for(sandbox, page_size=100))
    checkpoints = [
        index
        for index, message in enumerate(first.messages)
        if message["type"] == "STATE" and bookmark_of(message["value"])
    ]
    kill = checkpoints[page - 1]
    mid_state = first.messages[kill]["value"]
    bookmark = bookmark_of(mid_state)
    before = [m["record"]["id"] for m in first.messages[:kill] if m["type"] == "RECORD"]

    resumed = run_tap(config_for(sandbox, page_size=100), state=mid_state)

    expected = {lead["id"] for lead in sandbox.project.leads if lead["createdAt"] >= bookmark}
    assert set(resumed.ids) == expected
    assert set(before) | set(resumed.ids) == {lead["id"] for lead in sandbox.project.leads}
    assert resumed.bookmark == first.bookmark


@pytest.mark.parametrize(
    "spelling",
    [
        "2026-01-10T08:00:00Z",
        "2026-01-10T08:00:00.000Z",
        "2026-01-10T08:00:00+00:00",
        "2026-01-10T09:00:00+01:00",
        "2026-01-10T08:00:00.000000+00:00",
    ],
)
def test_incoming_state_in_any_spelling_of_utc_is_accepted(sandbox: Sandbox, spelling: str) -> None:
    state = {
        "bookmarks": {"leads": {"replication_key": "createdAt", "replication_key_value": spelling}}
    }

    result = run_tap(config_for(sandbox), state=state)

    assert result.error is None
    assert lead_requests(sandbox)[0].params["createdAt[gte]"] == "2026-01-10T08:00:00.000Z"
    expected = {
        lead["id"]
        for lead in sandbox.project.leads
        if lead["createdAt"] >= "2026-01-10T08:00:00.000Z"
    }
    assert set(result.ids) == expected


def test_created_at_is_emitted_in_one_canonical_spelling() -> None:
    leads = generate_leads(30, seed=5)
    spellings = [
        "2027-05-01T10:00:00Z",
        "2027-05-01T10:00:00.250+00:00",
        "2027-05-01T12:00:01+02:00",
        "2027-05-01T10:00:01.5Z",
    ]
    for lead, spelling in zip(leads[-4:], spellings, strict=True):
        lead["createdAt"] = spelling
    with Sandbox(Project(leads)) as server:
        result = run_tap(config_for(server))

    assert result.error is None
    assert [r["createdAt"] for r in result.records[-4:]] == [
        "2027-05-01T10:00:00.000Z",
        "2027-05-01T10:00:00.250Z",
        "2027-05-01T10:00:01.000Z",
        "2027-05-01T10:00:01.500Z",
    ]


def test_start_date_is_sent_as_created_at_gte_and_bookmark_wins_when_newer(
    sandbox: Sandbox,
) -> None:
    run_tap(config_for(sandbox, start_date="2025-06-01"))
    assert lead_requests(sandbox)[0].params["createdAt[gte]"] == "2025-06-01T00:00:00.000Z"

    sandbox.clear_requests()
    state = {
        "bookmarks": {
            "leads": {
                "replication_key": "createdAt",
                "replication_key_value": "2026-02-03T04:05:06.789Z",
            }
        }
    }
    run_tap(config_for(sandbox, start_date="2025-06-01"), state=state)
    assert lead_requests(sandbox)[0].params["createdAt[gte]"] == "2026-02-03T04:05:06.789Z"

    sandbox.clear_requests()
    run_tap(config_for(sandbox, start_date="2026-06-01T00:00:00Z"), state=state)
    assert lead_requests(sandbox)[0].params["createdAt[gte]"] == "2026-06-01T00:00:00.000Z"


def test_every_setting_becomes_its_documented_query_parameter(sandbox: Sandbox) -> None:
    run_tap(
        config_for(
            sandbox,
            start_date="2025-01-01T00:00:00Z",
            end_date="2026-01-01T00:00:00+01:00",
            statuses=["open", "pending"],
            form_name="Contact form",
            unique_identifier="crm-1",
            email="a@example.com",
            phone="+31612345678",
            search="jan",
            gclid_exists=True,
            cid_exists=False,
            fbp_exists=True,
            fbc_exists=False,
            page_size=25,
        )
    )

    assert lead_requests(sandbox)[0].params == {
        "page": "1",
        "limit": "25",
        "sort": "createdAt:asc",
        "createdAt[gte]": "2025-01-01T00:00:00.000Z",
        "createdAt[lte]": "2025-12-31T22:59:59.999Z",
        "status": "open,pending",
        "formName": "Contact form",
        "uniqueIdentifier": "crm-1",
        "email": "a@example.com",
        "phone": "+31612345678",
        "search": "jan",
        "gclid[exists]": "true",
        "cid[exists]": "false",
        "fbp[exists]": "true",
        "fbc[exists]": "false",
    }


def test_unset_settings_send_no_parameter(sandbox: Sandbox) -> None:
    run_tap(config_for(sandbox, statuses="open, lost"))

    assert lead_requests(sandbox)[0].params == {
        "page": "1",
        "limit": "100",
        "sort": "createdAt:asc",
        "status": "open,lost",
    }


def _has(lead: dict, click_id: str) -> bool:
    return bool((lead["attributionData"] or {}).get(click_id))


def _matches(lead: dict, text: str) -> bool:
    fields = ("firstName", "lastName", "email", "phone", "companyName")
    return any(text.lower() in (lead[f] or "").lower() for f in fields)


FILTERS = {
    "statuses": (["open", "lost"], lambda lead: lead["status"] in ("open", "lost")),
    "form_name": ("Contact", lambda lead: lead["formName"] == "Contact"),
    "search": ("an", lambda lead: _matches(lead, "an")),
    "gclid_exists": (True, lambda lead: _has(lead, "gclid")),
    "cid_exists": (False, lambda lead: not _has(lead, "cid")),
    "fbp_exists": (True, lambda lead: _has(lead, "fbp")),
    "fbc_exists": (False, lambda lead: not _has(lead, "fbc")),
    "start_date": ("2026-01-01", lambda lead: lead["createdAt"] >= "2026-01-01T00:00:00.000Z"),
    "end_date": ("2025-03-01", lambda lead: lead["createdAt"] < "2025-03-01T00:00:00.000Z"),
}


@pytest.mark.parametrize("setting", sorted(FILTERS))
def test_every_filter_returns_exactly_the_leads_the_project_holds_for_it(
    sandbox: Sandbox, setting: str
) -> None:
    value, keep = FILTERS[setting]
    expected = {lead["id"] for lead in sandbox.project.leads if keep(lead)}

    result = run_tap(config_for(sandbox, **{setting: value}))

    assert result.error is None
    assert 0 < len(expected) < 1000, "the generated project should exercise the filter"
    assert set(result.ids) == expected


@pytest.mark.parametrize("setting", ["unique_identifier", "email", "phone"])
def test_exact_match_filters_return_the_matching_leads(sandbox: Sandbox, setting: str) -> None:
    field = {"unique_identifier": "uniqueIdentifier", "email": "email", "phone": "phone"}[setting]
    value = next(lead[field] for lead in sandbox.project.leads[500:] if lead[field])
    expected = {lead["id"] for lead in sandbox.project.leads if lead[field] == value}

    result = run_tap(config_for(sandbox, **{setting: value}))

    assert set(result.ids) == expected


def test_end_date_is_exclusive_so_back_to_back_windows_share_no_lead() -> None:
    leads = generate_leads(40, seed=9)
    boundary = "2026-02-01T00:00:00.000Z"
    for lead in leads[18:22]:
        lead["createdAt"] = boundary
    leads.sort(key=lambda lead: lead["createdAt"])
    with Sandbox(Project(leads)) as server:
        before = run_tap(config_for(server, end_date="2026-02-01"))
        after = run_tap(config_for(server, start_date="2026-02-01"))

    on_boundary = {lead["id"] for lead in leads if lead["createdAt"] == boundary}
    assert on_boundary.isdisjoint(before.ids)
    assert on_boundary <= set(after.ids)
    assert sorted(before.ids + after.ids) == sorted(lead["id"] for lead in leads)


def test_a_journey_that_arrives_parsed_is_emitted_as_json_text(sandbox: Sandbox) -> None:
    parsed = [lead for lead in sandbox.project.leads if isinstance(lead["channelFlow"], list)]
    assert parsed, "the generated project should hold parsed journeys"

    result = run_tap(config_for(sandbox))

    by_id = {record["id"]: record for record in result.records}
    for lead in parsed:
        assert json.loads(by_id[lead["id"]]["channelFlow"]) == lead["channelFlow"]


def test_a_field_the_schema_does_not_know_is_dropped_with_one_warning() -> None:
    leads = generate_leads(20, seed=2)
    for lead in leads:
        lead["leadScore"] = 7
    with Sandbox(Project(leads)) as server:
        result = run_tap(config_for(server))

    assert result.error is None
    assert len(result.records) == 20
    assert all("leadScore" not in record for record in result.records)
    assert result.log.count("`leadScore`") == 1


def test_the_schema_types_every_field_the_project_sends(sandbox: Sandbox) -> None:
    from tap_leadtrackr.schemas import LEAD_SCHEMA

    properties = LEAD_SCHEMA.to_dict()["properties"]
    for lead in sandbox.project.leads:
        assert set(lead) == LEAD_FIELDS
    for nested in ("formData", "userData", "attributionData"):
        typed = set(properties[nested]["properties"])
        seen = {key for lead in sandbox.project.leads for key in (lead[nested] or {})}
        assert seen <= typed, f"{nested} keys not typed: {seen - typed}"
    assert "cents" in properties["price"]["description"]


def catalog_without(*breadcrumbs: tuple[str, ...]) -> dict:
    """The discovered catalog, with these properties of `leads` deselected."""
    from tap_leadtrackr.tap import TapLeadTrackr

    catalog = TapLeadTrackr(config={"api_key": "x"}, validate_config=False).catalog_dict
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if stream["tap_stream_id"] == "leads" and tuple(entry["breadcrumb"]) in breadcrumbs:
                entry["metadata"]["selected"] = False
    return catalog


def test_deselected_properties_are_left_out_nested_ones_too(sandbox: Sandbox) -> None:
    catalog = catalog_without(
        ("properties", "email"),
        ("properties", "attributionData", "properties", "gclid"),
    )

    result = run_tap(config_for(sandbox), catalog=catalog)

    assert result.error is None
    assert len(result.records) == 1000
    assert all("email" not in record for record in result.records)
    attributions = [r["attributionData"] for r in result.records if r["attributionData"]]
    assert attributions
    assert all("gclid" not in attribution for attribution in attributions)
    assert all("phone" in record for record in result.records)


def test_with_every_property_selected_records_are_complete(sandbox: Sandbox) -> None:
    result = run_tap(config_for(sandbox), catalog=catalog_without())

    assert len(result.records) == 1000
    assert all(set(record) == LEAD_FIELDS for record in result.records)
