"""The tap: its settings and its streams."""

from __future__ import annotations

import re
import sys
import typing as t

from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter

from tap_leadtrackr.client import (
    DEFAULT_API_URL,
    MAX_PAGE_SIZE,
    PRIVATE_SETTINGS,
    api_key_of,
    secret_values,
)
from tap_leadtrackr.privacy import KEEP, PII_MODES
from tap_leadtrackr.reconcile import RECONCILE_SETTING, reconcile_errors
from tap_leadtrackr.sdk_hooks import ConfigChecks
from tap_leadtrackr.streams import LeadsStream, LeadTouchpointsStream, status_list
from tap_leadtrackr.timestamps import canonical_timestamp, parse_timestamp

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
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


class TapLeadTrackr(ConfigChecks):
    """LeadTrackr leads with their form data, contacts and ad attribution, incrementally."""

    name = "tap-leadtrackr"
    message_writer_class = MsgSpecWriter

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
                "Base URL of the LeadTrackr API. Point it at a local sandbox to try the tap."
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
            # oneOf, not anyOf: the SDK appends its null type correctly only to oneOf.
            th.CustomType(
                {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}
            ),
            title="Statuses",
            description=(
                "Only leads with one of these statuses: `open`, `pending`, `lost` or a "
                "conversion label's name. A list, or one comma-separated string."
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
                "as ad platforms match them; `note` and the form's submitted and custom "
                "fields are left out. `drop`: the same fields are null or left out."
            ),
            examples=list(PII_MODES),
        ),
    ).to_dict()

    @override
    def discover_streams(self) -> list[Stream]:
        return [LeadsStream(self), LeadTouchpointsStream(self)]

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
    def review_config_errors(self, errors: list[str]) -> list[str]:
        # The SDK checks types and ranges but not date formats or settings that
        # depend on each other; a bad setting must stop the tap before any request.
        return hide_private_values(errors + setting_errors(self.config), self.config)

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        super().load_state(state)
        # State written by other tools or versions may spell the bookmark differently;
        # bookmarks are compared as strings, so bring it to the canonical spelling.
        for stream_state in self.state.get("bookmarks", {}).values():
            for partition in [stream_state, *stream_state.get("partitions", [])]:
                value = partition.get("replication_key_value")
                if isinstance(value, str) and partition.get("replication_key") == "createdAt":
                    try:
                        partition["replication_key_value"] = canonical_timestamp(value)
                    except ValueError:
                        msg = (
                            f"The state's bookmark {value!r} is not an ISO 8601 timestamp. "
                            "Correct it, or clear the state to start from `start_date`."
                        )
                        raise ValueError(msg) from None


#: What an API key may hold: visible ASCII; white space around it is dropped (`api_key_of`).
_API_KEY = re.compile(r"[!-~]+")


def hide_private_values(errors: list[str], config: t.Mapping[str, t.Any]) -> list[str]:
    """Errors without the values of `PRIVATE_SETTINGS`, which JSON schema's messages quote."""
    for key in secret_values(config):
        errors = [error.replace(repr(key), "<api_key>") for error in errors]
    for setting in PRIVATE_SETTINGS:
        if (value := config.get(setting)) not in (None, ""):
            errors = [error.replace(repr(value), f"<{setting}>") for error in errors]
    return errors


def setting_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """Problems with settings that JSON schema cannot express, each naming its setting."""
    errors: list[str] = []
    dates = {}
    for setting in ("start_date", "end_date"):
        if (value := config.get(setting)) in (None, ""):
            continue
        try:
            dates[setting] = parse_timestamp(str(value))
        except ValueError:
            errors.append(f"`{setting}` is not an ISO 8601 date or date-time: {value!r}")
    if len(dates) == 2 and dates["end_date"] <= dates["start_date"]:
        errors.append(
            f"`end_date` ({config['end_date']}) must be after `start_date` ({config['start_date']})"
        )
    errors += reconcile_errors(config)
    statuses = config.get("statuses")
    if statuses is not None and not isinstance(statuses, (str, list)):
        errors.append(
            f"`statuses` must be a list of strings or a comma-separated string: {statuses!r}"
        )
    elif isinstance(statuses, list) and not all(isinstance(item, str) for item in statuses):
        errors.append(f"`statuses` must contain only strings: {statuses!r}")
    elif statuses is not None and not status_list(statuses):
        errors.append("`statuses` is set but names no status")
    search = config.get("search")
    if isinstance(search, str) and len(search.strip()) < 2:
        errors.append("`search` must be at least 2 characters, not counting spaces around it")
    projects = config.get("projects")
    api_key = api_key_of(config)
    if projects is not None and config.get("api_key") not in (None, ""):
        errors.append(
            "`api_key` and `projects` are both set: give `api_key` for one project or "
            "`projects` for several, not both"
        )
    elif projects is not None:
        errors += project_errors(projects)
    elif not api_key:
        errors.append(
            "`api_key` is required: set it to the project's LeadTrackr API key "
            "(or `projects` to several projects' names and keys)"
        )
    else:
        errors += key_errors("`api_key`", api_key)
    return errors


def key_errors(setting: str, api_key: str) -> list[str]:
    """What is wrong with an API key, never quoting it."""
    if _API_KEY.fullmatch(api_key):
        return []
    # The HTTP library would refuse it with a message quoting the whole key.
    return [
        f"{setting} holds a space or a control character (the key is not shown): "
        "copy it again from the LeadTrackr dashboard"
    ]


#: What a project's name may be: it goes into records, keys and log lines.
_PROJECT_NAME = re.compile(r"[A-Za-z0-9_-]+")


def project_errors(projects: object) -> list[str]:
    """Problems with `projects`, each naming the project by position and name, never a key."""
    if not isinstance(projects, list) or not projects:
        return ['`projects` must be a non-empty list of {"name": ..., "api_key": ...}']
    errors: list[str] = []
    seen: set[str] = set()
    for position, project in enumerate(projects, start=1):
        where = f"`projects` item {position}"
        if not isinstance(project, dict):
            errors.append(f'{where} is not an object {{"name": ..., "api_key": ...}}')
            continue
        if unknown := sorted(set(project) - {"name", "api_key"}):
            errors.append(f"{where} has unknown fields: {', '.join(map(repr, unknown))}")
        name = project.get("name")
        if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name):
            errors.append(f"{where} has the name {name!r}: a name is letters, digits, `_` or `-`")
        elif name in seen:
            errors.append(f"{where}: the name {name!r} is used twice; names must be unique")
        else:
            seen.add(name)
            where = f"{where} ({name!r})"
        key = project.get("api_key")
        if not isinstance(key, str) or not key.strip():
            errors.append(f"{where} has no `api_key`: set it to the project's LeadTrackr API key")
        else:
            errors += key_errors(f"{where}'s `api_key`", key.strip())
    return errors


if __name__ == "__main__":
    TapLeadTrackr.cli()
