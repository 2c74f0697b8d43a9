"""The main job installs from wheels alone on every Python the package supports.

CI runs the tests on each of these Pythons; this test shows beforehand, on one machine,
that nothing binary would have to be built from source there (as duckdb 1.2.2 would on
3.14). uv resolves each virtualenv of the main job as `make demo` creates it, for another
Python and CI's platform, from wheels alone (`--only-binary :all:`), without installing
anything. It needs the package index."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LOADER = ROOT / "loaders" / "target-duckdb"
PYTHONS = ["3.11", "3.12", "3.13", "3.14"]
PLATFORM = "x86_64-manylinux_2_28"
"""CI's machines (ubuntu-latest): wheels for glibc 2.28 and older, x86-64."""
UV = Path(sys.executable).with_name("uv")
VENVS = {
    # The project's .venv: the tap, Meltano and the report's DuckDB.
    "project": [str(ROOT / "pyproject.toml"), "--group", "meltano"],
    # .meltano/loaders/target-duckdb/venv, from meltano.yml's pip_url.
    "loader": [str(LOADER / "pyproject.toml")],
    # .meltano/utilities/dbt-*/venv: meltano.yml's pip_url, written to a requirements file.
    "dbt-duckdb": [],
    "dbt-postgres": [],
}
UTILITIES = ("dbt-duckdb", "dbt-postgres")
"""The virtualenvs whose requirements are a utility's `pip_url` in meltano.yml."""
UTILITY_PYTHONS = (PYTHONS[0], PYTHONS[-1])
"""dbt resolves slowly (about 12 s each, on the index): the oldest and the newest Python;
CI's matrix installs them on every one."""
RESOLUTIONS = "wheel-resolutions"
"""The `workerinput` key of the folder where `pytest -n` writes the resolutions."""
CASES = [
    (venv, python)
    for venv in VENVS
    for python in PYTHONS
    if venv not in UTILITIES or python in UTILITY_PYTHONS
]
"""The (virtualenv, Python) pairs resolved."""


def pinned(
    pyproject: Path, *, group: str | None = None, python: str | None = None
) -> dict[str, str]:
    """The `name==version` requirements of a project's dependencies (or of one group), as
    they apply on Python `python` (default: this one)."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    listed = data["dependency-groups"][group] if group else data["project"]["dependencies"]
    requirements = [Requirement(item) for item in listed if isinstance(item, str)]
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    return {
        requirement.name: spec.version
        for requirement in requirements
        if requirement.marker is None or requirement.marker.evaluate({"python_version": python})
        for spec in requirement.specifier
        if spec.operator == "=="
    }


def pip_url(utility: str) -> list[str]:
    """The requirements of a utility's `pip_url` in meltano.yml, without pip's options."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (plugin,) = (p for p in project["plugins"]["utilities"] if p["name"] == utility)
    return [item for item in shlex.split(plugin["pip_url"]) if not item.startswith("-")]


def pip_url_pinned(utility: str, *, python: str | None = None) -> dict[str, str]:
    """The `name==version` requirements of a utility's `pip_url`, as they apply on `python`."""
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    requirements = [Requirement(item) for item in pip_url(utility)]
    return {
        requirement.name: spec.version
        for requirement in requirements
        if requirement.marker is None or requirement.marker.evaluate({"python_version": python})
        for spec in requirement.specifier
        if spec.operator == "=="
    }


def uv_compile(venv: str, python: str, folder: Path) -> subprocess.Popen[bytes]:
    """Start resolving `venv` for `python` from wheels alone, into files of `folder`:
    `name==version` lines in `<case>.out`, uv's messages in `<case>.err`, and its exit code
    in `<case>.code` once it ends (`collect` waits for that)."""
    case = f"{venv}-{python}"
    requirements = folder / f"{case}.txt"
    if venv in UTILITIES:
        requirements.write_text("\n".join(pip_url(venv)) + "\n", encoding="utf-8")
    sources = [str(requirements)] if venv in UTILITIES else VENVS[venv]
    command = [
        *(str(UV), "pip", "compile", *sources, "--quiet", "--no-header"),
        *("--no-annotate", "--python-version", python, "--python-platform", PLATFORM),
        *("--only-binary", ":all:"),
    ]
    script = '"$@" >"$0.out" 2>"$0.err"; echo $? >"$0.part"; mv "$0.part" "$0.code"'
    return subprocess.Popen(["sh", "-c", script, str(folder / case), *command])


def start_resolutions(folder: Path) -> list[subprocess.Popen[bytes]]:
    """Start every resolution at once (each mostly waits on the index)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [uv_compile(venv, python, folder) for venv, python in CASES]


def collect(folder: Path, timeout: float = 600) -> dict[tuple[str, str], tuple[int, str, str]]:
    """Wait for every resolution in `folder`; exit code, stdout and stderr of each case."""
    deadline = time.monotonic() + timeout
    results = {}
    for venv, python in CASES:

        def read(suffix: str, case: str = f"{venv}-{python}") -> str:
            return (folder / f"{case}{suffix}").read_text(encoding="utf-8")

        while not (folder / f"{venv}-{python}.code").exists():
            assert time.monotonic() < deadline, f"no resolution of {venv} for {python}"
            time.sleep(0.2)
        code = int(read(".code"))
        results[venv, python] = (code, read(".out"), read(".err"))
    return results


@pytest.fixture(scope="module")
def resolutions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], tuple[int, str, str]]:
    """Every resolution: under `make test`, those `pytest -n` itself started as soon as the
    workers' collection showed this module (tests/conftest.py), so that no worker waits on
    the index; else started here."""
    started = getattr(request.config, "workerinput", {}).get(RESOLUTIONS)
    if started:
        return collect(Path(started))
    folder = tmp_path_factory.mktemp("requirements")
    processes = start_resolutions(folder)
    try:
        return collect(folder)
    finally:
        for process in processes:
            process.kill()
            process.wait()


@pytest.mark.parametrize(("venv", "python"), CASES)
def test_every_dependency_of_the_main_job_has_a_wheel(
    resolutions: dict[tuple[str, str], tuple[int, str, str]], venv: str, python: str
) -> None:
    exit_code, stdout, stderr = resolutions[venv, python]
    assert exit_code == 0, f"no wheels for Python {python}:\n{stderr[-3000:]}"

    resolved = dict(line.split("==", 1) for line in stdout.splitlines() if "==" in line)
    if venv in UTILITIES:
        pins = pip_url_pinned(venv, python=python)
        assert {"dbt-core", venv} <= set(pins)
    else:
        pins = (
            pinned(ROOT / "pyproject.toml", group="meltano", python=python)
            if venv == "project"
            else pinned(LOADER / "pyproject.toml", python=python)
        )
    if venv != "dbt-postgres":
        assert "duckdb" in pins
    for name, version in pins.items():
        assert resolved[name] == version


def test_the_supported_pythons_are_the_ones_ci_and_this_test_run() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    loader = tomllib.loads((LOADER / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    prefix = "Programming Language :: Python :: 3."
    classified = [c.rpartition(" :: ")[2] for c in project["classifiers"] if c.startswith(prefix)]

    assert project["requires-python"] == loader["requires-python"] == f">={PYTHONS[0]}"
    assert classified == PYTHONS
    assert ci["jobs"]["test"]["strategy"]["matrix"]["python-version"] == PYTHONS
