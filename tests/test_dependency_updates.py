"""Dependencies are kept fresh: Dependabot watches the Python packages and the GitHub
Actions, and the daily workflow really installs a singer-sdk newer than the pin allows."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CANARY = ROOT / ".github" / "workflows" / "sdk-canary.yml"


def singer_sdk_requirements(pyproject: Path) -> list[Requirement]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    listed = [*data["project"]["dependencies"], *data["dependency-groups"]["test"]]
    requirements = [Requirement(item) for item in listed if isinstance(item, str)]
    return [requirement for requirement in requirements if requirement.name == "singer-sdk"]


def test_dependabot_watches_python_packages_and_github_actions() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    updates = {update["package-ecosystem"]: update for update in config["updates"]}

    assert set(updates) == {"pip", "github-actions"}
    for directory in updates["pip"]["directories"]:
        assert (ROOT / directory.lstrip("/") / "pyproject.toml").is_file(), directory


def test_the_daily_workflow_widens_the_singer_sdk_pin_in_pyproject(tmp_path: Path) -> None:
    workflow = yaml.safe_load(CANARY.read_text(encoding="utf-8"))
    assert "schedule" in workflow[True]  # YAML reads the key `on` as True
    (job,) = workflow["jobs"].values()
    (widen,) = [step["run"] for step in job["steps"] if "Widen" in step.get("name", "")]
    widened_range = workflow["env"]["SINGER_SDK_RANGE"]
    pinned = singer_sdk_requirements(ROOT / "pyproject.toml")
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())

    # The step itself, on a copy of pyproject.toml: it fails unless both requirements changed.
    subprocess.run(
        ["bash", "-e", "-c", widen],
        cwd=tmp_path,
        env={**os.environ, "SINGER_SDK_RANGE": widened_range},
        check=True,
        timeout=30,
    )

    widened = singer_sdk_requirements(tmp_path / "pyproject.toml")
    assert [r.extras for r in widened] == [r.extras for r in pinned]
    assert len(widened) == 2
    for before, after in zip(pinned, widened, strict=True):
        assert str(after.specifier) == str(Requirement(f"x{widened_range}").specifier)
        (lowest,) = [spec.version for spec in before.specifier]
        major, minor, *_ = lowest.split(".")
        next_minor = f"{major}.{int(minor) + 1}.0"
        # The pinned release still, and the next minor line, which the pin does not allow.
        assert after.specifier.contains(lowest)
        assert after.specifier.contains(next_minor), next_minor
        assert not before.specifier.contains(next_minor), next_minor
