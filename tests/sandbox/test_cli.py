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
from tap_leadtrackr.sandbox.__main__ import build_parser, faults_from
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


def test_new_fault_options_parse() -> None:
    options = build_parser().parse_args(
        [
            *("--bulk-ties", "250", "--tie-order", "per_offset", "--has-more", "false_early"),
            *("--bad-envelope", "total_pages_null", "--delete-from", "random"),
            *("--insert-every", "4", "--insert-tied", "--delete-every", "5"),
            *("--rate-limit-from-request", "7", "--rate-limit-count", "3"),
        ]
    )
    assert options.bulk_ties == 250
    assert faults_from(options) == Faults(
        tie_order="per_offset",
        has_more="false_early",
        bad_envelope="total_pages_null",
        delete_from="random",
        insert_every=4,
        insert_tied=True,
        delete_every=5,
        rate_limit_from_request=7,
        rate_limit_count=3,
    )
    assert faults_from(build_parser().parse_args(["--bad-envelope", "none"])) == Faults()
    assert faults_from(build_parser().parse_args([])) == Faults()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tie-order", "random"], "argument --tie-order: invalid choice: 'random'"),
        (["--has-more", "never"], "argument --has-more: invalid choice: 'never'"),
        (["--bad-envelope", "total_null"], "argument --bad-envelope: invalid choice"),
        (["--delete-from", "first"], "argument --delete-from: invalid choice: 'first'"),
        (["--bulk-ties", "-1"], "argument --bulk-ties: -1 is negative"),
        (["--insert-tied", "yes"], "unrecognized arguments: yes"),
    ],
)
def test_bad_fault_options_are_refused(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_bulk_ties_larger_than_the_project_exits_two() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr.sandbox", *("--leads", "10", "--bulk-ties", "11")],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "--bulk-ties 11 is more than --leads 10" in result.stderr


def test_new_fault_options_reach_the_sandbox() -> None:
    args: tuple[str, ...] = ("--leads", "400", "--bulk-ties", "250", "--tie-order", "per_request")
    args += ("--has-more", "stuck_true", "--bad-envelope", "total_string", "--retry-after", "0")
    args += ("--rate-limit-from-request", "2", "--rate-limit-count", "2")
    with running(*args) as (process, line):
        session = requests.Session()
        session.headers["X-API-Key"] = DEFAULT_API_KEY
        url = line["url"] + LEADS
        first = session.get(url, params={"page": 9, "limit": 100}, timeout=10)
        storm = [session.get(url, timeout=10) for _ in range(2)]
        assert (first.json()["total"], first.json()["hasMore"]) == ("400", True)
        assert [(r.status_code, r.headers["Retry-After"]) for r in storm] == [(429, "0")] * 2
        # The bulk import starts at the 76th oldest lead: (400 - 250) // 2 before it.
        oldest: dict[str, str | int] = {"sort": "createdAt:asc", "limit": 1, "page": 76}
        stamp = session.get(url, params=oldest, timeout=10).json()["leads"][0]["createdAt"]
        bulk: dict[str, str | int] = {
            "createdAt[gte]": stamp,
            "createdAt[lte]": stamp,
            "limit": 100,
        }
        pages = [
            [lead["id"] for lead in session.get(url, params=bulk, timeout=10).json()["leads"]]
            for _ in range(2)
        ]
        assert session.get(url, params=bulk, timeout=10).json()["total"] == "250"
        assert pages[0] != pages[1]
        process.terminate()
        process.wait(10)
        assert process.returncode == 0


def test_several_projects_each_with_its_key_overlapping_ids_and_one_inactive() -> None:
    args = ("--leads", "20", "--projects", "3", "--inactive-projects", "2", "--seed", "4")
    with running(*args) as (process, line):
        assert process.stdout is not None
        more = [process.stdout.readline() for _ in range(3)]
        keys = [f"{DEFAULT_API_KEY}-{number}" for number in (1, 2, 3)]
        for key, shown in zip(keys, more, strict=True):
            assert f"API key: {key}" in shown
        assert "inactive" in more[1]
        assert "inactive" not in more[0] + more[2]

        def get(key: str) -> requests.Response:
            return requests.get(line["url"] + LEADS, headers={"X-API-Key": key}, timeout=10)

        first, inactive, third = (get(key) for key in keys)
        assert inactive.status_code == 403
        ids = [[lead["id"] for lead in answer.json()["leads"]] for answer in (first, third)]
        assert ids[0]
        assert set(ids[0]) == set(ids[1]), "project ids should overlap"
        assert first.json()["leads"] != third.json()["leads"], "each project has its own leads"
        assert get(DEFAULT_API_KEY).json() == first.json()
        assert get(f"{DEFAULT_API_KEY}-4").status_code == 401
        process.terminate()
        process.wait(10)
        assert process.returncode == 0


def test_inactive_projects_must_exist() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tap_leadtrackr.sandbox",
            "--projects",
            "2",
            "--inactive-projects",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert run.returncode == 2
    assert "--inactive-projects" in run.stderr
