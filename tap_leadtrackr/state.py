"""The state a run is given: checked before any request, its bookmarks spelled one way.

A state this tap did not write (a bookmark `12345`, `bookmarks` that is a list) would
fail somewhere in the sync, or silently restart it; it is refused, naming the place in
the state (and quoting a bookmark that is no timestamp, a value the tap itself writes).
"""

from __future__ import annotations

import typing as t

from tap_leadtrackr.settings import kind_of
from tap_leadtrackr.timestamps import canonical_timestamp, parse_timestamp

#: The help every state error ends with.
_STATE_HELP = (
    "Correct it, or run without it (through Meltano: `meltano state clear` the job's "
    "state id) to start from `start_date`."
)


class StateError(ValueError):
    """The state given to the tap is not one it could have written."""


def check_state(state: object) -> None:
    """Refuse a state that this tap could not have written.

    Raises:
        StateError: naming the first wrong place in the state.

    """
    if problem := state_problem(state):
        raise StateError(f"The state is not one this tap writes: {problem}. {_STATE_HELP}")


def state_problem(state: object) -> str | None:
    """The first wrong place in a state, or None."""
    if not isinstance(state, dict):
        return f"it is {kind_of(state)}, not an object"
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        return f"`bookmarks` is {kind_of(bookmarks)}, not an object of streams"
    for stream, stream_state in bookmarks.items():
        where = f"`bookmarks.{stream}`"
        if not isinstance(stream_state, dict):
            return f"{where} is {kind_of(stream_state)}, not an object"
        partitions = stream_state.get("partitions", [])
        if not isinstance(partitions, list):
            return f"{where}.partitions is {kind_of(partitions)}, not a list"
        for position, partition in enumerate(partitions, start=1):
            place = f"{where}.partitions item {position}"
            if not isinstance(partition, dict):
                return f"{place} is {kind_of(partition)}, not an object"
            if not isinstance(partition.get("context"), dict):
                return f"{place} has no `context` object"
            if problem := bookmark_problem(partition, place):
                return problem
        if problem := bookmark_problem(stream_state, where):
            return problem
    return None


def bookmark_problem(bookmark: dict[str, t.Any], where: str) -> str | None:
    """What is wrong with one bookmark (a stream's or a partition's), or None."""
    key = bookmark.get("replication_key")
    if key is not None and not isinstance(key, str):
        return f"{where}.replication_key is {kind_of(key)}, not text"
    markers = bookmark.get("progress_markers")
    if markers is not None and not isinstance(markers, dict):
        return f"{where}.progress_markers is {kind_of(markers)}, not an object"
    value = bookmark.get("replication_key_value")
    if key != "createdAt" or value is None:
        return None
    if not isinstance(value, str):
        return f"{where}.replication_key_value is {kind_of(value)}, not an ISO 8601 timestamp"
    try:
        parse_timestamp(value)
    except ValueError:
        # A bookmark is a time the tap wrote, not a secret: shown, to be found and fixed.
        return f"{where}.replication_key_value {value[:40]!r} is not an ISO 8601 timestamp"
    return None


def canonical_bookmarks(state: t.Mapping[str, t.Any]) -> None:
    """Spell every `createdAt` bookmark of a checked state the canonical way, in place.

    State written by other tools or versions may spell it otherwise, and bookmarks are
    compared as strings.
    """
    for stream_state in state.get("bookmarks", {}).values():
        for bookmark in [stream_state, *stream_state.get("partitions", [])]:
            value = bookmark.get("replication_key_value")
            if isinstance(value, str) and bookmark.get("replication_key") == "createdAt":
                bookmark["replication_key_value"] = canonical_timestamp(value)
