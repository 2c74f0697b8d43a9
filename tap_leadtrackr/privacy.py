"""The `pii` setting: what becomes of a lead's personal data before it is written.

- `keep` (the default): nothing; records are exactly what LeadTrackr sends.
- `hash`: emails, phones and first and last names, top-level, in `userData` and in
  `formData`, become the lower-case hex SHA-256 of their normalised value (see
  `normalised_email`, `normalised_phone`, `normalised_name`), the form ad platforms match
  hashed customer data in. Free text that can hold anything (`note`, `formData`'s submitted
  and custom fields, `userData` keys nobody documented) is left out.
- `drop`: the same fields are null or left out.

In both, `attributionData` keeps only the click and cookie ids its schema lists,
`conversionPage` and `consent` (its four Consent Mode signals): tags and plugins add keys
there too, and an undocumented one may hold anything, an email included.

Click ids, consent, status, form names, company names, price, `uniqueIdentifier` and the
channel flow are kept in every mode. Only the known keys of a lead are touched, so that
hashing costs a few microseconds per lead.
"""

from __future__ import annotations

import hashlib
import re
import typing as t
from functools import lru_cache

from tap_leadtrackr.schemas import ATTRIBUTION_IDS, CONSENT_SIGNALS

KEEP, HASH, DROP = "keep", "hash", "drop"
#: The values of the `pii` setting, the default first.
PII_MODES = (KEEP, HASH, DROP)

#: Keys of `userData` and `formData` kept as they are; other undocumented keys are left out.
USER_DATA_KEPT = frozenset({"companyName", "company"})
FORM_DATA_KEPT = frozenset({"formName", "uniqueEventId", "formId", "customFormName"})
#: Keys of `attributionData` kept as they are (`conversionPage` among the ids), and `consent`.
ATTRIBUTION_DATA_KEPT = frozenset(ATTRIBUTION_IDS)
CONSENT_KEPT = frozenset(CONSENT_SIGNALS)
_ATTRIBUTION_KEYS = ATTRIBUTION_DATA_KEPT | {"consent"}

_NOT_A_DIGIT = re.compile(r"[^0-9]+")

#: Distinct values hashed per kind, remembered: a lead repeats its email in `userData`
#: and `formData`, and returning visitors repeat theirs.
_CACHE_SIZE = 4096


def normalised_email(email: str) -> str:
    """An email as ad platforms hash it: trimmed and lower-cased."""
    return email.strip().lower()


def normalised_phone(phone: str) -> str:
    """A phone number as `+` and its digits only (E.164 if it was written with a country code).

    Nothing is guessed: `06-12345678` (no country code) becomes `+0612345678`.
    """
    digits = _NOT_A_DIGIT.sub("", phone)
    return f"+{digits}" if digits else ""


def normalised_name(name: str) -> str:
    """A first or last name as ad platforms hash it: trimmed and lower-cased."""
    return name.strip().lower()


def sha256_hex(text: str) -> str:
    """The lower-case hex SHA-256 of `text` in UTF-8."""
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=_CACHE_SIZE)
def hashed_email(email: str) -> str | None:
    """SHA-256 of the normalised email; None if nothing is left of it."""
    text = normalised_email(email)
    return sha256_hex(text) if text else None


@lru_cache(maxsize=_CACHE_SIZE)
def hashed_phone(phone: str) -> str | None:
    """SHA-256 of the normalised phone number; None if it has no digit."""
    text = normalised_phone(phone)
    return sha256_hex(text) if text else None


@lru_cache(maxsize=_CACHE_SIZE)
def hashed_name(name: str) -> str | None:
    """SHA-256 of the normalised name; None if nothing is left of it."""
    text = normalised_name(name)
    return sha256_hex(text) if text else None


Replace = t.Callable[[str], t.Any]


def _dropping(value: str) -> None:
    return None


#: For each mode but `keep`: the personal keys, with what their text becomes.
_PERSONAL: dict[str, dict[str, Replace]] = {
    HASH: {
        "email": hashed_email,
        "phone": hashed_phone,
        "firstName": hashed_name,
        "lastName": hashed_name,
    },
    DROP: dict.fromkeys(("email", "phone", "firstName", "lastName"), _dropping),
}


def _replaced(replace: Replace, value: object) -> t.Any:
    """What a personal value that is not text becomes."""
    # A phone sent as a whole number is still a phone number. Floats (digits lost or added
    # in `1e10` spellings), booleans, lists, objects: nothing trustworthy to hash.
    if type(value) is int:
        return replace(str(value))
    return None


def protect_leads(leads: t.Iterable[object], mode: str | None) -> None:
    """Apply the `pii` mode to each lead (a dict as the API sends it), in place.

    `keep` (or no mode) returns at once; anything but a dict is left for the caller's
    checks to refuse.
    """
    if mode is None or mode == KEEP:
        return
    personal = _PERSONAL[mode]
    for lead in leads:
        if isinstance(lead, dict):
            _protect(lead, personal)


def _protect(lead: dict[str, t.Any], personal: dict[str, Replace]) -> None:
    for key, replace in personal.items():
        if (value := lead.get(key)) is not None:
            # `type() is`: the common case, text, without a call more per value.
            lead[key] = replace(value) if type(value) is str else _replaced(replace, value)
    if lead.get("note") is not None:
        lead["note"] = None
    if isinstance(user_data := lead.get("userData"), dict):
        lead["userData"] = _protected(user_data, USER_DATA_KEPT, personal)
    if isinstance(form_data := lead.get("formData"), dict):
        lead["formData"] = _protected(form_data, FORM_DATA_KEPT, personal)
    if isinstance(attribution := lead.get("attributionData"), dict):
        lead["attributionData"] = _attribution_kept(attribution)


def _attribution_kept(attribution: dict[str, t.Any]) -> dict[str, t.Any]:
    """`attributionData` with only its documented ids and `consent`'s documented signals."""
    consent = attribution.get("consent")
    if attribution.keys() <= _ATTRIBUTION_KEYS and (
        consent is None or (isinstance(consent, dict) and consent.keys() <= CONSENT_KEPT)
    ):
        return attribution  # the common case, nothing to leave out: two set comparisons
    kept = {key: value for key, value in attribution.items() if key in ATTRIBUTION_DATA_KEPT}
    if "consent" in attribution:
        # Anything but an object in its place is no Consent Mode state: nothing to keep.
        kept["consent"] = (
            {key: value for key, value in consent.items() if key in CONSENT_KEPT}
            if isinstance(consent, dict)
            else None
        )
    return kept


def _protected(
    data: dict[str, t.Any], kept: frozenset[str], personal: dict[str, Replace]
) -> dict[str, t.Any]:
    """A nested object with only its kept keys and its personal keys, replaced."""
    result: dict[str, t.Any] = {}
    for key, value in data.items():
        if key in kept:
            result[key] = value
        elif (replace := personal.get(key)) is not None:
            if value is not None:
                value = replace(value) if type(value) is str else _replaced(replace, value)
            result[key] = value
    return result
