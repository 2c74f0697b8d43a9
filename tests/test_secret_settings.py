"""No configured key is printed, however malformed the config holding it.

Each shape `api_key` and `projects` can be given in (an object for a list, `"name:key"`
strings, lists and numbers for a key, odd nesting) goes through a config file and through
`--config=ENV`, with every logger at DEBUG. The tap must stop before any request, name
the setting, and show the key nowhere. Plain `http://` to another host is refused too.
"""

from __future__ import annotations

import json
import typing as t
from urllib.parse import quote, quote_plus

import pytest

from tap_leadtrackr.sandbox import Sandbox
from tap_leadtrackr.settings import url_problems
from tests.conftest import run_tap
from tests.test_secrets import run_cli

KEY = "lt_live_7f3a9c2e41"
NUMBER_KEY = 5137246811

#: Each malformed `api_key` (config file), and `projects` (config file and environment).
API_KEYS: dict[str, t.Any] = {
    "a number": NUMBER_KEY,
    "a list": [KEY],
    "a nested list": [[KEY]],
    "an object": {"api_key": KEY},
    "a key with a line break inside": KEY[:6] + "\n" + KEY[6:],
}
PROJECTS: dict[str, t.Any] = {
    "an object, brackets forgotten": {"name": "acme", "api_key": KEY},
    "name:key strings": ["acme:" + KEY],
    "a list of keys": [KEY],
    "one name:key string": "acme:" + KEY,
    "a nested list": [[{"name": "acme", "api_key": KEY}]],
    "a key as a list": [{"name": "acme", "api_key": [KEY]}],
    "a key as an object": [{"name": "acme", "api_key": {"value": KEY}}],
    "a key as a number": [{"name": "acme", "api_key": NUMBER_KEY}],
    "the key under another field": [{"name": "acme", "key": KEY}],
    "the key as a field name": [{KEY: "acme"}],
    "the key in the name": [{"name": "acme:" + KEY, "api_key": KEY}],
    "the key as a name": [{"name": KEY + "!", "api_key": "other-key"}],
    "a key with a space inside": [{"name": "acme", "api_key": KEY[:6] + " " + KEY[6:]}],
    "a number": 12,
}


def shown(text: str) -> list[str]:
    """Every spelling of a key, or of a good part of it, that `text` shows."""
    found = []
    for secret in (KEY, KEY[:6], KEY[6:], str(NUMBER_KEY)):
        for spelling in {secret, quote(secret), quote_plus(secret), json.dumps(secret)}:
            if spelling in text:
                found.append(spelling)
    return found


@pytest.fixture(scope="module")
def server() -> t.Iterator[Sandbox]:
    with Sandbox(leads=20, api_key="other-key") as sandbox:
        yield sandbox


def assert_refused_without_the_key(run, setting: str) -> None:
    assert run.returncode != 0
    assert f"`{setting}`" in run.stderr, run.stderr[-2000:]
    assert not shown(run.stdout + run.stderr), run.stderr[-2000:]
    # In the format of the DEBUG logging config: every line the tap logs is here.
    assert "ERROR tap-leadtrackr: " in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("value", list(API_KEYS.values()), ids=list(API_KEYS))
def test_a_malformed_api_key_in_a_config_file_is_refused_unseen(tmp_path, server, value) -> None:
    server.clear_requests()

    run = run_cli(tmp_path, {"api_url": server.url, "api_key": value})

    assert_refused_without_the_key(run, "api_key")
    assert server.requests == []


@pytest.mark.parametrize("value", list(PROJECTS.values()), ids=list(PROJECTS))
def test_malformed_projects_in_a_config_file_are_refused_unseen(tmp_path, server, value) -> None:
    server.clear_requests()

    run = run_cli(tmp_path, {"api_url": server.url, "projects": value})

    assert_refused_without_the_key(run, "projects")
    assert server.requests == []


@pytest.mark.parametrize("value", list(PROJECTS.values()), ids=list(PROJECTS))
def test_malformed_projects_in_the_environment_are_refused_unseen(tmp_path, server, value) -> None:
    server.clear_requests()
    env = {"TAP_LEADTRACKR_API_URL": server.url, "TAP_LEADTRACKR_PROJECTS": json.dumps(value)}

    run = run_cli(tmp_path, None, env)

    assert_refused_without_the_key(run, "projects")
    assert server.requests == []


@pytest.mark.parametrize(
    "text",
    ["acme:" + KEY, '[{"name": "acme", "api_key": "' + KEY + '"', KEY],
    ids=["name:key", "a bracket missing", "a bare key"],
)
def test_projects_in_the_environment_that_are_not_json_are_refused_unseen(
    tmp_path, server, text
) -> None:
    server.clear_requests()
    env = {"TAP_LEADTRACKR_API_URL": server.url, "TAP_LEADTRACKR_PROJECTS": text}

    run = run_cli(tmp_path, None, env)

    assert_refused_without_the_key(run, "TAP_LEADTRACKR_PROJECTS")
    assert server.requests == []


@pytest.mark.parametrize(
    "text", [json.dumps([KEY]), json.dumps({"api_key": KEY}), str(NUMBER_KEY)], ids=repr
)
def test_an_odd_api_key_in_the_environment_is_never_shown(tmp_path, server, text) -> None:
    # Text may be a key: refused for a space inside, or sent and refused by the sandbox.
    env = {"TAP_LEADTRACKR_API_URL": server.url, "TAP_LEADTRACKR_API_KEY": text}

    run = run_cli(tmp_path, None, env)

    assert run.returncode != 0
    assert "`api_key`" in run.stderr
    assert not shown(run.stdout + run.stderr), run.stderr[-2000:]


def test_the_same_key_under_two_projects_is_refused_naming_both(tmp_path, server) -> None:
    server.clear_requests()
    projects = [
        {"name": "acme", "api_key": KEY},
        {"name": "initech", "api_key": "key-2"},
        {"name": "globex", "api_key": f" {KEY}\n"},
    ]

    run = run_cli(tmp_path, {"api_url": server.url, "projects": projects})

    assert_refused_without_the_key(run, "projects")
    assert "`projects` item 1 (`acme`) and `projects` item 3 (`globex`)" in run.stderr
    assert "same `api_key`" in run.stderr
    assert "initech" not in run.stderr
    assert server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://leadtrackr.example",
        "http://app.leadtrackr.io:80/",
        "http://10.0.0.8:8787",
        "http://[2001:db8::1]:8787",
        "http://localhost.leadtrackr.example",
        "http://128.0.0.1",
        "ftp://127.0.0.1",
    ],
)
def test_an_api_url_that_would_send_the_key_in_clear_is_refused(sandbox, monkeypatch, url) -> None:
    sent: list[object] = []
    monkeypatch.setattr("requests.Session.send", lambda *args, **kwargs: sent.append(args))

    result = run_tap({"api_key": sandbox.api_key, "api_url": url}, expect_error=True)

    assert result.error is not None
    assert "`api_url`" in str(result.error)
    assert sent == []
    assert result.records == []


@pytest.mark.parametrize(
    "url",
    [
        "https://app.leadtrackr.io",
        "http://127.0.0.1:8787",
        "http://127.45.6.7:8787/",
        "http://[::1]:8787",
        "http://localhost:8787",
        "http://LOCALHOST",
    ],
)
def test_https_and_plain_http_to_this_machine_are_allowed(url) -> None:
    assert url_problems({"api_url": url}) == []
