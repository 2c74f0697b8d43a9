"""JSON schemas of the records this tap emits, in one place.

Every field of the lead object documented by LeadTrackr is typed here. The nested
objects type their documented keys and keep any others (`additional_properties`),
because forms and tags send custom keys that LeadTrackr passes through as-is.
"""

from __future__ import annotations

from singer_sdk import typing as th

#: What the `pii` setting does to each field, said in the field's description.
KEPT = "Kept as is in every `pii` mode."
_HASHED = (
    "`pii`: `keep` as sent; `hash` the lower-case hex SHA-256 of the {normalised}; `drop` null."
)
EMAIL_PII = _HASHED.format(normalised="address trimmed and lower-cased")
PHONE_PII = _HASHED.format(normalised="number as `+` followed by its digits only")
NAME_PII = _HASHED.format(normalised="name trimmed and lower-cased")
LEFT_OUT = "`pii`: `keep` as sent; `hash` and `drop` leave it out."


def _personal(name: str, what: str, pii: str) -> th.Property:
    return th.Property(name, th.StringType, description=f"{what} {pii}")


#: Click and cookie ids that LeadTrackr's tags and plugins put in `attributionData`.
#: Client-side tags send `""` for an id they did not find.
ATTRIBUTION_IDS: dict[str, str] = {
    "gclid": "Google Ads click id.",
    "gbraid": "Google Ads click id for app-to-web measurement (iOS).",
    "wbraid": "Google Ads click id for web-to-app measurement (iOS).",
    "dclid": "Google Display & Video 360 / Campaign Manager click id.",
    "cid": "Google Analytics client id (`_ga` cookie).",
    "sid": "Google Analytics session id.",
    "fbp": "Meta browser id (`_fbp` cookie).",
    "fbc": "Meta click id (`_fbc` cookie, from `fbclid`).",
    "msclkid": "Microsoft Advertising click id.",
    "uetvid": "Microsoft UET visitor id.",
    "ttclid": "TikTok click id.",
    "ttp": "TikTok browser id (`_ttp` cookie).",
    "li_fat_id": "LinkedIn first-party click id.",
    "scclid": "Snapchat click id.",
    "scid": "Snapchat browser id (`_scid` cookie).",
    "rdt_cid": "Reddit click id.",
    "rdt_uuid": "Reddit browser id.",
    "epik": "Pinterest click id.",
    "twclid": "X (Twitter) click id.",
    "oppref": "Referral id sent by LeadTrackr's tags.",
    "obref": "Referral id sent by LeadTrackr's tags.",
    "conversionPage": "URL of the page on which the lead converted.",
}

CONSENT_SIGNALS = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")

_consent = th.ObjectType(
    *(
        th.Property(signal, th.StringType, description=f"`granted` or `denied`. {KEPT}")
        for signal in CONSENT_SIGNALS
    ),
    additional_properties=True,
)

_attribution_data = th.ObjectType(
    *(
        th.Property(name, th.StringType, description=f"{description} {KEPT}")
        for name, description in ATTRIBUTION_IDS.items()
    ),
    th.Property(
        "consent",
        _consent,
        description=(
            "Google Consent Mode signals at the time of the conversion. `pii`: `keep` as "
            "sent; `hash` and `drop` keep the four signals listed here, leaving out any other."
        ),
    ),
    additional_properties=True,
)

_form_data = th.ObjectType(
    th.Property(
        "formName", th.StringType, description=f"Name of the form as the site sent it. {KEPT}"
    ),
    th.Property("uniqueEventId", th.StringType, description=f"Id of the submission event. {KEPT}"),
    th.Property("formId", th.StringType, description=f"Form id sent by some form plugins. {KEPT}"),
    th.Property(
        "customFormName", th.StringType, description=f"Form name set by the site owner. {KEPT}"
    ),
    th.Property(
        "formFields",
        th.ObjectType(additional_properties=True),
        description=f"All submitted fields, by field name. {LEFT_OUT}",
    ),
    *(
        th.Property(
            f"formCustomField{n}",
            th.StringType,
            description=f"Custom form field {n}. {LEFT_OUT}",
        )
        for n in range(1, 6)
    ),
    additional_properties=True,
)

_user_data = th.ObjectType(
    _personal("firstName", "First name.", NAME_PII),
    _personal("lastName", "Last name.", NAME_PII),
    _personal("email", "Email address.", EMAIL_PII),
    _personal("phone", "Phone number.", PHONE_PII),
    th.Property("companyName", th.StringType, description=f"Company name. {KEPT}"),
    th.Property(
        "company",
        th.StringType,
        description=f"Company name as one WordPress plugin sends it. {KEPT}",
    ),
    additional_properties=True,
)

LEAD_SCHEMA = th.PropertiesList(
    th.Property("id", th.IntegerType, required=True, description=f"Lead id (primary key). {KEPT}"),
    th.Property(
        "status",
        th.StringType,
        description=(
            "`open`, `pending`, `lost`, or one of the project's conversion labels (renamable, "
            f"so treat as free text). Changes after the lead is created. {KEPT}"
        ),
    ),
    th.Property(
        "formName", th.StringType, description=f"Name of the form the lead came from. {KEPT}"
    ),
    _personal("firstName", "First name.", NAME_PII),
    _personal("lastName", "Last name.", NAME_PII),
    _personal("phone", "Phone number.", PHONE_PII),
    _personal("email", "Email address.", EMAIL_PII),
    th.Property("companyName", th.StringType, description=f"Company name. {KEPT}"),
    th.Property(
        "price",
        th.NumberType,
        description=f"Lead value in cents (divide by 100 for the currency amount). {KEPT}",
    ),
    th.Property(
        "note",
        th.StringType,
        description="Free-text note on the lead. `pii`: `keep` as sent; `hash` and `drop` null.",
    ),
    th.Property(
        "formData",
        _form_data,
        description=(
            "The raw form submission. `pii`: `keep` as sent; `hash` and `drop` keep only "
            "`formName`, `uniqueEventId`, `formId` and `customFormName`, and the keys "
            "`email`, `phone`, `firstName` and `lastName` where a form sent them (hashed "
            "or null, as top-level); every submitted or custom field is left out."
        ),
    ),
    th.Property(
        "userData",
        _user_data,
        description=(
            "Contact details as submitted. `pii`: `keep` as sent; `hash` and `drop` keep "
            "the company name and the personal keys (hashed or null, as top-level), leaving "
            "out any undocumented key."
        ),
    ),
    th.Property(
        "attributionData",
        _attribution_data,
        description=(
            "Click ids, cookie ids and consent captured with the lead. `pii`: `keep` as "
            "sent; `hash` and `drop` keep only the ids listed here (`conversionPage` "
            "among them) and `consent`, leaving out any other key: tags add keys here, and "
            "an undocumented one may hold personal data."
        ),
    ),
    th.Property(
        "channelFlow",
        th.StringType,
        description=(
            "The visitor's channel journey before the lead, as LeadTrackr stores it (JSON "
            "text or a URL-encoded cookie string). A value the API returns already parsed "
            f"is emitted as its JSON text. {KEPT}"
        ),
    ),
    th.Property(
        "uniqueIdentifier",
        th.StringType,
        description=f"The lead's id in your own system (CRM), if set. {KEPT}",
    ),
    th.Property(
        "createdAt",
        th.DateTimeType,
        required=True,
        description=f"When the lead was created, UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`. {KEPT}",
    ),
)

#: Top-level lead fields known to this schema; others (a beta API adds fields) are dropped.
LEAD_FIELDS = frozenset(LEAD_SCHEMA.to_dict()["properties"])


def _channel_value(name: str, example: str) -> th.Property:
    return th.Property(
        name,
        th.StringType,
        description=f"The session's {name} ({example}); null when the channel flow has none.",
    )


#: One session of a lead's channel flow, as parsed by `tap_leadtrackr.channel_flow`.
TOUCHPOINT_SCHEMA = th.PropertiesList(
    th.Property("lead_id", th.IntegerType, required=True, description="The lead's `id`."),
    th.Property(
        "position",
        th.IntegerType,
        required=True,
        description="Place of the session in the lead's journey: 1 is the first touch.",
    ),
    th.Property(
        "occurred_at",
        th.DateTimeType,
        description=(
            "When the session began, UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`; null if the channel "
            "flow did not record it."
        ),
    ),
    _channel_value("source", "`utm_source`, a search engine, a referrer or `direct`"),
    _channel_value("medium", "`utm_medium`, e.g. `cpc`, `organic`, `referral`, `none`"),
    _channel_value("campaign", "`utm_campaign`"),
    _channel_value("content", "`utm_content`"),
    _channel_value("term", "`utm_term`"),
    th.Property(
        "landing_page",
        th.StringType,
        description=(
            "The page the session began on, as the tag recorded it (a path, or a URL); "
            "null in the older form of the channel flow."
        ),
    ),
    th.Property(
        "is_first_touch",
        th.BooleanType,
        required=True,
        description="Whether this is the first session of the journey (position 1).",
    ),
    th.Property(
        "is_last_touch",
        th.BooleanType,
        required=True,
        description="Whether this is the last session before the lead.",
    ),
    th.Property(
        "createdAt",
        th.DateTimeType,
        required=True,
        description=(
            "When the lead was created, as in `leads`: the replication key, so that "
            "touchpoints are read incrementally with their leads."
        ),
    ),
)

#: The field every record carries with `projects`: the project it was read from.
PROJECT_FIELD = "project"


def with_project(schema: dict) -> dict:
    """A record schema with `project` first, for a tap configured with `projects`."""
    project = th.Property(
        PROJECT_FIELD,
        th.StringType(nullable=False),
        required=True,
        description="The project the record was read from: its `name` in `projects`.",
    )
    properties = {**th.PropertiesList(project).to_dict()["properties"], **schema["properties"]}
    return {
        **schema,
        "properties": properties,
        "required": [PROJECT_FIELD, *schema.get("required", [])],
    }
