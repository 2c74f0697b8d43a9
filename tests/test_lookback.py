"""`lookback_window_days`: recent leads come again with their current values."""

from __future__ import annotations

from datetime import timedelta

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.timestamps import format_timestamp, parse_timestamp
from tests.conftest import config_for, lead_requests, run_tap


def newest_before(leads: list[dict], moment) -> dict:
    return next(lead for lead in reversed(leads) if parse_timestamp(lead["createdAt"]) < moment)


def test_changes_inside_the_window_come_again_and_older_ones_do_not() -> None:
    with Sandbox(Project(generate_leads(800, seed=13))) as server:
        first = run_tap(config_for(server))
        bookmark = parse_timestamp(first.bookmark)
        leads = server.project.leads
        inside = newest_before(leads, bookmark - timedelta(days=3))
        outside = newest_before(leads, bookmark - timedelta(days=9))
        server.project.update_lead(inside["id"], status="Sale", price=125000)
        server.project.update_lead(outside["id"], status="lost", price=0)
        server.clear_requests()

        second = run_tap(config_for(server, lookback_window_days=7), state=first.last_state)

    by_id = {record["id"]: record for record in second.records}
    assert by_id[inside["id"]]["status"] == "Sale"
    assert by_id[inside["id"]]["price"] == 125000
    assert outside["id"] not in by_id
    window_start = format_timestamp(bookmark - timedelta(days=7))
    assert lead_requests(server)[0].params["createdAt[gte]"] == window_start
    assert set(by_id) == {lead["id"] for lead in leads if lead["createdAt"] >= window_start}
    assert second.error is None
    assert second.bookmark == first.bookmark


def test_the_bookmark_still_advances_to_the_newest_lead() -> None:
    with Sandbox(Project(generate_leads(300, seed=14))) as server:
        first = run_tap(config_for(server))
        new = server.project.add_leads(5)

        second = run_tap(config_for(server, lookback_window_days=30), state=first.last_state)

    assert {lead["id"] for lead in new} <= set(second.ids)
    assert second.bookmark == max(lead["createdAt"] for lead in new)
    # Mid-sync checkpoints never point before the old bookmark.
    assert all(
        state["bookmarks"]["leads"]["replication_key_value"] >= first.bookmark
        for state in second.states
        if state.get("bookmarks", {}).get("leads", {}).get("replication_key_value")
    )


def test_the_window_does_not_reach_before_start_date() -> None:
    with Sandbox(Project(generate_leads(300, seed=15))) as server:
        first = run_tap(config_for(server))
        start_date = format_timestamp(parse_timestamp(first.bookmark) - timedelta(days=2))
        server.clear_requests()

        run_tap(
            config_for(server, lookback_window_days=30, start_date=start_date),
            state=first.last_state,
        )

    assert lead_requests(server)[0].params["createdAt[gte]"] == start_date


def test_a_first_sync_is_not_affected_by_the_lookback() -> None:
    with Sandbox(Project(generate_leads(120, seed=16))) as server:
        result = run_tap(config_for(server, lookback_window_days=30, start_date="2026-01-01"))

    assert lead_requests(server)[0].params["createdAt[gte]"] == "2026-01-01T00:00:00.000Z"
    assert result.error is None
