"""A lead's channel flow: the sessions of the visitor's journey before the lead, as touchpoints.

LeadTrackr stores `channelFlow` untyped and passes on whatever the tag or plugin sent, so
one lead's journey can arrive in any of these forms:

- the compact array LeadTrackr's tags write, empty fields left out:
  `[{"t": epoch-ms, "ch": {"s": source, "m": medium, "cm": campaign, "ct": content,
  "tm": term}, "lp": landing page}]`;
- the older array: `[{"timestamp": epoch-ms, "channel": {"source", "medium", "campaign",
  "content", "term"}}]`;
- either one as JSON text, or already parsed;
- the `lt_channelflow` cookie as a plugin forwards it: that JSON text, URL-encoded.

Each session is told apart by `t` versus `timestamp`, as LeadTrackr's own reader does, so
an array mixing both forms still reads. The array is in the order the sessions began; the
tags trim a long journey from its second entry, so position 1 is always the first touch.

Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import binascii
import typing as t
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import msgspec

from tap_leadtrackr.timestamps import canonical_timestamp, format_timestamp

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: How a URL-encoded cookie string begins: an encoded `[`.
_ENCODED_ARRAY = "%5b"

#: Channel keys of the compact and the older form: source, medium, campaign, content, term.
_COMPACT_CHANNEL = ("s", "m", "cm", "ct", "tm")
_OLDER_CHANNEL = ("source", "medium", "campaign", "content", "term")


class Session(t.TypedDict):
    """One session of a channel flow: when it began, through which channel, where it landed."""

    occurred_at: str | None
    source: str | None
    medium: str | None
    campaign: str | None
    content: str | None
    term: str | None
    landing_page: str | None


class _NoKnownFormError(ValueError):
    """The value matches none of the channel-flow forms."""


def parse_channel_flow(value: object) -> list[Session] | None:
    """The sessions of a `channelFlow` value, first touch first; None if in no known form.

    Null, blank text and an empty array are a lead without a journey: no sessions, and
    not a value in an unknown form.
    """
    try:
        return [_session(entry) for entry in _journey(value)]
    except _NoKnownFormError:
        return None


def touchpoints(lead_id: int, created_at: str, sessions: list[Session]) -> list[dict[str, t.Any]]:
    """The `lead_touchpoints` records of one lead's sessions, numbered from 1.

    Each is a session with the lead's `id` and `createdAt`, its position and whether it
    is the first or the last touch (`TOUCHPOINT_SCHEMA`).
    """
    last = len(sessions)
    return [
        {
            "lead_id": lead_id,
            "position": position,
            **session,
            "is_first_touch": position == 1,
            "is_last_touch": position == last,
            "createdAt": created_at,
        }
        for position, session in enumerate(sessions, start=1)
    ]


def _journey(value: object) -> list[t.Any]:
    """The array of sessions a `channelFlow` value holds, decoding text if need be."""
    if isinstance(value, list):
        return value
    if value is None:
        return []
    if not isinstance(value, str):
        raise _NoKnownFormError
    text = value.strip()
    if not text:
        return []
    if text[:3].lower() == _ENCODED_ARRAY:
        text = percent_decoded(text)
    if not text.startswith("["):
        raise _NoKnownFormError
    try:
        journey = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise _NoKnownFormError from exc
    if not isinstance(journey, list):
        raise _NoKnownFormError
    return journey


def percent_decoded(text: str) -> str:
    """Undo URL encoding (`%XX` escapes of UTF-8 bytes), exactly as `urllib.parse.unquote`.

    A cookie is mostly escapes, which `unquote` undoes one at a time in Python (about
    90 us for one journey); binascii's quoted-printable decoder undoes `=XX` escapes in C.
    When the text holds anything that decoder would read differently (a `%` not followed
    by two hex digits, a line break, bytes that are not UTF-8), `unquote` decides.
    """
    raw = text.encode()
    decoded = binascii.a2b_qp(raw.replace(b"=", b"=3D").replace(b"%", b"="))
    # Each valid escape turns three bytes into one; anything else shows in the length.
    if len(decoded) != len(raw) - 2 * raw.count(b"%") or b"\n" in raw or b"\r" in raw:
        return unquote(text)
    try:
        return decoded.decode()
    except UnicodeDecodeError:
        return unquote(text)


def _session(entry: object) -> Session:
    """Read one entry of the array, in either form."""
    if not isinstance(entry, dict):
        raise _NoKnownFormError
    if "t" in entry:
        moment, channel, keys = entry["t"], entry.get("ch"), _COMPACT_CHANNEL
        landing_page = entry.get("lp")
    elif "timestamp" in entry:
        moment, channel, keys = entry["timestamp"], entry.get("channel"), _OLDER_CHANNEL
        # LeadTrackr's own reader names it so when it translates `lp` to the older form.
        landing_page = entry.get("landingPage")
    else:
        raise _NoKnownFormError
    if channel is None:
        channel = {}
    elif not isinstance(channel, dict):
        raise _NoKnownFormError
    source, medium, campaign, content, term = keys
    return {
        "occurred_at": _occurred_at(moment),
        "source": _text(channel.get(source)),
        "medium": _text(channel.get(medium)),
        "campaign": _text(channel.get(campaign)),
        "content": _text(channel.get(content)),
        "term": _text(channel.get(term)),
        "landing_page": _text(landing_page),
    }


def _text(value: object) -> str | None:
    """A channel value as text; the compact form leaves empty ones out, the older sends `""`."""
    if isinstance(value, str):
        return value or None
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # A campaign or content id sent as a number.
        return str(value)
    raise _NoKnownFormError


def _occurred_at(moment: object) -> str | None:
    """When a session began, from epoch milliseconds, in the canonical UTC spelling."""
    if moment is None:
        return None
    if isinstance(moment, str):
        text = moment.strip()
        if not text.isdigit():
            try:
                return canonical_timestamp(text)
            except ValueError as exc:
                raise _NoKnownFormError from exc
        moment = int(text)
    if isinstance(moment, bool) or not isinstance(moment, (int, float)):
        raise _NoKnownFormError
    try:
        return format_timestamp(_EPOCH + timedelta(milliseconds=moment))
    except (OverflowError, ValueError) as exc:
        raise _NoKnownFormError from exc
