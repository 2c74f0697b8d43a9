"""Where waiting cannot help: no server at `api_url`, and `--test` with one request."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tap_leadtrackr.sending import RetriesExhaustedError, Sender, UnreachableError
from tests.conftest import config_for, lead_requests, run_tap

TAP = [sys.executable, "-m", "tap_leadtrackr"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "api_url",
    [f"http://127.0.0.1:{closed_port()}", "https://leadtrackr.invalid"],
    ids=["refused", "no such host"],
)
def test_no_server_at_api_url_fails_the_first_request_within_seconds(api_url) -> None:
    started = time.monotonic()
    result = run_tap({"api_key": "sandbox-key", "api_url": api_url}, expect_error=True)
    elapsed = time.monotonic() - started

    assert isinstance(result.error, UnreachableError)
    assert elapsed < 30
    assert "`api_url`" in str(result.error)
    assert api_url in str(result.error)
    assert result.log.count("failed (") == 2, "two quick tries more, then it gives up"


def test_a_server_that_goes_away_mid_sync_is_retried_as_before(monkeypatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(
        Sender, "sleep", staticmethod(lambda seconds, cancelled: waits.append(seconds))
    )
    project = Project(generate_leads(500, seed=3))
    server = Sandbox(project, faults=Faults(latency_ms=1)).start()
    stopped = False
    original = Sender.send

    def stop_after_first(self, *args, **kwargs):
        nonlocal stopped
        answer = original(self, *args, **kwargs)
        if not stopped:
            stopped = True
            server.stop()
        return answer

    monkeypatch.setattr(Sender, "send", stop_after_first)
    result = run_tap(config_for(server, max_retries=3), expect_error=True)

    assert isinstance(result.error, RetriesExhaustedError)
    assert len(waits) == 3
    assert len(result.records) == 100


def write_config(tmp_path: Path, **config: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_the_connection_test_asks_one_lead_once_and_says_what_answered(tmp_path) -> None:
    with Sandbox(Project(generate_leads(300, seed=4))) as server:
        url = server.url
        config = write_config(tmp_path, **config_for(server))
        done = subprocess.run(
            [*TAP, "--config", str(config), "--test"], capture_output=True, text=True, timeout=60
        )
        asked = lead_requests(server)

    assert done.returncode == 0, done.stderr
    assert len(asked) == 1
    assert asked[0].params["limit"] == "1"
    assert "RECORD" not in done.stdout
    assert f"passed for the API key: LeadTrackr at {url} counts 300 leads" in done.stderr


def test_the_connection_test_names_each_project_refused(tmp_path) -> None:
    with Sandbox(
        Project(generate_leads(50, seed=5)), projects={"b-key": Project(active=False)}
    ) as server:
        projects = [
            {"name": "alpha", "api_key": server.api_key},
            {"name": "beta", "api_key": "b-key"},
            {"name": "gamma", "api_key": "wrong-key"},
        ]
        config = write_config(tmp_path, api_url=server.url, projects=projects)
        done = subprocess.run(
            [*TAP, "--config", str(config), "--test"], capture_output=True, text=True, timeout=60
        )
        asked = lead_requests(server)

    assert done.returncode != 0
    assert len(asked) == 3
    assert "project `beta`" in done.stderr
    assert "inactive" in done.stderr
    assert "project `gamma`" in done.stderr
    assert "rejected the API key" in done.stderr
    assert "wrong-key" not in done.stderr
    assert "passed for project `alpha`: LeadTrackr" in done.stderr


def test_the_connection_test_of_a_closed_port_names_api_url_quickly(tmp_path) -> None:
    config = write_config(tmp_path, api_key="k", api_url=f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    done = subprocess.run(
        [*TAP, "--config", str(config), "--test"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert time.monotonic() - started < 30
    assert "`api_url`" in done.stderr
