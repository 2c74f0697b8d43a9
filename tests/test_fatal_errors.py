"""A fatal error prints one clear line and exits non-zero; its traceback only at DEBUG."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from tap_leadtrackr.exits import log_fatal_error
from tap_leadtrackr.sandbox import Sandbox
from tests.conftest import config_for, lead_requests


def run_cli(
    tmp_path: Path, config: dict[str, t.Any], *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    base = {name: value for name, value in os.environ.items() if not name.startswith("TAP_")}
    return subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr", "--config", str(config_file), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def errors_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line]


@pytest.mark.parametrize("args", [(), ("--test",)], ids=["sync", "--test"])
def test_a_refused_key_is_one_line_without_a_traceback(
    tmp_path: Path, sandbox: Sandbox, args: tuple[str, ...]
) -> None:
    run = run_cli(tmp_path, config_for(sandbox, api_key="not-the-key"), *args)

    assert run.returncode == 1
    (error,) = errors_of(run.stderr)
    assert "LeadTrackr rejected the API key (401: Invalid API key)" in error
    assert "Traceback" not in run.stderr
    assert run.stderr.count("rejected the API key") == 1
    assert "not-the-key" not in run.stderr


def test_at_debug_the_traceback_follows(tmp_path: Path, sandbox: Sandbox) -> None:
    run = run_cli(
        tmp_path, config_for(sandbox, api_key="not-the-key"), TAP_LEADTRACKR_LOGLEVEL="DEBUG"
    )

    assert run.returncode == 1
    assert "Traceback (most recent call last)" in run.stderr
    assert "AccessRefusedError" in run.stderr
    assert "An unhandled error occurred while syncing 'leads'" in run.stderr


@pytest.mark.parametrize(
    ("settings", "named"),
    [({"search": "a"}, "`search`"), ({"page_size": 500}, "`page_size`")],
    ids=["one-letter search", "page_size too large"],
)
def test_a_bad_setting_is_one_line(
    tmp_path: Path, sandbox: Sandbox, settings: dict[str, t.Any], named: str
) -> None:
    run = run_cli(tmp_path, config_for(sandbox, **settings))

    assert run.returncode == 1
    (error,) = errors_of(run.stderr)
    assert named in error
    assert "Traceback" not in run.stderr
    assert lead_requests(sandbox) == []


@pytest.mark.parametrize(
    ("option", "text", "message"),
    [
        ("--config", '{"api_key": "lt_live_9d8c7b6a", ', "is not JSON: Expecting property name"),
        ("--config", None, "was not found"),
        ("--state", "bookmarks", "is not JSON: Expecting value: line 1 column 1"),
    ],
    ids=["config not JSON", "config missing", "state not JSON"],
)
def test_a_file_that_is_not_json_or_not_there_is_one_line(
    tmp_path: Path, sandbox: Sandbox, option: str, text: str | None, message: str
) -> None:
    given = tmp_path / "given.json"
    if text is not None:
        given.write_text(text, encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_for(sandbox)), encoding="utf-8")
    files = {"--config": str(config), option: str(given)}

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tap_leadtrackr",
            *(item for pair in files.items() for item in pair),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 1
    (error,) = errors_of(run.stderr)
    assert message in error
    assert "Traceback" not in run.stderr
    assert "lt_live_9d8c7b6a" not in run.stderr
    assert lead_requests(sandbox) == []


def test_an_error_the_tap_does_not_explain_is_one_line_naming_its_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("tap-leadtrackr.test")
    try:
        {}["createdAt"]
    except KeyError as exc:
        error = exc

    with caplog.at_level(logging.INFO, logger="tap-leadtrackr.test"):
        log_fatal_error(logger, KeyError, error, error.__traceback__)

    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith(
        "KeyError: 'createdAt' (an error the tap does not explain"
    )
    assert record.exc_info is None

    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tap-leadtrackr.test"):
        log_fatal_error(logger, KeyError, error, error.__traceback__)

    assert [record.levelno for record in caplog.records] == [logging.ERROR, logging.DEBUG]
    assert caplog.records[1].exc_info is not None
