"""Lead touchpoints: the channel-flow parser, and the child stream end to end."""

from __future__ import annotations

import json
import typing as t
from collections import Counter, defaultdict
from datetime import timedelta
from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_leadtrackr import streams
from tap_leadtrackr.channel_flow import Session, parse_channel_flow, percent_decoded, touchpoints
from tap_leadtrackr.sandbox import Faults, Project, Sandbox, generate_leads
from tap_leadtrackr.sandbox.data import MALFORMED_CHANNEL_FLOWS
from tap_leadtrackr.schemas import TOUCHPOINT_SCHEMA
from tap_leadtrackr.tap import TapLeadTrackr
from tap_leadtrackr.timestamps import format_timestamp, parse_timestamp
from tests.conftest import (
    SyncResult,
    assert_a_checkpoint_after_every_page,
    bookmark_of,
    config_for,
    lead_requests,
    run_tap,
)
from tests.touchpoint_reference import expected_touchpoints, reference_touchpoints

UNKNOWN_FORM = "had a channelFlow in no known form"

COMPACT = (
    '[{"t":1753080000000,"ch":{"s":"google","m":"cpc","cm":"zomeractie","ct":"ad-a",'
    '"tm":"zonnepanelen"},"lp":"/tracking"},'
    '{"t":1753512000123,"ch":{"s":"direct","m":"none"},"lp":"/prijzen"}]'
)
COMPACT_SESSIONS: list[Session] = [
    {
        "occurred_at": "2025-07-21T06:40:00.000Z",
        "source": "google",
        "medium": "cpc",
        "campaign": "zomeractie",
        "content": "ad-a",
        "term": "zonnepanelen",
        "landing_page": "/tracking",
    },
    {
        "occurred_at": "2025-07-26T06:40:00.123Z",
        "source": "direct",
        "medium": "none",
        "campaign": None,
        "content": None,
        "term": None,
        "landing_page": "/prijzen",
    },
]
OLDER = (
    '[{"timestamp": 1753080000000, "channel": {"source": "google", "medium": "cpc", '
    '"campaign": "", "content": "", "term": ""}}, '
    '{"timestamp": 1753512000000, "channel": {"source": "facebook.com", "medium": "referral", '
    '"campaign": "(not set)", "content": "", "term": ""}}]'
)
OLDER_SESSIONS: list[Session] = [
    {
        "occurred_at": "2025-07-21T06:40:00.000Z",
        "source": "google",
        "medium": "cpc",
        "campaign": None,
        "content": None,
        "term": None,
        "landing_page": None,
    },
    {
        "occurred_at": "2025-07-26T06:40:00.000Z",
        "source": "facebook.com",
        "medium": "referral",
        "campaign": "(not set)",
        "content": None,
        "term": None,
        "landing_page": None,
    },
]


def encode_uri_component(text: str) -> str:
    """What a browser's `encodeURIComponent` makes of a cookie value."""
    return quote(text, safe="-_.!~*'()")


# The parser, one form at a time -------------------------------------------------------------


def test_the_compact_form_as_json_text() -> None:
    assert parse_channel_flow(COMPACT) == COMPACT_SESSIONS


def test_the_older_form_as_json_text() -> None:
    assert parse_channel_flow(OLDER) == OLDER_SESSIONS


@pytest.mark.parametrize(
    ("text", "sessions"), [(COMPACT, COMPACT_SESSIONS), (OLDER, OLDER_SESSIONS)]
)
def test_either_form_already_parsed(text: str, sessions: list) -> None:
    assert parse_channel_flow(json.loads(text)) == sessions


@pytest.mark.parametrize(
    ("text", "sessions"), [(COMPACT, COMPACT_SESSIONS), (OLDER, OLDER_SESSIONS)]
)
@pytest.mark.parametrize(
    "encode",
    [encode_uri_component, lambda text: quote(text, safe=""), lambda text: quote(text).lower()],
    ids=["encodeURIComponent", "all-escaped", "lowercase-hex"],
)
def test_either_form_as_a_url_encoded_cookie(
    text: str, sessions: list, encode: t.Callable[[str], str]
) -> None:
    cookie = encode(text)
    assert cookie.lower().startswith("%5b")

    assert parse_channel_flow(cookie) == sessions


def test_a_cookie_keeps_non_ascii_and_escaped_characters() -> None:
    flow = [
        {
            "t": 1753080000000,
            "ch": {"s": "newsletter", "cm": "winactie-café 50%"},
            "lp": "/ü?a=1&b=2",
        }
    ]
    cookie = encode_uri_component(json.dumps(flow, ensure_ascii=False))

    [session] = parse_channel_flow(cookie) or []

    assert session["campaign"] == "winactie-café 50%"
    assert session["landing_page"] == "/ü?a=1&b=2"


def test_an_array_mixing_both_forms_reads_each_session_by_its_own_form() -> None:
    mixed = [json.loads(OLDER)[0], json.loads(COMPACT)[1]]

    assert parse_channel_flow(mixed) == [OLDER_SESSIONS[0], COMPACT_SESSIONS[1]]


@pytest.mark.parametrize("value", [None, "", "   ", "[]", [], "%5B%5D"])
def test_no_journey_is_no_touchpoints_and_not_an_unknown_form(value: object) -> None:
    assert parse_channel_flow(value) == []


@pytest.mark.parametrize(
    "value",
    [
        *MALFORMED_CHANNEL_FLOWS,
        '{"t": 1753080000000, "ch": {"s": "google"}}',  # one session, not an array
        "[1, 2]",
        '[{"source": "google", "medium": "cpc"}]',  # a session in neither form
        '[{"t": "yesterday"}]',
        '[{"t": 1e30}]',
        '[{"t": true}]',
        '[{"t": 1753080000000, "ch": "google/cpc"}]',
        '[{"t": 1753080000000, "ch": {"s": ["google"]}}]',
        '[{"t": 1753080000000}, null]',
        "%5B%7Bnot json",
        "%255B%257B",  # encoded twice
        42,
        {"t": 1753080000000},
        True,
    ],
)
def test_a_value_in_no_known_form_gives_none_and_never_raises(value: object) -> None:
    assert parse_channel_flow(value) is None


@pytest.mark.parametrize(
    ("moment", "occurred_at"),
    [
        (1753080000000, "2025-07-21T06:40:00.000Z"),
        (1753080000999, "2025-07-21T06:40:00.999Z"),
        (1753080000000.9, "2025-07-21T06:40:00.000Z"),
        ("1753080000001", "2025-07-21T06:40:00.001Z"),
        ("2025-07-21T08:40:00+02:00", "2025-07-21T06:40:00.000Z"),
        (None, None),
    ],
)
def test_session_times_are_spelled_like_created_at(moment: object, occurred_at: str | None) -> None:
    [session] = parse_channel_flow([{"t": moment, "ch": {"s": "google"}}]) or []

    assert session["occurred_at"] == occurred_at


def test_a_number_sent_as_a_channel_value_becomes_text() -> None:
    [session] = parse_channel_flow([{"t": 1, "ch": {"cm": 12345, "ct": 6.5}}]) or []

    assert (session["campaign"], session["content"]) == ("12345", "6.5")


def test_touchpoints_are_numbered_from_the_first_touch() -> None:
    records = touchpoints(7, "2025-08-01T00:00:00.000Z", COMPACT_SESSIONS + OLDER_SESSIONS)

    assert [r["position"] for r in records] == [1, 2, 3, 4]
    assert [r["is_first_touch"] for r in records] == [True, False, False, False]
    assert [r["is_last_touch"] for r in records] == [False, False, False, True]
    assert {r["lead_id"] for r in records} == {7}
    assert {r["createdAt"] for r in records} == {"2025-08-01T00:00:00.000Z"}
    assert records[0] == {
        "lead_id": 7,
        "position": 1,
        **COMPACT_SESSIONS[0],
        "is_first_touch": True,
        "is_last_touch": False,
        "createdAt": "2025-08-01T00:00:00.000Z",
    }
    assert set(records[0]) == set(TOUCHPOINT_SCHEMA.to_dict()["properties"])


def test_a_single_session_is_both_the_first_and_the_last_touch() -> None:
    [record] = touchpoints(1, "2025-08-01T00:00:00.000Z", OLDER_SESSIONS[:1])

    assert record["is_first_touch"]
    assert record["is_last_touch"]


_ESCAPE_SOUP = st.lists(
    st.sampled_from(
        [
            "%",
            "=",
            "a",
            "F",
            "0",
            "9",
            "\n",
            "\r",
            " ",
            "é",
            "😀",
            "%C3",
            "%a9",
            "%0A",
            "%25",
            "=3D",
        ]
    ),
    max_size=30,
).map("".join)


@given(_ESCAPE_SOUP)
def test_percent_decoding_agrees_with_unquote_on_any_text(text: str) -> None:
    assert percent_decoded(text) == unquote(text)


@given(st.text())
def test_percent_decoding_undoes_encode_uri_component(text: str) -> None:
    assert percent_decoded(encode_uri_component(text)) == text


# The stream end to end -----------------------------------------------------------------------

LEADS = "leads"
TOUCHPOINTS = "lead_touchpoints"


def catalog_selecting(config: dict[str, t.Any], *selected: str) -> dict[str, t.Any]:
    """The discovered catalog with exactly these streams selected."""
    catalog = TapLeadTrackr(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in selected
    return catalog


def sync(
    server: Sandbox,
    *selected: str,
    state: dict | None = None,
    expect_error: bool = False,
    **settings: t.Any,
) -> SyncResult:
    config = config_for(server, **settings)
    catalog = catalog_selecting(config, *selected)
    return run_tap(config, state=state, catalog=catalog, expect_error=expect_error)


def records_of(result: SyncResult, stream: str) -> list[dict[str, t.Any]]:
    return [m["record"] for m in result.messages if m["type"] == "RECORD" and m["stream"] == stream]


def schemas_of(result: SyncResult, stream: str) -> list[dict[str, t.Any]]:
    return [m for m in result.messages if m["type"] == "SCHEMA" and m["stream"] == stream]


def by_lead(records: list[dict[str, t.Any]]) -> dict[int, list[dict[str, t.Any]]]:
    grouped: dict[int, list[dict[str, t.Any]]] = defaultdict(list)
    for record in records:
        grouped[record["lead_id"]].append(record)
    return grouped


def pages_requested(server: Sandbox) -> list[dict[str, str]]:
    return [request.params for request in lead_requests(server)]


def touchpoints_bookmark(state: dict[str, t.Any]) -> str | None:
    return state.get("bookmarks", {}).get(TOUCHPOINTS, {}).get("replication_key_value")


def test_every_lead_gets_exactly_the_touchpoints_of_its_channel_flow(sandbox: Sandbox) -> None:
    result = sync(sandbox, LEADS, TOUCHPOINTS)

    leads = records_of(result, LEADS)
    emitted = by_lead(records_of(result, TOUCHPOINTS))
    assert len(leads) == 1000
    for lead in leads:
        assert emitted.get(lead["id"], []) == expected_touchpoints(lead), lead["id"]
    keys = [(r["lead_id"], r["position"]) for r in records_of(result, TOUCHPOINTS)]
    assert len(keys) == len(set(keys)) > 1000
    forms = Counter(type(lead["channelFlow"]).__name__ for lead in sandbox.project.leads)
    assert min(forms["list"], forms["str"], forms["NoneType"]) > 0, "every form should be exercised"


def test_the_touchpoints_schema_is_written_once_with_its_keys_and_bookmark(
    sandbox: Sandbox,
) -> None:
    result = sync(sandbox, LEADS, TOUCHPOINTS, page_size=50)

    [schema] = schemas_of(result, TOUCHPOINTS)
    assert schema["schema"]["properties"] == TOUCHPOINT_SCHEMA.to_dict()["properties"]
    assert schema["key_properties"] == ["lead_id", "position"]
    assert schema["bookmark_properties"] == ["createdAt"]
    assert len(schemas_of(result, LEADS)) == 1


def test_the_touchpoints_state_is_one_bookmark_on_the_last_lead_read(sandbox: Sandbox) -> None:
    result = sync(sandbox, LEADS, TOUCHPOINTS, page_size=50)

    assert result.last_state["bookmarks"][TOUCHPOINTS] == {
        "replication_key": "createdAt",
        "replication_key_value": result.bookmark,
    }
    for state in result.states:
        assert set(state["bookmarks"].get(TOUCHPOINTS, {})) <= {
            "replication_key",
            "replication_key_value",
            "starting_replication_value",
            "replication_key_signpost",
        }


def test_channel_flows_in_no_known_form_are_counted_and_reported_once(sandbox: Sandbox) -> None:
    result = sync(sandbox, LEADS, TOUCHPOINTS, page_size=50)

    unknown = [
        lead["id"] for lead in records_of(result, LEADS) if reference_touchpoints(lead) is None
    ]
    assert unknown, "the generated project should hold malformed journeys"
    assert not set(unknown) & {r["lead_id"] for r in records_of(result, TOUCHPOINTS)}
    reports = [line for line in result.log.splitlines() if UNKNOWN_FORM in line]
    assert reports == [f"{len(unknown)} leads {UNKNOWN_FORM}, e.g. lead {unknown[0]}"]


def test_a_project_without_odd_channel_flows_reports_nothing() -> None:
    leads = [
        lead for lead in generate_leads(200, seed=4) if reference_touchpoints(lead) is not None
    ]
    with Sandbox(Project(leads)) as server:
        result = sync(server, LEADS, TOUCHPOINTS)

    assert records_of(result, TOUCHPOINTS)
    assert UNKNOWN_FORM not in result.log


def test_selecting_touchpoints_costs_no_request_and_changes_no_lead(sandbox: Sandbox) -> None:
    leads_only = sync(sandbox, LEADS, page_size=100)
    pages = pages_requested(sandbox)
    sandbox.clear_requests()
    both = sync(sandbox, LEADS, TOUCHPOINTS, page_size=100)

    assert pages_requested(sandbox) == pages
    assert len(pages) >= 10
    assert records_of(both, LEADS) == records_of(leads_only, LEADS)
    assert records_of(leads_only, TOUCHPOINTS) == []
    assert schemas_of(leads_only, TOUCHPOINTS) == []


def test_selecting_only_touchpoints_reads_the_leads_once_and_writes_none(sandbox: Sandbox) -> None:
    both = sync(sandbox, LEADS, TOUCHPOINTS, page_size=100)
    pages = pages_requested(sandbox)
    sandbox.clear_requests()

    only = sync(sandbox, TOUCHPOINTS, page_size=100)

    assert pages_requested(sandbox) == pages
    assert records_of(only, LEADS) == []
    assert schemas_of(only, LEADS) == []
    assert records_of(only, TOUCHPOINTS) == records_of(both, TOUCHPOINTS)
    assert touchpoints_bookmark(only.last_state) == both.bookmark


def test_touchpoints_are_not_selected_by_default(sandbox: Sandbox) -> None:
    result = run_tap(config_for(sandbox))

    assert result.error is None
    assert {m["stream"] for m in result.messages if m["type"] in ("SCHEMA", "RECORD")} == {LEADS}


def test_touchpoints_not_selected_cost_no_parsing(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(value: object) -> None:
        raise AssertionError("parsed a channel flow for a stream that is not selected")

    monkeypatch.setattr(streams, "parse_channel_flow", refuse)

    result = sync(sandbox, LEADS)

    assert len(records_of(result, LEADS)) == 1000


def test_state_after_every_page_covers_the_leads_and_touchpoints_written(
    sandbox: Sandbox,
) -> None:
    result = sync(sandbox, LEADS, TOUCHPOINTS, page_size=50)
    expected = {lead["id"]: len(expected_touchpoints(lead)) for lead in records_of(result, LEADS)}

    emitted_leads: list[dict[str, t.Any]] = []
    written: Counter[int] = Counter()
    bookmark = None
    checkpoints = 0
    for message in result.messages:
        if message["type"] == "RECORD" and message["stream"] == LEADS:
            emitted_leads.append(message["record"])
        elif message["type"] == "RECORD":
            written[message["record"]["lead_id"]] += 1
        elif message["type"] == "STATE":
            bookmark = bookmark_of(message["value"])
            assert bookmark is None or bookmark == emitted_leads[-1]["createdAt"]
            # Resuming from here skips no touchpoint: every lead before the bookmark is done.
            if touchpoint_bookmark := touchpoints_bookmark(message["value"]):
                checkpoints += 1
                for lead in emitted_leads:
                    if lead["createdAt"] < touchpoint_bookmark:
                        assert written[lead["id"]] == expected[lead["id"]], lead["id"]
    assert len(emitted_leads) == 1000
    assert checkpoints >= 20
    assert_a_checkpoint_after_every_page(result, 50)


def test_a_rerun_from_the_final_state_emits_touchpoints_only_for_the_boundary_leads(
    sandbox: Sandbox,
) -> None:
    first = sync(sandbox, LEADS, TOUCHPOINTS)
    sandbox.clear_requests()

    second = sync(sandbox, LEADS, TOUCHPOINTS, state=first.last_state)

    boundary = [lead for lead in records_of(first, LEADS) if lead["createdAt"] == first.bookmark]
    assert {lead["id"] for lead in records_of(second, LEADS)} == {lead["id"] for lead in boundary}
    assert records_of(second, TOUCHPOINTS) == [
        record for lead in boundary for record in expected_touchpoints(lead)
    ]
    assert len(lead_requests(sandbox)) == 1
    assert pages_requested(sandbox)[0]["createdAt[gte]"] == first.bookmark
    assert touchpoints_bookmark(second.last_state) == first.bookmark


def test_a_rerun_of_only_touchpoints_starts_at_their_own_bookmark(sandbox: Sandbox) -> None:
    first = sync(sandbox, TOUCHPOINTS)
    bookmark = touchpoints_bookmark(first.last_state)
    sandbox.clear_requests()

    second = sync(sandbox, TOUCHPOINTS, state=first.last_state)

    boundary = {lead["id"] for lead in sandbox.project.leads if lead["createdAt"] == bookmark}
    assert {r["lead_id"] for r in records_of(second, TOUCHPOINTS)} <= boundary
    assert [p["createdAt[gte]"] for p in pages_requested(sandbox)] == [bookmark]


def test_touchpoints_selected_later_catch_up_without_repeating_leads(sandbox: Sandbox) -> None:
    leads_only = sync(sandbox, LEADS)
    full_sync = len(lead_requests(sandbox))
    sandbox.clear_requests()

    both = sync(sandbox, LEADS, TOUCHPOINTS, state=leads_only.last_state)

    boundary = {
        lead["id"] for lead in sandbox.project.leads if lead["createdAt"] == leads_only.bookmark
    }
    assert {lead["id"] for lead in records_of(both, LEADS)} == boundary
    everything = [r for lead in records_of(leads_only, LEADS) for r in expected_touchpoints(lead)]
    assert records_of(both, TOUCHPOINTS) == everything
    assert len(lead_requests(sandbox)) == full_sync
    assert both.bookmark == touchpoints_bookmark(both.last_state) == leads_only.bookmark


def test_each_stream_resumes_from_its_own_bookmark(sandbox: Sandbox) -> None:
    first = sync(sandbox, LEADS, TOUCHPOINTS, page_size=100)
    created = [lead["createdAt"] for lead in records_of(first, LEADS)]
    leads_at, touchpoints_at = created[499], created[199]
    state = {
        "bookmarks": {
            LEADS: {"replication_key": "createdAt", "replication_key_value": leads_at},
            TOUCHPOINTS: {"replication_key": "createdAt", "replication_key_value": touchpoints_at},
        }
    }
    sandbox.clear_requests()

    resumed = sync(sandbox, LEADS, TOUCHPOINTS, state=state, page_size=100)

    assert pages_requested(sandbox)[0]["createdAt[gte]"] == touchpoints_at
    assert [lead["createdAt"] for lead in records_of(resumed, LEADS)] == [
        c for c in created if c >= leads_at
    ]
    assert records_of(resumed, TOUCHPOINTS) == [
        record
        for lead in records_of(first, LEADS)
        if lead["createdAt"] >= touchpoints_at
        for record in expected_touchpoints(lead)
    ]
    assert resumed.bookmark == touchpoints_bookmark(resumed.last_state) == first.bookmark


def test_reading_only_touchpoints_leaves_the_leads_bookmark_where_it_was(sandbox: Sandbox) -> None:
    only_touchpoints = sync(sandbox, TOUCHPOINTS)
    assert bookmark_of(only_touchpoints.last_state) is None

    both = sync(sandbox, "leads", TOUCHPOINTS, state=only_touchpoints.last_state)

    assert {r["id"] for r in records_of(both, "leads")} == {
        lead["id"] for lead in sandbox.project.leads
    }


def test_touchpoints_do_not_depend_on_selecting_the_leads_channel_flow(sandbox: Sandbox) -> None:
    config = config_for(sandbox)
    catalog = catalog_selecting(config, "leads", TOUCHPOINTS)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if entry["tap_stream_id"] == "leads" and metadata["breadcrumb"] == [
                "properties",
                "channelFlow",
            ]:
                metadata["metadata"]["selected"] = False

    result = run_tap(config, catalog=catalog)

    assert result.error is None
    assert all("channelFlow" not in r for r in records_of(result, "leads"))
    expected = [tp for lead in sandbox.project.leads for tp in expected_touchpoints(lead)]
    key = lambda tp: (tp["lead_id"], tp["position"])  # noqa: E731
    assert expected
    assert sorted(records_of(result, TOUCHPOINTS), key=key) == sorted(expected, key=key)


def test_a_lead_without_a_channel_flow_field_is_read_without_touchpoints() -> None:
    # A beta API may leave out a null field altogether.
    leads = generate_leads(30, seed=8)
    del leads[4]["channelFlow"]
    with Sandbox(Project(leads)) as server:
        result = sync(server, "leads", TOUCHPOINTS)

    assert len(records_of(result, "leads")) == 30
    assert leads[4]["id"] not in {tp["lead_id"] for tp in records_of(result, TOUCHPOINTS)}


# Touchpoints when the sync does not go straight through ----------------------------------
#
# Each test replays what a target received, over one run or several, and checks at every
# STATE that resuming from it skips no touchpoint, and at the end that every one arrived.

Key = tuple[int, int]


def replay(
    runs: list[list[dict[str, t.Any]]],
    leads: list[dict[str, t.Any]],
    *,
    may_include: t.Sequence[dict[str, t.Any]] = (),
) -> dict[Key, dict[str, t.Any]]:
    """The touchpoints a target holds after these runs' messages, upserted on their key.

    At every STATE: its touchpoints bookmark is not older than the one before, and each of
    `leads` created before it has all its touchpoints already (the leads at the bookmark
    itself come again). Every touchpoint is one of `leads` or `may_include` (leads deleted
    during the sync), with the values the reference reads from its channel flow.
    """
    reference = {
        (record["lead_id"], record["position"]): record
        for lead in [*may_include, *leads]
        for record in expected_touchpoints(lead)
    }
    oldest_first = sorted(leads, key=lambda lead: lead["createdAt"])
    delivered: dict[Key, dict[str, t.Any]] = {}
    previous: str | None = None
    for messages in runs:
        for message in messages:
            if message["type"] == "RECORD" and message["stream"] == TOUCHPOINTS:
                record = message["record"]
                key = (record["lead_id"], record["position"])
                assert record == reference.get(key), f"touchpoint {key} is not the expected one"
                delivered[key] = record
            elif message["type"] == "STATE" and (
                bookmark := touchpoints_bookmark(message["value"])
            ):
                assert previous is None or bookmark >= previous, "the bookmark moved back"
                previous = bookmark
                for lead in oldest_first:
                    if lead["createdAt"] >= bookmark:
                        break
                    for record in expected_touchpoints(lead):
                        key = (record["lead_id"], record["position"])
                        assert key in delivered, (
                            f"a state at {bookmark} skips touchpoint {key} of a lead created "
                            f"at {lead['createdAt']}"
                        )
    return delivered


def every_touchpoint(leads: list[dict[str, t.Any]]) -> set[Key]:
    return {(r["lead_id"], r["position"]) for lead in leads for r in expected_touchpoints(lead)}


def last_state_in(messages: list[dict[str, t.Any]]) -> dict[str, t.Any] | None:
    states = [message["value"] for message in messages if message["type"] == "STATE"]
    return states[-1] if states else None


def newest(leads: list[dict[str, t.Any]]) -> str:
    return max(lead["createdAt"] for lead in leads)


def kill_point(messages: list[dict[str, t.Any]], where: str, nth: int) -> int:
    """How many messages a run killed at `where`, in its `nth` run of lead records, had written.

    A page shows as its lead records, a checkpoint, then its leads' touchpoints.
    """
    kinds = [m["stream"] if m["type"] == "RECORD" else m["type"] for m in messages]
    starts = [i for i, kind in enumerate(kinds) if kind == LEADS and kinds[i - 1] != LEADS]
    first = starts[nth - 1]
    last = next(i for i in range(first, len(kinds)) if kinds[i] != LEADS)
    if where == "among the leads":
        return (first + last) // 2
    checkpoint = kinds.index("STATE", last)
    if where == "after the leads' checkpoint":
        return checkpoint + 1
    begin = kinds.index(TOUCHPOINTS, checkpoint)
    end = next(i for i in range(begin, len(kinds)) if kinds[i] != TOUCHPOINTS)
    return (begin + end) // 2


@pytest.mark.parametrize("parallel", [1, 4])
@pytest.mark.parametrize(
    "where", ["among the leads", "after the leads' checkpoint", "among the touchpoints"]
)
def test_a_sync_killed_mid_page_resumes_from_its_last_state_with_every_touchpoint(
    sandbox: Sandbox, parallel: int, where: str
) -> None:
    settings = {"page_size": 50, "max_parallel_requests": parallel}
    whole = sync(sandbox, LEADS, TOUCHPOINTS, **settings)
    # What a run killed there had written: its output up to that point.
    killed = whole.messages[: kill_point(whole.messages, where, nth=7)]
    state = last_state_in(killed)
    assert touchpoints_bookmark(state or {}), "the kill should come after a checkpoint"

    resumed = sync(sandbox, LEADS, TOUCHPOINTS, state=state, **settings)

    leads = sandbox.project.leads
    delivered = replay([killed, resumed.messages], leads)
    assert set(delivered) == every_touchpoint(leads)
    assert touchpoints_bookmark(resumed.last_state) == resumed.bookmark == newest(leads)
    lead_ids = {m["record"]["id"] for m in killed if m["type"] == "RECORD" and m["stream"] == LEADS}
    assert lead_ids | {r["id"] for r in records_of(resumed, LEADS)} == {
        lead["id"] for lead in leads
    }


@pytest.mark.parametrize("parallel", [1, 4])
def test_runs_killed_again_and_again_deliver_every_touchpoint_in_the_end(
    sandbox: Sandbox, parallel: int
) -> None:
    settings = {"page_size": 50, "max_parallel_requests": parallel}
    runs: list[list[dict[str, t.Any]]] = []
    state = None
    # Messages each run writes before it is killed; the last run goes to the end.
    for kill_after in [333, 1, 517, 90, 1204, None]:
        result = sync(sandbox, LEADS, TOUCHPOINTS, state=state, **settings)
        written = result.messages[:kill_after]
        runs.append(written)
        state = last_state_in(written) or state

    leads = sandbox.project.leads
    assert set(replay(runs, leads)) == every_touchpoint(leads)
    assert touchpoints_bookmark(state or {}) == newest(leads)


def test_parallel_pages_give_the_touchpoints_and_checkpoints_of_a_sequential_sync() -> None:
    leads = generate_leads(1500, seed=23)
    with Sandbox(Project(leads), faults=Faults(latency_ms=5)) as server:
        sequential = sync(server, LEADS, TOUCHPOINTS, page_size=50)
        parallel = sync(server, LEADS, TOUCHPOINTS, page_size=50, max_parallel_requests=4)

    key = lambda record: (record["lead_id"], record["position"])  # noqa: E731
    assert sorted(records_of(parallel, TOUCHPOINTS), key=key) == sorted(
        records_of(sequential, TOUCHPOINTS), key=key
    )
    assert set(replay([parallel.messages], leads)) == every_touchpoint(leads)
    assert touchpoints_bookmark(parallel.last_state) == newest(leads)


def test_touchpoints_of_leads_read_again_by_the_lookback_come_again() -> None:
    with Sandbox(Project(generate_leads(800, seed=13))) as server:
        first = sync(server, LEADS, TOUCHPOINTS)
        bookmark = touchpoints_bookmark(first.last_state)
        added = server.project.add_leads(40)
        assert bookmark

        second = sync(
            server,
            LEADS,
            TOUCHPOINTS,
            state=first.last_state,
            page_size=10,
            lookback_window_days=30,
        )
        leads = server.project.leads

    window_start = format_timestamp(parse_timestamp(bookmark) - timedelta(days=30))
    read_again = [lead for lead in leads if window_start <= lead["createdAt"] <= bookmark]
    assert len(read_again) > 20, "the window should span pages"
    assert every_touchpoint(read_again), "the window should hold journeys"
    assert {r["id"] for r in records_of(second, LEADS)} == {
        lead["id"] for lead in [*read_again, *added]
    }
    replay([first.messages, second.messages], leads)
    second_touchpoints = {(r["lead_id"], r["position"]) for r in records_of(second, TOUCHPOINTS)}
    assert second_touchpoints == every_touchpoint([*read_again, *added])
    # The bookmark never moves back, within the run or from the run before.
    assert all(
        touchpoints_bookmark(state) >= bookmark
        for state in second.states
        if touchpoints_bookmark(state)
    )
    assert touchpoints_bookmark(second.last_state) == newest(leads)


@pytest.mark.parametrize("parallel", [1, 4])
def test_touchpoints_of_every_surviving_lead_arrive_when_leads_are_deleted_mid_sync(
    parallel: int,
) -> None:
    leads = generate_leads(1000, seed=24)
    faults = Faults(delete_after_request=3, delete_count=37)
    with Sandbox(Project(leads), faults=faults) as server:
        result = sync(server, LEADS, TOUCHPOINTS, max_parallel_requests=parallel)
        survivors = server.project.leads

    assert len(survivors) == len(leads) - 37
    delivered = replay([result.messages], survivors, may_include=leads)
    assert every_touchpoint(survivors) <= set(delivered)
    assert touchpoints_bookmark(result.last_state) == newest(survivors)


@pytest.mark.parametrize("parallel", [1, 4])
def test_a_sync_that_fails_mid_way_checkpoints_no_touchpoint_it_did_not_write(
    parallel: int,
) -> None:
    leads = generate_leads(1000, seed=25)
    settings = {"page_size": 50, "max_parallel_requests": parallel}
    with Sandbox(Project(leads), faults=Faults(revoke_key_after_request=6)) as server:
        failed = sync(server, LEADS, TOUCHPOINTS, expect_error=True, **settings)
        server.faults = Faults()
        resumed = sync(server, LEADS, TOUCHPOINTS, state=failed.last_state, **settings)

    assert "rejected the API key" in str(failed.error)
    written = records_of(failed, TOUCHPOINTS)
    assert written, "the sync should fail after some touchpoints"
    assert len(records_of(failed, LEADS)) < len(leads)
    # Every checkpoint of the failed run, its last one included, covers what came before it.
    replay([failed.messages], leads)
    assert set(replay([failed.messages, resumed.messages], leads)) == every_touchpoint(leads)
