"""Realistic, deterministic LeadTrackr leads: every documented field, shape and oddity."""

from __future__ import annotations

import gc
import json
import random
import unicodedata
from base64 import urlsafe_b64encode
from bisect import bisect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from itertools import product
from typing import Any, TypeVar
from urllib.parse import quote

from tap_leadtrackr.sandbox.instants import format_instant, parse_instant

END_MS = parse_instant("2026-10-31T23:59:59.999Z")
"""The newest generated lead is created at or before this instant."""
SPAN_MS = 730 * 86_400_000
"""Generated leads spread over about two years before `END_MS`."""

T = TypeVar("T")

SITE = "https://www.zonnedak-direct.nl"

STATUSES = ("open", "pending", "lost", "Qualified lead", "Sale", "Afspraak gepland", "Offerte")
_STATUS_WEIGHTS = (40, 14, 16, 12, 8, 7, 3)
CONVERSION_LABELS = frozenset(STATUSES[3:])

FORM_NAMES = (
    "Offerte aanvragen",
    "Contact",
    "Brochure download",
    "Terugbelverzoek",
    "Demo request",
    "Nieuwsbrief",
)
_FORM_WEIGHTS = (35, 25, 15, 12, 8, 5)

CHANNEL_FLOW_FORMS = ("compact", None, "legacy", "parsed", "cookie", "malformed")
"""The shapes of `channelFlow`: None is null, the others are named in `_channel_flow`."""
# Every block of 20 leads holds each shape, so even 50 leads show all of them.
_FLOW_BLOCK: tuple[str | None, ...] = (
    *(("compact",) * 7),
    *((None,) * 4),
    *(("legacy",) * 3),
    *(("parsed", "cookie") * 2),
    *(("malformed",) * 2),
)
MALFORMED_CHANNEL_FLOWS = ('[{"t": 17', "direct", "[object Object]", "%5B%7B%22t%22%3A1")

_FIRST_NAMES = (
    "Emma", "Liam", "Zoë", "Jürgen", "José", "Łukasz", "Søren", "François", "Anaïs", "Mohammed",
    "Priya", "Sanne", "Daan", "Noah", "Sophie", "Lars", "Ingrid", "Björn", "Chloé", "Mateo",
    "Aoife", "Siobhán", "Çağla", "Ömer", "Dmitri", "Lucía", "Wei", "Hiroshi", "Yuki", "Anna-Lena",
    "Jan", "Fleur", "Thijs", "Mila", "Bram", "Julia", "Sem", "Lotte", "Ahmed", "Fatima",
)  # fmt: skip
_LAST_NAMES = (
    "de Vries", "Jansen", "Müller", "García", "Kowalski", "Nowak", "van den Berg", "O'Brien",
    "Smith", "Bakker", "Visser", "Øverby", "Šimek", "Dvořák", "陈", "李", "田中", "Nguyễn",
    "Fernández", "Schröder", "Lefèvre", "Costa", "Öztürk", "Petrović", "Peeters", "Janssens",
    "Meijer", "de Boer", "Mulder", "El Amrani", "Hoffmann", "Łęcki",
)  # fmt: skip
_TRANSLITERATIONS = {
    "陈": "chen",
    "李": "li",
    "田中": "tanaka",
    "ł": "l",
    "Ł": "l",
    "ø": "o",
    "Ø": "o",
}
_COMPANY_SUFFIXES = ("B.V.", "BV", "GmbH", "& Zonen", "Ltd", "SARL", "Installatietechniek", "Bouw")
_COMPANIES = (
    "Acme B.V.", "Bäckerei Schröder", "Café de Zwaan", "Zonnige Daken VOF", "Żabka Sp. z o.o.",
    "北京科技有限公司", "Hotel Ærø", "Van der Linden & Co", "Groen Wonen", "Lumière Énergie",
)  # fmt: skip
_MAIL_DOMAINS = ("gmail.com", "outlook.com", "hotmail.nl", "ziggo.nl", "kpnmail.nl", "icloud.com")
_NOTES = (
    "Belde terug, wil een offerte voor 12 panelen",
    'Interesse in pakket "Premium"',
    "Voicemail ingesproken\nMaandag opnieuw proberen",
    "Geen gehoor 📞",
    "Customer asked for a callback after 17:00; prefers English",
    "Dubbele aanvraag, zie eerdere lead",
    "Dach nach Süden, 45°",
    "",
)
_MESSAGES = (
    "Graag een offerte voor ons dak (±40 m²).",
    "Wat kost een thuisbatterij?",
    'Can you call me back? Best after 5pm, "urgent".',
    "Hallo, ich hätte gern Informationen.",
    "",
)

# (source, medium, campaigns, terms) for each channel a session can arrive from.
_CHANNELS = (
    ("google", "cpc", ("brand_nl", "zonnepanelen_generic", "pmax-2026"),
     ("zonnepanelen offerte", "thuisbatterij prijs", "günstige solaranlage")),
    ("google", "organic", ("(organic)",), ("(not provided)",)),
    ("bing", "cpc", ("brand_nl",), ("zonnepanelen kopen",)),
    ("bing", "organic", ("(organic)",), ("",)),
    ("facebook", "cpc", ("voorjaarsactie", "retargeting_30d"), ("",)),
    ("facebook", "social", ("(not set)",), ("",)),
    ("instagram", "social", ("(not set)",), ("",)),
    ("linkedin", "social", ("b2b_leadgen",), ("",)),
    ("(direct)", "(none)", ("(not set)",), ("",)),
    ("newsletter", "email", ("nieuwsbrief-maart", "winactie-café"), ("",)),
)  # fmt: skip
_CHANNEL_WEIGHTS = (28, 18, 4, 3, 8, 5, 4, 2, 20, 8)
_LANDING_PATHS = ("/", "/offerte", "/zonnepanelen/prijzen", "/thuisbatterij", "/blog/salderen-2027")
_CONSENT_KEYS = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")


def _cumulative(weights: tuple[int, ...]) -> list[int]:
    total, sums = 0, []
    for weight in weights:
        total += weight
        sums.append(total)
    return sums


_STATUS_CUM = _cumulative(_STATUS_WEIGHTS)
_FORM_CUM = _cumulative(_FORM_WEIGHTS)


def _ascii(name: str) -> str:
    """Return the lowercase ASCII letters an e-mail address would use for a name."""
    name = _TRANSLITERATIONS.get(name, name)
    name = "".join(_TRANSLITERATIONS.get(char, char) for char in name)
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(char for char in decomposed.lower() if char.isascii() and char.isalnum())


_ASCII = {name: _ascii(name) for name in _FIRST_NAMES + _LAST_NAMES}


@cache
def _mailbox_domain(company: str) -> str:
    """Return the domain of a company's shared mailbox."""
    return f"{_ascii(company.split()[0]) or 'bedrijf'}.nl"


@dataclass(frozen=True)
class _Person:
    """Whoever fills in a form; returning people submit several leads."""

    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    company: str | None
    unique_identifier: str | None


class LeadFactory:
    """Makes one realistic lead at a time from a seeded random generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._random = rng.random
        self._people: list[_Person] = []
        self._person_count = 0

    # random.Random.choice/randrange/choices cost ~1.5 us each; these cut generation time 3x.
    def _pick(self, options: Sequence[T]) -> T:
        return options[int(self._random() * len(options))]

    def _between(self, low: int, high: int) -> int:
        """Return an integer in [low, high)."""
        return low + int(self._random() * (high - low))

    def _weighted(self, options: Sequence[T], cumulative: Sequence[float]) -> T:
        return options[bisect(cumulative, self._random() * cumulative[-1])]

    def lead(
        self, lead_id: int, created_ms: int, flow_form: str | None, *, imported: bool = False
    ) -> dict[str, Any]:
        """Return lead `lead_id` created at `created_ms`, its `channelFlow` in `flow_form`.

        An imported lead (from a CRM import) carries no form, attribution or journey.
        """
        kind = "import" if imported else _pick_kind(self._random())
        person = self._person(kind)
        status = "open" if imported else self._weighted(STATUSES, _STATUS_CUM)
        if kind == "call":
            form_name: str | None = "Telefoongesprek"
        elif kind == "chat":
            form_name = "Chat"
        elif kind == "import":
            form_name = None
        else:
            form_name = self._weighted(FORM_NAMES, _FORM_CUM)
        priced = self._random() < (0.85 if status in CONVERSION_LABELS else 0.08)
        return {
            "id": lead_id,
            "status": status,
            "formName": form_name,
            "firstName": person.first_name,
            "lastName": person.last_name,
            "phone": person.phone,
            "email": person.email,
            "companyName": person.company,
            "price": self._price() if priced else None,
            "note": self._pick(_NOTES) if self._random() < 0.2 else None,
            "formData": None if imported else self._form_data(kind, form_name, person),
            "userData": self._user_data(person),
            "attributionData": None if imported else self._attribution_data(created_ms),
            "channelFlow": None if imported else self._channel_flow(flow_form, created_ms),
            "uniqueIdentifier": person.unique_identifier,
            "createdAt": format_instant(created_ms),
        }

    def _person(self, kind: str) -> _Person:
        if self._people and kind == "form" and self._random() < 0.07:
            return self._pick(self._people[-300:])
        self._person_count += 1
        first: str | None = self._pick(_FIRST_NAMES)
        last: str | None = self._pick(_LAST_NAMES)
        company = None
        if kind != "call" and self._random() < 0.45:
            if self._random() < 0.5:
                company = self._pick(_COMPANIES)
            else:
                company = f"{last} {self._pick(_COMPANY_SUFFIXES)}"
        email = self._email(first, last, company)
        phone = self._phone() if kind != "chat" and self._random() < 0.85 else None
        if kind == "call":
            first = last = email = None
            phone = phone or self._phone()
        elif kind == "chat" and self._random() < 0.4:
            last = None
        unique_identifier = None
        if kind == "import" or self._random() < 0.55:
            # A bijection on person numbers keeps CRM ids unique without looking sequential.
            scrambled = (self._person_count * 7919 + 104_729) % 1_000_003
            prefix = "crm" if self._random() < 0.8 else "hs"
            unique_identifier = f"{prefix}-{scrambled:06d}"
        person = _Person(first, last, email, phone, company, unique_identifier)
        if kind == "form":
            self._people.append(person)
        return person

    def _email(self, first: str | None, last: str | None, company: str | None) -> str | None:
        roll = self._random()
        if roll < 0.04 or first is None or last is None:
            return None
        first_ascii, last_ascii = _ASCII[first], _ASCII[last]
        if company and roll < 0.2:
            # Colleagues share a company's mailbox, so e-mail addresses repeat across people.
            return f"info@{_mailbox_domain(company)}"
        domain = self._pick(_MAIL_DOMAINS)
        if roll < 0.6:
            return f"{first_ascii}.{last_ascii}@{domain}"
        if roll < 0.8:
            return f"{first_ascii[0]}{last_ascii}@{domain}"
        return f"{first_ascii}{self._between(1, 100)}@{domain}"

    def _phone(self) -> str:
        number = self._between(10_000_000, 100_000_000)
        style = self._random()
        if style < 0.35:
            return f"+316{number}"
        if style < 0.6:
            return f"06-{number}"
        if style < 0.75:
            return f"+31 6 {number}"
        if style < 0.9:
            return f"+49 151 {number // 10}"
        return f"+1 (555) {number % 1000:03d}-{number // 10_000:04d}"

    def _price(self) -> int:
        if self._random() < 0.6:
            return self._pick((2_500, 5_000, 15_000, 49_900, 125_000, 849_500))
        return self._between(20, 40_000) * 50

    def _form_data(
        self, kind: str, form_name: str | None, person: _Person
    ) -> dict[str, Any] | None:
        if kind != "form" or self._random() < 0.05:
            return None
        data: dict[str, Any] = {"formName": form_name, "uniqueEventId": self._uuid()}
        variant = self._random()
        if variant < 0.3:
            data["formId"] = f"wpforms-{self._between(10, 999)}"
            data["formFields"] = {
                "name": " ".join(part for part in (person.first_name, person.last_name) if part),
                "email": person.email or "",
                "message": self._pick(_MESSAGES),
            }
        elif variant < 0.5:
            data["customFormName"] = f"{form_name} (footer)"
            for number in range(1, self._between(2, 7)):
                data[f"formCustomField{number}"] = self._pick(("ja", "nee", "12", "Zuid", "Ø 40mm"))
        elif variant < 0.6:
            data["formId"] = str(self._between(1, 40))
        return data

    def _user_data(self, person: _Person) -> dict[str, Any] | None:
        roll = self._random()
        if roll < 0.08:
            return None
        data: dict[str, Any] = {
            "firstName": person.first_name,
            "lastName": person.last_name,
            "email": person.email,
            "phone": person.phone,
        }
        # One WordPress plugin sends `company` where the documentation says `companyName`.
        data["company" if roll < 0.18 else "companyName"] = person.company
        return data

    def _attribution_data(self, created_ms: int) -> dict[str, Any] | None:
        roll = self._random()
        if roll < 0.1:
            return None
        # Client-side tags send "" for every id they did not find; server-side leads omit it.
        client_side = roll < 0.75
        data: dict[str, Any] = dict(_NO_CLICK_IDS) if client_side else {}
        for key, probability in _COMMON_CLICK_IDS:
            if self._random() < probability:
                data[key] = self._click_id(key, created_ms)
        while self._random() < 0.25:
            key = self._pick(_RARE_CLICK_IDS)
            data[key] = self._click_id(key, created_ms)
        if client_side or self._random() < 0.5:
            consent = self._random()
            if consent < 0.7:
                data["consent"] = dict.fromkeys(_CONSENT_KEYS, "granted")
            elif consent < 0.85:
                data["consent"] = dict.fromkeys(_CONSENT_KEYS, "denied")
            else:
                data["consent"] = {key: self._pick(("granted", "denied")) for key in _CONSENT_KEYS}
        data["conversionPage"] = f"{SITE}{self._pick(_LANDING_PATHS).rstrip('/')}/bedankt"
        return data

    def _click_id(self, key: str, created_ms: int) -> str:
        if key == "gclid":
            return "Cj0KCQjw" + self._token(45)
        if key == "cid":
            first_visit = created_ms // 1000 - self._between(0, 2_592_000)
            return f"{self._between(10**9, 2 * 10**9)}.{first_visit}"
        if key == "sid":
            return str(created_ms // 1000 - self._between(0, 3_600))
        if key == "fbp":
            return f"fb.1.{created_ms - self._between(0, 10**10)}.{self._between(10**9, 2**31)}"
        if key == "fbc":
            return f"fb.1.{created_ms - self._between(0, 10**8)}.IwAR{self._token(30)}"
        if key in ("wbraid", "gbraid"):
            return "0AAAAA" + self._token(24)
        if key in ("msclkid", "uetvid", "oppref", "obref"):
            return f"{self._rng.getrandbits(128):032x}"
        if key in ("li_fat_id", "scclid", "scid"):
            return self._uuid()
        if key == "rdt_uuid":
            return f"{created_ms - self._between(0, 10**9)}.{self._uuid()}"
        if key == "rdt_cid":
            return str(self._rng.getrandbits(62))
        return self._token(24)

    def _channel_flow(self, form: str | None, created_ms: int) -> Any:
        if form is None:
            return None
        if form == "malformed":
            return self._pick(MALFORMED_CHANNEL_FLOWS)
        count = self._weighted((1, 2, 3, 4, 5), (40, 65, 80, 92, 100))
        moment = created_ms - self._between(5_000, 7_200_000)
        moments = [moment]
        for _ in range(count - 1):
            moment -= self._between(3_600_000, 14 * 86_400_000)
            moments.append(moment)
        moments.reverse()
        sessions = [(moment, self._weighted(_VISITS, _VISIT_CUM)) for moment in moments]
        if form == "parsed":
            return [
                {"t": moment, "ch": visit.short_channel(), "lp": visit.landing_page}
                for moment, visit in sessions
            ]
        # Joining cached JSON fragments is several times faster than json.dumps per lead.
        if form == "legacy":
            return "[" + ", ".join(f'{{"timestamp": {t}, {v.legacy}' for t, v in sessions) + "]"
        if form == "cookie":
            parts = _COOKIE_COMMA.join(f"{_COOKIE_T}{t}{v.cookie}" for t, v in sessions)
            return f"{_COOKIE_OPEN}{parts}{_COOKIE_CLOSE}"
        return "[" + ",".join(f'{{"t":{t},{v.compact}' for t, v in sessions) + "]"

    def _token(self, size: int) -> str:
        raw = self._rng.getrandbits(size * 8).to_bytes(size, "big")
        return urlsafe_b64encode(raw).decode().rstrip("=")

    def _uuid(self) -> str:
        digits = f"{self._rng.getrandbits(128):032x}"
        return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{digits[16:20]}-{digits[20:]}"


@dataclass(frozen=True)
class _Visit:
    """One session of a channel flow, with its JSON after `"t"` ready in each shape."""

    source: str
    medium: str
    campaign: str
    content: str
    term: str
    landing_page: str
    compact: str = ""
    legacy: str = ""
    cookie: str = ""

    def short_channel(self) -> dict[str, str]:
        """Return the channel in the compact form's short keys."""
        return {
            "s": self.source,
            "m": self.medium,
            "cm": self.campaign,
            "ct": self.content,
            "tm": self.term,
        }

    def with_fragments(self) -> _Visit:
        """Return this visit with its JSON fragments filled in."""
        compact = (
            f'"ch":{_COMPACT_JSON(self.short_channel())},"lp":{_COMPACT_JSON(self.landing_page)}}}'
        )
        channel = {
            "source": self.source,
            "medium": self.medium,
            "campaign": self.campaign,
            "content": self.content,
            "term": self.term,
        }
        legacy = f'"channel": {json.dumps(channel)}}}'
        return replace(self, compact=compact, legacy=legacy, cookie=quote(f",{compact}"))


_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_COOKIE_T, _COOKIE_COMMA = quote('{"t":'), quote(",")
_COOKIE_OPEN, _COOKIE_CLOSE = quote("["), quote("]")


def _all_visits() -> tuple[list[_Visit], list[float]]:
    """Return every possible session and the cumulative weights to draw one."""
    visits, cumulative, total = [], [], 0.0
    for (source, medium, campaigns, terms), weight in zip(_CHANNELS, _CHANNEL_WEIGHTS, strict=True):
        contents = ("", "ad-a", "ad-b") if medium == "cpc" else ("",)
        combinations = list(product(campaigns, contents, terms, _LANDING_PATHS))
        for campaign, content, term, path in combinations:
            page = f"{SITE}{path}"
            if medium in ("cpc", "email"):
                page += f"?utm_source={source}&utm_medium={medium}&utm_campaign={quote(campaign)}"
            visits.append(_Visit(source, medium, campaign, content, term, page).with_fragments())
            total += weight / len(combinations)
            cumulative.append(total)
    return visits, cumulative


_VISITS, _VISIT_CUM = _all_visits()


_COMMON_CLICK_IDS = (
    ("gclid", 0.35), ("cid", 0.85), ("sid", 0.8), ("fbp", 0.5), ("fbc", 0.15), ("uetvid", 0.2),
    ("ttp", 0.1),
)  # fmt: skip
_RARE_CLICK_IDS = (
    "wbraid", "gbraid", "gbraid", "dclid", "msclkid", "msclkid", "ttclid", "li_fat_id", "scclid",
    "scid", "rdt_cid", "rdt_uuid", "epik", "twclid", "oppref", "obref",
)  # fmt: skip
# Documented ids first, in the documented order, then the ones tags add.
_CLICK_ID_KEYS = (
    "gclid", "wbraid", "cid", "sid", "fbp", "fbc", "gbraid", "dclid", "msclkid", "uetvid",
    "ttclid", "ttp", "li_fat_id", "scclid", "scid", "rdt_cid", "rdt_uuid", "epik", "twclid",
    "oppref", "obref",
)  # fmt: skip
_NO_CLICK_IDS = dict.fromkeys(_CLICK_ID_KEYS, "")


def _pick_kind(roll: float) -> str:
    """Return where a lead came from: a web form, a tracked phone call or a chat."""
    if roll < 0.85:
        return "form"
    return "call" if roll < 0.93 else "chat"


def channel_flow_form(rng: random.Random) -> str | None:
    """Return a `channelFlow` shape drawn in the same proportions `generate_leads` uses."""
    return rng.choice(_FLOW_BLOCK)


def generate_leads(n: int = 1000, seed: int = 1, *, bulk_ties: int = 0) -> list[dict[str, Any]]:
    """Return `n` realistic leads, oldest first, the same for the same `n` and `seed`.

    Ids run 1..n in creation order over about two years up to 2026-10-31. About one lead in
    ten shares its millisecond with the lead before it, and from 1,000 leads on a CRM import
    creates more than 100 leads in one millisecond, so sorting on `createdAt` has ties.
    With `bulk_ties`, exactly that many leads in the middle of the ids (starting at id
    `(n - bulk_ties) // 2 + 1`) share one millisecond that no other lead has, as a bulk
    import through the API would leave them (any size, also larger than the largest page).

    Raises:
        ValueError: `n` is negative, or `bulk_ties` is negative or more than `n`.

    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0 <= bulk_ties <= n:
        raise ValueError("bulk_ties must be between 0 and n")
    with gc_paused():
        return _generate(n, random.Random(seed), bulk_ties)


def _generate(n: int, rng: random.Random, bulk_ties: int = 0) -> list[dict[str, Any]]:
    tied = [index > 0 and rng.random() < 0.1 for index in range(n)]
    imported = [False] * n
    for start, size in _imports(rng, n):
        imported[start : start + size] = [True] * size
        tied[start + 1 : start + size] = [True] * (size - 1)
    if bulk_ties:
        # Cut loose from the leads around it, so the group has exactly `bulk_ties` leads.
        start = (n - bulk_ties) // 2
        tied[start : start + bulk_ties] = [False] + [True] * (bulk_ties - 1)
        if start + bulk_ties < n:
            tied[start + bulk_ties] = False
    distinct = n - sum(tied)
    moments = sorted(rng.sample(range(END_MS - SPAN_MS, END_MS + 1), distinct))
    flow_forms = list(_FLOW_BLOCK) * (n // len(_FLOW_BLOCK) + 1)
    for block in range(0, n, len(_FLOW_BLOCK)):
        # Shuffle within blocks of 20, so every 20 leads keep every shape.
        chunk = flow_forms[block : block + len(_FLOW_BLOCK)]
        rng.shuffle(chunk)
        flow_forms[block : block + len(_FLOW_BLOCK)] = chunk
    factory = LeadFactory(rng)
    leads = []
    next_moment = iter(moments)
    created_ms = 0
    for index in range(n):
        if not tied[index]:
            created_ms = next(next_moment)
        leads.append(
            factory.lead(index + 1, created_ms, flow_forms[index], imported=imported[index])
        )
    return leads


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many dicts.

    Otherwise every few hundred new dicts trigger a collection that rescans all the leads
    made so far, which costs a third of the time of generating 100,000 leads.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _imports(rng: random.Random, n: int) -> list[tuple[int, int]]:
    """Return (first index, size) of the CRM imports: leads created in one millisecond."""
    if n < 1000:
        return []
    size = rng.randint(120, 160)
    imports = [(rng.randrange(n // 5, n * 4 // 5 - size), size)]
    for _ in range(n // 10_000):
        size = rng.randint(20, 80)
        imports.append((rng.randrange(0, n - size), size))
    return imports
