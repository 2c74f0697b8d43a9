"""Settings: bad ones stop the tap before any request, with a message naming them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tap_leadtrackr.sandbox import Sandbox
from tap_leadtrackr.tap import TapLeadTrackr
from tests.conftest import config_for, run_tap

OWN_SETTINGS = (
    "api_key",
    "api_url",
    "start_date",
    "end_date",
    "statuses",
    "form_name",
    "unique_identifier",
    "email",
    "phone",
    "search",
    "gclid_exists",
    "cid_exists",
    "fbp_exists",
    "fbc_exists",
    "page_size",
    "request_timeout",
    "max_retries",
    "pii",
)

BAD_SETTINGS = {
    "page_size": ({"page_size": 500}, "page_size"),
    "page_size zero": ({"page_size": 0}, "page_size"),
    "search": ({"search": "a"}, "search"),
    "search blank": ({"search": " x "}, "search"),
    "start_date": ({"start_date": "yesterday"}, "start_date"),
    "end_date": ({"end_date": "2026-13-45"}, "end_date"),
    "end before start": ({"start_date": "2026-02-01", "end_date": "2026-01-01"}, "end_date"),
    "statuses number": ({"statuses": 5}, "statuses"),
    "statuses mixed": ({"statuses": ["open", 3]}, "statuses"),
    "statuses empty": ({"statuses": " , "}, "statuses"),
    "gclid_exists": ({"gclid_exists": "yes"}, "gclid_exists"),
    "request_timeout": ({"request_timeout": 0}, "request_timeout"),
    "max_retries": ({"max_retries": -1}, "max_retries"),
    "pii": ({"pii": "hashed"}, "pii"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_a_bad_setting_is_refused_before_any_request(sandbox: Sandbox, case: str) -> None:
    settings, named = BAD_SETTINGS[case]

    result = run_tap(config_for(sandbox, **settings), expect_error=True)

    assert result.error is not None
    assert named in str(result.error) + " ".join(getattr(result.error, "errors", []))
    assert sandbox.requests == []
    assert result.records == []


@pytest.mark.parametrize("api_key", [None, "", "   "])
def test_a_missing_api_key_is_refused_before_any_request(sandbox: Sandbox, api_key) -> None:
    config = {"api_url": sandbox.url}
    if api_key is not None:
        config["api_key"] = api_key

    result = run_tap(config, expect_error=True)

    assert "api_key" in str(result.error) + " ".join(getattr(result.error, "errors", []))
    assert sandbox.requests == []


def test_the_cli_exits_non_zero_and_names_the_setting(tmp_path, sandbox: Sandbox) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_for(sandbox, page_size=500)))

    run = subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode != 0
    assert "page_size" in run.stderr
    assert sandbox.api_key not in run.stderr + run.stdout
    assert sandbox.requests == []


@pytest.mark.parametrize("value", [["open", "lost"], "open,lost", " open , lost ,"])
def test_statuses_take_a_list_or_a_comma_separated_string(sandbox: Sandbox, value) -> None:
    result = run_tap(config_for(sandbox, statuses=value))

    assert result.error is None
    assert sandbox.requests[0].params["status"] == "open,lost"


def test_about_and_discover_work_without_any_config() -> None:
    about = subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr", "--about", "--format=json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    discover = subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr", "--discover"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    settings = json.loads(about.stdout)["settings"]["properties"]
    assert set(OWN_SETTINGS) <= set(settings)
    streams = json.loads(discover.stdout)["streams"]
    assert [s["tap_stream_id"] for s in streams] == ["lead_touchpoints", "leads"]


def test_every_setting_has_a_title_and_a_description() -> None:
    own = {name: TapLeadTrackr.config_jsonschema["properties"][name] for name in OWN_SETTINGS}
    for name, spec in own.items():
        assert spec.get("title"), name
        assert len(spec.get("description", "")) > 20, name
    assert own["api_key"].get("secret") is True
    assert own["page_size"]["default"] == 100
