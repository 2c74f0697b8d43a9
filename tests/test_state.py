"""The state the tap is given: refused before any request if it has the wrong shape, and
its bookmarks read in any ISO 8601 spelling (a lowercase `z`, no zone at all) as UTC.

`test_timestamps_and_state_hold_in_another_time_zone` runs this file and
`tests/test_timestamps.py` again under time zones other than the machine's UTC.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.state import StateError
from tests.conftest import config_for, lead_requests, run_tap

ROOT = Path(__file__).resolve().parents[1]
INSTANT = "2026-03-15T10:30:00.000Z"


def bookmark(value: t.Any, **more: t.Any) -> dict[str, t.Any]:
    return {
        "bookmarks": {
            "leads": {"replication_key": "createdAt", "replication_key_value": value, **more}
        }
    }


def partition(value: t.Any, context: t.Any = None) -> dict[str, t.Any]:
    context = {"project": "acme"} if context is None else context
    return {"context": context, "replication_key": "createdAt", "replication_key_value": value}


BAD_STATES: dict[str, t.Any] = {
    "a number": 12345,
    "a list": [],
    "text in a list": ["2026-03-15"],
    "bookmarks a list": {"bookmarks": []},
    "bookmarks null": {"bookmarks": None},
    "a stream's state a number": {"bookmarks": {"leads": 12345}},
    "a bookmark as a number": bookmark(12345),
    "a bookmark as epoch milliseconds": bookmark(1773570600000),
    "a bookmark as an object": bookmark({"createdAt": INSTANT}),
    "a bookmark that is no timestamp": bookmark("yesterday"),
    "replication_key a list": {"bookmarks": {"leads": {"replication_key": ["createdAt"]}}},
    "progress markers a list": bookmark(INSTANT, progress_markers=[]),
    "partitions an object": {"bookmarks": {"leads": {"partitions": partition(INSTANT)}}},
    "a partition as text": {"bookmarks": {"leads": {"partitions": ["acme"]}}},
    "a partition without context": {
        "bookmarks": {"leads": {"partitions": [{"replication_key": "createdAt"}]}}
    },
    "a partition whose context is text": {
        "bookmarks": {"leads": {"partitions": [partition(INSTANT, context="acme")]}}
    },
    "a partition's bookmark a number": {"bookmarks": {"leads": {"partitions": [partition(12345)]}}},
}


@pytest.mark.parametrize("state", list(BAD_STATES.values()), ids=list(BAD_STATES))
def test_a_state_of_the_wrong_shape_is_refused_before_any_request(
    sandbox: Sandbox, state: t.Any
) -> None:
    result = run_tap(config_for(sandbox), state=state, expect_error=True)

    assert isinstance(result.error, StateError), result.error
    assert str(result.error).startswith("The state is not one this tap writes: ")
    assert "state clear" in str(result.error)
    assert sandbox.requests == []


def test_the_cli_refuses_a_wrong_state_in_one_line(tmp_path: Path, sandbox: Sandbox) -> None:
    config, state = tmp_path / "config.json", tmp_path / "state.json"
    config.write_text(json.dumps(config_for(sandbox)))
    state.write_text(json.dumps(bookmark(12345)))

    run = subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr", "--config", str(config), "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, run.stderr
    assert "`bookmarks.leads`.replication_key_value is a number" in errors[0]
    assert "Traceback" not in run.stderr
    assert sandbox.requests == []


@pytest.mark.parametrize(
    "written",
    [
        "2026-03-15T10:30:00.000z",
        "2026-03-15t10:30:00z",
        "2026-03-15T10:30:00",
        "2026-03-15T10:30:00.000",
        "2026-03-15 10:30:00",
        "2026-03-15T11:30:00+01:00",
        "2026-03-15T05:30:00.000-05:00",
    ],
)
def test_a_bookmark_in_another_spelling_resumes_at_its_instant_in_utc(
    sandbox: Sandbox, written: str
) -> None:
    result = run_tap(config_for(sandbox), state=bookmark(written))

    assert lead_requests(sandbox)[0].params["createdAt[gte]"] == INSTANT
    expected = [lead["id"] for lead in sandbox.project.leads if lead["createdAt"] >= INSTANT]
    assert 0 < len(expected) < len(sandbox.project.leads)
    assert sorted(result.ids) == expected
    assert result.bookmark == sandbox.project.leads[-1]["createdAt"]


@pytest.mark.parametrize("written", ["2026-03-15T10:30:00.000z", "2026-03-15T10:30:00"])
def test_a_project_bookmark_in_another_spelling_resumes_at_its_instant(written: str) -> None:
    leads = generate_leads(300, seed=4)
    with Sandbox(Project(generate_leads(3)), projects={"key-acme": Project(leads)}) as server:
        state = {"bookmarks": {"leads": {"partitions": [partition(written)]}}}
        config = {"api_url": server.url, "projects": [{"name": "acme", "api_key": "key-acme"}]}

        result = run_tap(config, state=state)

        assert lead_requests(server)[0].params["createdAt[gte]"] == INSTANT
    assert sorted(result.ids) == [lead["id"] for lead in leads if lead["createdAt"] >= INSTANT]


def test_dates_alone_are_midnight_utc(sandbox: Sandbox) -> None:
    result = run_tap(config_for(sandbox, start_date="2026-03-15", end_date="2026-04-01"))

    (request, *_) = lead_requests(sandbox)
    assert request.params["createdAt[gte]"] == "2026-03-15T00:00:00.000Z"
    assert request.params["createdAt[lte]"] == "2026-03-31T23:59:59.999Z"
    assert all("2026-03-15" <= record["createdAt"] < "2026-04" for record in result.records)


@pytest.mark.parametrize(
    ("zone", "offset"),
    [("EST5EDT,M3.2.0,M11.1.0", -5 * 3600), ("IST-5:30", 5 * 3600 + 1800)],
    ids=["new-york", "india"],
)
def test_timestamps_and_state_hold_in_another_time_zone(zone: str, offset: int) -> None:
    # The suite otherwise runs in the machine's zone (UTC here), where reading a time
    # without a zone as local time or as UTC cannot be told apart. POSIX rules: no tzdata.
    env = {**os.environ, "TZ": zone}
    local = subprocess.run(
        [sys.executable, "-c", "import time; print(time.localtime(0).tm_gmtoff)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(local.stdout) == offset, "the zone did not take"

    tests = ["tests/test_timestamps.py", "tests/test_state.py", "-k", "not another_time_zone"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert run.returncode == 0, run.stdout[-5000:]
    assert " passed" in run.stdout
