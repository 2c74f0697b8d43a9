"""Shared fixtures: a sandbox per test and an in-process tap run that captures messages."""

from __future__ import annotations

import io
import json
import logging
import typing as t
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field

import pytest

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.tap import TapLeadTrackr


@dataclass
class SyncResult:
    """What one run of the tap wrote."""

    messages: list[dict[str, t.Any]]
    error: BaseException | None = None
    log: str = ""
    output: str = ""
    """Everything the tap wrote to stdout, as written."""
    records: list[dict[str, t.Any]] = field(init=False)
    states: list[dict[str, t.Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.records = [m["record"] for m in self.messages if m["type"] == "RECORD"]
        self.states = [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def ids(self) -> list[int]:
        return [record["id"] for record in self.records]

    @property
    def last_state(self) -> dict[str, t.Any]:
        return self.states[-1]

    @property
    def bookmark(self) -> str | None:
        return bookmark_of(self.last_state)


def bookmark_of(state: dict[str, t.Any]) -> str | None:
    return state.get("bookmarks", {}).get("leads", {}).get("replication_key_value")


def run_tap(
    config: dict[str, t.Any],
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
) -> SyncResult:
    """Run a full sync in this process; an exception is kept, not raised."""
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    stderr = io.StringIO()
    handler = logging.StreamHandler(stderr)
    logging.getLogger().addHandler(handler)
    error: BaseException | None = None
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            tap = TapLeadTrackr(config=config, state=state, catalog=catalog)
            tap.sync_all()
    except Exception as exc:
        error = exc
    finally:
        logging.getLogger().removeHandler(handler)
    stdout.seek(0)
    output = stdout.read()
    messages = [json.loads(line) for line in output.splitlines() if line.strip()]
    return SyncResult(messages=messages, error=error, log=stderr.getvalue(), output=output)


@pytest.fixture
def sandbox() -> t.Iterator[Sandbox]:
    """A sandbox project of 1,000 generated leads."""
    with Sandbox(Project(generate_leads(1000, seed=7))) as server:
        yield server


def config_for(server: Sandbox, **settings: t.Any) -> dict[str, t.Any]:
    return {"api_key": server.api_key, "api_url": server.url, **settings}


def lead_requests(server: Sandbox) -> list:
    return [r for r in server.requests if r.path == "/api/leads/getLeads"]
