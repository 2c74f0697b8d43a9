"""The settings a run is given: read from the environment and checked before any request.

No message here quotes a configured value: a value may be an API key, however
malformed the config holding it, or a filter on personal data. Each message names the
setting (or the environment variable) instead.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import typing as t
from urllib.parse import urlsplit

from dotenv import dotenv_values, find_dotenv

from tap_leadtrackr.projects import api_key_of
from tap_leadtrackr.reconcile import reconcile_errors
from tap_leadtrackr.streams import status_list
from tap_leadtrackr.timestamps import parse_timestamp

if t.TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

#: One problem with the settings: the setting it is about, and what to tell the user.
Problem = tuple[str, str]

#: The prefix of every setting's environment variable (`TAP_LEADTRACKR_PAGE_SIZE`).
ENV_PREFIX = "TAP_LEADTRACKR_"

#: The JSON types read from text in a config file too (Meltano may pass them as text).
_NUMBERS = frozenset({"integer", "number"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

#: What each JSON type is called in a message.
_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}

#: What an API key may hold: visible ASCII; white space around it is dropped (`api_key_of`).
_API_KEY = re.compile(r"[!-~]+")
#: What a project's name may be: it goes into records, keys and log lines.
_PROJECT_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: Host names that are this machine, where plain `http://` carries the key nowhere.
_LOOPBACK_NAMES = frozenset({"localhost"})

# The environment ------------------------------------------------------------------------


def settings_from_environment(
    schema: dict[str, t.Any],
) -> tuple[dict[str, t.Any], list[Problem]]:
    """Each setting of `schema` given as `TAP_LEADTRACKR_<NAME>`, read as its JSON type.

    A `.env` file in the working directory (or above) counts too; exported variables win
    over it, as in Meltano. An empty value leaves a setting that is not text unset.
    Returns the settings read and the problems, each naming its variable.
    """
    environ = {**_dotenv(), **os.environ}
    settings: dict[str, t.Any] = {}
    problems: list[Problem] = []
    for name, spec in schema.get("properties", {}).items():
        variable = ENV_PREFIX + name.upper().replace("-", "_")
        if variable not in environ:
            continue
        try:
            value = read_variable(environ[variable], json_types(spec))
        except ValueError as exc:
            problems.append((name, f"`{variable}` ({name}) {exc}"))
            continue
        if value is not _UNSET:
            settings[name] = value
    return settings, problems


def _dotenv() -> dict[str, str]:
    path = find_dotenv(usecwd=True)
    if not path:
        return {}
    return {name: value for name, value in dotenv_values(path).items() if value is not None}


class _Unset:
    """An empty variable for a setting that is not text: as if it were not set."""


_UNSET = _Unset()


def json_types(spec: dict[str, t.Any]) -> set[str]:
    """The JSON types a setting's schema allows, through `oneOf` and `anyOf`."""
    types: set[str] = set()
    declared = spec.get("type")
    if isinstance(declared, str):
        types.add(declared)
    elif isinstance(declared, list):
        types.update(name for name in declared if isinstance(name, str))
    for alternative in (*spec.get("oneOf", ()), *spec.get("anyOf", ())):
        if isinstance(alternative, dict):
            types |= json_types(alternative)
    return types


def read_variable(text: str, types: set[str]) -> t.Any:
    """An environment variable's text as one of `types`.

    Raises:
        ValueError: the text is none of them; the message does not quote it.

    """
    types = types - {"null"}
    stripped = text.strip()
    if "string" in types:
        return text  # `statuses` as JSON text is read with the other settings' checks
    if not stripped:
        return _UNSET
    if types & {"array", "object"}:
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            shape = " or ".join(_TYPE_WORDS[name] for name in sorted(types & {"array", "object"}))
            # The position, never the text: the value may be a key.
            where = f"line {exc.lineno} column {exc.colno}"
            raise ValueError(f"must be JSON ({shape}); it does not parse at {where}") from None
    if "boolean" in types:
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ValueError("must be true or false")
    if types & {"integer", "number"}:
        try:
            return int(stripped)  # `30` stays a whole number where a number goes too
        except ValueError:
            if "number" not in types:
                raise ValueError("must be a whole number") from None
    if "number" in types:
        try:
            number = float(stripped)
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    return text


# The settings ------------------------------------------------------------------------------


def check_config(
    config: dict[str, t.Any], validator: Validator, environment: t.Iterable[Problem] = ()
) -> list[str]:
    """What is wrong with the settings: one message per problem, each naming its setting.

    Settings given in another form are first read into their own, in place: a number
    given as text (as Meltano passes a setting of kind `string`), and `statuses` given
    as the JSON text of a list. Then JSON schema's findings are worded here (its own
    messages quote the value); a setting with a problem of its own (`environment`, or a
    check JSON schema cannot express) is reported by that alone.
    """
    problems = [*environment, *text_problems(config, validator.schema)]
    problems += own_problems(config)
    named = {setting for setting, _ in problems}
    # The validator fills in the defaults as it goes, as the SDK's does.
    problems += [
        problem
        for failure in validator.iter_errors(config)
        if (problem := schema_problem(failure))[0] not in named
    ]
    return list(dict.fromkeys(message for _, message in problems))


def text_problems(config: dict[str, t.Any], schema: t.Mapping[str, t.Any]) -> list[Problem]:
    """Read a number given as text into its type, in place.

    Meltano 4 cannot pass a `decimal` setting from the environment (it fails to write
    the config), so `request_timeout` is declared there as `string`.
    """
    problems: list[Problem] = []
    for name, spec in schema.get("properties", {}).items():
        value, types = config.get(name), json_types(spec)
        if not isinstance(value, str) or "string" in types or types.isdisjoint(_NUMBERS):
            continue
        try:
            read = read_variable(value, types)
        except ValueError as exc:
            problems.append((name, f"`{name}` {exc}"))
            continue
        if read is _UNSET:
            del config[name]
        else:
            config[name] = read
    return problems


def schema_problem(failure: ValidationError) -> Problem:
    """JSON schema's finding worded without the value it found."""
    path = list(failure.absolute_path)
    if failure.validator == "required" and isinstance(failure.instance, dict):
        missing = [name for name in failure.validator_value if name not in failure.instance]
        path += missing[:1]
    setting = str(path[0]) if path else "config"
    place = _place(path)
    return setting, f"{place} {_rule_broken(str(failure.validator), failure)}"


#: How each JSON schema rule is said, given the rule's value.
_RULES: dict[str, str] = {
    "required": "is required",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be more than {}",
    "exclusiveMaximum": "must be less than {}",
    "minLength": "must be at least {} characters",
    "maxLength": "must be at most {} characters",
    "minItems": "must hold at least {} items",
    "const": "must be {}",
}


def _rule_broken(rule: str, failure: ValidationError) -> str:
    """What a setting must be, by the rule it broke; never what it is."""
    value = failure.validator_value
    if rule == "type":
        allowed = [value] if isinstance(value, str) else list(value)
        words = " or ".join(_TYPE_WORDS.get(name, name) for name in allowed if name != "null")
        return f"must be {words}, not {kind_of(failure.instance)}"
    if rule == "enum":
        return "must be one of: " + ", ".join(f"`{item}`" for item in value if item is not None)
    if rule in _RULES:
        return _RULES[rule].format(value)
    return f"is not valid ({rule}): see the setting's description"


def _place(path: list[t.Any]) -> str:
    """`projects` item 2 `api_key`: a place in the config, by setting, position and field."""
    if not path:
        return "The config"
    words = [f"`{path[0]}`"]
    for step in path[1:]:
        words.append(f"item {step + 1}" if isinstance(step, int) else f"`{step}`")
    return " ".join(words)


def own_problems(config: dict[str, t.Any]) -> list[Problem]:
    """Problems with settings that JSON schema cannot express."""
    problems = date_problems(config) + status_problems(config) + url_problems(config)
    search = config.get("search")
    if isinstance(search, str) and len(search.strip()) < 2:
        problems.append(
            ("search", "`search` must be at least 2 characters, not counting spaces around it")
        )
    reconcile = [("reconcile", message) for message in reconcile_errors(config)]
    return problems + key_problems(config) + reconcile


def date_problems(config: t.Mapping[str, t.Any]) -> list[Problem]:
    """`start_date` and `end_date`: ISO 8601, and the end after the start."""
    problems: list[Problem] = []
    dates = {}
    for setting in ("start_date", "end_date"):
        if (value := config.get(setting)) in (None, ""):
            continue
        try:
            dates[setting] = parse_timestamp(str(value))
        except ValueError:
            problems.append(
                (setting, f"`{setting}` is not an ISO 8601 date or date-time, such as 2026-01-31")
            )
    if len(dates) == 2 and dates["end_date"] <= dates["start_date"]:
        problems.append(("end_date", "`end_date` must be after `start_date`"))
    return problems


def status_problems(config: dict[str, t.Any]) -> list[Problem]:
    """`statuses`: a list of strings, or one string; JSON text of a list becomes the list."""
    statuses = config.get("statuses")
    if isinstance(statuses, str) and statuses.strip().startswith("["):
        # Meltano passes `TAP_LEADTRACKR_STATUSES='["open","lost"]'` on as this text.
        try:
            statuses = config["statuses"] = json.loads(statuses)
        except ValueError:
            return [("statuses", "`statuses` starts with `[` but is not a JSON list")]
    if statuses is not None and not isinstance(statuses, (str, list)):
        message = "`statuses` must be a list of strings or a comma-separated string"
    elif isinstance(statuses, list) and not all(isinstance(item, str) for item in statuses):
        message = "`statuses` must contain only strings"
    elif statuses is not None and not status_list(statuses):
        message = "`statuses` is set but names no status"
    else:
        return []
    return [("statuses", message)]


def url_problems(config: t.Mapping[str, t.Any]) -> list[Problem]:
    """`api_url`: https, or plain http to this machine only (the key goes in a header)."""
    url = config.get("api_url")
    if not isinstance(url, str):
        return []
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return [("api_url", "`api_url` is not a URL, such as https://app.leadtrackr.io")]
    if parts.scheme not in ("http", "https") or not host:
        return [
            ("api_url", "`api_url` must start with https://, such as https://app.leadtrackr.io")
        ]
    if parts.scheme == "http" and not is_loopback(host):
        return [
            (
                "api_url",
                f"`api_url` is plain http:// to {host}, which would send the API key "
                "unencrypted: use https://, or http:// only to this machine (127.0.0.1, ::1 "
                "or localhost), as for the sandbox",
            )
        ]
    return []


def is_loopback(host: str) -> bool:
    """Whether a URL's host is this machine: 127.0.0.0/8, ::1 or `localhost`."""
    if host.lower().rstrip(".") in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_problems(config: t.Mapping[str, t.Any]) -> list[Problem]:
    """`api_key` or `projects`: exactly one, each key usable, each project once."""
    projects = config.get("projects")
    api_key = config.get("api_key")
    if projects is not None and api_key not in (None, ""):
        return [
            (
                "api_key",
                "`api_key` and `projects` are both set: give `api_key` for one project or "
                "`projects` for several, not both",
            )
        ]
    if projects is not None:
        return project_problems(projects)
    if api_key is not None and not isinstance(api_key, str):
        return []  # JSON schema says what it must be
    if not api_key_of(config):
        return [
            (
                "api_key",
                "`api_key` is required: set it to the project's LeadTrackr API key "
                "(or `projects` to several projects' names and keys)",
            )
        ]
    return [("api_key", message) for message in key_errors("`api_key`", api_key_of(config))]


def key_errors(setting: str, api_key: str) -> list[str]:
    """What is wrong with an API key, never quoting it."""
    if _API_KEY.fullmatch(api_key):
        return []
    # The HTTP library would refuse it with a message quoting the whole key.
    return [
        f"{setting} holds a space or a control character (the key is not shown): "
        "copy it again from the LeadTrackr dashboard"
    ]


def project_problems(projects: object) -> list[Problem]:
    """Problems with `projects`, each naming the project by position and name, never a key.

    A name is quoted only once it is known to be a name (letters, digits, `_`, `-`):
    whatever else sits where a name should may be a key.
    """
    if not isinstance(projects, list) or not projects:
        message = '`projects` must be a non-empty list of {"name": ..., "api_key": ...}'
        return [("projects", message)]
    errors: list[str] = []
    names: set[str] = set()
    keys: dict[str, str] = {}
    for position, project in enumerate(projects, start=1):
        where = f"`projects` item {position}"
        if not isinstance(project, dict):
            errors.append(f'{where} is not an object {{"name": ..., "api_key": ...}}')
            continue
        if set(project) - {"name", "api_key"}:
            errors.append(f"{where} has fields other than `name` and `api_key` (not shown)")
        name = project.get("name")
        if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name):
            errors.append(f"{where} has no valid `name`: a name is letters, digits, `_` or `-`")
        elif name in names:
            errors.append(f"{where}: the name `{name}` is used twice; names must be unique")
        else:
            names.add(name)
            where = f"{where} (`{name}`)"
        key = project.get("api_key")
        if not isinstance(key, str) or not key.strip():
            errors.append(f"{where} has no `api_key` (text): set it to the project's API key")
        elif wrong := key_errors(f"{where}'s `api_key`", key.strip()):
            errors += wrong
        elif (first := keys.setdefault(key.strip(), where)) != where:
            errors.append(
                f"{first} and {where} have the same `api_key` (not shown): a key reads one "
                "project, so its leads would be read twice; give each project its own key"
            )
    return [("projects", error) for error in errors]


#: What a value of each JSON type is called in a message.
_KIND_WORDS = {
    "string": "text",
    "integer": "a number",
    "number": "a number",
    "boolean": "a boolean",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def kind_of(value: object) -> str:
    """What a value is (text, a number, a list...), for a message: never the value itself."""
    return _KIND_WORDS.get(_json_type(value), "something else")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "unknown"
