"""The `leadtrackr-sandbox` command: starts, prints one line, serves, exits 0 on a signal."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import pytest
import requests

from tap_leadtrackr.sandbox import DEFAULT_API_KEY, Faults
from tests.sandbox.conftest import LEADS

LINE = re.compile(
    r"LeadTrackr sandbox on (?P<url>http://127\.0\.0\.1:\d+) with (?P<count>\d+) leads;"
    r" API key: (?P<key>\S+)\n"
)


@contextmanager
def running(
    *args: str, command: list[str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], re.Match[str]]]:
    process = subprocess.Popen(
        [*(command or [sys.executable, "-m", "tap_leadtrackr.sandbox"]), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(20, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        line = process.stdout.readline()
        match = LINE.fullmatch(line)
        assert match, (line, process.stderr.read() if process.poll() is not None else "")
        yield process, match
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_starts_prints_one_line_serves_and_exits_zero(stop_with: signal.Signals) -> None:
    with running("--leads", "50", "--seed", "3") as (process, line):
        assert line["count"] == "50"
        assert line["key"] == DEFAULT_API_KEY
        response = requests.get(
            line["url"] + LEADS, headers={"X-API-Key": DEFAULT_API_KEY}, timeout=10
        )
        assert response.status_code == 200
        assert response.json()["total"] == 50
        process.send_signal(stop_with)
        stdout, stderr = process.communicate(timeout=10)
        assert process.returncode == 0
        assert stdout == ""
        assert stderr == ""


def test_options_reach_the_sandbox() -> None:
    args = ("--leads", "30", "--api-key", "my-key", "--rate-limit-every", "2", "--verbose")
    with running(*args, "--retry-after", "7", "--script", "3=503") as (process, line):
        assert line["key"] == "my-key"
        session = requests.Session()
        session.headers["X-API-Key"] = "my-key"
        responses = [session.get(line["url"] + LEADS, timeout=10) for _ in range(4)]
        assert [response.status_code for response in responses] == [200, 429, 503, 429]
        assert responses[1].headers["Retry-After"] == "7"
        process.terminate()
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0
        # --verbose logs each request to stderr.
        assert stderr.count("/api/leads/getLeads") == 4


def test_inactive() -> None:
    with running("--leads", "5", "--inactive") as (process, line):
        response = requests.get(
            line["url"] + LEADS, headers={"X-API-Key": DEFAULT_API_KEY}, timeout=10
        )
        assert response.status_code == 403
        process.terminate()
        process.wait(10)
        assert process.returncode == 0


def test_a_busy_port_exits_one_with_a_message() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "tap_leadtrackr.sandbox", "--port", port, "--leads", "3"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_help_names_every_fault() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr.sandbox", "--help"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    for spec in fields(Faults):
        assert f"--{spec.name.replace('_', '-')}" in result.stdout
    for option in ("--host", "--port", "--leads", "--seed", "--api-key", "--inactive", "--verbose"):
        assert option in result.stdout


def test_console_script() -> None:
    script = shutil.which("leadtrackr-sandbox", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the package is not installed with its console scripts")
    with running("--leads", "3", command=[script]) as (process, line):
        assert line["count"] == "3"
        process.terminate()
        process.wait(10)
        assert process.returncode == 0
