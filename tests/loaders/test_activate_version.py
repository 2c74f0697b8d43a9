"""loaders/target-duckdb: ACTIVATE_VERSION flags (or deletes) what a full read did not bring.

Each test runs the loader's command, as Meltano does, on a few Singer messages; the rules
are target-postgres's (`SQLSink.activate_version`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
LOADER = ROOT / "loaders" / "target-duckdb"
#: The loader's command (`leadtrackr-target-duckdb`), from its source.
RUN_LOADER = "import leadtrackr_target_duckdb; leadtrackr_target_duckdb.main()"

SCHEMA = {
    "type": "SCHEMA",
    "stream": "leads",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "status": {"type": ["null", "string"]}},
    },
}
TOUCHPOINTS = {
    **SCHEMA,
    "stream": "lead_touchpoints",
    "key_properties": ["lead_id"],
    "schema": {"type": "object", "properties": {"lead_id": {"type": "integer"}}},
}


def record(lead_id: int, status: str = "open", version: int | None = None) -> dict[str, t.Any]:
    message: dict[str, t.Any] = {
        "type": "RECORD",
        "stream": "leads",
        "record": {"id": lead_id, "status": status},
    }
    if version is not None:
        message["version"] = version
    return message


def activate(version: int, stream: str = "leads") -> dict[str, t.Any]:
    return {"type": "ACTIVATE_VERSION", "stream": stream, "version": version}


def load(
    warehouse: Path, messages: list[t.Any], *, check: bool = True, **settings: t.Any
) -> subprocess.CompletedProcess[str]:
    """Run the loader on these messages (a string goes in as a line as it is)."""
    config = {
        "filepath": str(warehouse),
        "default_target_schema": "leadtrackr",
        "add_metadata_columns": True,
        **settings,
    }
    config_file = warehouse.with_suffix(".json")
    config_file.write_text(json.dumps(config))
    lines = [m if isinstance(m, str) else json.dumps(m) for m in messages]
    result = subprocess.run(
        [sys.executable, "-c", RUN_LOADER, "--config", str(config_file)],
        input="\n".join(lines) + "\n",
        env={**os.environ, "PYTHONPATH": str(LOADER)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def rows(warehouse: Path, table: str = "leads") -> dict[int, tuple[t.Any, ...]]:
    """Each row's status, version and whether it is flagged, by key."""
    with duckdb.connect(str(warehouse), read_only=True) as db:
        key = "id, status" if table == "leads" else "lead_id, null"
        found = db.execute(
            f"select {key}, _sdc_table_version, _sdc_deleted_at is not null "
            f"from leadtrackr.{table} order by 1"
        ).fetchall()
    return {row[0]: row[1:] for row in found}


def test_rows_a_full_read_did_not_bring_are_flagged_and_the_others_stay_live(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "w.duckdb"
    # A daily (incremental) run: records without a version.
    load(warehouse, [SCHEMA, *(record(i) for i in range(1, 6))])
    # A reconcile: 3 and 5 are gone, 2 was rated, 6 is new.
    full_read = [record(1, version=100), record(2, "Sale", 100), record(4, version=100)]
    result = load(warehouse, [SCHEMA, *full_read, record(6, version=100), activate(100)])

    assert rows(warehouse) == {
        1: ("open", 100, False),
        2: ("Sale", 100, False),
        3: ("open", None, True),
        4: ("open", 100, False),
        5: ("open", None, True),
        6: ("open", 100, False),
    }
    # The rows of the read were loaded before the version was activated: two flagged.
    assert "flagged as deleted 2 rows" in result.stderr


def test_a_loader_that_dies_after_activating_leaves_no_row_of_the_read_flagged(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "w.duckdb"
    load(warehouse, [SCHEMA, *(record(i) for i in range(1, 4))])
    # The rows of the read wait in the loader's batch; the next line kills it.
    died = load(
        warehouse,
        [SCHEMA, record(1, version=7), record(2, version=7), activate(7), "not json"],
        check=False,
    )

    assert died.returncode != 0
    assert rows(warehouse) == {
        1: ("open", 7, False),
        2: ("open", 7, False),
        3: ("open", None, True),
    }


def test_a_flagged_lead_that_comes_back_is_live_again_and_flags_are_not_moved(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "w.duckdb"
    load(warehouse, [SCHEMA, record(1), record(2), record(3)])
    load(warehouse, [SCHEMA, record(1, version=10), activate(10)])
    with duckdb.connect(str(warehouse), read_only=True) as db:
        first_flags = db.execute(
            "select id, _sdc_deleted_at from leadtrackr.leads where id in (2, 3) order by id"
        ).fetchall()

    load(warehouse, [SCHEMA, record(2, "Sale")])
    load(warehouse, [SCHEMA, record(1, version=20), activate(20)])

    assert rows(warehouse) == {
        1: ("open", 20, False),
        2: ("Sale", None, True),  # came back in a daily run, then missed by the next read
        3: ("open", None, True),
    }
    with duckdb.connect(str(warehouse), read_only=True) as db:
        (still,) = db.execute(
            "select _sdc_deleted_at from leadtrackr.leads where id = 3"
        ).fetchone() or (None,)
    # A row already flagged keeps the time it was first found gone.
    assert still == first_flags[1][1]
    assert first_flags[0][1] is not None


def test_hard_delete_deletes_the_rows_instead(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    load(warehouse, [SCHEMA, *(record(i) for i in range(1, 5))], hard_delete=True)
    load(
        warehouse,
        [SCHEMA, record(2, version=5), record(4, version=5), activate(5)],
        hard_delete=True,
    )

    assert rows(warehouse) == {2: ("open", 5, False), 4: ("open", 5, False)}


def test_only_the_stream_of_the_message_is_touched(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    touchpoint = {"type": "RECORD", "stream": "lead_touchpoints", "record": {"lead_id": 1}}
    load(warehouse, [SCHEMA, TOUCHPOINTS, record(1), touchpoint])
    load(warehouse, [SCHEMA, TOUCHPOINTS, activate(3)])

    assert rows(warehouse) == {1: ("open", None, True)}
    assert rows(warehouse, "lead_touchpoints") == {1: (None, None, False)}


def test_activate_version_false_ignores_the_message(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    load(warehouse, [SCHEMA, record(1), record(2)])
    result = load(warehouse, [SCHEMA, record(1, version=9), activate(9)], activate_version=False)

    assert rows(warehouse) == {1: ("open", 9, False), 2: ("open", None, False)}
    assert "`activate_version` is false" in result.stderr


def test_without_the_metadata_columns_the_message_fails_the_load_and_says_why(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "w.duckdb"
    load(warehouse, [SCHEMA, record(1)], add_metadata_columns=False)
    failed = load(
        warehouse,
        [SCHEMA, record(1, version=4), activate(4)],
        add_metadata_columns=False,
        check=False,
    )

    assert failed.returncode != 0
    assert "set `add_metadata_columns` (or `hard_delete`) to true" in failed.stderr
