"""`meltano-hub.yml` is a valid Meltano Hub definition of the tap as it is.

The tap's `--about --format=json` is the truth: every setting it reports is in the
definition with the same kind, description, label, default and secrecy, and nothing else
is; the capabilities and Python versions are the ones it reports. A new setting in
`tap_leadtrackr/tap.py` therefore fails here, by name, until `meltano-hub.yml` has it.

How a setting of `--about` becomes a Hub setting, as the Hub's own definitions of SDK taps
do (e.g. MeltanoLabs' tap-github): an object whose members are all plain typed values
(`batch_config`) becomes one dotted setting per member (`batch_config.encoding.format`);
any other object (`stream_maps`, free-form or with union-typed members) is one `object`
setting. `number` is `string` (Meltano 4.4 cannot pass a `decimal` set from the environment
on to the tap, and the tap reads a number from text), a string with `enum` is `options`,
a `date-time` string is `date_iso8601`, a secret is `password` and `sensitive`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import typing as t
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

ROOT = Path(__file__).resolve().parents[1]
DEFINITION = ROOT / "meltano-hub.yml"
HUB_SCHEMAS = ROOT / "tests" / "data" / "meltano-hub" / "schemas"
MELTANO = Path(sys.executable).with_name("meltano")


@pytest.fixture(scope="module")
def definition() -> dict[str, t.Any]:
    return yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def about() -> dict[str, t.Any]:
    result = subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr", "--about", "--format=json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def _type(schema: dict[str, t.Any]) -> str | None:
    """The JSON type of a setting, null aside; of a union, its first alternative's."""
    types = schema.get("type")
    if types is None:
        alternatives = schema.get("oneOf") or schema.get("anyOf") or []
        typed = [alt for alt in alternatives if isinstance(alt, dict) and _type(alt)]
        return _type(typed[0]) if typed else None
    if isinstance(types, str):
        types = [types]
    return next((name for name in types if name != "null"), None)


def _splits_into_members(schema: dict[str, t.Any]) -> bool:
    members = schema.get("properties")
    if not members or isinstance(schema.get("additionalProperties"), dict):
        return False
    return all(
        "type" in member and (_type(member) != "object" or _splits_into_members(member))
        for member in members.values()
    )


def _hub_settings(name: str, schema: dict[str, t.Any]) -> t.Iterator[tuple[str, dict]]:
    if _type(schema) == "object" and _splits_into_members(schema):
        for member, member_schema in schema["properties"].items():
            yield from _hub_settings(f"{name}.{member}", member_schema)
    else:
        yield name, schema


def _kind(schema: dict[str, t.Any]) -> str | None:
    json_type = _type(schema)
    if json_type == "string" and schema.get("enum"):
        return "options"
    if json_type == "string" and schema.get("format") in ("date-time", "date"):
        return "date_iso8601"
    if json_type == "string" and schema.get("secret"):
        return "password"
    return {"number": "string"}.get(json_type or "", json_type)


def expected_settings(about: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """Each Hub setting the tap's `--about` calls for, with what must match."""
    expected = {}
    for top_name, top_schema in about["settings"]["properties"].items():
        for name, schema in _hub_settings(top_name, top_schema):
            setting: dict[str, t.Any] = {
                "kind": _kind(schema),
                "label": schema.get("title"),
                "description": schema.get("description"),
                "value": schema.get("default"),
                "sensitive": bool(schema.get("secret")),
            }
            if schema.get("enum"):
                setting["options"] = [value for value in schema["enum"] if value is not None]
            expected[name] = setting
    return expected


def declared_settings(definition: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    declared = {}
    for setting in definition["settings"]:
        declared[setting["name"]] = {
            "kind": setting.get("kind"),
            "label": setting.get("label"),
            "description": setting.get("description"),
            "value": setting.get("value"),
            "sensitive": setting.get("sensitive", False),
        }
        if "options" in setting:
            declared[setting["name"]]["options"] = [o["value"] for o in setting["options"]]
    return declared


def test_the_definition_is_valid_for_the_hubs_schema(definition: dict[str, t.Any]) -> None:
    files = {path.name: path for path in HUB_SCHEMAS.rglob("*.schema.json")}

    def retrieve(uri: str) -> Resource:
        # The schemas refer to each other by relative paths; every file name is unique.
        text = files[uri.rsplit("/", 1)[-1]].read_text(encoding="utf-8")
        return Resource.from_contents(json.loads(text), default_specification=DRAFT7)

    schema = json.loads(files["extractors.schema.json"].read_text(encoding="utf-8"))
    validator = Draft7Validator(schema, registry=Registry(retrieve=retrieve))
    errors = [
        f"{'.'.join(map(str, error.absolute_path)) or '(top level)'}: {error.message}"
        for error in validator.iter_errors(definition)
    ]

    assert not errors, "meltano-hub.yml breaks the Hub's schema:\n" + "\n".join(errors)


def test_every_setting_of_the_tap_is_in_the_definition_as_the_tap_reports_it(
    definition: dict[str, t.Any], about: dict[str, t.Any]
) -> None:
    expected = expected_settings(about)
    declared = declared_settings(definition)

    missing = sorted(set(expected) - set(declared))
    assert not missing, (
        f"meltano-hub.yml lacks the tap's setting(s) {', '.join(missing)}; add, as "
        f"`--about --format=json` reports them: "
        + json.dumps({name: expected[name] for name in missing}, indent=2)
    )
    extra = sorted(set(declared) - set(expected))
    assert not extra, f"meltano-hub.yml has setting(s) the tap does not: {', '.join(extra)}"
    differing = {
        name: {
            field: {"meltano-hub.yml": declared[name].get(field), "--about": value}
            for field, value in expected[name].items()
            if declared[name].get(field) != value
        }
        for name in expected
    }
    differing = {name: fields for name, fields in differing.items() if fields}
    assert not differing, "meltano-hub.yml differs from the tap on:\n" + json.dumps(
        differing, indent=2
    )
    # Each group is one valid combination of settings: of declared ones, holding every
    # setting the tap requires (alternatives, such as a key or a list of projects, may differ).
    groups = definition["settings_group_validation"]
    required = set(about["settings"].get("required", []))
    assert groups, "settings_group_validation: at least one combination of settings"
    for group in groups:
        assert set(group) <= set(declared), f"settings_group_validation names unknown {group}"
        assert required <= set(group), f"{group} lacks the required {sorted(required - set(group))}"


def test_the_definition_names_the_package_and_what_the_tap_can_do(
    definition: dict[str, t.Any], about: dict[str, t.Any]
) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert sorted(definition["capabilities"]) == sorted(about["capabilities"])
    assert definition["supported_python_versions"] == about["supported_python_versions"]
    assert definition["name"] == definition["pip_url"] == project["name"] == about["name"]
    assert definition["namespace"] == project["name"].replace("-", "_")
    assert definition["executable"] in project["scripts"]
    repository = project["urls"]["Repository"]
    assert definition["repo"] == repository
    assert definition["variant"] == repository.rstrip("/").split("/")[-2].lower()


def test_the_readme_adds_the_extractor_from_this_definition(definition: dict[str, t.Any]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    raw = definition["repo"].replace("https://github.com/", "https://raw.githubusercontent.com/")

    assert f"meltano add tap-leadtrackr --from-ref {raw}/main/meltano-hub.yml" in readme
    assert f"pip install {definition['pip_url']}\n" in readme


def test_meltano_adds_the_extractor_from_the_definition_and_lists_its_settings(
    definition: dict[str, t.Any], tmp_path: Path
) -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MELTANO_", "TAP_LEADTRACKR_"))
    }
    # Nothing here may need the Hub: an address that refuses at once makes any try fail.
    env.update(
        MELTANO_HUB_URL="http://127.0.0.1:9",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_CLI_LOG_LEVEL="warning",
    )

    def meltano(*args: str, cwd: Path, **extra_env: str) -> str:
        result = subprocess.run(
            [str(MELTANO), *args],
            cwd=cwd,
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"`meltano {' '.join(args)}`:\n{result.stderr[-5000:]}"
        return result.stdout

    meltano("init", "project", "--no_usage_stats", cwd=tmp_path)
    project = tmp_path / "project"
    # The command of the README (Meltano 4 infers the type from the `tap-` prefix).
    meltano("add", "tap-leadtrackr", "--from-ref", str(DEFINITION), "--no-install", cwd=project)

    plugins = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))["plugins"]
    assert list(plugins) == ["extractors"], plugins.keys()
    (extractor,) = plugins["extractors"]
    assert extractor["name"] == "tap-leadtrackr"
    assert extractor["pip_url"] == definition["pip_url"]

    listing = meltano(
        "config", "list", "--all", "tap-leadtrackr", cwd=project, TAP_LEADTRACKR_API_KEY="s3cr3t"
    )
    for setting in definition["settings"]:
        variable = "TAP_LEADTRACKR_" + setting["name"].replace(".", "_").upper()
        # A setting that a settings group requires is listed with "(required by group N)".
        line = rf"^{re.escape(setting['name'])}( \(required by group \d+\))? \[env: {variable}\]"
        assert re.search(line, listing, re.MULTILINE), setting["name"]
    assert "s3cr3t" not in listing
