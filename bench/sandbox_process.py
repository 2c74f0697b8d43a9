"""The LeadTrackr sandbox in a process of its own, for the benchmark: its CPU is not counted.

`SandboxProcess` starts this file as a child (`python bench/sandbox_process.py --seed S`)
and drives it over stdin, one command a line, one answer line each:

    load N      serve N freshly generated leads, without latency              -> "ok"
    latency MS  answer every API request after MS milliseconds                -> "ok"
    count       getLeads requests received since the last load or count      -> "REQUESTS ERRORS"

Requests are counted from the sandbox's own record of what it received (`Sandbox.requests`,
written before each answer goes out), so the count is exact: it includes retries, and
nothing between the client and the sandbox (no proxy) changes the timing measured.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

LEADS_PATH = "/api/leads/getLeads"


class SandboxProcess:
    """A sandbox served by a child process, with the request counter of the benchmark."""

    def __init__(self, seed: int = 1) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--seed", str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read().split()
        if len(ready) != 3 or ready[0] != "ready":
            raise RuntimeError(f"the sandbox did not start: {' '.join(ready)!r}")
        self.url, self.api_key = ready[1], ready[2]

    def load(self, leads: int) -> None:
        """Serve `leads` freshly generated leads, without latency."""
        self._ask(f"load {leads}")

    def latency(self, milliseconds: float) -> None:
        """Answer every API request after this many milliseconds."""
        self._ask(f"latency {milliseconds}")

    def count(self) -> tuple[int, int]:
        """getLeads requests since the last `load` or `count`, and how many were not 200."""
        requests, errors = self._ask("count").split()
        return int(requests), int(errors)

    def close(self) -> None:
        """Stop the sandbox (end of its stdin) and wait for it."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _ask(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the sandbox exited ({self.process.wait()})")
        return line.strip()


def serve(seed: int) -> None:
    """Answer the commands on stdin until it ends (see the module docstring)."""
    from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads

    with Sandbox(Project()) as sandbox:
        print(f"ready {sandbox.url} {sandbox.api_key}", flush=True)
        for line in sys.stdin:
            command, *arguments = line.split()
            if command == "load":
                sandbox.project = Project(generate_leads(int(arguments[0]), seed))
                sandbox.faults = Faults()
                sandbox.clear_requests()
                answer = "ok"
            elif command == "latency":
                sandbox.faults = Faults(latency_ms=float(arguments[0]))
                answer = "ok"
            elif command == "count":
                leads = [request for request in sandbox.requests if request.path == LEADS_PATH]
                sandbox.clear_requests()
                answer = f"{len(leads)} {sum(request.status != 200 for request in leads)}"
            else:
                answer = f"unknown command {command!r}"
            print(answer, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve the sandbox for bench/bench.py.")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated leads")
    serve(parser.parse_args().seed)
