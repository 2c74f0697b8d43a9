"""`Retry-After` binds every thread (`sending.py`).

Once the tap has met a 429 or a 503 with `Retry-After: s`, no request of the run leaves
for the server within those s seconds: not a thread that was waiting for a free slot when
it came, nor one that was about to send.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tap_leadtrackr.sending import Sender
from tests.conftest import config_for, lead_requests, run_tap


class OneRateLimit:
    """A session whose first request is answered 429 (`Retry-After: 1`) after 0.1 s."""

    status, reason = 429, "Too Many Requests"

    def __init__(self) -> None:
        self.sent: list[tuple[str, float]] = []
        self.lock = threading.Lock()
        self.limited_at = 0.0

    def send(self, request: requests.PreparedRequest, **_: object) -> requests.Response:
        with self.lock:
            self.sent.append((request.headers["X-Name"], time.monotonic()))
            first = len(self.sent) == 1
        response = requests.Response()
        response.url = "http://127.0.0.1/api/leads/getLeads"
        if first:
            time.sleep(0.1)
            response.status_code, response.reason = self.status, self.reason
            response.headers["Retry-After"] = "1"
            self.limited_at = time.monotonic()
        else:
            response.status_code, response._content = 200, b"{}"
        return response


class OneUnavailable(OneRateLimit):
    """A session whose first request is answered 503 (`Retry-After: 1`) after 0.1 s."""

    status, reason = 503, "Service Unavailable"


def raise_when_retriable(response: requests.Response) -> None:
    if response.status_code in (429, 503):
        raise RetriableAPIError(str(response.status_code), response)


def send_two(session: OneRateLimit, *, slots: int, second_after: float) -> float:
    """Send two requests from two threads; return when the second left after the first's answer."""
    sender = Sender(
        session,  # type: ignore[arg-type]
        timeout=5,
        max_retries=2,
        parallelism=slots,
        validate=raise_when_retriable,
        log=lambda *args, **kwargs: None,
        api_url="http://127.0.0.1",
    )

    def send(name: str) -> None:
        request = requests.Request("GET", "http://127.0.0.1/x", headers={"X-Name": name})
        sender.send(request.prepare(), lambda response: response.status_code, name)

    first = threading.Thread(target=send, args=("first",))
    first.start()
    time.sleep(second_after)
    second = threading.Thread(target=send, args=("second",))
    second.start()
    first.join()
    second.join()
    return next(at for name, at in session.sent if name == "second") - session.limited_at


def test_a_request_waiting_for_a_slot_waits_out_a_retry_after_met_meanwhile() -> None:
    # One slot: the first request holds it and meets a 429; the second checked for a pause
    # (none yet) and is waiting for the slot. It must not go before the Retry-After ends.
    session = OneRateLimit()
    after = send_two(session, slots=1, second_after=0.03)
    assert after >= 0.95, f"the second request left {after:.3f} s after a 429 asking for 1 s"


def test_a_503_with_retry_after_holds_the_other_threads_too() -> None:
    # RFC 9110: a 503's Retry-After is how long the service expects to be unavailable.
    session = OneUnavailable()
    after = send_two(session, slots=2, second_after=0.2)
    assert after >= 0.95, f"the second request left {after:.3f} s after a 503 asking for 1 s"


@pytest.mark.parametrize("script", [{10: "429", 20: "429"}, {12: "429", 25: "429"}])
def test_no_request_of_a_parallel_sync_reaches_the_server_inside_a_retry_after(script) -> None:
    # Four windows read at once; after the first 429 only two slots are left, so two
    # window threads wait for a slot: the next 429 frees one, and a waiting thread takes it.
    latency = 0.2
    faults = Faults(script=script, retry_after="1", latency_ms=latency * 1000)
    with Sandbox(Project(generate_leads(4000, seed=5)), faults=faults) as server:
        result = run_tap(config_for(server, max_parallel_requests=4))
        asked = lead_requests(server)

    assert len(result.records) == 4000
    for limited in (r for r in asked if r.status == 429):
        # The sandbox answers `latency` after a request arrives. A request that had left
        # before the tap read the 429 may arrive a little after (a new connection, a busy
        # machine); one that waited for a slot arrives when another request is answered.
        answered = limited.received_at + latency
        inside = [
            round(r.received_at - answered, 3)
            for r in asked
            if answered + 0.1 < r.received_at < answered + 0.95
        ]
        assert not inside, (
            f"requests arrived {inside} s after request {limited.number} was answered "
            "429 with Retry-After: 1"
        )
