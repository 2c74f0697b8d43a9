"""The `lead_touchpoints` records a lead must give, worked out without the tap's parser.

A deliberately plain reading of the forms the sandbox serves: the compact array
(`{"t", "ch": {"s", "m", "cm", "ct", "tm"}, "lp"}`) and the older one (`{"timestamp",
"channel": {"source", "medium", "campaign", "content", "term"}}`), as JSON text, already
parsed, or URL-encoded as the `lt_channelflow` cookie. Tests compare the tap's output with
it, so a fault in `tap_leadtrackr.channel_flow` cannot hide behind its own expectations.
"""

from __future__ import annotations

import json
import typing as t
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
CHANNEL_FIELDS = ("source", "medium", "campaign", "content", "term")
COMPACT_CHANNEL = dict(zip(CHANNEL_FIELDS, ("s", "m", "cm", "ct", "tm"), strict=True))


class UnknownFormError(ValueError):
    """The value is in none of the forms above."""


def reference_touchpoints(lead: dict[str, t.Any]) -> list[dict[str, t.Any]] | None:
    """The touchpoint records of `lead`, first touch first; None if its journey is unreadable."""
    try:
        sessions = [_session(entry) for entry in _entries(lead.get("channelFlow"))]
    except UnknownFormError:
        return None
    return [
        {
            "lead_id": lead["id"],
            "position": position,
            **session,
            "is_first_touch": position == 1,
            "is_last_touch": position == len(sessions),
            "createdAt": lead["createdAt"],
        }
        for position, session in enumerate(sessions, start=1)
    ]


def expected_touchpoints(lead: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The touchpoint records of `lead`; none when its journey is unreadable."""
    return reference_touchpoints(lead) or []


def _entries(flow: object) -> list[t.Any]:
    if flow is None:
        return []
    if isinstance(flow, list):
        return flow
    if not isinstance(flow, str):
        raise UnknownFormError(flow)
    text = flow.strip()
    if text.lower().startswith("%5b"):
        text = unquote(text)
    if not text:
        return []
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnknownFormError(flow) from exc
    if not isinstance(entries, list):
        raise UnknownFormError(flow)
    return entries


def _session(entry: object) -> dict[str, str | None]:
    if not isinstance(entry, dict):
        raise UnknownFormError(entry)
    if "t" in entry:
        moment, channel = entry["t"], entry.get("ch") or {}
        names, landing_page = COMPACT_CHANNEL, entry.get("lp")
    elif "timestamp" in entry:
        moment, channel = entry["timestamp"], entry.get("channel") or {}
        names, landing_page = {field: field for field in CHANNEL_FIELDS}, entry.get("landingPage")
    else:
        raise UnknownFormError(entry)
    if not isinstance(channel, dict):
        raise UnknownFormError(entry)
    return {
        "occurred_at": _utc_millis(moment),
        **{field: _text(channel.get(key)) for field, key in names.items()},
        "landing_page": _text(landing_page),
    }


def _utc_millis(moment: object) -> str:
    if not isinstance(moment, int) or isinstance(moment, bool):
        raise UnknownFormError(moment)
    when = EPOCH + timedelta(milliseconds=moment)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{moment % 1000:03d}Z"


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnknownFormError(value)
    return value
