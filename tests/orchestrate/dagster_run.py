"""Runs in the Dagster environment: the example's definitions, executed in this process.

    python dagster_run.py materialize 2026-02-01 2026-03-01   (partitions of leads_by_month)
    python dagster_run.py materialize_projects 2026-03-01|acme (leads_by_project_and_month)
    python dagster_run.py daily                                (leadtrackr_daily_incremental)

Meltano is started as the JSON list in `LEADTRACKR_TEST_MELTANO` says; everything else is
the definitions' own. Prints one JSON line per run: its success and metadata (and for
`daily`, the schedules and pools).
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
    action, *partition_keys = sys.argv[1:]
    if action == "materialize":
        for key in partition_keys:
            result = dg.materialize(
                [definitions.leads_by_month], partition_key=key, resources={"meltano": meltano}
            )
            node = definitions.leads_by_month.op.name
            (materialization,) = result.asset_materializations_for_node(node)
            metadata = {name: value.value for name, value in materialization.metadata.items()}
            print(json.dumps({"success": result.success, "partition": key, **metadata}))
    elif action == "materialize_projects":
        asset = definitions.leads_by_project_and_month
        for key in partition_keys:
            result = dg.materialize([asset], partition_key=key, resources={"meltano": meltano})
            (materialization,) = result.asset_materializations_for_node(asset.op.name)
            metadata = {name: value.value for name, value in materialization.metadata.items()}
            print(json.dumps({"success": result.success, "partition": key, **metadata}))
    elif action == "daily":
        job = definitions.defs.get_job_def("leadtrackr_daily_incremental")
        result = job.execute_in_process(resources={"meltano": meltano})
        repository = definitions.defs.get_repository_def()
        schedules = {
            schedule.name: [schedule.job_name, schedule.cron_schedule, schedule.execution_timezone]
            for schedule in repository.schedule_defs
        }
        pools = [definitions.leads_by_month.op.pool, definitions.run_incremental.pool]
        print(json.dumps({"success": result.success, "schedules": schedules, "pools": pools}))
    else:
        sys.exit(f"unknown action {action!r}")


if __name__ == "__main__":
    main()
