"""A signal stops a sync with a failure (130 for SIGINT, 143 for SIGTERM), says so in the
log, and the last STATE it wrote resumes it without losing a lead.

The tap runs as a real process against a sandbox that answers slowly, one page at a time
and four at once, and is signalled mid-sync; then a second run from its last STATE must
bring every lead the first one did not. A signal while a request hangs (the sync's thread
waiting on it, or on the worker thread that sent it) must still end the process promptly.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

import pytest

from tap_leadtrackr.exits import UNWIND_SECONDS
from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tests.conftest import run_tap

LEADS = 1500
PAGE_SIZE = 50
SIGNALS = [signal.SIGINT, signal.SIGTERM]


class TapProcess:
    """`tap-leadtrackr --config CONFIG` in its own process, its output read as it comes."""

    def __init__(self, tmp_path: Path, config: dict[str, t.Any]) -> None:
        config_file = tmp_path / "config.json"
        config_file.write_text(json.dumps(config), encoding="utf-8")
        self.log_file = tmp_path / "stderr.log"
        env = {name: value for name, value in os.environ.items() if not name.startswith("TAP_")}
        with self.log_file.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tap_leadtrackr", "--config", str(config_file)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.read: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def read_until_states(self, count: int, timeout: float = 60) -> None:
        """Read the output until `count` STATE messages have come."""
        deadline = time.monotonic() + timeout
        while sum('"type":"STATE"' in line for line in self.read) < count:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"the tap ended early:\n{self.log()[-3000:]}"
            self.read.append(line)

    def stop(self, signum: int, timeout: float) -> tuple[int, float]:
        """Signal the tap; return its exit status and how long it took to exit."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the tap was still running {timeout} s after the signal")
        took = time.monotonic() - sent
        while (line := self.lines.get(timeout=10)) is not None:
            self.read.append(line)
        return status, took

    def messages(self) -> list[dict[str, t.Any]]:
        # Every line whole: a target would fail on a line cut short.
        return [json.loads(line) for line in self.read]

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8")


class HangingSandbox(Sandbox):
    """A sandbox that says when its API request number `hang_at` (which hangs) arrives."""

    def __init__(self, *args: t.Any, hang_at: int, **kwargs: t.Any) -> None:
        kwargs["faults"] = Faults(latency_ms=20, script={hang_at: "slow"}, slow_seconds=120)
        super().__init__(*args, **kwargs)
        self.hang_at = hang_at
        self.hanging = threading.Event()

    def _arrive(self, *, api: bool) -> tuple[int, int]:
        arrival, number = super()._arrive(api=api)
        if number == self.hang_at:
            self.hanging.set()
        return arrival, number


def config_for(server: Sandbox, parallelism: int) -> dict[str, t.Any]:
    return {
        "api_key": server.api_key,
        "api_url": server.url,
        "page_size": PAGE_SIZE,
        "max_parallel_requests": parallelism,
    }


def assert_stopped_and_resumable(
    server: Sandbox, tap: TapProcess, signum: int, status: int, parallelism: int
) -> None:
    """The run failed with the signal's status and said so; its last STATE loses nothing."""
    assert status == 128 + signum, tap.log()[-3000:]
    log = tap.log()
    assert f"Interrupted by {signal.Signals(signum).name}" in log
    assert "resumes it without loss" in log
    assert "Gracefully shutting down" not in log
    assert "Traceback" not in log
    messages = tap.messages()
    first = {m["record"]["id"] for m in messages if m["type"] == "RECORD"}
    assert 0 < len(first) < LEADS, "the signal did not land mid-sync"
    last_state = [m["value"] for m in messages if m["type"] == "STATE"][-1]

    resumed = run_tap(config_for(server, parallelism), state=last_state)

    assert first | set(resumed.ids) == {lead["id"] for lead in server.project.leads}
    # A resume starts at the checkpoint, not from scratch.
    assert len(resumed.ids) < LEADS


@pytest.mark.parametrize("parallelism", [1, 4], ids=["sequential", "parallel"])
@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_mid_sync_fails_the_run_and_its_last_state_resumes_it(
    tmp_path: Path, signum: int, parallelism: int
) -> None:
    with Sandbox(Project(generate_leads(LEADS, seed=3)), faults=Faults(latency_ms=30)) as server:
        tap = TapProcess(tmp_path, config_for(server, parallelism))
        tap.read_until_states(4)

        status, _ = tap.stop(signum, timeout=UNWIND_SECONDS + 10)

        assert_stopped_and_resumable(server, tap, signum, status, parallelism)


@pytest.mark.parametrize("parallelism", [1, 4], ids=["sequential", "parallel"])
def test_a_signal_while_a_request_hangs_ends_the_run_promptly(
    tmp_path: Path, parallelism: int
) -> None:
    # Request 6 never gets its answer in time: the sync's thread (one at a time) or a
    # worker thread (four at once, the sync's thread waiting on it) is stuck on it.
    leads = Project(generate_leads(LEADS, seed=5))
    with HangingSandbox(leads, hang_at=6) as server:
        tap = TapProcess(tmp_path, config_for(server, parallelism))
        tap.read_until_states(1)
        assert server.hanging.wait(30)
        time.sleep(0.5)  # long enough to use up the pages fetched before it

        status, took = tap.stop(signal.SIGTERM, timeout=30)

        assert took < UNWIND_SECONDS + 3, f"exited {took:.1f} s after the signal"
        server.faults.script.clear()
        assert_stopped_and_resumable(server, tap, signal.SIGTERM, status, parallelism)
