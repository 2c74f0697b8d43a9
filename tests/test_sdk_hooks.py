"""The private parts of singer-sdk the tap relies on are still there, and only in `sdk_hooks.py`.

An SDK release may rename or drop any underscore name; these tests say which one, and what
the tap needs it for, before a sync finds out.
"""

from __future__ import annotations

import inspect
import re
import typing as t
from importlib import metadata
from pathlib import Path

import pytest
from singer_sdk import Stream, Tap
from singer_sdk.plugin_base import PluginBase
from singer_sdk.streams import RESTStream

from tap_leadtrackr import sdk_hooks
from tap_leadtrackr.sdk_hooks import INTERNAL_HOOKS, PRIVATE_HOOKS

SDK_VERSION = metadata.version("singer-sdk")
PACKAGE = Path(sdk_hooks.__file__).parent
HOOKS_FILE = "tap_leadtrackr/sdk_hooks.py"
HOOKS = PRIVATE_HOOKS + INTERNAL_HOOKS


def mixins() -> list[type]:
    """The classes of `sdk_hooks.py` that override SDK members."""
    return [
        value
        for value in vars(sdk_hooks).values()
        if inspect.isclass(value)
        and value.__module__ == sdk_hooks.__name__
        and issubclass(value, (Stream, Tap))
    ]


def override_of(name: str) -> t.Any:
    """The tap's override of an SDK member in `sdk_hooks.py`, or None if it only reads it."""
    for mixin in mixins():
        if name in vars(mixin):
            return vars(mixin)[name]
    return None


def parameters(function: t.Any) -> list[tuple[str, t.Any]]:
    """A function's parameters: name and kind, which an override must keep."""
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


class BareTap(Tap):
    """A tap with nothing of this one's, whose instances show what the SDK sets."""

    name = "tap-bare"
    config_jsonschema: t.ClassVar[dict] = {"type": "object", "properties": {}}

    def discover_streams(self) -> list[Stream]:
        return []


class BareStream(RESTStream[int]):
    """A REST stream with nothing of this tap's."""

    name = "bare"
    url_base = "http://127.0.0.1:9"
    path = "/"
    schema: t.ClassVar[dict] = {"type": "object", "properties": {}}


def bare_instances() -> tuple[BareTap, BareStream]:
    """A tap and a stream as the SDK alone makes them."""
    bare_tap = BareTap(config={}, parse_env_config=False)
    return bare_tap, BareStream(bare_tap)


@pytest.mark.parametrize(
    ("sdk_class", "name", "why"), HOOKS, ids=[f"{c.__name__}.{n}" for c, n, _ in HOOKS]
)
def test_each_sdk_hook_is_still_there(sdk_class: type, name: str, why: str) -> None:
    owner = f"{sdk_class.__name__}.{name}"
    used_for = f"({HOOKS_FILE} relies on it: {why})"
    ours = override_of(name)
    if ours is None:
        # Read, not overridden: an instance attribute, set by the SDK's `__init__`.
        bare_tap, bare_stream = bare_instances()
        instance = bare_tap if issubclass(sdk_class, Tap) else bare_stream
        assert hasattr(instance, name), f"singer-sdk {SDK_VERSION} no longer has {owner} {used_for}"
        return
    # Statically: a class property (`_env_var_config`) would run if fetched.
    sdk_member = inspect.getattr_static(sdk_class, name, None)
    if isinstance(ours, property):
        # Overridden by a property: the SDK's member must still be one, not a method.
        assert sdk_member is not None, f"singer-sdk {SDK_VERSION} no longer has {owner} {used_for}"
        assert not inspect.isfunction(sdk_member), (
            f"singer-sdk {SDK_VERSION} made {owner} a method; {HOOKS_FILE} overrides it as a "
            f"property {used_for}"
        )
        assert hasattr(sdk_member, "__get__"), f"{owner} is no longer a property {used_for}"
        return
    if isinstance(sdk_member, (classmethod, staticmethod)):
        sdk_member = sdk_member.__func__
    assert callable(sdk_member), f"singer-sdk {SDK_VERSION} no longer has {owner} {used_for}"
    assert parameters(sdk_member) == parameters(ours), (
        f"singer-sdk {SDK_VERSION} changed the signature of {owner} to "
        f"{inspect.signature(sdk_member)}; {HOOKS_FILE} overrides it as "
        f"{inspect.signature(ours)} {used_for}"
    )


def test_every_override_in_sdk_hooks_is_listed() -> None:
    listed = {name for _, name, _ in HOOKS}
    for mixin in mixins():
        sdk_bases = [base for base in mixin.__mro__ if base.__module__.startswith("singer_sdk")]
        for name, value in vars(mixin).items():
            member = inspect.isfunction(value) or isinstance(value, property)
            if member and any(name in vars(base) for base in sdk_bases):
                assert name in listed, (
                    f"{mixin.__name__}.{name} overrides singer-sdk but is not in "
                    f"PRIVATE_HOOKS or INTERNAL_HOOKS of {HOOKS_FILE}, so no test checks it"
                )


def sdk_private_names() -> set[str]:
    """Every single-underscore name of singer-sdk's plugin, tap and stream classes and instances."""
    bare_tap, bare_stream = bare_instances()
    names: set[str] = set()
    for thing in (Stream, RESTStream, Tap, PluginBase, bare_tap, bare_stream):
        names.update(dir(thing))
    # Instance attributes the SDK sets (`_config`, `_tap`, `_stream_version`, ...).
    names.update(vars(bare_tap), vars(bare_stream))
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def test_no_private_sdk_part_is_used_outside_sdk_hooks() -> None:
    private = sdk_private_names()
    # Sanity: the scan knows the names the hooks module relies on.
    assert {name for _, name, _ in PRIVATE_HOOKS} <= private
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "sdk_hooks.py":
            continue
        text = path.read_text()
        where = path.relative_to(PACKAGE.parent)
        for number, line in enumerate(text.splitlines(), start=1):
            for name in re.findall(r"\.(_[a-z]\w*)\b", line):
                if name in private:
                    found.append(f"{where}:{number}: .{name}")
            for module in re.findall(r"\bsinger_sdk(?:\.\w+)*\._\w+", line):
                found.append(f"{where}:{number}: {module}")
    assert not found, (
        f"private parts of singer-sdk used outside {HOOKS_FILE} (move them there, with a "
        "line on why, and list them in PRIVATE_HOOKS): " + "; ".join(found)
    )
