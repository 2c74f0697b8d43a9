"""GET /api/leads/getLead: lookups by leadId, uniqueIdentifier, email, phone, in that priority."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tap_leadtrackr.sandbox import Project, Sandbox
from tests.sandbox.conftest import LEAD, get_json, instant, session_for

Lead = dict[str, Any]


def _newest(leads: list[Lead], field: str, value: str) -> Lead:
    """The newest lead with `field == value`: latest createdAt, then latest created."""
    matches = [(instant(lead["createdAt"]), index) for index, lead in enumerate(leads)]
    chosen = max(key for key, lead in zip(matches, leads, strict=True) if lead[field] == value)
    return leads[chosen[1]]


def test_by_lead_id(api, sandbox, leads: list[Lead]) -> None:
    for lead in (leads[0], leads[599], leads[-1]):
        body = get_json(api, sandbox.url + LEAD, {"leadId": lead["id"]})
        assert body == {"message": "Lead retrieved", "lead": lead}


@pytest.mark.parametrize("lead_id", [0, 10**9, "0001201"])
def test_unknown_lead_id(api, sandbox, lead_id: object) -> None:
    body = get_json(api, sandbox.url + LEAD, {"leadId": lead_id}, status=404)
    assert body == {"message": "Lead not found"}


def test_leading_zeros_are_the_same_id(api, sandbox, leads: list[Lead]) -> None:
    assert get_json(api, sandbox.url + LEAD, {"leadId": "0042"})["lead"] == leads[41]


@pytest.mark.parametrize("field", ["uniqueIdentifier", "email", "phone"])
def test_by_field_gives_the_newest_match(api, sandbox, leads: list[Lead], field: str) -> None:
    counts = Counter(lead[field] for lead in leads if lead[field])
    repeated = [value for value, count in counts.items() if count > 1]
    single = next(value for value, count in counts.items() if count == 1)
    assert repeated, f"the generated data has no repeated {field}"
    for value in [*repeated[:5], single]:
        body = get_json(api, sandbox.url + LEAD, {field: value})
        assert body["lead"] == _newest(leads, field, value)
    missing = get_json(api, sandbox.url + LEAD, {field: "no-such-value"}, status=404)
    assert missing == {"message": "Lead not found"}


def test_newest_among_equal_created_at_is_the_last_created() -> None:
    stamp = "2026-05-01T08:00:00.000Z"
    leads = [
        {"id": 10, "email": "a@example.com", "createdAt": stamp},
        {"id": 3, "email": "a@example.com", "createdAt": stamp},
        {"id": 7, "email": "a@example.com", "createdAt": "2026-04-30T08:00:00.000Z"},
    ]
    with Sandbox(Project(leads)) as sandbox:
        body = get_json(session_for(sandbox), sandbox.url + LEAD, {"email": "a@example.com"})
        assert body["lead"]["id"] == 3


def test_priority_lead_id_then_identifier_then_email_then_phone() -> None:
    leads = [
        {
            "id": number,
            "uniqueIdentifier": f"crm-{number}",
            "email": f"{name}@x.nl",
            "phone": f"+31{number}",
            "createdAt": "2026-05-01T08:00:00.000Z",
        }
        for number, name in enumerate(("one", "two", "three", "four"), start=1)
    ]
    with Sandbox(Project(leads)) as sandbox:
        session = session_for(sandbox)

        def found(**params: object) -> int:
            return get_json(session, sandbox.url + LEAD, params)["lead"]["id"]

        everything = {
            "leadId": 1,
            "uniqueIdentifier": "crm-2",
            "email": "three@x.nl",
            "phone": "+314",
        }
        assert found(**everything) == 1
        assert found(uniqueIdentifier="crm-2", email="three@x.nl", phone="+314") == 2
        assert found(email="three@x.nl", phone="+314") == 3
        assert found(phone="+314") == 4
        # The highest-priority parameter decides even when it finds nothing.
        missing = get_json(session, sandbox.url + LEAD, {**everything, "leadId": 99}, status=404)
        assert missing == {"message": "Lead not found"}
        missing = get_json(
            session, sandbox.url + LEAD, {"email": "x@x.nl", "phone": "+311"}, status=404
        )
        assert missing == {"message": "Lead not found"}
