"""Property: restarting from the last state until the sync finishes loses no lead.

For random projects (many leads sharing one `createdAt`), page sizes, fault patterns and
kill points, the union of what reached the target is every lead the sandbox holds, and
the final bookmark is the newest `createdAt`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_leadtrackr.client import LeadTrackrStream
from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tap_leadtrackr.timestamps import format_timestamp
from tests.conftest import bookmark_of, config_for, run_tap

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
FAULT_KINDS = ["429", "500", "502", "503", "truncated", "html", "reset"]


@st.composite
def projects(draw: st.DrawFn) -> list[dict]:
    count = draw(st.integers(min_value=0, max_value=180))
    # Few distinct instants for many leads: long runs of ties, some longer than a page.
    offsets = sorted(draw(st.lists(st.integers(0, 12), min_size=count, max_size=count)))
    leads = generate_leads(count, seed=draw(st.integers(0, 3)))
    for lead, offset in zip(leads, offsets, strict=True):
        lead["createdAt"] = format_timestamp(EPOCH + timedelta(seconds=offset))
    return leads


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    leads=projects(),
    page_size=st.sampled_from([1, 2, 5, 17, 50, 100]),
    faults=st.dictionaries(st.integers(1, 60), st.sampled_from(FAULT_KINDS), max_size=12),
    max_retries=st.integers(0, 2),
    kill_points=st.lists(st.integers(0, 400), max_size=4),
    parallel=st.sampled_from([1, 4]),
    inserted=st.integers(0, 30),
)
def test_restarts_from_the_last_state_deliver_every_lead(
    leads, page_size, faults, max_retries, kill_points, parallel, inserted
) -> None:
    original_sleep = LeadTrackrStream.sleep
    LeadTrackrStream.sleep = staticmethod(lambda seconds, cancelled: None)
    try:
        # Leads created while the first run pages through must arrive too.
        fault_plan = Faults(
            script=faults, retry_after="0", insert_after_request=2, insert_count=inserted
        )
        with Sandbox(Project(leads), faults=fault_plan) as server:
            config = config_for(
                server,
                page_size=page_size,
                max_retries=max_retries,
                max_parallel_requests=parallel,
            )
            delivered, state, kills = set(), None, list(kill_points)
            for _ in range(100):
                result = run_tap(config, state=state, expect_error=True)
                messages = result.messages
                killed = bool(kills) and kills[0] < len(messages)
                if killed:
                    messages = messages[: kills.pop(0)]
                elif kills:
                    kills.pop(0)
                for message in messages:
                    if message["type"] == "RECORD":
                        delivered.add(message["record"]["id"])
                    elif message["type"] == "STATE":
                        state = message["value"]
                if result.error is None and not killed:
                    break
            else:
                raise AssertionError("the sync never finished")
            # Leads created after the last request of that sync arrive in the next one.
            server.faults = Faults()
            next_run = run_tap(config, state=state)
            delivered |= set(next_run.ids)
            state = next_run.last_state
            every_lead = list(server.project.leads)
    finally:
        LeadTrackrStream.sleep = original_sleep

    assert delivered == {lead["id"] for lead in every_lead}
    newest = max((lead["createdAt"] for lead in every_lead), default=None)
    assert (bookmark_of(state) if state else None) == newest
