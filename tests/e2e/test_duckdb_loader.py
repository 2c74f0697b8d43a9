"""The main job's DuckDB loader: one DuckDB version, every row, and old warehouses load on."""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
import tomllib
from pathlib import Path

import duckdb
from packaging.requirements import Requirement
from packaging.version import Version

from scripts.warehouse_report import read_warehouse
from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tests.e2e import previous_warehouse
from tests.e2e.conftest import ROOT, Meltano, query_duckdb, sandbox_env
from tests.e2e.test_touchpoints_warehouse import TOUCHPOINT_ROWS, expected_touchpoints
from tests.test_wheels import LOADER, pinned, pip_url

LOADER_BIN = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin"
DBT_BIN = ROOT / ".meltano" / "utilities" / "dbt-duckdb" / "venv" / "bin"


def installed_versions(bin_dir: Path, *names: str) -> dict[str, str]:
    """Versions installed in a plugin's virtualenv."""
    script = (
        "import json, sys; from importlib.metadata import version; "
        "print(json.dumps({name: version(name) for name in sys.argv[1:]}))"
    )
    result = subprocess.run(
        [bin_dir / "python", "-c", script, *names], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def loader_versions() -> dict[str, str]:
    """Versions installed in the loader's virtualenv."""
    return installed_versions(LOADER_BIN, "duckdb", "target-duckdb")


def duckdb_requirements() -> list[str]:
    """Every requirement on duckdb of the main job: the project's, the loader's, dbt-duckdb's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    loader = tomllib.loads((LOADER / "pyproject.toml").read_text(encoding="utf-8"))
    listed = [
        *project["dependency-groups"]["meltano"],
        *loader["project"]["dependencies"],
        *pip_url("dbt-duckdb"),
    ]
    return [item for item in listed if isinstance(item, str) and Requirement(item).name == "duckdb"]


def test_the_loader_the_report_and_the_project_use_one_duckdb(meltano_installed: Path) -> None:
    project_pin = pinned(ROOT / "pyproject.toml", group="meltano")["duckdb"]
    # One version on every Python: no marker picks another.
    assert duckdb_requirements() == [f"duckdb=={project_pin}"] * 3
    # The newest DuckDB, 2.0.1 when this was written.
    assert Version(project_pin) >= Version("2.0.1")

    loader_pins = pinned(LOADER / "pyproject.toml")
    assert loader_pins["target-duckdb"] == "0.8.0"
    # The report (scripts/warehouse_report.py) and the tests read with the project's duckdb.
    assert duckdb.__version__ == project_pin
    assert loader_versions() == {"duckdb": project_pin, "target-duckdb": "0.8.0"}
    # dbt-duckdb builds the models in the same file, with the same DuckDB.
    assert installed_versions(DBT_BIN, "duckdb")["duckdb"] == project_pin


def singer_messages(rows: int) -> str:
    """A stream whose columns are all text: DuckDB's header sniffing takes its first row."""
    schema = {"properties": {"code": {"type": "string"}, "label": {"type": ["null", "string"]}}}
    lines = [{"type": "SCHEMA", "stream": "codes", "schema": schema, "key_properties": ["code"]}]
    lines += [
        {"type": "RECORD", "stream": "codes", "record": {"code": f"c{i}", "label": f"code {i}"}}
        for i in range(rows)
    ]
    lines.append({"type": "STATE", "value": {"done": True}})
    return "".join(json.dumps(line) + "\n" for line in lines)


def load_codes(executable: str, rows: int, batch_rows: int, tmp_path: Path) -> list[str]:
    warehouse = tmp_path / f"{executable}.duckdb"
    config = tmp_path / f"{executable}.json"
    config.write_text(
        json.dumps(
            {
                "filepath": str(warehouse),
                "default_target_schema": "loader_test",
                "batch_size_rows": batch_rows,
            }
        )
    )
    result = subprocess.run(
        [LOADER_BIN / executable, "--config", config],
        input=singer_messages(rows),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {"done": True}
    return [code for (code,) in query_duckdb(warehouse, "select code from loader_test.codes")]


def test_every_row_of_every_batch_is_loaded_where_the_released_loader_loses_the_first(
    meltano_installed: Path, tmp_path: Path
) -> None:
    rows, batch_rows = 2500, 1000
    expected = {f"c{i}" for i in range(rows)}

    ours = load_codes("leadtrackr-target-duckdb", rows, batch_rows, tmp_path)
    assert sorted(ours) == sorted(expected)

    # target-duckdb 0.8.0's own entry point, same virtualenv and DuckDB: the first row of
    # each of the three batches is taken for a CSV header. When this starts to fail, the
    # pinned DuckDB no longer needs loaders/target-duckdb.
    released = load_codes("target-duckdb", rows, batch_rows, tmp_path)
    assert expected - set(released) == {"c0", "c1000", "c2000"}


def storage_version(path: Path) -> int:
    """The storage format number in a DuckDB file's header (after the checksum and `DUCK`)."""
    with path.open("rb") as file:
        header = file.read(20)
    assert header[8:12] == b"DUCK"
    return int(struct.unpack("<Q", header[12:20])[0])


def test_a_warehouse_written_by_the_previous_release_loads_on_and_stays_readable(
    meltano: Meltano, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with gzip.open(previous_warehouse.FILE, "rb") as source, warehouse.open("wb") as target:
        shutil.copyfileobj(source, target)
    written_by_1_2_2 = storage_version(warehouse)
    assert written_by_1_2_2 in (64, 65)  # what DuckDB 1.2.2 reads; 2.0 creates newer files
    before = read_warehouse(warehouse)
    assert (before.leads, before.distinct_ids) == (previous_warehouse.LEADS,) * 2

    project = Project(generate_leads(previous_warehouse.LEADS, seed=previous_warehouse.SEED))
    project.update_lead(5, status="Sale", price=99_000)
    added = project.add_leads(30)
    with Sandbox(project) as sandbox:
        # A fresh Meltano state: every lead again, upserted onto the old rows.
        meltano(
            "run", "leads-to-warehouse", env=sandbox_env(sandbox, TARGET_DUCKDB_FILEPATH=warehouse)
        )

    after = read_warehouse(warehouse)
    total = previous_warehouse.LEADS + len(added)
    assert (after.leads, after.distinct_ids) == (total, total)
    assert query_duckdb(warehouse, "select status, price from leadtrackr.leads where id = 5") == [
        ("Sale", 99_000)
    ]
    touchpoints = expected_touchpoints(project.leads)
    keys = query_duckdb(
        warehouse,
        "select count(*), count(distinct (lead_id, position)) from leadtrackr.lead_touchpoints",
    )
    assert keys == [(len(touchpoints), len(touchpoints))]
    assert set(query_duckdb(warehouse, TOUCHPOINT_ROWS)) == touchpoints
    # DuckDB keeps an existing file in its format: the previous release can still open it.
    assert storage_version(warehouse) == written_by_1_2_2
