"""One spelling for every timestamp."""

from __future__ import annotations

import pytest

from tap_leadtrackr.timestamps import canonical_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("2026-03-15T10:30:00.000Z", "2026-03-15T10:30:00.000Z"),
        ("2026-03-15T10:30:00Z", "2026-03-15T10:30:00.000Z"),
        ("2026-03-15T10:30:00+00:00", "2026-03-15T10:30:00.000Z"),
        ("2026-03-15T11:30:00+01:00", "2026-03-15T10:30:00.000Z"),
        ("2026-03-15T10:30:00.5Z", "2026-03-15T10:30:00.500Z"),
        ("2026-03-15T10:30:00.12Z", "2026-03-15T10:30:00.120Z"),
        ("2026-03-15T10:30:00.123456+00:00", "2026-03-15T10:30:00.123Z"),
        ("2026-03-15T10:30:00.1239999Z", "2026-03-15T10:30:00.123Z"),
        ("2026-03-15T10:30:00", "2026-03-15T10:30:00.000Z"),
        ("2026-03-15", "2026-03-15T00:00:00.000Z"),
        ("2026-03-15T05:30:00-05:00", "2026-03-15T10:30:00.000Z"),
    ],
)
def test_every_iso_spelling_becomes_the_canonical_one(value: str, canonical: str) -> None:
    assert canonical_timestamp(value) == canonical


def test_sub_millisecond_digits_are_cut_never_rounded_up() -> None:
    # Rounding up could step a bookmark over a lead created in that millisecond.
    assert canonical_timestamp("2026-03-15T10:30:00.9999Z") == "2026-03-15T10:30:00.999Z"


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "2026-03-15T25:00:00Z", ""])
def test_a_value_that_is_not_iso_8601_is_refused(value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is Python's own
        parse_timestamp(value)
