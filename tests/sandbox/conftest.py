"""Shared fixtures: one read-only sandbox over generated leads, and plain-Python helpers.

Expectations are computed here from `project.leads` with the standard library only, never
with the sandbox's own filtering or sorting code.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads

LEADS = "/api/leads/getLeads"
LEAD = "/api/leads/getLead"
JSON = "application/json; charset=utf-8"


def instant(text: str) -> datetime:
    """Parse an ISO 8601 instant the way the documentation writes them."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def session_for(sandbox: Sandbox, key: str | None = None) -> requests.Session:
    session = requests.Session()
    session.headers["X-API-Key"] = key or sandbox.api_key
    return session


def get_json(session: requests.Session, url: str, params: Any = None, status: int = 200) -> Any:
    response = session.get(url, params=params, timeout=10)
    assert response.headers["Content-Type"] == JSON
    assert response.status_code == status, response.text
    return response.json()


def fetch_all(
    session: requests.Session, sandbox: Sandbox, params: dict[str, Any], limit: int = 100
) -> list[dict[str, Any]]:
    """Page through getLeads until hasMore is false, checking every envelope on the way."""
    leads: list[dict[str, Any]] = []
    page = 1
    while True:
        body = get_json(session, sandbox.url + LEADS, {**params, "limit": limit, "page": page})
        assert body["page"] == page
        assert body["limit"] == limit
        assert body["totalPages"] == math.ceil(body["total"] / limit)
        assert body["hasMore"] == (page < body["totalPages"])
        leads.extend(body["leads"])
        if not body["hasMore"]:
            assert len(leads) == body["total"]
            return leads
        assert len(body["leads"]) == limit
        page += 1


@pytest.fixture(scope="session")
def leads() -> list[dict[str, Any]]:
    # 1,200 leads: enough for a CRM import burst of over 100 leads in one millisecond.
    return generate_leads(1200, seed=7)


@pytest.fixture(scope="session")
def sandbox(leads: list[dict[str, Any]]) -> Iterator[Sandbox]:
    """A sandbox that tests only read from; tests that change data or faults make their own."""
    with Sandbox(Project(leads)) as running:
        yield running


@pytest.fixture
def api(sandbox: Sandbox) -> requests.Session:
    return session_for(sandbox)
