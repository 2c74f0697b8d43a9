"""The `pii` setting: no raw personal data in `hash` or `drop` mode, and `keep` as before.

Expected values are computed here from the rules docs/privacy.md states, with `hashlib`, not
with the tap's own functions.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import typing as t
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tap_leadtrackr import privacy
from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.schemas import LEAD_SCHEMA
from tap_leadtrackr.tap import TapLeadTrackr
from tests.conftest import SyncResult, config_for, run_tap
from tests.test_reliability import break_page_with
from tests.test_touchpoints import TOUCHPOINTS, catalog_selecting

PERSONAL = ("email", "phone", "firstName", "lastName")
FORM_DATA_KEPT = {"formName", "uniqueEventId", "formId", "customFormName"}
USER_DATA_KEPT = {"companyName", "company"}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def email_hash(value: t.Any) -> str | None:
    text = str(value).strip().lower()
    return sha256(text) if text else None


def phone_hash(value: t.Any) -> str | None:
    digits = "".join(char for char in str(value) if char in "0123456789")
    return sha256("+" + digits) if digits else None


def name_hash(value: t.Any) -> str | None:
    text = str(value).strip().lower()
    return sha256(text) if text else None


HASHES: dict[str, t.Callable[[t.Any], str | None]] = {
    "email": email_hash,
    "phone": phone_hash,
    "firstName": name_hash,
    "lastName": name_hash,
}


def expected_record(keep: dict[str, t.Any], mode: str) -> dict[str, t.Any]:
    """What `mode` should make of a record written in `keep` mode."""
    record = copy.deepcopy(keep)

    def replaced(key: str, value: t.Any) -> t.Any:
        if value is None or mode == "drop" or not isinstance(value, (str, int)):
            return None
        if isinstance(value, bool):
            return None
        return HASHES[key](value)

    for key in PERSONAL:
        if record.get(key) is not None:
            record[key] = replaced(key, record[key])
    if record.get("note") is not None:
        record["note"] = None
    for field, kept in (("userData", USER_DATA_KEPT), ("formData", FORM_DATA_KEPT)):
        if isinstance(record.get(field), dict):
            record[field] = {
                key: value if key in kept else replaced(key, value)
                for key, value in record[field].items()
                if key in kept or key in PERSONAL
            }
    return record


def odd_leads() -> list[dict[str, t.Any]]:
    """Generated leads, some given the oddities forms and plugins send."""
    leads = generate_leads(600, seed=15)
    leads[0].update(email="  Mixed.Case@Example.COM ", phone="+31 (0)6 1234-5678")
    leads[0]["formData"] = {
        "formName": "Contact",
        "email": " Form.Sender@Example.com",
        "phone": "06 98765432",
        "firstName": " Formfirst ",
        "lastName": "Formlast",
        "street": "Kerkstraat 1",
        "formFields": {"email": "form.fields@example.com", "message": "Bel me na 17:00"},
    }
    leads[1].update(email="", phone="n/a", firstName="   ", note="Belde terug")
    leads[1]["userData"] = {
        "firstName": "Userfirst",
        "email": "user.data@example.org",
        "phone": 31612345678,
        "address": "Dorpsstraat 12, Utrecht",
        "company": "Userco",
    }
    leads[2]["userData"] = {
        "email": ["list@example.org"],
        "lastName": None,
        "phone": 3.1612345678e10,
        "firstName": True,
    }
    return leads


@pytest.fixture(scope="module")
def server() -> t.Iterator[Sandbox]:
    with Sandbox(Project(odd_leads())) as sandbox:
        yield sandbox


def personal_values(leads: list[dict[str, t.Any]]) -> tuple[set[str], set[str]]:
    """Every raw email, phone and name of the leads: (distinctive strings, names)."""
    strings: set[str] = set()
    names: set[str] = set()
    for lead in leads:
        sources = [lead, lead.get("userData") or {}, lead.get("formData") or {}]
        form_fields = (lead.get("formData") or {}).get("formFields") or {}
        for source in sources:
            for key in ("email", "phone"):
                if isinstance(value := source.get(key), (str, int)) and str(value).strip():
                    strings |= {str(value), str(value).strip(), str(value).strip().lower()}
                    if key == "phone":
                        strings.add("+" + "".join(c for c in str(value) if c.isdigit()))
            for key in ("firstName", "lastName"):
                if isinstance(value := source.get(key), str) and value.strip():
                    names |= {value.strip(), value.strip().lower()}
        if form_fields.get("email"):
            strings.add(form_fields["email"])
        if form_fields.get("name"):
            names.add(form_fields["name"])
        for text in (lead.get("note"), form_fields.get("message")):
            if text:
                strings.add(text)
    strings.discard("+")
    return strings, names


def string_values(value: t.Any) -> t.Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from string_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from string_values(item)


def assert_no_personal_data(leads: list[dict[str, t.Any]], *texts: str) -> None:
    """No raw email, phone, name or note of `leads` in `texts` (output, logs, files)."""
    strings, names = personal_values(leads)
    assert strings
    assert names
    for text in texts:
        leaked = sorted(value for value in strings if value in text)
        assert not leaked, f"raw personal data in the output: {leaked[:5]}"
        # Names are short and may sit inside a click id: compare whole values, and words.
        for line in text.splitlines():
            try:
                values = set(string_values(json.loads(line)))
            except json.JSONDecodeError:
                values = set(re.findall(r"\w[\w'-]*", line))
            assert not values & names, f"raw names in the output: {sorted(values & names)[:5]}"


def sync(server: Sandbox, catalog: dict | None = None, **settings: t.Any) -> SyncResult:
    result = run_tap(config_for(server, **settings), catalog=catalog)
    assert result.error is None, result.error
    return result


def leads_of(result: SyncResult) -> dict[int, dict[str, t.Any]]:
    return {
        m["record"]["id"]: m["record"]
        for m in result.messages
        if m["type"] == "RECORD" and m["stream"] == "leads"
    }


def comparable(output: str) -> str:
    """The tap's output without what differs from run to run (times)."""
    output = re.sub(r'"time_extracted":"[^"]*",?', "", output)
    return re.sub(r'"replication_key_signpost":"[^"]*",?', "", output)


# Normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "normalised"),
    [
        ("john.doe@example.com", "john.doe@example.com"),
        ("  John.Doe@Example.COM\t", "john.doe@example.com"),
        ("ÉMILE@Café.fr", "émile@café.fr"),
    ],
)
def test_an_email_is_hashed_trimmed_and_lower_cased(email: str, normalised: str) -> None:
    assert privacy.hashed_email(email) == sha256(normalised)
    assert privacy.hashed_email(email) == hashlib.sha256(normalised.encode()).hexdigest()


@pytest.mark.parametrize(
    ("phone", "normalised"),
    [
        ("+31612345678", "+31612345678"),
        ("+31 6 1234 5678", "+31612345678"),
        ("+1 (555) 123-4567", "+15551234567"),
        ("0031 6 12345678", "+0031612345678"),
        # No country code: nothing is guessed, so this does not match `+31612345678`.
        ("06-12345678", "+0612345678"),
    ],
)
def test_a_phone_is_hashed_as_plus_and_its_digits(phone: str, normalised: str) -> None:
    assert privacy.hashed_phone(phone) == sha256(normalised)


def test_a_name_is_hashed_trimmed_and_lower_cased() -> None:
    assert privacy.hashed_name("  Zoë ") == sha256("zoë")
    assert privacy.hashed_name("van den Berg") == sha256("van den berg")


@pytest.mark.parametrize("value", ["", "   ", "n/a", "+", "-"])
def test_nothing_left_after_normalising_hashes_to_null(value: str) -> None:
    assert privacy.hashed_phone(value) is None
    if not value.strip():
        assert privacy.hashed_email(value) is None
        assert privacy.hashed_name(value) is None


def test_hashes_are_lower_case_hex_sha256() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", privacy.hashed_email("a@b.c") or "")


# Records -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hash", "drop"])
def test_every_record_is_the_keep_record_with_personal_data_hashed_or_dropped(
    server: Sandbox, mode: str
) -> None:
    keep = leads_of(sync(server))
    protected = leads_of(sync(server, pii=mode))

    assert list(protected) == list(keep)
    for lead_id, record in keep.items():
        assert protected[lead_id] == expected_record(record, mode), lead_id


def test_hashes_match_the_normalised_values_of_the_odd_leads(server: Sandbox) -> None:
    records = leads_of(sync(server, pii="hash"))
    first, second, third = (records[lead["id"]] for lead in server.project.leads[:3])

    assert first["email"] == sha256("mixed.case@example.com")
    assert first["phone"] == sha256("+310612345678")
    assert first["formData"] == {
        "formName": "Contact",
        "email": sha256("form.sender@example.com"),
        "phone": sha256("+0698765432"),
        "firstName": sha256("formfirst"),
        "lastName": sha256("formlast"),
    }
    assert (second["email"], second["phone"], second["firstName"], second["note"]) == (None,) * 4
    assert second["userData"] == {
        "firstName": sha256("userfirst"),
        "email": sha256("user.data@example.org"),
        "phone": sha256("+31612345678"),
        "company": "Userco",
    }
    assert third["userData"] == {"email": None, "lastName": None, "phone": None, "firstName": None}


def test_the_leak_check_finds_the_raw_data_that_keep_writes(server: Sandbox) -> None:
    strings, names = personal_values(server.project.leads)
    result = sync(server)

    assert len(strings) > 1000
    assert len(names) > 50
    with pytest.raises(AssertionError, match="raw personal data"):
        assert_no_personal_data(server.project.leads, result.output)
    with pytest.raises(AssertionError, match="raw names"):
        assert_no_personal_data(server.project.leads, '{"firstName": "Formfirst"}')
    with pytest.raises(AssertionError, match="raw names"):
        assert_no_personal_data(server.project.leads, "a log line about Formlast")


@pytest.mark.parametrize("mode", ["hash", "drop"])
def test_no_raw_email_phone_or_name_anywhere_in_the_output(server: Sandbox, mode: str) -> None:
    result = sync(server, pii=mode)

    assert len(result.records) == len(server.project.leads)
    assert result.states
    assert_no_personal_data(server.project.leads, result.output, result.log)
    assert all(record["note"] is None for record in result.records)


def test_what_hash_mode_keeps(server: Sandbox) -> None:
    keep = leads_of(sync(server))
    hashed = leads_of(sync(server, pii="hash"))

    kept = (
        "id", "status", "formName", "companyName", "price", "attributionData",
        "channelFlow", "uniqueIdentifier", "createdAt",
    )  # fmt: skip
    for lead_id, record in keep.items():
        assert {key: hashed[lead_id][key] for key in kept} == {key: record[key] for key in kept}
    assert any(record["attributionData"] for record in hashed.values())
    assert any(record["channelFlow"] for record in hashed.values())


#: `attributionData` as tags may send it: documented ids, consent, and keys nobody documented.
ODD_ATTRIBUTION = {
    "gclid": "Cj0KCQ-click",
    "fbc": "fb.1.1700000000.AbC",
    "msclkid": "",
    "conversionPage": "https://example.nl/bedankt",
    "consent": {"ad_storage": "granted", "analytics_storage": "denied", "visitor": "Zq Tracked"},
    "email": "zq.tracked@example.org",
    "utm_content": "Zq Visitor Name",
    "client": {"phone": "+31 6 9999 0000"},
}
ATTRIBUTION_KEPT = {
    "gclid": "Cj0KCQ-click",
    "fbc": "fb.1.1700000000.AbC",
    "msclkid": "",
    "conversionPage": "https://example.nl/bedankt",
    "consent": {"ad_storage": "granted", "analytics_storage": "denied"},
}


@pytest.mark.parametrize("mode", ["hash", "drop"])
def test_attribution_data_keeps_only_its_documented_keys(mode: str) -> None:
    leads = generate_leads(5, seed=16)
    leads[0]["attributionData"] = copy.deepcopy(ODD_ATTRIBUTION)
    leads[1]["attributionData"] = {"consent": "granted", "gbraid": "g-1"}
    leads[2]["attributionData"] = {"consent": None}
    with Sandbox(Project(leads)) as server:
        kept = leads_of(sync(server, pii=mode))
        keep = leads_of(sync(server))

    assert kept[leads[0]["id"]]["attributionData"] == ATTRIBUTION_KEPT
    assert kept[leads[1]["id"]]["attributionData"] == {"consent": None, "gbraid": "g-1"}
    assert kept[leads[2]["id"]]["attributionData"] == {"consent": None}
    assert keep[leads[0]["id"]]["attributionData"] == ODD_ATTRIBUTION
    for lead in leads[3:]:
        assert kept[lead["id"]]["attributionData"] == lead["attributionData"]


def test_the_schema_and_the_setting_say_what_attribution_data_keeps() -> None:
    attribution = LEAD_SCHEMA.to_dict()["properties"]["attributionData"]
    pii = TapLeadTrackr.config_jsonschema["properties"]["pii"]["description"]

    assert "leaving out any other key" in attribution["description"]
    assert set(attribution["properties"]) == set(privacy.ATTRIBUTION_DATA_KEPT) | {"consent"}
    assert "conversionPage" in privacy.ATTRIBUTION_DATA_KEPT
    assert set(attribution["properties"]["consent"]["properties"]) == privacy.CONSENT_KEPT
    assert "any `attributionData` key other than" in pii


def test_keep_is_the_output_without_the_setting(
    server: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("keep must not touch a lead")

    unset = sync(server)
    monkeypatch.setattr(privacy, "_protect", refuse)
    keep = sync(server, pii="keep")

    assert comparable(keep.output) == comparable(unset.output)
    assert keep.output.count('"type":"RECORD"') == len(server.project.leads)
    raw = {lead["id"]: lead for lead in server.project.leads}
    for record in keep.records:
        for key in (*PERSONAL, "note", "userData", "formData"):
            assert record[key] == raw[record["id"]][key]


def test_touchpoints_are_the_same_in_every_mode(server: Sandbox) -> None:
    config = config_for(server)
    catalog = catalog_selecting(config, "leads", TOUCHPOINTS)
    outputs = {}
    for mode in privacy.PII_MODES:
        result = sync(server, catalog=catalog, pii=mode)
        outputs[mode] = [
            m["record"]
            for m in result.messages
            if m["type"] == "RECORD" and m["stream"] == TOUCHPOINTS
        ]

    assert len(outputs["keep"]) > 500
    assert outputs["hash"] == outputs["keep"]
    assert outputs["drop"] == outputs["keep"]


def test_the_schema_says_what_each_mode_does_to_each_field() -> None:
    properties = LEAD_SCHEMA.to_dict()["properties"]
    for name, spec in properties.items():
        assert "`pii`" in spec["description"], name
    for name in (*PERSONAL, "note", "formData", "userData"):
        assert "`hash`" in properties[name]["description"], name
        assert "`drop`" in properties[name]["description"], name
    for name in PERSONAL:
        assert "SHA-256" in properties[name]["description"], name
        assert "SHA-256" in properties["userData"]["properties"][name]["description"], name
    for field in ("userData", "formData"):
        for name, spec in properties[field]["properties"].items():
            assert "`pii`" in spec["description"], (field, name)


# Settings and other features -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["hashed", "HASH", "", None, 1])
def test_a_bad_pii_value_is_refused_before_any_request(server: Sandbox, value: t.Any) -> None:
    before = len(server.requests)

    result = run_tap(config_for(server, pii=value), expect_error=True)

    assert result.error is not None
    assert "pii" in str(result.error) + " ".join(getattr(result.error, "errors", []))
    assert len(server.requests) == before
    assert result.records == []


def tap_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("TAP_")}
    return subprocess.run(
        [sys.executable, "-m", "tap_leadtrackr", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**clean, **env},
    )


def test_pii_from_the_environment_with_config_env(server: Sandbox) -> None:
    run = tap_cli(
        "--config=ENV",
        env={
            "TAP_LEADTRACKR_API_KEY": server.api_key,
            "TAP_LEADTRACKR_API_URL": server.url,
            "TAP_LEADTRACKR_PII": "hash",
        },
    )

    assert run.returncode == 0, run.stderr[-2000:]
    records = [json.loads(line)["record"] for line in run.stdout.splitlines() if '"RECORD"' in line]
    assert len(records) == len(server.project.leads)
    by_id = {lead["id"]: lead for lead in server.project.leads}
    for record in records:
        assert record["email"] == (
            email_hash(by_id[record["id"]]["email"]) if by_id[record["id"]]["email"] else None
        )
    assert_no_personal_data(server.project.leads, run.stdout, run.stderr)


def test_a_bad_pii_value_from_the_environment_stops_the_cli(server: Sandbox) -> None:
    before = len(server.requests)

    run = tap_cli(
        "--config=ENV",
        env={
            "TAP_LEADTRACKR_API_KEY": server.api_key,
            "TAP_LEADTRACKR_API_URL": server.url,
            "TAP_LEADTRACKR_PII": "pseudonymise",
        },
    )

    assert run.returncode != 0
    assert "pii" in run.stderr
    assert len(server.requests) == before


FEATURES: dict[str, dict[str, t.Any]] = {
    "parallel pages": {"max_parallel_requests": 4, "page_size": 25},
    "filters": {"statuses": ["open", "lost"], "gclid_exists": True, "page_size": 10},
    "window": {"start_date": "2025-06-01", "end_date": "2026-03-01"},
    "lookback": {"lookback_window_days": 60},
    "flattening": {"flattening_enabled": True, "flattening_max_depth": 3},
    "stream map": {
        "stream_maps": {"leads": {"email_is_set": "email is not None", "note": "__NULL__"}}
    },
}


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_hash_works_with_every_other_feature(server: Sandbox, feature: str) -> None:
    settings = FEATURES[feature]
    state = None
    if feature == "lookback":
        newest = server.project.leads[-1]["createdAt"]
        state = {
            "bookmarks": {
                "leads": {"replication_key": "createdAt", "replication_key_value": newest}
            }
        }
    keep = run_tap(config_for(server, **settings), state=state)
    hashed = run_tap(config_for(server, pii="hash", **settings), state=state)

    assert keep.error is None, keep.error
    assert hashed.error is None, hashed.error
    assert len(hashed.records) == len(keep.records) > 0
    assert_no_personal_data(server.project.leads, hashed.output, hashed.log)
    if feature == "flattening":
        raw = {lead["id"]: lead for lead in server.project.leads}
        for record in hashed.records:
            email = (raw[record["id"]]["userData"] or {}).get("email")
            if isinstance(email, str):
                assert record["userData__email"] == email_hash(email)
    elif feature == "stream map":
        assert all("email_is_set" in record for record in hashed.records)
    else:
        assert [r["id"] for r in hashed.records] == [r["id"] for r in keep.records]
        assert hashed.records == [expected_record(r, "hash") for r in keep.records]


def test_hash_works_with_batch_messages(server: Sandbox, tmp_path: Path) -> None:
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": tmp_path.as_uri(), "prefix": "leads-"},
    }

    result = sync(server, pii="hash", batch_config=batch_config)

    manifests = [m for m in result.messages if m["type"] == "BATCH"]
    files = [Path(urlparse(uri).path) for m in manifests for uri in m["manifest"]]
    text = "".join(gzip.decompress(path.read_bytes()).decode() for path in files)
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == len(server.project.leads)
    assert_no_personal_data(server.project.leads, result.output, result.log, text)
    assert all(record["note"] is None for record in records)


@pytest.mark.parametrize("missing", ["id", "createdAt"])
def test_a_contract_error_names_the_lead_without_its_personal_data(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    leads = generate_leads(5, seed=3)
    leads[2].update(email="quoted.lead@example.com", phone="+31 6 55501234", note="Belde")
    break_page_with(monkeypatch, leads[2]["id"], lambda page, at: page[at].pop(missing))
    with Sandbox(Project(leads)) as sandbox:
        result = run_tap(config_for(sandbox, pii="hash"), expect_error=True)

    assert "without `id` or `createdAt`" in str(result.error)
    assert_no_personal_data(leads, str(result.error), result.log, result.output)
