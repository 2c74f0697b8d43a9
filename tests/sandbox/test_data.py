"""generate_leads: deterministic, realistic, and showing every shape the API may return."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest

from tap_leadtrackr.sandbox import generate_leads
from tests.sandbox.conftest import instant

Lead = dict[str, Any]
FIELDS = [
    "id", "status", "formName", "firstName", "lastName", "phone", "email", "companyName",
    "price", "note", "formData", "userData", "attributionData", "channelFlow",
    "uniqueIdentifier", "createdAt",
]  # fmt: skip
CREATED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@pytest.fixture(scope="module")
def many() -> list[Lead]:
    return generate_leads(3000, seed=11)


def channel_flow_form(value: Any) -> str:
    """Classify a channelFlow value independently of the generator."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "parsed"
    try:
        sessions = json.loads(value)
    except ValueError:
        try:
            json.loads(unquote(value))
        except ValueError:
            return "malformed"
        return "cookie"
    if not isinstance(sessions, list):
        return "malformed"
    return "legacy" if "timestamp" in sessions[0] else "compact"


def sessions_of(value: Any) -> list[dict[str, Any]]:
    form = channel_flow_form(value)
    if form == "parsed":
        return value
    return json.loads(unquote(value) if form == "cookie" else value)


def test_deterministic_for_n_and_seed() -> None:
    assert generate_leads(400, seed=5) == generate_leads(400, seed=5)
    assert generate_leads(400, seed=5) != generate_leads(400, seed=6)
    assert generate_leads(0) == []


def test_ids_and_created_at(many: list[Lead]) -> None:
    assert [lead["id"] for lead in many] == list(range(1, len(many) + 1))
    assert all(CREATED_AT.fullmatch(lead["createdAt"]) for lead in many)
    stamps = [instant(lead["createdAt"]) for lead in many]
    assert stamps == sorted(stamps)
    assert stamps[-1] <= instant("2026-10-31T23:59:59.999Z")
    assert stamps[-1] >= instant("2026-10-01T00:00:00Z")
    assert timedelta(days=600) < stamps[-1] - stamps[0] < timedelta(days=800)


def test_ties_and_an_import_burst(many: list[Lead]) -> None:
    shared = sum(1 for a, b in itertools.pairwise(many) if a["createdAt"] == b["createdAt"])
    assert shared > len(many) * 0.05
    assert Counter(lead["createdAt"] for lead in many).most_common(1)[0][1] > 100
    assert Counter(lead["createdAt"] for lead in generate_leads(1000, 3)).most_common(1)[0][1] > 100


def test_every_lead_has_every_documented_field(many: list[Lead]) -> None:
    for lead in many:
        assert list(lead) == FIELDS
        assert isinstance(lead["status"], str)
        assert lead["price"] is None or isinstance(lead["price"], int)
        for field in ("formName", "firstName", "lastName", "phone", "email", "companyName"):
            assert lead[field] is None or isinstance(lead[field], str)
        for field in ("formData", "userData", "attributionData"):
            assert lead[field] is None or isinstance(lead[field], dict)
    for field in FIELDS:
        if field not in ("id", "status", "createdAt"):
            assert any(lead[field] is None for lead in many), f"{field} is never null"
            assert any(lead[field] is not None for lead in many), f"{field} is always null"


def test_realistic_values(many: list[Lead]) -> None:
    statuses = {lead["status"] for lead in many}
    assert {"open", "pending", "lost", "Qualified lead", "Sale", "Afspraak gepland"} <= statuses
    names = {lead["firstName"] for lead in many} | {lead["lastName"] for lead in many}
    assert {"Zoë", "Jürgen", "José", "Łukasz", "陈"} <= names
    assert len({lead["formName"] for lead in many if lead["formName"]}) >= 4
    emails = [lead["email"] for lead in many if lead["email"]]
    assert all(email.isascii() and email == email.lower() and "@" in email for email in emails)
    assert len(set(emails)) < len(emails), "no duplicate e-mail addresses"
    assert len({lead["uniqueIdentifier"] for lead in many if lead["uniqueIdentifier"]}) > 100
    user_data = [lead["userData"] for lead in many if lead["userData"]]
    assert any("company" in data for data in user_data)
    assert any("companyName" in data for data in user_data)
    form_data = [lead["formData"] for lead in many if lead["formData"]]
    assert all({"formName", "uniqueEventId"} <= set(data) for data in form_data)
    assert any(isinstance(data.get("formFields"), dict) for data in form_data)
    assert any("formCustomField1" in data for data in form_data)
    assert any("customFormName" in data for data in form_data)
    assert any("formId" in data for data in form_data)


def test_attribution_data(many: list[Lead]) -> None:
    attribution = [lead["attributionData"] for lead in many if lead["attributionData"]]
    keys = set().union(*attribution)
    assert {"gclid", "wbraid", "cid", "sid", "fbp", "fbc", "consent", "conversionPage"} <= keys
    assert {"gbraid", "msclkid", "ttclid", "li_fat_id"} <= keys
    for key in ("gclid", "cid", "fbp", "fbc"):
        assert any(data.get(key) for data in attribution), f"{key} never has a value"
        assert any(data.get(key) == "" for data in attribution), f"{key} is never empty"
        assert any(key not in data for data in attribution), f"{key} is never absent"
    consents = [data["consent"] for data in attribution if "consent" in data]
    assert all(
        set(consent) == {"ad_storage", "analytics_storage", "ad_user_data", "ad_personalization"}
        and set(consent.values()) <= {"granted", "denied"}
        for consent in consents
    )


def test_every_channel_flow_form_at_fifty_leads() -> None:
    forms = Counter(channel_flow_form(lead["channelFlow"]) for lead in generate_leads(50, seed=1))
    assert set(forms) == {"null", "compact", "legacy", "parsed", "cookie", "malformed"}


def test_channel_flow_sessions(many: list[Lead]) -> None:
    sources = set()
    for lead in many:
        form = channel_flow_form(lead["channelFlow"])
        if form in ("null", "malformed"):
            continue
        sessions = sessions_of(lead["channelFlow"])
        assert 1 <= len(sessions) <= 5
        time_key = "timestamp" if form == "legacy" else "t"
        times = [session[time_key] for session in sessions]
        assert times == sorted(times)
        assert times[-1] < instant(lead["createdAt"]).timestamp() * 1000
        for session in sessions:
            if form == "legacy":
                assert set(session["channel"]) == {
                    "source",
                    "medium",
                    "campaign",
                    "content",
                    "term",
                }
                sources.add(session["channel"]["source"])
            else:
                assert set(session) == {"t", "ch", "lp"}
                assert set(session["ch"]) == {"s", "m", "cm", "ct", "tm"}
                assert session["lp"].startswith("https://")
                sources.add(session["ch"]["s"])
    assert {"google", "facebook", "bing", "(direct)", "newsletter"} <= sources
    assert all(
        isinstance(lead["channelFlow"], str)
        for lead in many
        if channel_flow_form(lead["channelFlow"]) not in ("null", "parsed")
    )


def test_fast_enough() -> None:
    started = time.perf_counter()
    generate_leads(20_000, seed=2)
    # 100,000 leads take about 1-2 s; 20,000 get a generous bound for slow CI machines.
    assert time.perf_counter() - started < 3


@pytest.mark.parametrize(("n", "size"), [(1000, 250), (400, 250), (60, 1), (300, 300)])
def test_bulk_ties_make_one_group_of_exactly_that_size(n: int, size: int) -> None:
    leads = generate_leads(n, seed=5, bulk_ties=size)
    assert [lead["id"] for lead in leads] == list(range(1, n + 1))
    start = (n - size) // 2
    stamp = leads[start]["createdAt"]
    assert {lead["createdAt"] for lead in leads[start : start + size]} == {stamp}
    assert sum(lead["createdAt"] == stamp for lead in leads) == size
    stamps = [instant(lead["createdAt"]) for lead in leads]
    assert stamps == sorted(stamps)


def test_bulk_ties_off_changes_nothing() -> None:
    assert generate_leads(1200, seed=7, bulk_ties=0) == generate_leads(1200, seed=7)


@pytest.mark.parametrize("size", [-1, 11])
def test_bulk_ties_must_fit(size: int) -> None:
    with pytest.raises(ValueError, match="bulk_ties"):
        generate_leads(10, bulk_ties=size)
