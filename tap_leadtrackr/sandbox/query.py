"""The query parameters of getLeads and getLead: validation, filtering and sorting.

Where the documentation is silent the sandbox is as strict as a real server could be, so a
client that works against it does not lean on leniency the real API may not have.
"""

from __future__ import annotations

import random
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tap_leadtrackr.sandbox.instants import parse_instant

MAX_LIMIT = 100
DEFAULT_LIMIT = 50
SORT_FIELDS = ("createdAt", "firstName", "lastName", "email", "price", "status")
DEFAULT_SORT = ("createdAt", True)
SEARCH_FIELDS = ("firstName", "lastName", "email", "phone", "companyName")
EXISTS_KEYS = ("gclid", "cid", "fbp", "fbc")
EXACT_FIELDS = ("formName", "uniqueIdentifier", "email", "phone")

LIST_PARAMETERS = (
    "limit",
    "page",
    "status",
    *EXACT_FIELDS,
    "createdAt[gte]",
    "createdAt[lte]",
    "search",
    "sort",
    *(f"{key}[exists]" for key in EXISTS_KEYS),
)
LOOKUP_PARAMETERS = ("leadId", "uniqueIdentifier", "email", "phone")
"""The parameters of getLead, highest priority first."""

_DIGITS = re.compile(r"[0-9]+")
_MASK_64 = (1 << 64) - 1


class BadRequest(Exception):
    """A request the API answers with 400 and this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class LeadsQuery:
    """What getLeads selects and how it orders it; hashable, so it keys the order cache."""

    statuses: frozenset[str] | None = None
    exact: tuple[tuple[str, str], ...] = ()
    created_gte: int | None = None
    created_lte: int | None = None
    search: str | None = None
    sort_field: str = DEFAULT_SORT[0]
    descending: bool = DEFAULT_SORT[1]
    exists: tuple[tuple[str, bool], ...] = ()

    def select(self, leads: Iterable[dict[str, Any]], created_ms: Mapping[int, int]) -> list[int]:
        """Return the ids of the matching leads in response order.

        `created_ms` maps each lead id to its `createdAt` in epoch milliseconds.
        """
        chosen = [lead for lead in leads if self._matches(lead, created_ms[lead["id"]])]
        if self.sort_field == "createdAt":
            chosen.sort(key=lambda lead: (created_ms[lead["id"]], tie_rank(lead["id"])))
        else:
            field = self.sort_field
            chosen.sort(key=lambda lead: (*_sort_value(lead.get(field)), tie_rank(lead["id"])))
        if self.descending:
            chosen.reverse()
        return [lead["id"] for lead in chosen]

    def tie_starts(
        self,
        order: Sequence[int],
        leads_by_id: Mapping[int, dict[str, Any]],
        created_ms: Mapping[int, int],
    ) -> list[int]:
        """Return the positions in `order` (from `select`) where a new tie group begins.

        A tie group is a run of leads with the same value of the sort field.
        """
        if self.sort_field == "createdAt":
            keys: list[Any] = [created_ms[lead_id] for lead_id in order]
        else:
            field = self.sort_field
            keys = [_sort_value(leads_by_id[lead_id].get(field)) for lead_id in order]
        return [index for index in range(len(keys)) if index == 0 or keys[index] != keys[index - 1]]

    def _matches(self, lead: dict[str, Any], created: int) -> bool:
        if self.statuses is not None and lead.get("status") not in self.statuses:
            return False
        for field, value in self.exact:
            if lead.get(field) != value:
                return False
        if self.created_gte is not None and created < self.created_gte:
            return False
        if self.created_lte is not None and created > self.created_lte:
            return False
        if self.search is not None and not _contains(lead, self.search):
            return False
        if self.exists:
            attribution = lead.get("attributionData")
            for key, wanted in self.exists:
                found = isinstance(attribution, dict) and attribution.get(key) not in (None, "")
                if found != wanted:
                    return False
        return True


@dataclass(frozen=True)
class LeadsRequest:
    """A validated getLeads request: the query and the page of it asked for."""

    query: LeadsQuery
    page: int
    limit: int


@dataclass(frozen=True)
class LeadLookup:
    """A validated getLead request: the one field that decides, and its value."""

    field: str
    value: str | int


def parse_leads_request(pairs: list[tuple[str, str]]) -> LeadsRequest:
    """Validate getLeads query parameters (decoded name/value pairs, in request order).

    Raises:
        BadRequest: a parameter is unknown, repeated or invalid.

    """
    params = _single_values(pairs, LIST_PARAMETERS)
    limit = _integer(params, "limit", DEFAULT_LIMIT, f"an integer between 1 and {MAX_LIMIT}")
    if not 1 <= limit <= MAX_LIMIT:
        raise _invalid("limit", f"an integer between 1 and {MAX_LIMIT}")
    page = _integer(params, "page", 1, "an integer of at least 1")
    if page < 1:
        raise _invalid("page", "an integer of at least 1")
    statuses = None
    if "status" in params:
        # Statuses are free text with spaces ("Qualified lead"), so only the ends are trimmed.
        values = [status.strip() for status in params["status"].split(",")]
        if not all(values):
            raise _invalid("status", "one status or several separated by commas")
        statuses = frozenset(values)
    exact = tuple((field, _non_empty(params, field)) for field in EXACT_FIELDS if field in params)
    search = params.get("search")
    if search is not None and len(search) < 2:
        raise _invalid("search", "at least 2 characters")
    return LeadsRequest(
        LeadsQuery(
            statuses=statuses,
            exact=exact,
            created_gte=_instant(params, "createdAt[gte]"),
            created_lte=_instant(params, "createdAt[lte]"),
            search=None if search is None else search.lower(),
            sort_field=(sort := _sort(params))[0],
            descending=sort[1],
            exists=tuple(
                (key, _boolean(params, f"{key}[exists]"))
                for key in EXISTS_KEYS
                if f"{key}[exists]" in params
            ),
        ),
        page=page,
        limit=limit,
    )


def parse_lead_lookup(pairs: list[tuple[str, str]]) -> LeadLookup:
    """Validate getLead query parameters; the highest-priority one given decides.

    Raises:
        BadRequest: a parameter is unknown, repeated or invalid, or none is given.

    """
    params = _single_values(pairs, LOOKUP_PARAMETERS)
    lead_id = _integer(params, "leadId", None, "an integer")
    given = [
        (field, _non_empty(params, field)) for field in LOOKUP_PARAMETERS[1:] if field in params
    ]
    if lead_id is not None:
        return LeadLookup("id", lead_id)
    if not given:
        raise BadRequest("Missing parameter: give one of leadId, uniqueIdentifier, email or phone")
    return LeadLookup(*given[0])


def tie_rank(lead_id: int) -> int:
    """Return a fixed pseudo-random rank that orders leads tied on the sort field.

    Not the id itself: the real API promises nothing about ties, so clients must not come
    to rely on id order among them. (SplitMix64's finaliser: fast, and the same everywhere.)
    """
    mixed = (lead_id * 0x9E3779B97F4A7C15) & _MASK_64
    mixed = ((mixed ^ (mixed >> 30)) * 0xBF58476D1CE4E5B9) & _MASK_64
    mixed = ((mixed ^ (mixed >> 27)) * 0x94D049BB133111EB) & _MASK_64
    return mixed ^ (mixed >> 31)


def shuffle_ties(
    order: Sequence[int], starts: Sequence[int], offset: int, limit: int, rng: random.Random
) -> list[int]:
    """Return `order[offset:offset + limit]` with the ties among it put in a random order.

    Each tie group (a run of `order` from one of `starts` to the next) that overlaps the
    slice is permuted as a whole by `rng`, then cut as the slice cuts it; the order of the
    groups never changes, so the page still respects the sort. Groups outside the slice
    cost nothing, and `random.sample` draws a group's permutation only up to the slice's
    end: a page deep inside a group of 80,000 costs a few milliseconds, not a re-sort.
    """
    stop = min(offset + limit, len(order))
    page: list[int] = []
    if offset >= stop:
        return page
    group = bisect_right(starts, offset) - 1
    while 0 <= group < len(starts) and starts[group] < stop:
        first = starts[group]
        end = starts[group + 1] if group + 1 < len(starts) else len(order)
        if end - first == 1:
            page.append(order[first])
        else:
            drawn = rng.sample(range(first, end), min(stop, end) - first)
            page.extend(order[index] for index in drawn[max(offset, first) - first :])
        group += 1
    return page


def _sort_value(value: Any) -> tuple[int, Any]:
    """Return a sort key that puts nulls first and never compares unlike types."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, repr(value))


def _contains(lead: dict[str, Any], needle: str) -> bool:
    for field in SEARCH_FIELDS:
        value = lead.get(field)
        if isinstance(value, str) and needle in value.lower():
            return True
    return False


def _single_values(pairs: list[tuple[str, str]], allowed: tuple[str, ...]) -> dict[str, str]:
    for name, _ in pairs:
        if name not in allowed:
            raise BadRequest(f"Unknown query parameter: {name}")
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise BadRequest(f"Query parameter given more than once: {name}")
        params[name] = value
    return params


def _invalid(name: str, expected: str) -> BadRequest:
    return BadRequest(f"Invalid value for {name}: must be {expected}")


def _integer(params: dict[str, str], name: str, default: int | None, expected: str) -> Any:
    if name not in params:
        return default
    value = params[name]
    # Only plain digits: "+5", " 5", "5.0" and "1e2" are what a strict server refuses.
    if not _DIGITS.fullmatch(value) or len(value) > 18:
        raise _invalid(name, expected)
    return int(value)


def _non_empty(params: dict[str, str], name: str) -> str:
    value = params[name]
    if not value:
        raise _invalid(name, "a non-empty string")
    return value


def _instant(params: dict[str, str], name: str) -> int | None:
    if name not in params:
        return None
    try:
        return parse_instant(params[name])
    except ValueError:
        raise _invalid(
            name, "an ISO 8601 date or date-time, such as 2026-03-15T10:30:00.000Z"
        ) from None


def _sort(params: dict[str, str]) -> tuple[str, bool]:
    if "sort" not in params:
        return DEFAULT_SORT
    field, _, direction = params["sort"].partition(":")
    if field not in SORT_FIELDS or direction not in ("asc", "desc"):
        fields = ", ".join(SORT_FIELDS)
        raise _invalid(
            "sort", f"field:direction with field one of {fields} and direction asc or desc"
        )
    return field, direction == "desc"


def _boolean(params: dict[str, str], name: str) -> bool:
    value = params[name]
    if value not in ("true", "false"):
        raise _invalid(name, "true or false")
    return value == "true"
