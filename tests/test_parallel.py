"""`max_parallel_requests`: windows read at once, emitted in order, same guarantees."""

from __future__ import annotations

import re
import threading
import time

import pytest
import requests

from tap_leadtrackr.paging import PageRequest
from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tap_leadtrackr.sending import FetchCancelledError, Sender
from tap_leadtrackr.tap import TapLeadTrackr
from tests.conftest import (
    assert_a_checkpoint_after_every_page,
    config_for,
    lead_requests,
    run_tap,
)


@pytest.fixture
def in_flight(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many pages were being fetched at once, each time one starts."""
    seen: list[int] = []
    lock = threading.Lock()
    count = 0
    original = requests.Session.send

    def counting(self, *args, **kwargs):
        nonlocal count
        with lock:
            count += 1
            seen.append(count)
        try:
            return original(self, *args, **kwargs)
        finally:
            with lock:
                count -= 1

    monkeypatch.setattr(requests.Session, "send", counting)
    return seen


def test_parallel_pages_emit_the_same_leads_in_the_same_order(in_flight) -> None:
    with Sandbox(Project(generate_leads(2000, seed=31)), faults=Faults(latency_ms=20)) as server:
        sequential = run_tap(config_for(server))
        one_at_a_time = len(lead_requests(server))
        server.clear_requests()
        parallel = run_tap(config_for(server, max_parallel_requests=4))

        requests = len(lead_requests(server))
    assert parallel.ids == sequential.ids
    # Each window costs a request to find its start and one for its last page.
    windows = 4
    assert requests <= one_at_a_time + 2 * windows
    assert max(in_flight) == 4


def test_a_checkpoint_still_follows_every_page_in_order() -> None:
    with Sandbox(Project(generate_leads(1000, seed=32))) as server:
        result = run_tap(config_for(server, page_size=50, max_parallel_requests=8))

    assert_a_checkpoint_after_every_page(result, 50)
    assert len(result.records) == 1000


def test_parallel_pages_are_faster_when_each_request_is_slow() -> None:
    with Sandbox(Project(generate_leads(2500, seed=33)), faults=Faults(latency_ms=60)) as server:
        started = time.monotonic()
        one_at_a_time = run_tap(config_for(server))
        sequential = time.monotonic() - started
        started = time.monotonic()
        four_at_once = run_tap(config_for(server, max_parallel_requests=4))
        parallel = time.monotonic() - started

    # Only a complete sync counts: one that stopped early would be fast too.
    assert len(one_at_a_time.ids) == len(set(one_at_a_time.ids)) == 2500
    assert four_at_once.ids == one_at_a_time.ids
    assert parallel < sequential * 0.6


def test_a_429_halves_the_parallelism_for_the_rest_of_the_run(monkeypatch, in_flight) -> None:
    monkeypatch.setattr(Sender, "sleep", staticmethod(lambda seconds, cancelled: None))
    monkeypatch.setattr(Sender, "pause", staticmethod(lambda seconds, cancelled: None))
    leads = generate_leads(3000, seed=34)
    faults = Faults(script={3: "429"}, retry_after="0", latency_ms=10)
    with Sandbox(Project(leads), faults=faults) as server:
        result = run_tap(config_for(server, max_parallel_requests=8))

    assert result.error is None
    assert sorted(result.ids) == sorted(lead["id"] for lead in leads)
    assert "now at most 4 requests at once" in result.log
    assert max(in_flight[-10:]) <= 4


def test_a_request_waiting_to_retry_stops_when_it_is_no_longer_wanted() -> None:
    # What lets a failing sync end at once instead of waiting for windows still reading.
    faults = Faults(script={1: "429"}, retry_after="30")
    with Sandbox(Project(generate_leads(50, seed=35)), faults=faults) as server:
        stream = TapLeadTrackr(config=config_for(server)).streams["leads"]
        fetch = stream.fetcher(None)
        cancelled = threading.Event()
        outcome: list[BaseException] = []

        def get() -> None:
            try:
                fetch(PageRequest(limit=100), cancelled)
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=get)
        started = time.monotonic()
        worker.start()
        time.sleep(0.3)
        cancelled.set()
        worker.join(timeout=10)

    assert time.monotonic() - started < 5
    assert len(outcome) == 1
    assert isinstance(outcome[0], FetchCancelledError)


def test_a_cancelled_wait_ends_no_other_requests_wait() -> None:
    # A 429's Retry-After binds every request of the read, whichever thread met it, and
    # outlives that thread: cancelling it (its window stopped) must not let others go.
    faults = Faults(script={1: "429"}, retry_after="1")
    with Sandbox(Project(generate_leads(50, seed=35)), faults=faults) as server:
        stream = TapLeadTrackr(config=config_for(server)).streams["leads"]
        fetch = stream.fetcher(None)
        cancelled = threading.Event()

        outcome: list[BaseException] = []

        def give_up() -> None:
            try:
                fetch(PageRequest(limit=100), cancelled)
            except BaseException as exc:
                outcome.append(exc)

        first = threading.Thread(target=give_up)
        first.start()
        while not lead_requests(server):
            time.sleep(0.01)
        time.sleep(0.05)
        cancelled.set()
        first.join(timeout=5)
        fetch(PageRequest(limit=100))
        after_the_429 = lead_requests(server)[1].received_at - lead_requests(server)[0].received_at

    assert after_the_429 >= 0.95
    assert [type(exc) for exc in outcome] == [FetchCancelledError]


def test_a_burst_of_429s_halves_the_parallelism_once(monkeypatch) -> None:
    monkeypatch.setattr(Sender, "sleep", staticmethod(lambda seconds, cancelled: None))
    monkeypatch.setattr(Sender, "pause", staticmethod(lambda seconds, cancelled: None))
    # Requests 2-5 find where the windows start, all at once: each meets a 429.
    faults = Faults(script=dict.fromkeys(range(2, 6), "429"), retry_after="0", latency_ms=30)
    with Sandbox(Project(generate_leads(2000, seed=36)), faults=faults) as server:
        result = run_tap(config_for(server, max_parallel_requests=8))

    assert result.error is None
    assert result.log.count("rate limited; now at most") == 1
    assert "now at most 4 requests at once" in result.log


def test_repeated_429s_halve_the_parallelism_from_4_to_2_to_1(monkeypatch) -> None:
    monkeypatch.setattr(Sender, "sleep", staticmethod(lambda seconds, cancelled: None))
    monkeypatch.setattr(Sender, "pause", staticmethod(lambda seconds, cancelled: None))
    latency = 0.05
    leads = generate_leads(4000, seed=37)
    faults = Faults(rate_limit_every=6, retry_after="0", latency_ms=latency * 1000)
    with Sandbox(Project(leads), faults=faults) as server:
        result = run_tap(config_for(server, max_parallel_requests=4))

        arrivals = sorted(request.received_at for request in lead_requests(server))
    assert sorted(result.ids) == sorted(lead["id"] for lead in leads)
    assert re.findall(r"rate limited; now at most (\d+) requests at once", result.log) == ["2", "1"]
    # The sandbox holds every request `latency` seconds: one that arrived less than that
    # before another was still in flight when the other arrived.
    in_flight = [
        1 + sum(1 for earlier in arrivals[:index] if arrival - earlier < latency)
        for index, arrival in enumerate(arrivals)
    ]
    assert max(in_flight[:10]) == 4
    assert in_flight[-10:] == [1] * 10
