"""The streams: LeadTrackr's leads list, and what is derived from it."""

from __future__ import annotations

import json
import sys
import typing as t
from datetime import timedelta
from functools import cached_property

from singer_sdk import Stream
from singer_sdk.exceptions import AbortedSyncFailedException, AbortedSyncPausedException
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE, REPLICATION_INCREMENTAL

from tap_leadtrackr.channel_flow import parse_channel_flow, touchpoints
from tap_leadtrackr.client import LeadTrackrStream
from tap_leadtrackr.paging import OLDEST_FIRST, ContractError, Page, PageRequest, read_range
from tap_leadtrackr.privacy import protect_leads
from tap_leadtrackr.projects import project_keys
from tap_leadtrackr.reconcile import FullRead, Reconcile
from tap_leadtrackr.schemas import (
    LEAD_FIELDS,
    LEAD_SCHEMA,
    PROJECT_FIELD,
    TOUCHPOINT_SCHEMA,
    with_project,
)
from tap_leadtrackr.sdk_hooks import OneSchemaPerRun, PageCheckpoints
from tap_leadtrackr.timestamps import (
    ONE_MILLISECOND,
    canonical_timestamp,
    format_timestamp,
    parse_timestamp,
)

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record

#: Settings that are server-side filters, and the `getLeads` parameter each one is.
FILTER_PARAMETERS: dict[str, str] = {
    "statuses": "status",
    "form_name": "formName",
    "unique_identifier": "uniqueIdentifier",
    "email": "email",
    "phone": "phone",
    "search": "search",
    "gclid_exists": "gclid[exists]",
    "cid_exists": "cid[exists]",
    "fbp_exists": "fbp[exists]",
    "fbc_exists": "fbc[exists]",
}
#: Every parameter the tap sends, with the setting a user would change about it.
SETTING_OF_PARAMETER: dict[str, str] = {
    **{parameter: setting for setting, parameter in FILTER_PARAMETERS.items()},
    "createdAt[gte]": "start_date (or the state's bookmark)",
    "createdAt[lte]": "end_date",
    "limit": "page_size",
}


def status_list(value: str | list[str] | None) -> list[str]:
    """`statuses` as a list, from a list or one comma-separated string."""
    items = value.split(",") if isinstance(value, str) else (value or [])
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))


def filter_parameters(config: t.Mapping[str, t.Any]) -> dict[str, str]:
    """The server-side filters the settings ask for, as `getLeads` query parameters."""
    params: dict[str, str] = {}
    for setting, parameter in FILTER_PARAMETERS.items():
        value = config.get(setting)
        if value is None:
            continue
        if setting == "statuses":
            if statuses := status_list(value):
                params[parameter] = ",".join(statuses)
        elif isinstance(value, bool):
            params[parameter] = "true" if value else "false"
        elif value != "":
            params[parameter] = str(value)
    return params


class LeadsStream(Reconcile, LeadTrackrStream):
    """Leads, oldest first, from `GET /api/leads/getLeads`."""

    name = "leads"
    path = "/api/leads/getLeads"
    primary_keys = ("id",)
    replication_key = "createdAt"
    # Sorted ascending on the server, so the bookmark can advance during the sync.
    is_sorted = True
    schema = LEAD_SCHEMA.to_dict()
    # Records are decoded from JSON and shaped in `prepare_records`; the SDK's per-value
    # conformance pass would only copy them.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        identify_projects(self)
        self._window: tuple[str | None, str | None] = (None, None)
        self._bookmark: str | None = None
        self._unknown_fields: set[str] = set()
        self._touchpoints: LeadTouchpointsStream | None = None
        self._held_back_before: str | None = None
        self._journeys: list[dict[str, t.Any]] = []

    @override
    def request_records(self, context: Context | None) -> t.Iterable[dict]:
        self._bookmark = self.get_context_state(context).get("replication_key_value")
        self._window = (self.window_start(context), self.window_end())
        self.prepare_touchpoints(context)
        # `reconcile`: records carry the run's table version, activated once all are read.
        self.begin_reconcile(self.tap.initialized_at, self._touchpoints)
        yield from super().request_records(context)
        self.read_to_end(context, refused=self.refused_projects)
        if self._touchpoints is not None:
            self._touchpoints.report_unknown_channel_flows()

    def window_start(self, context: Context | None) -> str | None:
        """The oldest `createdAt` to ask for (see `read_start`)."""
        return read_start(self, context)

    @override
    def advance_bookmark(self, last_record: dict[str, t.Any], context: Context | None) -> None:
        # Leads re-read through the lookback window are older than the bookmark: they
        # must not move it back (nor trip the SDK's sort check).
        if self._bookmark and last_record["createdAt"] < self._bookmark:
            return
        super().advance_bookmark(last_record, context)

    def window_end(self) -> str | None:
        """The newest `createdAt` to ask for: just before `end_date`.

        `end_date` is exclusive, so that back-to-back windows (one month ending where
        the next starts) read a lead created on the boundary exactly once.
        """
        end_date = self.config.get("end_date")
        if not end_date:
            return None
        return format_timestamp(parse_timestamp(str(end_date)) - ONE_MILLISECOND)

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: PageRequest | None
    ) -> dict[str, t.Any]:
        # Brackets go percent-encoded, as RFC 3986 wants; `check_page` stops the sync
        # if a server ever ignored the range because of that.
        params = {**super().get_url_params(context, next_page_token), **self.filters}
        ask = next_page_token
        if ask is not None and ask.since is not None and ask.since == ask.until:
            # A shared instant is read whatever the status, and filtered here: leads rated
            # while it is read would join or leave the list its proofs count on.
            params.pop(FILTER_PARAMETERS["statuses"], None)
        return params

    @cached_property
    def statuses(self) -> frozenset[str]:
        """The statuses of `statuses`; empty without the filter."""
        return frozenset(status_list(self.config.get("statuses")))

    @cached_property
    def filters(self) -> dict[str, str]:
        """The server-side filters of the settings, as query parameters."""
        return filter_parameters(self.config)

    @override
    def read_records(self, context: Context | None) -> t.Iterator[list[dict[str, t.Any]]]:
        since, until = self._window
        pages = self.pages(context)
        emitted = 0
        for leads in read_range(pages, since, until, self.parallelism):
            emitted += len(leads)
            left = max(0, (pages.first_total or 0) - emitted)
            self.log(
                "%s: %s read, up to %s; about %s left",
                self.name,
                f"{emitted:,}",
                leads[-1]["createdAt"],
                f"{left:,}",
            )
            yield leads
            # The page's leads and their checkpoint are written by now: its touchpoints
            # follow, in one sync of the child per page.
            if self._touchpoints is not None:
                self._touchpoints.sync_leads(self._journeys, context)

    @override
    def blame(self, server_says: str) -> str:
        named = [
            setting
            for parameter, setting in SETTING_OF_PARAMETER.items()
            if parameter.lower() in server_says.lower()
        ]
        if named:
            return f"Check the setting `{named[0]}`."
        return super().blame(server_says)

    @override
    def check_page(self, page: Page) -> None:
        """Check every lead of a page against its request; nothing is emitted on a breach.

        Each `createdAt` is brought to the canonical spelling on the way.
        """
        ask = page.request
        since, until = ask.since, ask.until
        oldest_first = ask.sort == OLDEST_FIRST
        previous = None
        for position, lead in enumerate(page.records, start=1):
            if not isinstance(lead, dict) or "id" not in lead or "createdAt" not in lead:
                raise ContractError(
                    f"LeadTrackr returned a lead without `id` or `createdAt` (lead {position} "
                    f"on {ask})."
                )
            created_at = lead["createdAt"] = self.created_at(lead, page)
            if oldest_first and previous is not None and created_at < previous:
                raise ContractError(
                    f"LeadTrackr returned leads out of `createdAt` order on {ask}: lead "
                    f"{lead['id']} was created at {created_at}, before {previous}. The sync "
                    "stops rather than skip leads."
                )
            if (since and created_at < since) or (until and created_at > until):
                raise ContractError(
                    f"LeadTrackr returned lead {lead['id']} created at {created_at} on {ask}:"
                    " the server did not apply the date filter."
                )
            previous = created_at

    @override
    def prepare_records(self, records: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        if self.statuses:
            records = [lead for lead in records if lead.get("status") in self.statuses]
        protect_leads(records, self.config.get("pii"))
        for lead in records:
            self.shape(lead)
        if self._touchpoints is not None:
            # What the touchpoints need, taken now: the SDK strips deselected properties
            # (`channelFlow` among them, perhaps) from the very dicts it writes.
            self._journeys = [
                {
                    "id": lead["id"],
                    "createdAt": lead["createdAt"],
                    "channelFlow": lead.get("channelFlow"),
                }
                for lead in records
            ]
        return self.not_held_back(records)

    def created_at(self, lead: dict[str, t.Any], page: Page) -> str:
        """The lead's `createdAt` in the canonical spelling."""
        try:
            return canonical_timestamp(lead["createdAt"])
        except (TypeError, ValueError):
            raise ContractError(
                f"LeadTrackr returned lead {lead['id']} with an unreadable `createdAt` on "
                f"{page.request}."
            ) from None

    def shape(self, lead: dict[str, t.Any]) -> None:
        """Make a lead fit the schema: JSON text for a parsed journey, no unknown fields."""
        flow = lead.get("channelFlow")
        if flow is not None and not isinstance(flow, str):
            lead["channelFlow"] = json.dumps(flow, ensure_ascii=False, separators=(",", ":"))
        if not LEAD_FIELDS.issuperset(lead):
            for field in lead.keys() - LEAD_FIELDS:
                lead.pop(field)
                if field not in self._unknown_fields:
                    self._unknown_fields.add(field)
                    self.logger.warning(
                        "LeadTrackr sent a field this tap does not know, `%s`; it is left "
                        "out (a newer tap version may add it).",
                        field,
                    )

    # Touchpoints ------------------------------------------------------------------------

    @property
    def selected_touchpoints(self) -> LeadTouchpointsStream | None:
        """The touchpoints stream if it is selected: it is fed from this stream's pages."""
        for child in self.child_streams:
            if isinstance(child, LeadTouchpointsStream) and child.selected:
                return child
        return None

    def prepare_touchpoints(self, context: Context | None) -> None:
        """Find the selected touchpoints stream, and open the window as far back as it needs.

        Each stream has its own bookmark (one may have been deselected for a while, or just
        added): the read starts at the older start, and the leads before this stream's own
        start are read only for the touchpoints (`not_held_back` keeps them back).
        """
        self._touchpoints = self.selected_touchpoints
        self._held_back_before = None
        if self._touchpoints is None:
            return
        own_start, end = self._window
        start = self._touchpoints.begin_read(context)
        if self.selected:
            start = earliest(own_start, start)
            if start != own_start:
                self._held_back_before = own_start
        self._window = (start, end)

    def not_held_back(self, leads: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        """The leads of a page to emit: all but those read only for the touchpoints."""
        since = self._held_back_before
        if since is None or not leads or leads[0]["createdAt"] >= since:
            return leads
        return [lead for lead in leads if lead["createdAt"] >= since]

    @override
    def generate_child_contexts(
        self, record: Record, context: Context | None
    ) -> t.Iterable[Context | None]:
        # Children are fed whole pages by `read_records`: the SDK's default syncs them once
        # per lead, each time with a SCHEMA message and log lines.
        return ()


def identify_projects(stream: Stream) -> None:
    """With `projects`, records carry `project` and the key starts with it.

    The SDK adds the partition's `project` to each record (`partitions`); two projects'
    leads may share an id, so it is part of the key.
    """
    if project_keys(stream.config):
        # An instance attribute, as the class attribute `schema` shadows the SDK's property.
        stream.schema = with_project(stream.schema)  # type: ignore[misc]
        stream.primary_keys = (PROJECT_FIELD, *stream.primary_keys)


def read_start(stream: Stream, context: Context | None) -> str | None:
    """The oldest `createdAt` a stream reads from: its bookmark, or `start_date` if newer.

    Moved back `lookback_window_days`, so that recently created leads (and their
    touchpoints) come again with their current status, price and note.
    """
    if stream.replication_method == REPLICATION_FULL_TABLE:
        # A full read (`reconcile`): no bookmark; the SDK then ignores `start_date` too.
        start_date = stream.config.get("start_date")
        return format_timestamp(parse_timestamp(start_date)) if start_date else None
    start = stream.get_starting_timestamp(context)
    if start is None:
        return None
    bookmark = stream.get_context_state(context).get("replication_key_value")
    if bookmark and (days := stream.config.get("lookback_window_days")):
        rewound = parse_timestamp(bookmark) - timedelta(days=days)
        start_date = stream.config.get("start_date")
        start = max(rewound, parse_timestamp(start_date)) if start_date else rewound
    return format_timestamp(start)


def earliest(*starts: str | None) -> str | None:
    """The earliest of some window starts; None (no lower bound) is the earliest of all."""
    if any(start is None for start in starts):
        return None
    return min(start for start in starts if start is not None)


class LeadTouchpointsStream(FullRead, PageCheckpoints, OneSchemaPerRun, Stream):
    """Each lead's channel flow, one record per session; derived from `leads`, no requests.

    `LeadsStream` hands over each page of leads once their records are written, and this
    stream is synced once per page. Its one bookmark follows the leads read, not the
    touchpoints written: a lead without a journey is done as well.
    """

    name = "lead_touchpoints"
    parent_stream_type = LeadsStream
    primary_keys = ("lead_id", "position")
    replication_key = "createdAt"
    is_sorted = True
    # A new table derived from the leads: users opt in.
    selected_by_default = False
    schema = TOUCHPOINT_SCHEMA.to_dict()
    # `channel_flow.touchpoints` builds records with the schema's types already.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        identify_projects(self)
        self._leads: list[dict[str, t.Any]] = []
        self._start: str | None = None
        self._bookmark: str | None = None
        self._unknown_flow_leads = 0
        self._unknown_flow_example: int | None = None

    def begin_read(self, context: Context | None) -> str | None:
        """Start a sync; return the oldest `createdAt` whose touchpoints are still due.

        As for leads (`read_start`), with the lookback window; the leads created at the
        bookmark itself come again (at least once; targets upsert on the key).
        """
        self._unknown_flow_leads = 0
        self._unknown_flow_example = None
        # As the SDK does at the start of each sync, and `sync()` runs per page later.
        self.state_manager.write_starting_replication_value(
            context=context,
            replication_method=self.replication_method,
            replication_key=self.replication_key,
            config=dict(self.config),
            compare_start_date_fn=self.compare_start_date,
        )
        self._bookmark = self.get_context_state(context).get("replication_key_value")
        self._start = read_start(self, context)
        return self._start

    def sync_leads(self, leads: list[dict[str, t.Any]], context: Context | None) -> None:
        """Emit the touchpoints of one page of leads, in one sync of this stream.

        `context` names the project (`projects`): the bookmark is then that project's.
        """
        if not leads or (self._start is not None and leads[-1]["createdAt"] < self._start):
            return
        self._leads = leads
        try:
            self.sync(context)
        except (AbortedSyncFailedException, AbortedSyncPausedException):
            # As for the SDK's own child syncs: a dry run's record limit stops this sync only.
            pass
        finally:
            self._leads = []

    def report_unknown_channel_flows(self) -> None:
        """Log, once per sync, how many leads had a channel flow this tap cannot read."""
        if self._unknown_flow_leads:
            self.logger.warning(
                "%d leads had a channelFlow in no known form, e.g. lead %s",
                self._unknown_flow_leads,
                self._unknown_flow_example,
            )

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        start = self._start
        for lead in self._leads:
            created_at = lead["createdAt"]
            if start is not None and created_at < start:
                continue
            sessions = parse_channel_flow(lead.get("channelFlow"))
            if sessions is None:
                if self._unknown_flow_example is None:
                    self._unknown_flow_example = lead["id"]
                self._unknown_flow_leads += 1
                continue
            yield from touchpoints(lead["id"], created_at, sessions)
        last = self._leads[-1]["createdAt"] if self._leads else None
        # Touchpoints read again through the lookback window must not move it back.
        moves_on = last is not None and (self._bookmark is None or last >= self._bookmark)
        if moves_on and self.replication_method == REPLICATION_INCREMENTAL:
            self.state_manager.increment_state(
                {"createdAt": last}, context=context, replication_key="createdAt"
            )
