"""The tap: its settings and its streams."""

from __future__ import annotations

import sys
import typing as t
from pathlib import PurePath

from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter

from tap_leadtrackr.client import DEFAULT_API_URL, MAX_PAGE_SIZE
from tap_leadtrackr.exits import ClearExits
from tap_leadtrackr.privacy import KEEP, PII_MODES
from tap_leadtrackr.reconcile import RECONCILE_SETTING
from tap_leadtrackr.sdk_hooks import ConfigChecks, ConnectionTest, quiet_unhandled_error_line
from tap_leadtrackr.settings import Problem, check_config, settings_from_environment
from tap_leadtrackr.state import canonical_bookmarks, check_state
from tap_leadtrackr.streams import LeadsStream, LeadTouchpointsStream

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from jsonschema.protocols import Validator
    from singer_sdk.streams import Stream

_exists_filter_doc = (
    "Only leads that have (true) or lack (false) a {what}. Unset: no filter. "
    "Sent as `{parameter}[exists]`."
)


def _exists_filter(setting: str, parameter: str, what: str) -> th.Property:
    return th.Property(
        setting,
        th.BooleanType(nullable=True),
        title=f"Has {parameter}",
        description=_exists_filter_doc.format(what=what, parameter=parameter),
    )


class TapLeadTrackr(ConnectionTest, ConfigChecks, ClearExits):
    """LeadTrackr leads with their form data, contacts and ad attribution, incrementally."""

    name = "tap-leadtrackr"
    message_writer_class = MsgSpecWriter
    #: Problems with the settings read from the environment, reported with the others.
    environment_problems: tuple[Problem, ...] = ()

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_key",
            th.StringType(nullable=False),
            secret=True,
            title="API key",
            description=(
                "The project's LeadTrackr API key, sent as `X-API-Key`. Copy it from the "
                "LeadTrackr dashboard: project -> Settings -> API Integration. Give this "
                "or `projects`, not both."
            ),
        ),
        th.Property(
            "projects",
            th.ArrayType(
                th.ObjectType(
                    th.Property("name", th.StringType(nullable=False)),
                    th.Property("api_key", th.StringType(nullable=False), secret=True),
                )
            ),
            secret=True,
            title="Projects",
            description=(
                "Several projects in one sync, instead of `api_key`: a list of "
                '`{"name": ..., "api_key": ...}`. `name` is your short, unique name for the '
                "project (letters, digits, `_`, `-`); every record then carries it as "
                "`project`, the keys start with it, and each project keeps its own "
                "bookmark. A project whose key is refused (401, 403) does not stop the "
                "others; the run fails at the end, naming it."
            ),
            examples=[[{"name": "acme", "api_key": "..."}, {"name": "globex", "api_key": "..."}]],
        ),
        th.Property(
            "api_url",
            th.URIType(nullable=False),
            default=DEFAULT_API_URL,
            title="API URL",
            description=(
                "Base URL of the LeadTrackr API. Point it at a local sandbox to try the tap. "
                "`https://`; plain `http://` only to this machine (127.0.0.1, ::1, "
                "localhost), since the API key would travel unencrypted."
            ),
            examples=[DEFAULT_API_URL, "http://127.0.0.1:8787"],
        ),
        th.Property(
            "start_date",
            th.DateTimeType(nullable=True),
            title="Start date",
            description=(
                "Read leads created on or after this instant (inclusive) on the first sync; "
                "later syncs start from the bookmark when it is newer. ISO 8601; a date "
                "alone means midnight UTC."
            ),
            examples=["2025-01-01", "2025-01-01T00:00:00Z"],
        ),
        th.Property(
            "end_date",
            th.DateTimeType(nullable=True),
            title="End date",
            description=(
                "Read only leads created before this instant (exclusive), so that windows "
                "like [2026-01-01, 2026-02-01) and [2026-02-01, 2026-03-01) never share a "
                "lead. ISO 8601; a date alone means midnight UTC."
            ),
            examples=["2026-02-01"],
        ),
        th.Property(
            "statuses",
            # A type list, so that `--about` shows a type; "string" first, so that Meltano
            # (kind string) passes `open,pending` on as it is rather than fail to parse it.
            th.CustomType({"type": ["string", "array"], "items": {"type": "string"}}),
            title="Statuses",
            description=(
                "Only leads with one of these statuses: `open`, `pending`, `lost` or a "
                "conversion label's name. A list, or one comma-separated string; as an "
                'environment variable, `open,pending` or `["open","pending"]`.'
            ),
            examples=[["open", "pending"], "open,pending"],
        ),
        th.Property(
            "form_name",
            th.StringType(nullable=True),
            title="Form name",
            description="Only leads from the form with exactly this name.",
        ),
        th.Property(
            "unique_identifier",
            th.StringType(nullable=True),
            title="Unique identifier",
            description="Only the lead(s) with exactly this external (CRM) id.",
        ),
        th.Property(
            "email",
            th.StringType(nullable=True),
            title="Email",
            description="Only leads with exactly this email address.",
        ),
        th.Property(
            "phone",
            th.StringType(nullable=True),
            title="Phone",
            description="Only leads with exactly this phone number.",
        ),
        th.Property(
            "search",
            th.StringType(nullable=True, min_length=2),
            title="Search",
            description=(
                "Only leads whose first name, last name, email, phone or company name "
                "contains this text (at least 2 characters)."
            ),
        ),
        _exists_filter("gclid_exists", "gclid", "Google Ads click id (gclid)"),
        _exists_filter("cid_exists", "cid", "Google Analytics client id (cid)"),
        _exists_filter("fbp_exists", "fbp", "Meta browser id (fbp)"),
        _exists_filter("fbc_exists", "fbc", "Meta click id (fbc)"),
        th.Property(
            "page_size",
            th.IntegerType(nullable=False, minimum=1, maximum=MAX_PAGE_SIZE),
            default=MAX_PAGE_SIZE,
            title="Page size",
            description="Leads per request (`limit`), 1 to 100. Larger pages mean fewer requests.",
        ),
        th.Property(
            "request_timeout",
            th.NumberType(nullable=False, exclusive_minimum=0),
            default=60,
            title="Request timeout",
            description="Seconds to wait for an answer before trying the request again.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType(nullable=False, minimum=0),
            default=8,
            title="Max retries",
            description=(
                "How many times a request that failed transiently (429, 5xx, timeout, "
                "broken answer) is tried again before the sync stops."
            ),
        ),
        th.Property(
            "lookback_window_days",
            th.IntegerType(nullable=False, minimum=0),
            default=0,
            title="Lookback window (days)",
            description=(
                "Each incremental run also reads again the leads created this many days "
                "before the bookmark, so that their status, price and note changes reach "
                "the warehouse (targets upsert on `id`). 0 reads only new leads."
            ),
            examples=[7, 30],
        ),
        RECONCILE_SETTING,
        th.Property(
            "max_parallel_requests",
            th.IntegerType(nullable=False, minimum=1, maximum=16),
            default=1,
            title="Max parallel requests",
            description=(
                "Pages fetched at once after the first (1 to 16). Leads are still emitted "
                "in order with a checkpoint after every page. Raise it for large "
                "backfills; halved for the rest of the run (of the project) after a 429."
            ),
            examples=[4],
        ),
        th.Property(
            "pii",
            th.StringType(nullable=False),
            default=KEEP,
            allowed_values=list(PII_MODES),
            title="Personal data",
            description=(
                "What becomes of the leads' personal data. `keep`: as LeadTrackr sends it. "
                "`hash`: emails, phone numbers and first and last names (top-level, in "
                "`userData` and `formData`) become the SHA-256 of their normalised value, "
                "as ad platforms match them; `note`, the form's submitted and custom "
                "fields and any `attributionData` key other than the click and cookie ids, "
                "`conversionPage` and `consent` are left out. `drop`: the same fields are "
                "null or left out."
            ),
            examples=list(PII_MODES),
        ),
    ).to_dict()

    def __init__(self, *, state: object = None, **kwargs: t.Any) -> None:
        # The SDK takes a state that is not an object for a file's name, or for no state.
        if state is not None and not isinstance(state, (dict, str, PurePath)):
            check_state(state)
        super().__init__(state=state, **kwargs)  # type: ignore[arg-type]

    @override
    def discover_streams(self) -> list[Stream]:
        streams: list[Stream] = [LeadsStream(self), LeadTouchpointsStream(self)]
        for stream in streams:
            quiet_unhandled_error_line(stream.logger)
        return streams

    @override
    def test_connection(self) -> None:
        # One request per project tells whether the URL answers and accepts the key.
        t.cast("LeadsStream", self.streams["leads"]).check_connection()

    @override
    def setup_mapper(self) -> None:
        super().setup_mapper()
        # singer-sdk 0.54 maps a stream that is not selected with no properties at all, so
        # `lead_touchpoints` (not selected by default) forced on by `--test` or the SDK's
        # standard tests would write an empty SCHEMA (meltano/sdk#1942, fixed upstream).
        for entry in self.catalog.streams:
            if not entry.metadata.resolve_selection().get((), True):
                self.mapper.register_raw_stream_schema(
                    entry.stream or entry.tap_stream_id,
                    entry.schema.to_dict(),
                    entry.key_properties,
                )

    @override
    def settings_from_environment(self) -> dict[str, t.Any]:
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        settings, problems = settings_from_environment(schema)
        self.environment_problems = tuple(problems)
        if settings or problems:
            self.logger.info(
                "Settings from the environment: %s", ", ".join(sorted(settings)) or "none"
            )
        return settings

    @override
    def config_errors(self, config: dict[str, t.Any], validator: Validator) -> list[str]:
        # JSON schema checks types and ranges but not date formats, URLs or settings that
        # depend on each other; a bad setting must stop the tap before any request.
        return check_config(config, validator, self.environment_problems)

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        # A state of another shape would fail somewhere in the sync, or silently restart it.
        check_state(state)
        super().load_state(state)
        canonical_bookmarks(self.state)


if __name__ == "__main__":
    TapLeadTrackr.cli()
