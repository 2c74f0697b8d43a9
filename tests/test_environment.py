"""Every setting works as `TAP_LEADTRACKR_<NAME>` with `--config=ENV`, in every form it offers.

The table below holds each setting of `--about` (the SDK's own included) with the texts
its description allows and what the tap must read from each; a new setting fails here
until it has a row. Bad texts stop the tap before any request, naming the variable and
never quoting the value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

import pytest
from singer_sdk.exceptions import ConfigValidationError

from tap_leadtrackr.sandbox import Sandbox
from tap_leadtrackr.tap import TapLeadTrackr
from tests.conftest import lead_requests

UNSET = object()
"""The setting is not in the config at all."""

KEY = "lt_live_env_5e2b7c"
LEADS = {"leads": {"email": "__NULL__"}}
BATCH = {"encoding": {"format": "jsonl", "compression": "gzip"}, "storage": {"root": "file://."}}

#: Each setting: the texts its description offers, and what the tap reads from each.
FORMS: dict[str, list[tuple[str, t.Any]]] = {
    "api_key": [(KEY, KEY)],
    "projects": [
        ('[{"name": "acme", "api_key": "k-1"}]', [{"name": "acme", "api_key": "k-1"}]),
        (
            '[{"name":"acme","api_key":"k-1"},{"name":"globex","api_key":"k-2"}]',
            [{"name": "acme", "api_key": "k-1"}, {"name": "globex", "api_key": "k-2"}],
        ),
    ],
    "api_url": [
        ("https://app.leadtrackr.io", "https://app.leadtrackr.io"),
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
        ("http://localhost:8787", "http://localhost:8787"),
        ("http://[::1]:8787", "http://[::1]:8787"),
    ],
    "start_date": [("2025-01-01", "2025-01-01"), ("2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z")],
    "end_date": [
        ("2026-02-01", "2026-02-01"),
        ("2026-02-01T12:00:00+01:00", "2026-02-01T12:00:00+01:00"),
    ],
    "statuses": [
        ("open", "open"),
        ("open,pending", "open,pending"),
        ('["open","pending"]', ["open", "pending"]),
        (' ["open", "Qualified lead"] ', ["open", "Qualified lead"]),
    ],
    "form_name": [("Contact form", "Contact form")],
    "unique_identifier": [("CRM-42", "CRM-42")],
    "email": [("jan@example.com", "jan@example.com")],
    "phone": [("+31 6 12345678", "+31 6 12345678")],
    "search": [("acme", "acme")],
    "gclid_exists": [("true", True), ("false", False), ("TRUE", True), ("0", False), ("", UNSET)],
    "cid_exists": [("true", True), ("no", False)],
    "fbp_exists": [("false", False), ("yes", True)],
    "fbc_exists": [("1", True), ("off", False)],
    "page_size": [("25", 25), (" 100 ", 100)],
    "request_timeout": [("30", 30), ("2.5", 2.5)],
    "max_retries": [("0", 0), ("3", 3)],
    "lookback_window_days": [("7", 7)],
    "max_parallel_requests": [("4", 4)],
    "pii": [("keep", "keep"), ("hash", "hash"), ("drop", "drop")],
    "reconcile": [("true", True), ("false", False)],
    "stream_maps": [(json.dumps(LEADS), LEADS)],
    "stream_map_config": [('{"salt": "s"}', {"salt": "s"})],
    "faker_config": [('{"seed": 3, "locale": "nl_NL"}', {"seed": 3, "locale": "nl_NL"})],
    "flattening_enabled": [("true", True)],
    "flattening_max_depth": [("2", 2)],
    "flattening_max_key_length": [("40", 40)],
    "flattening_separator": [("__", "__")],
    "batch_config": [(json.dumps(BATCH), BATCH)],
}

#: Texts each setting must refuse, by variable, before any request.
BAD: dict[str, list[str]] = {
    "page_size": ["abc", "2.5", "0"],
    "request_timeout": ["soon", "nan", "0"],
    "max_retries": ["-1", "three"],
    "gclid_exists": ["maybe", "ja"],
    "projects": [
        "acme:" + KEY,
        '[{"name": "acme", "api_key": "' + KEY,
        f'{{"name": "acme", "api_key": "{KEY}"}}',
    ],
    "statuses": ['["open",', "[1, 2]", " , "],
    "stream_maps": ["leads.email"],
    "start_date": ["yesterday"],
    "pii": ["pseudonymise"],
    "api_url": ["http://leadtrackr.example", "ftp://127.0.0.1"],
}


def variable(setting: str) -> str:
    return "TAP_LEADTRACKR_" + setting.upper()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> t.Callable[..., None]:
    """Set the tap's variables to exactly these (and a key), in a folder with no `.env`."""
    for name in list(os.environ):
        if name.startswith("TAP_LEADTRACKR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def set_variables(**variables: str) -> None:
        if "TAP_LEADTRACKR_PROJECTS" not in variables:
            variables.setdefault("TAP_LEADTRACKR_API_KEY", KEY)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_variables


def tap_from_environment() -> TapLeadTrackr:
    return TapLeadTrackr(config={}, parse_env_config=True, setup_mapper=False)


def test_every_setting_of_the_tap_has_its_forms_here() -> None:
    schema = TapLeadTrackr.config_jsonschema
    TapLeadTrackr.append_builtin_config(schema)

    assert sorted(FORMS) == sorted(schema["properties"])


CASES = [(setting, text, read) for setting, forms in FORMS.items() for text, read in forms]


@pytest.mark.parametrize(
    ("setting", "text", "read"), CASES, ids=[f"{s}={text!r}" for s, text, _ in CASES]
)
def test_each_setting_is_read_from_the_environment_in_each_form(
    environment, setting: str, text: str, read: t.Any
) -> None:
    others = {"TAP_LEADTRACKR_START_DATE": "2025-01-01"} if setting == "end_date" else {}
    environment(**{variable(setting): text}, **others)

    config = tap_from_environment().config

    if read is UNSET:
        assert setting not in config
    else:
        assert config[setting] == read
        assert type(config[setting]) is type(read)


BAD_CASES = [(setting, text) for setting, texts in BAD.items() for text in texts]


@pytest.mark.parametrize(
    ("setting", "text"), BAD_CASES, ids=[f"{s}={text!r}" for s, text in BAD_CASES]
)
def test_a_bad_text_is_refused_naming_the_setting_never_quoting_it(
    environment, setting: str, text: str
) -> None:
    environment(**{variable(setting): text})

    with pytest.raises(ConfigValidationError) as refused:
        tap_from_environment()

    errors = refused.value.errors
    assert errors
    assert any(setting in error for error in errors), errors
    shown = " ".join(errors) + str(refused.value)
    assert KEY not in shown
    if len(text.strip()) > 3:
        assert text.strip() not in shown


def test_a_variable_and_a_setting_with_one_problem_make_one_message(environment) -> None:
    environment(TAP_LEADTRACKR_PAGE_SIZE="many")

    with pytest.raises(ConfigValidationError) as refused:
        tap_from_environment()

    assert refused.value.errors == ["`TAP_LEADTRACKR_PAGE_SIZE` (page_size) must be a whole number"]


def test_dot_env_in_the_working_folder_is_read_and_exported_variables_win(
    environment, tmp_path
) -> None:
    (tmp_path / ".env").write_text(
        "TAP_LEADTRACKR_PAGE_SIZE=25\nTAP_LEADTRACKR_STATUSES='open,lost'\n", encoding="utf-8"
    )
    environment(TAP_LEADTRACKR_PAGE_SIZE="40")

    config = tap_from_environment().config

    assert config["page_size"] == 40
    assert config["statuses"] == "open,lost"


def test_a_config_file_number_given_as_text_is_read_as_a_number(sandbox: Sandbox) -> None:
    # As Meltano passes `request_timeout` (kind `string`) set in its environment.
    tap = TapLeadTrackr(
        config={"api_key": KEY, "api_url": sandbox.url, "request_timeout": "2.5"},
        setup_mapper=False,
    )

    assert tap.config["request_timeout"] == 2.5


def run_cli(sandbox: Sandbox, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TAP_")}
    env.update(TAP_LEADTRACKR_API_KEY=sandbox.api_key, TAP_LEADTRACKR_API_URL=sandbox.url)
    return subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr", "--config=ENV"],
        env={**env, **variables},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("text", ["open,pending", '["open","pending"]'])
def test_statuses_from_the_environment_filter_the_sync(sandbox: Sandbox, text: str) -> None:
    run = run_cli(sandbox, TAP_LEADTRACKR_STATUSES=text)

    assert run.returncode == 0, run.stderr[-3000:]
    # Keyset pages ask for the filter; an instant read alone is filtered in the tap.
    keyset = [r for r in lead_requests(sandbox) if r.params.get("createdAt[lte]") is None]
    assert {request.params["status"] for request in keyset} == {"open,pending"}
    records = [json.loads(line) for line in run.stdout.splitlines()]
    statuses = {m["record"]["status"] for m in records if m["type"] == "RECORD"}
    assert statuses == {"open", "pending"}


def test_about_shows_a_type_for_every_setting() -> None:
    about = subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr", "--about"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout

    assert "Type: None" not in about
    assert "Name: statuses\n    Type: ['string', 'array', 'null']" in about
