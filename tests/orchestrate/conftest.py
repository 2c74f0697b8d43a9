"""The orchestrator examples' tests: Dagster and Airflow, each in an environment of its own.

Each environment is built once from `orchestrate/<tool>/requirements.txt` (locked) with the
`uv` that Meltano brings along, and kept in pytest's cache
(`.pytest_cache/d/orchestrate-venvs/<tool>-<hash>`), keyed by the requirements and the
Python version: later sessions reuse it, a changed lock file builds a new one.
`make clean` removes them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT


def _install(venv: Path, requirements: Path) -> None:
    """Create `venv` with the locked requirements: uv when there is one, else venv and pip."""
    uv = Path(sys.executable).with_name("uv")
    uv_command = str(uv) if uv.exists() else shutil.which("uv")
    python = venv / "bin" / "python"
    if uv_command:
        steps = [
            [uv_command, "venv", "--quiet", "--python", sys.executable, str(venv)],
            [
                uv_command,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(python),
                "-r",
                str(requirements),
            ],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
        ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False, timeout=1200)
        if result.returncode != 0:
            pytest.fail(
                f"`{' '.join(step)}` failed:\n{result.stdout[-3000:]}{result.stderr[-5000:]}"
            )


def orchestrator_python(venvs: Path, tool: str) -> Path:
    """The Python of `tool`'s environment in `venvs`, built on first use."""
    requirements = ROOT / "orchestrate" / tool / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"{sys.version} {sys.platform}".encode())
    name = f"{tool}-{digest.hexdigest()[:12]}"
    venv = venvs / name
    # Another pytest session may be building the same one: one builder at a time.
    with (venvs / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".installed").exists():
            for stale in venvs.glob(f"{tool}-*"):
                if stale.is_dir():
                    shutil.rmtree(stale)
            _install(venv, requirements)
            (venv / ".installed").touch()
    return venv / "bin" / "python"


@pytest.fixture(scope="session")
def orchestrator_venvs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """pytest's cache folder for the environments; without the cache (`-p no:cacheprovider`),
    a temporary one."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return tmp_path_factory.mktemp("orchestrate-venvs")
    return cache.mkdir("orchestrate-venvs")


@pytest.fixture(scope="session")
def dagster_python(orchestrator_venvs: Path) -> Path:
    return orchestrator_python(orchestrator_venvs, "dagster")


@pytest.fixture(scope="session")
def airflow_python(orchestrator_venvs: Path) -> Path:
    return orchestrator_python(orchestrator_venvs, "airflow")


def clean_env(**variables: str | os.PathLike[str]) -> dict[str, str]:
    """This process's environment without the tools' own settings, plus `variables`."""
    own = ("AIRFLOW", "DAGSTER", "MELTANO_", "TAP_LEADTRACKR_", "TARGET_", "LEADTRACKR_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(own)}
    return {**env, **{name: str(value) for name, value in variables.items()}}
