"""One spelling for every LeadTrackr timestamp.

Singer bookmarks are compared as strings, so `2026-03-15T10:30:00Z`,
`2026-03-15T10:30:00.000Z` and `2026-03-15T10:30:00+00:00` must never meet:
every `createdAt` in records, state and query parameters goes through here.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

#: The API's own spelling: UTC, millisecond precision, `Z` suffix.
CANONICAL_FORMAT = "%Y-%m-%dT%H:%M:%S.{millis:03d}Z"
ONE_MILLISECOND = timedelta(milliseconds=1)

_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_DATE_ONLY = re.compile(r"\d{4}-\d\d-\d\d")
_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 date or date-time into an aware UTC datetime.

    A value without a zone is UTC (the API documents UTC); a date alone is its midnight.

    Raises:
        ValueError: the value is not ISO 8601.

    """
    text = value.strip()
    if _DATE_ONLY.fullmatch(text):
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), timezone.utc)
    if text.endswith(("Z", "z")):
        # Python 3.10's fromisoformat reads neither a `Z` suffix...
        text = text[:-1] + "+00:00"
    # ... nor fractions of other than 3 or 6 digits.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "00000")[:6], text, count=1)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_timestamp(moment: datetime) -> str:
    """Spell an aware datetime the canonical way.

    Sub-millisecond digits are cut, never rounded up: a bookmark rounded up could step
    over a lead created in that same millisecond.
    """
    utc = moment.astimezone(timezone.utc)
    return utc.strftime(CANONICAL_FORMAT.format(millis=utc.microsecond // 1000))


def canonical_timestamp(value: str) -> str:
    """Return `value` in the canonical spelling (cheap when it already is)."""
    if _CANONICAL.fullmatch(value):
        return value
    return format_timestamp(parse_timestamp(value))
