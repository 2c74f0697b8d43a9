"""The README says what the code does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_settings_table_is_the_about_output() -> None:
    about = subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = [line for line in about.splitlines() if line.startswith("| ")]
    own = rows[: next(i for i, row in enumerate(rows) if row.startswith("| stream_maps"))]

    assert len(own) > 10
    for row in own:
        assert row in README, f"README settings table lacks or differs on: {row}"


def test_the_quick_start_has_the_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^make \w+", quick_start, flags=re.MULTILINE)

    assert commands == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()

    assert re.search(r"^make test\b", ci, flags=re.MULTILINE)


def test_the_readme_is_a_first_screen_and_the_reference_lives_in_docs() -> None:
    assert len(README.splitlines()) <= 350


def test_the_meltano_example_names_every_file_target_jsonl_writes() -> None:
    # target-jsonl writes `<stream>.jsonl` per stream selected (tests/e2e/test_privacy_meltano.py).
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    extractor = next(
        plugin for plugin in project["plugins"]["extractors"] if plugin["name"] == "tap-leadtrackr"
    )
    streams = {pattern.split(".", 1)[0] for pattern in extractor["select"]}
    example = README.split("## With Meltano", 1)[1].split("\n## ", 1)[0]

    assert len(streams) > 1
    for stream in streams:
        assert f"output/jsonl/{stream}.jsonl" in example
