"""The streams: LeadTrackr's leads list, and what is derived from it."""

from __future__ import annotations

import json
import sys
import typing as t

from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_leadtrackr.client import ContractError, LeadTrackrStream, Page
from tap_leadtrackr.schemas import LEAD_FIELDS, LEAD_SCHEMA
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
    from singer_sdk.helpers.types import Context

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


class LeadsStream(LeadTrackrStream):
    """Leads, oldest first, from `GET /api/leads/getLeads`."""

    name = "leads"
    path = "/api/leads/getLeads"
    primary_keys = ("id",)
    replication_key = "createdAt"
    # Sorted ascending on the server, so the bookmark can advance during the sync.
    is_sorted = True
    schema = LEAD_SCHEMA.to_dict()
    # Records are decoded from JSON and shaped in `prepare_page`; the SDK's per-value
    # conformance pass would only copy them.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._window: tuple[str | None, str | None] = (None, None)
        self._last_created_at: str | None = None
        self._unknown_fields: set[str] = set()

    @override
    def request_records(self, context: Context | None) -> t.Iterable[dict]:
        self._window = (self.window_start(context), self.window_end())
        self._last_created_at = None
        yield from super().request_records(context)

    def window_start(self, context: Context | None) -> str | None:
        """The oldest `createdAt` to ask for: the bookmark, or `start_date` if newer."""
        start = self.get_starting_timestamp(context)
        return format_timestamp(start) if start else None

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
    def get_url_params(self, context: Context | None, next_page_token: int | None) -> dict:
        gte, lte = self._window
        # Brackets go percent-encoded, as RFC 3986 wants; `prepare_page` stops the sync
        # if a server ever ignored the window because of that.
        return {
            **super().get_url_params(context, next_page_token),
            "sort": "createdAt:asc",
            "createdAt[gte]": gte,
            "createdAt[lte]": lte,
            **filter_parameters(self.config),
        }

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
    def prepare_page(self, page: Page) -> list[dict[str, t.Any]]:
        """Check every lead of the page, then shape it; nothing is emitted on a breach."""
        gte, lte = self._window
        previous = self._last_created_at
        for lead in page.records:
            if not isinstance(lead, dict) or "id" not in lead or "createdAt" not in lead:
                raise ContractError(
                    f"LeadTrackr returned a lead without `id` or `createdAt` on page "
                    f"{page.number}: {json.dumps(lead)[:300]}"
                )
            created_at = lead["createdAt"] = self.created_at(lead, page)
            if previous is not None and created_at < previous:
                raise ContractError(
                    f"LeadTrackr returned leads out of `createdAt` order on page "
                    f"{page.number}: lead {lead['id']} was created at {created_at}, before "
                    f"{previous}. The sync stops rather than skip leads."
                )
            if (gte and created_at < gte) or (lte and created_at > lte):
                raise ContractError(
                    f"LeadTrackr returned lead {lead['id']} created at {created_at}, outside "
                    f"the requested window {gte or '-inf'} .. {lte or '+inf'}: the server "
                    "did not apply the date filter."
                )
            previous = created_at
            self.shape(lead)
        self._last_created_at = previous
        return page.records

    def created_at(self, lead: dict[str, t.Any], page: Page) -> str:
        """The lead's `createdAt` in the canonical spelling."""
        try:
            return canonical_timestamp(lead["createdAt"])
        except (TypeError, ValueError) as exc:
            raise ContractError(
                f"LeadTrackr returned lead {lead['id']} on page {page.number} with an "
                f"unreadable `createdAt`: {lead['createdAt']!r}"
            ) from exc

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
