"""A warehouse as the previous release wrote it: `data/warehouse-duckdb-1.2.2.duckdb.gz`.

Until 0.1.0 the main job loaded with `target-duckdb==0.8.0 duckdb==1.2.2`. This script
wrote the file that `test_duckdb_loader.py` loads on with today's loader, with such a
loader and the settings of the previous `meltano.yml`:

    python -m venv /tmp/previous && /tmp/previous/bin/pip install target-duckdb==0.8.0 duckdb==1.2.2
    .venv/bin/python tests/e2e/previous_warehouse.py /tmp/previous/bin/target-duckdb

(duckdb 1.2.2 has wheels up to Python 3.13: hence a file in the repository rather than a
loader built during the tests.)
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads

LEADS = 300
SEED = 61
FILE = Path(__file__).resolve().parent / "data" / "warehouse-duckdb-1.2.2.duckdb.gz"
TAP = Path(sys.executable).with_name("tap-leadtrackr")


def main(loader: str) -> None:
    """Load the sandbox's leads and touchpoints with `loader` and keep the file, gzipped."""
    with (
        tempfile.TemporaryDirectory() as directory,
        Sandbox(Project(generate_leads(LEADS, seed=SEED))) as sandbox,
    ):
        workdir = Path(directory)
        tap_config = workdir / "tap.json"
        tap_config.write_text(json.dumps({"api_url": sandbox.url, "api_key": sandbox.api_key}))
        catalog = json.loads(
            subprocess.run(
                [TAP, "--config", tap_config, "--discover"], capture_output=True, check=True
            ).stdout
        )
        for stream in catalog["streams"]:
            for entry in stream["metadata"]:
                if entry["breadcrumb"] == []:
                    entry["metadata"]["selected"] = True
        (workdir / "catalog.json").write_text(json.dumps(catalog))
        warehouse = workdir / "warehouse.duckdb"
        (workdir / "loader.json").write_text(
            json.dumps(
                {
                    "filepath": str(warehouse),
                    "default_target_schema": "leadtrackr",
                    "add_metadata_columns": True,
                }
            )
        )
        tap = subprocess.Popen(
            [TAP, "--config", tap_config, "--catalog", workdir / "catalog.json"],
            stdout=subprocess.PIPE,
        )
        subprocess.run([loader, "--config", workdir / "loader.json"], stdin=tap.stdout, check=True)
        if tap.wait() != 0:
            raise SystemExit("the tap failed")
        FILE.parent.mkdir(exist_ok=True)
        with warehouse.open("rb") as source, gzip.open(FILE, "wb") as target:
            shutil.copyfileobj(source, target)
    print(f"wrote {FILE} ({FILE.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
