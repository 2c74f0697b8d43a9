"""Failures the sandbox can inject, for testing a client's retries and resilience."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

SCRIPTED_FAULTS = frozenset(
    {"429", "500", "502", "503", "504", "truncated", "html", "slow", "reset"}
)
TIE_ORDERS = ("fixed", "per_request", "per_offset")
HAS_MORE_MODES = ("honest", "stuck_true", "false_early")
CAP_ENVELOPES = ("served", "asked")
BAD_ENVELOPES = (None, "total_string", "total_pages_null")
DELETE_FROM = ("oldest", "newest", "middle", "random", "tied")
INSERT_STAMPS = ("newest", "past", "tied")


def _knob(default: Any, help: str, choices: tuple[Any, ...] | None = None) -> Any:
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = choices
    return field(default=default, metadata=metadata)


@dataclass
class Faults:
    """Which API requests fail, and how; everything is off by default.

    Periodic faults (`*_every`) hit every k-th API request by its arrival number, and a 429
    storm answers requests `rate_limit_from_request` .. `+ rate_limit_count - 1`; a request
    in `script` gets exactly the scripted fault instead of any storm or periodic one.

    Data changes happen right after the k-th request is answered (faulted or not): once at
    `*_after_request`, and after every `*_every`-th request. The deletion comes first, then
    the insertion, so equal counts leave `total` unchanged while pages shift. Inserted leads
    are always the newest, as a server stamping the creation time makes them.

    getLeads only (getLead ignores them): `tie_order` reorders leads tied on the sort field
    (a page is still a slice of one order that respects the sort), `has_more` and
    `bad_envelope` break the paging envelope as a buggy server could.

    Each field's `help` metadata says what it does (and `choices`, where the values are
    names); the command line shows both.
    """

    latency_ms: float = _knob(0.0, "delay added to every API request")
    rate_limit_every: int = _knob(0, "every k-th API request is answered 429")
    rate_limit_from_request: int = _knob(
        0, "a 429 storm: API requests k .. k+rate_limit_count-1 are all answered 429"
    )
    rate_limit_count: int = _knob(0, "how many API requests in a row the 429 storm answers")
    retry_after: str | None = _knob("1", "Retry-After of a 429: seconds, an HTTP date, or none")
    server_error_every: int = _knob(0, "every k-th API request is answered server_error_status")
    server_error_status: int = _knob(503, "the status of periodic server errors")
    truncated_every: int = _knob(0, "every k-th API request gets 200 with half its JSON body")
    html_every: int = _knob(0, "every k-th API request gets 200 with a proxy's HTML error page")
    slow_every: int = _knob(0, "every k-th API request waits slow_seconds, then is answered")
    slow_seconds: float = _knob(0.0, "how long a slow request waits")
    insert_after_request: int = _knob(0, "after the k-th API request, insert_count leads arrive")
    insert_every: int = _knob(0, "after every k-th API request, insert_count leads arrive")
    insert_count: int = _knob(0, "how many new leads (newest createdAt) one insert creates")
    insert_tied: bool = _knob(
        False, "the leads one insert creates share one createdAt, 1 ms after the newest lead"
    )
    insert_stamp: str = _knob(
        "newest",
        "when inserted leads say they were created: as the newest (newest), or at a random"
        " instant between the oldest and the newest lead, seeded by the request number, as"
        " an app server whose clock is behind stamps them (past), or at the instant the most"
        " leads share, as an import still writing under one timestamp does (tied)",
        INSERT_STAMPS,
    )
    delete_after_request: int = _knob(0, "after the k-th API request, delete_count leads go")
    delete_every: int = _knob(0, "after every k-th API request, delete_count leads go")
    delete_count: int = _knob(0, "how many leads one delete removes")
    delete_from: str = _knob(
        "oldest",
        "which leads a delete removes, by createdAt: the oldest, the newest, a run around the"
        " median (middle), a random choice seeded by the request number (random), or a"
        " random choice among the largest group of leads sharing one createdAt (tied)",
        DELETE_FROM,
    )
    rate_every: int = _knob(
        0,
        "after every k-th API request, rate_count leads of the largest group sharing one"
        " createdAt are rated: open becomes lost, anything else open (as sales teams do)",
    )
    rate_count: int = _knob(0, "how many leads one rating round changes")
    tie_order: str = _knob(
        "fixed",
        "order of leads tied on the sort field: fixed, reshuffled on every request"
        " (per_request), or fixed per page offset and limit as a top-N sort (per_offset)",
        TIE_ORDERS,
    )
    has_more: str = _knob(
        "honest",
        "hasMore of getLeads: honest, true on every page even past the end (stuck_true), or"
        " false on page 2 whatever follows (false_early)",
        HAS_MORE_MODES,
    )
    bad_envelope: str | None = _knob(
        None,
        "a wrongly typed getLeads envelope: total as a string (total_string) or totalPages"
        " null (total_pages_null)",
        BAD_ENVELOPES,
    )
    page_cap: int = _knob(
        0,
        "getLeads serves at most this many leads a page, whatever `limit` asks (0: no cap);"
        " pages, totalPages and hasMore follow the cap, and the envelope's limit repeats"
        " the one asked for",
    )
    cap_envelope: str = _knob(
        "served",
        "with page_cap: totalPages and hasMore follow the cap (served), or the limit asked"
        " for (asked), as a server that clamps only its query and computes the envelope"
        " from the `limit` it echoes does",
        CAP_ENVELOPES,
    )
    overstate_total: int = _knob(
        0, "getLeads counts this many leads more than match (total, totalPages, hasMore)"
    )
    understate_total: int = _knob(
        0,
        "getLeads counts this many leads fewer than match, as a stale or cached count does"
        " (total, totalPages, hasMore)",
    )
    revoke_key_after_request: int = _knob(0, "API requests after the k-th get 401 Invalid API key")
    script: dict[int, str] = field(
        default_factory=dict,
        metadata={"help": "request number -> a SCRIPTED_FAULTS name; reset closes unanswered"},
    )

    def __post_init__(self) -> None:
        unknown = sorted(set(self.script.values()) - SCRIPTED_FAULTS)
        if unknown:
            raise ValueError(
                f"unknown scripted fault(s) {unknown}; choose from {sorted(SCRIPTED_FAULTS)}"
            )
        for spec in fields(self):
            choices = spec.metadata.get("choices")
            if choices is not None and getattr(self, spec.name) not in choices:
                raise ValueError(
                    f"{spec.name} must be one of {', '.join(map(str, choices))};"
                    f" got {getattr(self, spec.name)!r}"
                )

    def fault_for(self, number: int) -> str | None:
        """Return the fault answering API request `number`, or None to answer it normally.

        Slowness is separate (see `is_slow`): a slow request is still answered normally.
        """
        if number in self.script:
            scripted = self.script[number]
            return None if scripted == "slow" else scripted
        storm = self.rate_limit_from_request
        if storm > 0 and storm <= number < storm + self.rate_limit_count:
            return "429"
        periodic = (
            (self.rate_limit_every, "429"),
            (self.server_error_every, str(self.server_error_status)),
            (self.truncated_every, "truncated"),
            (self.html_every, "html"),
        )
        for every, fault in periodic:
            if every > 0 and number % every == 0:
                return fault
        return None

    def is_slow(self, number: int) -> bool:
        """Return whether API request `number` waits `slow_seconds` first."""
        if number in self.script:
            return self.script[number] == "slow"
        return self.slow_every > 0 and number % self.slow_every == 0

    def inserts_after(self, number: int) -> int:
        """Return how many leads arrive right after API request `number`."""
        return (
            self.insert_count
            if _scheduled(number, self.insert_after_request, self.insert_every)
            else 0
        )

    def deletes_after(self, number: int) -> int:
        """Return how many leads go right after API request `number`."""
        return (
            self.delete_count
            if _scheduled(number, self.delete_after_request, self.delete_every)
            else 0
        )


def _scheduled(number: int, once: int, every: int) -> bool:
    return number == once or (every > 0 and number % every == 0)
