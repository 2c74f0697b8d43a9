"""Shared fixtures: a sandbox per test, an in-process tap run that captures messages, and
the project's Meltano (installed once per session for tests/e2e and tests/orchestrate,
from this one definition); and which tests `make test` runs one after another, and
`make test-fast` leaves out."""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import typing as t
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typing_extensions import override

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.tap import TapLeadTrackr
from tests.e2e.conftest import MELTANO, Meltano, own_sys_dir

ORCHESTRATORS = "tests/orchestrate/"
"""Tests whose Dagster and Airflow run Meltano with the project's own `.meltano/run/` and
dbt's `transform/target/`: one after another, in one worker."""
MELTANO_TESTS = ("tests/e2e/", ORCHESTRATORS)
"""Tests that run Meltano in the project (each test process with its own system directory)."""
PACKAGE_INDEX = "tests/test_wheels.py"
"""Resolutions that wait on the package index: started by `StartResolutions`, so each of
its tests is a scope of its own (the scheduler runs the largest scopes first; this one
must come last, by when the index has answered)."""


def scope(nodeid: str) -> str:
    """The tests a `make test` worker runs together, one after another: those of one module
    of Meltano tests (they share its module fixtures), the orchestrators', or the test
    alone. xdist runs the largest scopes first, and the short tests fill both workers at
    the end."""
    path = nodeid.split("::", 1)[0]
    if path.startswith(ORCHESTRATORS):
        return ORCHESTRATORS
    if path.startswith(MELTANO_TESTS):
        return path
    return nodeid


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own
def pytest_xdist_make_scheduler(config: pytest.Config, log: t.Any) -> t.Any:
    """`pytest -n 2` (`make test`): one worker per scope at a time; the rest fill both.

    xdist's `--dist loadgroup` would do it from markers, but on pytest 9.2 it loses them
    (pytest-xdist#1386).
    """
    from xdist.scheduler import LoadScopeScheduling

    class ScopeScheduling(LoadScopeScheduling):
        @override
        def _split_scope(self, nodeid: str) -> str:
            return scope(nodeid)

    return ScopeScheduling(config, log)


class StartResolutions:
    """`pytest -n` (`make test`): the package index's resolutions of tests/test_wheels.py
    start in this, the controlling process, as soon as a worker has collected them, and
    are ready in a folder (given to the workers) by the time a worker runs the module;
    the workers never wait on the index."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="wheel-resolutions-"))
        self.processes: list[subprocess.Popen[bytes]] = []

    def pytest_configure_node(self, node: t.Any) -> None:
        from tests.test_wheels import RESOLUTIONS

        node.workerinput[RESOLUTIONS] = str(self.folder)

    def pytest_xdist_node_collection_finished(self, node: t.Any, ids: list[str]) -> None:
        if not self.processes and any(each.startswith(PACKAGE_INDEX) for each in ids):
            from tests.test_wheels import start_resolutions

            self.processes = start_resolutions(self.folder)

    def pytest_unconfigure(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    parallel = config.pluginmanager.hasplugin("xdist") and config.getoption("numprocesses")
    if parallel and not hasattr(config, "workerinput"):
        config.pluginmanager.register(StartResolutions(), "start-resolutions")


SLOW = frozenset(
    {
        # Unit tests of 2 s or more (with all their parameters) on 2 busy cores: a property
        # search, real `Retry-After` waits, the tap as a program, syncs of 10,000 leads.
        "tests/test_resume_property.py::test_restarts_from_the_last_state_deliver_every_lead",
        "tests/test_reliability.py::test_after_a_429_no_request_leaves_any_thread_before_retry_after",
        "tests/test_reliability.py::test_no_retry_comes_sooner_than_retry_after",
        "tests/test_reliability.py::test_a_transient_failure_is_retried_and_the_sync_completes",
        "tests/test_secrets.py::test_a_failed_sync_logged_at_debug_shows_nothing_private",
        "tests/test_secrets.py::test_a_key_with_white_space_or_a_control_character_inside_is_refused",
        "tests/test_secrets.py::test_a_refused_setting_is_named_without_its_value",
        "tests/test_paging.py::test_a_full_sync_costs_at_most_two_percent_more_requests_than_pages",
        "tests/test_paging.py::test_deletions_balanced_by_creations_lose_no_lead_that_stayed",
        "tests/test_paging.py::test_small_ties_across_page_boundaries_are_read_whole_when_ties_move",
        "tests/test_touchpoints.py::test_a_sync_killed_mid_page_resumes_from_its_last_state_with_every_touchpoint",
        "tests/test_touchpoints.py::test_runs_killed_again_and_again_deliver_every_touchpoint_in_the_end",
        "tests/test_parallel.py::test_parallel_pages_are_faster_when_each_request_is_slow",
        "tests/test_parallel.py::test_repeated_429s_halve_the_parallelism_from_4_to_2_to_1",
        "tests/test_privacy.py::test_hash_works_with_every_other_feature",
        "tests/sandbox/test_tie_order.py::test_every_page_is_sorted_and_only_ties_move",
        "tests/test_release.py::test_the_sdist_and_wheel_build_pass_twine_check_and_hold_the_package",
        "tests/test_hub_definition.py::test_meltano_adds_the_extractor_from_the_definition_and_lists_its_settings",
    }
)
"""Tests that `make test-fast` leaves out besides those of a shared resource (a renamed one
only makes it slower; `make test` runs them all)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what `make test-fast` leaves out: Meltano's tests, the package index's, `SLOW`."""
    for item in items:
        path, name = item.nodeid.split("::", 1)[0], item.nodeid.split("[", 1)[0]
        if path.startswith(MELTANO_TESTS) or path == PACKAGE_INDEX or name in SLOW:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def meltano_installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`meltano install` once per `make test` (the first worker to need it; the other waits):
    the tap (editable) and every loader. Returns this test process's own Meltano system
    directory (`own_sys_dir`), so that both workers can run Meltano at once."""
    if not MELTANO.exists():
        pytest.fail(
            f"Meltano is not installed next to {sys.executable}: install the test "
            "dependencies (`make test` does)."
        )
    # The folder all workers of this session share (xdist gives each a subfolder of it).
    session = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        session = session.parent
    with (session / "meltano-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (session / "meltano-installed").exists():
            Meltano(tmp_path_factory.mktemp("meltano-install"))("install")
            (session / "meltano-installed").touch()
    return own_sys_dir(tmp_path_factory.mktemp("meltano-sys"))


@pytest.fixture
def meltano(meltano_installed: Path, tmp_path: Path) -> Meltano:
    """Meltano with a fresh system database (no state) for this test."""
    return Meltano(tmp_path / "meltano", meltano_installed)


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
    except (Exception, SystemExit) as exc:
        # SystemExit too: a signal stops a sync with one (`exits.SyncInterrupted`).
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
