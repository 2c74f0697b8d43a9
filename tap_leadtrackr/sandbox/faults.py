"""Failures the sandbox can inject, for testing a client's retries and resilience."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCRIPTED_FAULTS = frozenset(
    {"429", "500", "502", "503", "504", "truncated", "html", "slow", "reset"}
)


def _knob(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class Faults:
    """Which API requests fail, and how; everything is off by default.

    Periodic faults (`*_every`) hit every k-th API request by its arrival number; a request
    in `script` gets exactly the scripted fault instead of any periodic one. The data
    changes (`insert_*`, `delete_*`) happen once, right after the k-th request is answered.
    Each field's `help` metadata says what it does; the command line shows it too.
    """

    latency_ms: float = _knob(0.0, "delay added to every API request")
    rate_limit_every: int = _knob(0, "every k-th API request is answered 429")
    retry_after: str | None = _knob("1", "Retry-After of a 429: seconds, an HTTP date, or none")
    server_error_every: int = _knob(0, "every k-th API request is answered server_error_status")
    server_error_status: int = _knob(503, "the status of periodic server errors")
    truncated_every: int = _knob(0, "every k-th API request gets 200 with half its JSON body")
    html_every: int = _knob(0, "every k-th API request gets 200 with a proxy's HTML error page")
    slow_every: int = _knob(0, "every k-th API request waits slow_seconds, then is answered")
    slow_seconds: float = _knob(0.0, "how long a slow request waits")
    insert_after_request: int = _knob(0, "after the k-th API request, insert_count leads arrive")
    insert_count: int = _knob(0, "how many new leads (newest createdAt) the insert creates")
    delete_after_request: int = _knob(0, "after the k-th API request, the oldest leads go")
    delete_count: int = _knob(0, "how many of the oldest leads the delete removes")
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

    def fault_for(self, number: int) -> str | None:
        """Return the fault answering API request `number`, or None to answer it normally.

        Slowness is separate (see `is_slow`): a slow request is still answered normally.
        """
        if number in self.script:
            scripted = self.script[number]
            return None if scripted == "slow" else scripted
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
