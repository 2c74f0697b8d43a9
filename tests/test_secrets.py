"""No API key, filter value or lead's personal data reaches a log line, exceptions included.

The tap runs as users run it (`python -m tap_leadtrackr`) with every logger at DEBUG,
urllib3 included, against the sandbox, in each way a sync can end.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import traceback
import typing as t
from urllib.parse import parse_qsl, quote, quote_plus

import pytest

from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads

# The sandbox's answers, to build a server that misbehaves in one more way.
from tap_leadtrackr.sandbox.server import LEADS_PATH, _Answer, _message
from tap_leadtrackr.sending import Sender
from tests.conftest import run_tap

API_KEY = "lt_live_5c9e2a7d1f"
#: Every filter that can hold personal data, set to values found nowhere else.
FILTERS = {
    "email": "zq.private@secret.example",
    "phone": "+31 6 1357 2468",
    "search": "zqxwv",
    "unique_identifier": "CRM-ZQ-4242",
    "form_name": "Zq Secret Form",
}
#: What the leads that match every filter say about their person.
PERSON = {
    "firstName": "Zqxwv",
    "lastName": "Oldenbarnevelt-Zq",
    "email": FILTERS["email"],
    "phone": FILTERS["phone"],
    "companyName": "Zq Zonnedak BV",
}
MATCHING = (100, 150, 200)
"""Positions (oldest first) of the leads that match the filters."""

LOG_CONFIG = """\
version: 1
disable_existing_loggers: false
formatters:
  plain:
    format: "%(levelname)s %(name)s: %(message)s"
handlers:
  stderr:
    class: logging.StreamHandler
    stream: ext://sys.stderr
    formatter: plain
root:
  level: DEBUG
  handlers: [stderr]
loggers:
  urllib3:
    level: DEBUG
"""


def project() -> Project:
    """300 leads, three of which match every filter, with personal data of their own."""
    leads = generate_leads(300, seed=5)
    for position in MATCHING:
        lead = leads[position]
        lead.update(
            PERSON,
            uniqueIdentifier=FILTERS["unique_identifier"],
            formName=FILTERS["form_name"],
            note="Belt terug na 17:00 op 06-24681357",
        )
        lead["userData"] = dict(PERSON)
        lead["formData"] = {"formName": FILTERS["form_name"], "message": "Zq offerte aub"}
    return Project(leads)


SECRETS = [
    API_KEY,
    *FILTERS.values(),
    *PERSON.values(),
    "06-24681357",
    "Zq offerte aub",
]


def assert_nothing_private(text: str) -> None:
    """No secret, in any spelling a URL gives it, and no query string, on any line."""
    spellings = {
        spelling.lower(): secret
        for secret in SECRETS
        for spelling in (secret, quote(secret), quote_plus(secret), quote(secret, safe=""))
    }
    for line in text.lower().splitlines():
        for spelling, secret in spellings.items():
            assert spelling not in line, f"{secret!r} is shown: {line}"
        assert "getleads?" not in line, f"a query string is shown: {line}"


def config_for(server: Sandbox | str, **settings: t.Any) -> dict[str, t.Any]:
    url = server if isinstance(server, str) else server.url
    return {"api_key": API_KEY, "api_url": url, **FILTERS, **settings}


def run_cli(
    tmp_path, config: dict[str, t.Any] | None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the tap's CLI with DEBUG logging for every logger; None reads the config from env."""
    log_config = tmp_path / "logging.yaml"
    log_config.write_text(LOG_CONFIG)
    base = {k: v for k, v in os.environ.items() if not k.startswith("TAP_LEADTRACKR_")}
    base["SINGER_SDK_LOG_CONFIG"] = str(log_config)
    command = [sys.executable, "-m", "tap_leadtrackr", "--config"]
    if config is None:
        command.append("ENV")
    else:
        config_file = tmp_path / "config.json"
        config_file.write_text(json.dumps(config))
        command.append(str(config_file))
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**base, **(env or {})},
    )


def records_of(stdout: str) -> list[dict[str, t.Any]]:
    messages = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [m["record"] for m in messages if m["type"] == "RECORD"]


def assert_debug_logging_was_on(run: subprocess.CompletedProcess) -> None:
    """Guard against a test passing because nothing was logged at all."""
    assert "DEBUG urllib3.connectionpool: Starting new HTTP connection" in run.stderr


def closed_port_url() -> str:
    """A local URL where nothing listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class EchoingSandbox(Sandbox):
    """A server whose 400 quotes the request back, filter values and all, as some do."""

    def _answer(self, method, path, query, api_key, number):
        answer = super()._answer(method, path, query, api_key, number)
        if path != LEADS_PATH or answer.status != 200:
            return answer
        email = dict(parse_qsl(query))["email"]
        return _message(400, f"Invalid value for email: {email!r} ({path}?{query})")


class MovedSandbox(Sandbox):
    """A server that redirects elsewhere, keeping the query (as an http -> https hop does)."""

    def _answer(self, method, path, query, api_key, number):
        location = f"https://leadtrackr.example{path}?{query}"
        return _Answer(301, b"", headers={"Location": location})


class RangeIgnoringSandbox(Sandbox):
    """A server that ignores `createdAt[gte]`: leads before `start_date` come back."""

    def _answer(self, method, path, query, api_key, number):
        kept = [part for part in query.split("&") if not part.startswith("createdAt%5Bgte%5D")]
        return super()._answer(method, path, "&".join(kept), api_key, number)


def start_of_last_match(server: Sandbox) -> str:
    """A `start_date` that the older matching leads fall before."""
    return server.project.leads[MATCHING[-1]]["createdAt"]


# 1. The API key: white space around it is dropped, anything inside it is refused. ----------


@pytest.mark.parametrize(
    "written", [API_KEY + "\n", API_KEY + "\r\n", f"  {API_KEY} \t"], ids=["lf", "crlf", "spaces"]
)
def test_a_key_with_white_space_around_it_works_and_is_never_shown(tmp_path, written) -> None:
    with Sandbox(project(), api_key=API_KEY) as server:
        run = run_cli(tmp_path, config_for(server, api_key=written))

    assert run.returncode == 0, run.stderr[-3000:]
    assert len(records_of(run.stdout)) == len(MATCHING)
    assert_debug_logging_was_on(run)
    assert_nothing_private(run.stderr)
    assert API_KEY not in run.stdout


def test_a_key_in_the_environment_ending_in_cr_works_and_is_never_shown(tmp_path) -> None:
    # `--config=ENV` after `set -a; . ./.env` with a .env saved with Windows line ends.
    with Sandbox(project(), api_key=API_KEY) as server:
        env = {
            "TAP_LEADTRACKR_API_KEY": API_KEY + "\r",
            "TAP_LEADTRACKR_API_URL": server.url,
            **{f"TAP_LEADTRACKR_{name.upper()}": value for name, value in FILTERS.items()},
        }
        run = run_cli(tmp_path, None, env)

    assert run.returncode == 0, run.stderr[-3000:]
    assert len(records_of(run.stdout)) == len(MATCHING)
    assert_nothing_private(run.stderr)
    assert API_KEY not in run.stdout


@pytest.mark.parametrize("inside", [" ", "\t", "\n", "\r\n", "\x00", "\x7f"], ids=repr)
def test_a_key_with_white_space_or_a_control_character_inside_is_refused(tmp_path, inside) -> None:
    head, tail = API_KEY[:8], API_KEY[8:]
    with Sandbox(project(), api_key=API_KEY) as server:
        run = run_cli(tmp_path, config_for(server, api_key=head + inside + tail))

        assert server.requests == []
    assert run.returncode != 0
    assert "api_key" in run.stderr
    assert tail not in run.stderr + run.stdout


@pytest.mark.parametrize(
    "settings",
    [{"api_key": 5_137_246_811}, {"search": "z"}, {"email": [FILTERS["email"]]}],
    ids=["key not a string", "search too short", "email not a string"],
)
def test_a_refused_setting_is_named_without_its_value(tmp_path, settings) -> None:
    with Sandbox(project(), api_key=API_KEY) as server:
        run = run_cli(tmp_path, config_for(server, **settings))

        assert server.requests == []
    assert run.returncode != 0
    (setting, value), *_ = settings.items()
    assert setting in run.stderr
    assert repr(value) not in run.stderr
    assert_nothing_private(run.stderr)


# 2. Every way a sync ends, logged at DEBUG: nothing private, the cause still named. ---------


def test_a_sync_logged_at_debug_shows_no_key_filter_or_lead(tmp_path) -> None:
    with Sandbox(project(), api_key=API_KEY) as server:
        run = run_cli(tmp_path, config_for(server))

    assert run.returncode == 0, run.stderr[-3000:]
    records = records_of(run.stdout)
    assert {record["email"] for record in records} == {FILTERS["email"]}
    assert len(records) == len(MATCHING)
    assert_debug_logging_was_on(run)
    # The request line is still logged, without its query.
    assert '"GET /api/leads/getLeads HTTP/1.1" 200' in run.stderr
    assert_nothing_private(run.stderr)


#: A failure the sandbox injects: faults, extra settings, what the error must name.
FAULTED: dict[str, tuple[t.Callable[[], Faults], dict[str, t.Any], tuple[str, ...]]] = {
    "503 until retries run out": (
        lambda: Faults(server_error_every=1),
        {"max_retries": 1},
        ("503", "/api/leads/getLeads", "`max_retries` is 1"),
    ),
    "read timeout": (
        lambda: Faults(slow_every=1, slow_seconds=5),
        {"request_timeout": 0.3, "max_retries": 1},
        ("request_timeout", "/api/leads/getLeads"),
    ),
    "truncated body": (
        lambda: Faults(truncated_every=1),
        {"max_retries": 1},
        ("not JSON", "/api/leads/getLeads"),
    ),
    "proxy's html page": (
        lambda: Faults(html_every=1),
        {"max_retries": 1},
        ("not JSON", "text/html"),
    ),
    "bad envelope": (
        lambda: Faults(bad_envelope="total_string"),
        {},
        ("envelope", "`total`"),
    ),
}


def assert_failed_privately(run: subprocess.CompletedProcess, says: t.Iterable[str]) -> None:
    assert run.returncode != 0
    assert "Traceback (most recent call last)" in run.stderr  # the error is logged in full
    for words in says:
        assert words in run.stderr, f"{words!r} not in:\n{run.stderr[-3000:]}"
    assert_nothing_private(run.stderr)


@pytest.mark.parametrize("case", list(FAULTED))
def test_a_failed_sync_logged_at_debug_shows_nothing_private(tmp_path, case) -> None:
    faults, settings, says = FAULTED[case]
    with Sandbox(project(), api_key=API_KEY, faults=faults()) as server:
        run = run_cli(tmp_path, config_for(server, **settings))

    assert_debug_logging_was_on(run)
    assert_failed_privately(run, says)


@pytest.mark.parametrize("max_retries", [0, 1])
def test_a_refused_connection_shows_nothing_private(tmp_path, max_retries) -> None:
    url = closed_port_url()
    run = run_cli(tmp_path, config_for(url, max_retries=max_retries))

    assert_debug_logging_was_on(run)
    assert_failed_privately(run, ("ConnectionError", url.rsplit(":", 1)[1], "/api/leads/getLeads"))


def test_a_400_that_quotes_the_request_shows_no_filter_value(tmp_path) -> None:
    with EchoingSandbox(project(), api_key=API_KEY) as server:
        run = run_cli(tmp_path, config_for(server))

        assert len(server.requests) == 1
    assert_failed_privately(run, ("400", "Invalid value for email", "Check the setting `email`"))


def test_a_redirect_keeping_the_query_shows_no_filter_value(tmp_path) -> None:
    with MovedSandbox(project(), api_key=API_KEY) as server:
        run = run_cli(tmp_path, config_for(server))

        assert len(server.requests) == 1
    assert_failed_privately(
        run, ("301", "https://leadtrackr.example/api/leads/getLeads", "api_url")
    )


def test_a_contract_break_names_the_lead_by_id_only(tmp_path) -> None:
    with RangeIgnoringSandbox(project(), api_key=API_KEY) as server:
        older = server.project.leads[MATCHING[0]]["id"]
        run = run_cli(tmp_path, config_for(server, start_date=start_of_last_match(server)))

    assert_failed_privately(run, (f"lead {older}", "did not apply the date filter"))


# 3. The exception a failed sync ends with, and every exception chained to it. -------------


def failing_sync(case: str) -> t.Iterator[tuple[Sandbox | str, dict[str, t.Any]]]:
    """Serve the failure `case`; yield where and with which extra settings to sync."""
    if case in FAULTED:
        faults, settings, _ = FAULTED[case]
        with Sandbox(project(), api_key=API_KEY, faults=faults()) as server:
            yield server, settings
    elif case == "refused connection":
        yield closed_port_url(), {"max_retries": 1}
    elif case == "400 quoting the request":
        with EchoingSandbox(project(), api_key=API_KEY) as server:
            yield server, {}
    elif case == "redirect":
        with MovedSandbox(project(), api_key=API_KEY) as server:
            yield server, {}
    else:
        with RangeIgnoringSandbox(project(), api_key=API_KEY) as server:
            yield server, {"start_date": start_of_last_match(server)}


@pytest.mark.parametrize(
    "case",
    [*FAULTED, "refused connection", "400 quoting the request", "redirect", "contract break"],
)
def test_the_exception_chain_of_a_failed_sync_holds_nothing_private(monkeypatch, case) -> None:
    monkeypatch.setattr(Sender, "sleep", staticmethod(lambda seconds, cancelled: None))
    monkeypatch.setattr(Sender, "pause", staticmethod(lambda seconds, cancelled: None))
    for server, settings in failing_sync(case):
        result = run_tap(config_for(server, **settings), expect_error=True)

    assert result.error is not None
    assert_nothing_private("".join(traceback.format_exception(result.error)))
    assert_nothing_private(result.log)
    # Suppressed links too (`from None`): the SDK's structured log formatter shows them.
    link: BaseException | None = result.error
    while link is not None:
        assert_nothing_private(f"{type(link).__name__}: {link}")
        link = link.__cause__ or link.__context__
