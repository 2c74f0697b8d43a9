"""Runs in the Airflow environment: parse the example's DAGs, render their tasks' templates.

    python airflow_render.py DAGS_FOLDER OUTPUT.json RUN_AFTER TRIGGER_CONF

No database: the DAG files are parsed as the DAG processor does (`DagBag`), each DAG's
timetable says which data interval a run triggered at RUN_AFTER covers (and which one
catchup starts with), and each task's templated fields are rendered with Airflow's own
Jinja environment for that interval: once with the DAG's params, once with those of
TRIGGER_CONF (a JSON object) that the DAG has, as a trigger with that conf would; a
mapped task once for each value it is mapped over.
"""

from __future__ import annotations

import json
import sys

import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.definitions.mappedoperator import MappedOperator
from airflow.serialization.encoders import coerce_to_core_timetable
from airflow.timetables.base import TimeRestriction


def interval(data_interval) -> list[str]:
    return [data_interval.start.isoformat(), data_interval.end.isoformat()]


def render(task, dag, data_interval, params) -> dict[str, object]:
    # A fresh copy each time: rendering replaces the templates in place.
    task = task.prepare_for_execution()
    context = {
        "dag": dag,
        "task": task,
        "params": params,
        "data_interval_start": data_interval.start,
        "data_interval_end": data_interval.end,
        "logical_date": data_interval.start,
    }
    task.render_template_fields(context)
    return {"bash_command": task.bash_command, "env": task.env, "cwd": task.cwd}


def describe(task, dag, data_interval, params, conf) -> dict[str, object]:
    """A task's settings and rendered fields; a mapped task's for each of its mapped values."""
    triggered = {**params, **{name: value for name, value in conf.items() if name in params}}
    if isinstance(task, MappedOperator):
        (name, values), *more = task.expand_input.value.items()
        assert not more, "one mapped argument"
        unmapped = [task.unmap({name: value}) for value in values]
        return {
            "operator": task.operator_class.__name__,
            "mapped": name,
            "pool": task.pool,
            "retries": task.retries,
            "append_env": unmapped[0].append_env,
            "rendered": [render(each, dag, data_interval, params) for each in unmapped],
            "rendered_triggered": [
                render(each, dag, data_interval, triggered) for each in unmapped
            ],
        }
    return {
        "operator": type(task).__name__,
        "pool": task.pool,
        "retries": task.retries,
        "append_env": task.append_env,
        "rendered": render(task, dag, data_interval, params),
        "rendered_triggered": render(task, dag, data_interval, triggered),
    }


def main() -> None:
    dags_folder, output, run_after = sys.argv[1], sys.argv[2], pendulum.parse(sys.argv[3])
    conf = json.loads(sys.argv[4])
    bag = DagBag(dag_folder=dags_folder)
    result = {
        "import_errors": dict(bag.import_errors),
        "warnings": {path: list(found) for path, found in bag.captured_warnings.items()},
        "dags": {},
    }
    for dag_id, dag in bag.dags.items():
        timetable = coerce_to_core_timetable(dag.timetable)
        first = timetable.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
        )
        data_interval = timetable.infer_manual_data_interval(run_after=run_after)
        params = dag.params.dump()
        result["dags"][dag_id] = {
            "timetable": type(timetable).__name__,
            "summary": timetable.summary,
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "params": params,
            "first_interval": interval(first.data_interval),
            "interval": interval(data_interval),
            "tasks": {
                task.task_id: describe(task, dag, data_interval, params, conf) for task in dag.tasks
            },
        }
    with open(output, "w", encoding="utf-8") as file:
        json.dump(result, file, indent=2)


if __name__ == "__main__":
    main()
