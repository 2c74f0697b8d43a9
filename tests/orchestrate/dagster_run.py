"""Runs in the Dagster environment: the example's definitions, executed in this process.

    python dagster_run.py materialize 2026-02-01 2026-03-01   (partitions of leads_by_month)
    python dagster_run.py materialize_projects 2026-03-01|acme (leads_by_project_and_month)
    python dagster_run.py daily [LOOKBACK_WINDOW_DAYS]         (leadtrackr_daily_incremental)
    python dagster_run.py reconcile                            (leadtrackr_weekly_reconcile)

Meltano is started as the JSON list in `LEADTRACKR_TEST_MELTANO` says; everything else is
the definitions' own. Prints one JSON line per run: its success and metadata (and for
`daily` and `reconcile`, the schedules and the pool of every op).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import dagster as dg

DEFINITIONS = Path(__file__).resolve().parents[2] / "orchestrate" / "dagster" / "definitions.py"


def load_definitions():
    spec = importlib.util.spec_from_file_location("leadtrackr_dagster", DEFINITIONS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    definitions = load_definitions()
    dg.Definitions.validate_loadable(definitions.defs)
    meltano = definitions.MeltanoProject(command=json.loads(os.environ["LEADTRACKR_TEST_MELTANO"]))
    action, *arguments = sys.argv[1:]
    if action == "materialize":
        for key in arguments:
            result = dg.materialize(
                [definitions.leads_by_month], partition_key=key, resources={"meltano": meltano}
            )
            node = definitions.leads_by_month.op.name
            (materialization,) = result.asset_materializations_for_node(node)
            metadata = {name: value.value for name, value in materialization.metadata.items()}
            print(json.dumps({"success": result.success, "partition": key, **metadata}))
    elif action == "materialize_projects":
        asset = definitions.leads_by_project_and_month
        for key in arguments:
            result = dg.materialize([asset], partition_key=key, resources={"meltano": meltano})
            (materialization,) = result.asset_materializations_for_node(asset.op.name)
            metadata = {name: value.value for name, value in materialization.metadata.items()}
            print(json.dumps({"success": result.success, "partition": key, **metadata}))
    elif action in ("daily", "reconcile"):
        if action == "daily":
            job = definitions.defs.get_job_def("leadtrackr_daily_incremental")
            run_config = None
            if arguments:
                # The run config of a launch with a lookback of its own.
                (days,) = arguments
                config = {"lookback_window_days": int(days)}
                run_config = {"ops": {"run_incremental": {"config": config}}}
        else:
            job = definitions.defs.get_job_def("leadtrackr_weekly_reconcile")
            run_config = None
        result = job.execute_in_process(run_config=run_config, resources={"meltano": meltano})
        repository = definitions.defs.get_repository_def()
        schedules = {
            schedule.name: [schedule.job_name, schedule.cron_schedule, schedule.execution_timezone]
            for schedule in repository.schedule_defs
        }
        pools = {
            node.name: node.pool
            for node in [
                definitions.leads_by_month.op,
                definitions.leads_by_project_and_month.op,
                definitions.run_incremental,
                definitions.run_reconcile,
            ]
        }
        print(json.dumps({"success": result.success, "schedules": schedules, "pools": pools}))
    else:
        sys.exit(f"unknown action {action!r}")


if __name__ == "__main__":
    main()
