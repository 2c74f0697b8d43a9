"""What a release publishes: the sdist and wheel build, pass `twine check`, and hold what
they should; the CHANGELOG's latest release is the package's version; the release workflow
publishes by trusted publishing, on a version tag that equals that version.

The build is the release workflow's own (`uv build`, then `twine check --strict`); it needs
the package index for the build backend, as `make test` does anyway.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
VERSION = PROJECT["version"]
WORKFLOWS = ROOT / ".github" / "workflows"


def test_the_sdist_and_wheel_build_pass_twine_check_and_hold_the_package(tmp_path: Path) -> None:
    subprocess.run(
        [str(BIN / "uv"), "build", "--sdist", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    assert wheel.name == f"tap_leadtrackr-{VERSION}-py3-none-any.whl"
    assert sdist.name == f"tap_leadtrackr-{VERSION}.tar.gz"

    check = subprocess.run(
        [str(BIN / "twine"), "check", "--strict", str(wheel), str(sdist)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    wheel_files = set(zipfile.ZipFile(wheel).namelist())
    modules = ("tap.py", "client.py", "streams.py", "paging/keyset.py", "sandbox/server.py")
    for module in modules:
        assert f"tap_leadtrackr/{module}" in wheel_files, module
    assert not [name for name in wheel_files if name.startswith("tests/")]
    entry_points = zipfile.ZipFile(wheel).read(
        f"tap_leadtrackr-{VERSION}.dist-info/entry_points.txt"
    )
    assert b"tap-leadtrackr = tap_leadtrackr.tap:TapLeadTrackr.cli" in entry_points
    assert b"leadtrackr-sandbox = " in entry_points

    with tarfile.open(sdist) as archive:
        sdist_files = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for path in ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "meltano-hub.yml"):
        assert path in sdist_files, path
    assert "tests/conftest.py" in sdist_files
    assert "tests/data/meltano-hub/README.md" in sdist_files
    assert "tap_leadtrackr/sandbox/server.py" in sdist_files


def test_the_changelogs_latest_release_is_the_package_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", changelog, re.M)
    released = [(version, date) for version, date in headings if version != "Unreleased"]

    assert headings[0] == ("Unreleased", ""), "Keep a Changelog: `## [Unreleased]` first"
    assert released, "no released version in CHANGELOG.md"
    latest = released[0][0]
    assert latest == VERSION, f"CHANGELOG's latest release is {latest}, pyproject's {VERSION}"
    assert all(date for _, date in released), "every release has its date"
    # Each heading links to its changes.
    for version, _ in headings:
        assert re.search(rf"^\[{re.escape(version)}\]: https://", changelog, re.M), version


def test_the_release_workflow_publishes_by_trusted_publishing_on_a_version_tag() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "release.yml").read_text(encoding="utf-8"))
    text = (WORKFLOWS / "release.yml").read_text(encoding="utf-8")

    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as True
    publish = workflow["jobs"]["publish"]
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    steps = [step.get("uses", "") for step in publish["steps"]]
    assert any(uses.startswith("pypa/gh-action-pypi-publish@") for uses in steps)
    # No stored credential: trusted publishing alone.
    assert "secrets." not in text
    assert "password" not in text
    build = "\n".join(step.get("run", "") for step in workflow["jobs"]["build"]["steps"])
    assert '"$GITHUB_REF_NAME" != "v$version"' in build
    assert "uv build --sdist --wheel" in build
    assert "twine check --strict" in build


def test_ci_runs_the_release_build_and_check_on_every_push() -> None:
    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text(encoding="utf-8"))
    release = yaml.safe_load((WORKFLOWS / "release.yml").read_text(encoding="utf-8"))

    def runs(job: dict) -> list[str]:
        return [step["run"] for step in job["steps"] if "run" in step]

    release_steps = [run for run in runs(release["jobs"]["build"]) if "GITHUB_REF_NAME" not in run]
    assert set(release_steps) <= set(runs(ci["jobs"]["package"]))
    assert "push" in ci[True]
