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
    *,
    expect_error: bool = False,
) -> SyncResult:
    """Run a full sync in this process and capture what it wrote.

    An exception from the sync is raised, with the sync's log attached, so a test cannot
    pass on a sync that crashed. A test of a failure passes `expect_error=True`: the
    exception is then kept in `SyncResult.error` (None if the sync ended well) for it to check.
    """
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
    if error is not None and not expect_error:
        error.add_note(f"--- the sync's log, last lines:\n{stderr.getvalue()[-4000:]}")
        raise error
    stdout.seek(0)
    output = stdout.read()
    messages = [json.loads(line) for line in output.splitlines() if line.strip()]
    return SyncResult(messages=messages, error=error, log=stderr.getvalue(), output=output)


@pytest.fixture
def sandbox() -> t.Iterator[Sandbox]:
    """A sandbox project of 1,000 generated leads."""
    with Sandbox(Project(generate_leads(1000, seed=7))) as server:
        yield server


@pytest.fixture(params=[1, 4], ids=["sequential", "parallel"])
def parallelism(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run a test with one request at a time and with four.

    The test module's own `config_for` then sets `max_parallel_requests`.
    """

    def with_parallelism(server: Sandbox, **settings: t.Any) -> dict[str, t.Any]:
        return config_for(server, max_parallel_requests=request.param, **settings)

    monkeypatch.setattr(request.module, "config_for", with_parallelism)
    return request.param


def config_for(server: Sandbox, **settings: t.Any) -> dict[str, t.Any]:
    return {"api_key": server.api_key, "api_url": server.url, **settings}


def lead_requests(server: Sandbox) -> list:
    return [r for r in server.requests if r.path == "/api/leads/getLeads"]


def assert_a_checkpoint_after_every_page(result: SyncResult, page_size: int) -> None:
    """At most a page of leads past the last checkpoint, which is at the last lead emitted.

    Identical states are written once, so leads at the checkpoint's own instant (a tie
    group read a page at a time) add none: a resume reads them again anyway.
    """
    emitted: list[str] = []
    bookmark, past_checkpoint = None, 0
    for message in result.messages:
        if message["type"] == "STATE" and (bookmark := bookmark_of(message["value"])):
            assert bookmark == emitted[-1], "a checkpoint that is not the last lead emitted"
            past_checkpoint = 0
        elif message["type"] == "RECORD" and message["stream"] == "leads":
            emitted.append(message["record"]["createdAt"])
            past_checkpoint += emitted[-1] != bookmark
            assert past_checkpoint <= page_size, f"no checkpoint by lead {len(emitted)}"
    assert emitted == sorted(emitted)
    assert result.bookmark == emitted[-1]
