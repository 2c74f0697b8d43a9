"""Three sandbox projects through Meltano into a warehouse, as an agency runs them.

One scenario for every loader: the first run loads each project's leads (ids overlapping
between projects), the second only what is new, and a third with one project's
subscription lapsed fails while the others' new leads all land; a fourth, with it active
again, brings its leads and nothing else.
"""

from __future__ import annotations

import json
import typing as t
from collections import Counter

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tests.e2e.conftest import Meltano

#: Each project's name, key and number of leads; ids run from 1 in each.
PROJECTS = {"acme": 300, "globex": 220, "initech": 150}
KEYS = {name: f"lt_agency_{name}_key" for name in PROJECTS}

#: Rows per project in the warehouse's `leads` table.
Rows = t.Callable[[], Counter[str]]


def agency_sandbox() -> Sandbox:
    projects = {
        KEYS[name]: Project(generate_leads(size, seed=40 + number))
        for number, (name, size) in enumerate(PROJECTS.items())
    }
    return Sandbox(Project(generate_leads(3, seed=1)), projects=projects)


def agency_env(sandbox: Sandbox, **variables: str) -> dict[str, str]:
    """Settings that read the three projects; the dev environment's `api_key` unset."""
    listed = [{"name": name, "api_key": KEYS[name]} for name in PROJECTS]
    return {
        "TAP_LEADTRACKR_API_URL": sandbox.url,
        "TAP_LEADTRACKR_API_KEY": "",
        "TAP_LEADTRACKR_PROJECTS": json.dumps(listed),
        **variables,
    }


def project(sandbox: Sandbox, name: str) -> Project:
    return sandbox.projects[KEYS[name]]


def run_agency_scenario(
    meltano: Meltano, env: dict[str, str], rows: Rows, distinct_ids: t.Callable[[], int], *task: str
) -> None:
    """Run the module's scenario through `meltano run TASK...`, checking `rows` after each run
    (after the first, the job's load alone: the later runs check rows, not models)."""
    first, task = task, load_only(task)
    with agency_sandbox() as sandbox:
        env = agency_env(sandbox, **env)
        meltano("run", *first, env=env)

        assert rows() == PROJECTS
        # The projects' ids overlap: each lead is a row of its own, keyed by (project, id).
        assert distinct_ids() == max(PROJECTS.values())
        state = meltano.state(state_id(task))["bookmarks"]["leads"]["partitions"]
        assert {partition["context"]["project"] for partition in state} == set(PROJECTS)

        added = project(sandbox, "globex").add_leads(20)
        sandbox.clear_requests()
        meltano("run", *task, env=env)

        assert rows() == {**PROJECTS, "globex": PROJECTS["globex"] + len(added)}
        # Nothing new elsewhere: one request per project.
        sent = Counter(request.headers["X-API-Key"] for request in sandbox.requests)
        assert sent[KEYS["acme"]] == sent[KEYS["initech"]] == 1

        project(sandbox, "acme").add_leads(10)
        project(sandbox, "initech").add_leads(5)
        project(sandbox, "initech").active = False
        # At `info`, Meltano shows the tap's log, where the failure is explained.
        failed = meltano("run", *task, env={**env, "MELTANO_CLI_LOG_LEVEL": "info"}, check=False)

        assert failed.returncode != 0
        log = failed.stdout + failed.stderr
        assert "`initech`" in log, log[-3000:]
        assert "subscription is inactive" in log
        assert all(key not in log for key in KEYS.values())
        expected = {"acme": 310, "globex": PROJECTS["globex"] + 20, "initech": PROJECTS["initech"]}
        assert rows() == expected

        project(sandbox, "initech").active = True
        sandbox.clear_requests()
        meltano("run", *task, env=env)

        assert rows() == {**expected, "initech": PROJECTS["initech"] + 5}
        # acme's checkpoint from the failed run held: it is not read again.
        sent = Counter(request.headers["X-API-Key"] for request in sandbox.requests)
        assert sent[KEYS["acme"]] == 1


def load_only(task: tuple[str, ...]) -> tuple[str, ...]:
    """The load of `meltano run TASK` without its dbt build (under the same state id)."""
    return ("tap-leadtrackr", "target-duckdb") if task == ("leads-to-warehouse",) else task


def state_id(task: tuple[str, ...]) -> str:
    """Meltano's state id of `meltano run TASK` in the dev environment."""
    if len(task) == 1:  # the job `leads-to-warehouse` runs tap-leadtrackr target-duckdb
        return "dev:tap-leadtrackr-to-target-duckdb"
    return f"dev:{task[0]}-to-{task[1]}"
