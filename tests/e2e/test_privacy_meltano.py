"""The `pii` setting through Meltano: declared with its options, passed on, checked."""

from __future__ import annotations

import json
from pathlib import Path

from tap_leadtrackr.privacy import PII_MODES
from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tests.e2e.conftest import Meltano, extractor_in_meltano_yml, lead_requests, sandbox_env
from tests.test_privacy import assert_no_personal_data, email_hash, expected_record


def test_meltano_yml_offers_the_three_modes_with_keep_as_default() -> None:
    extractor = extractor_in_meltano_yml()
    (pii,) = [setting for setting in extractor["settings"] if setting["name"] == "pii"]

    assert pii["kind"] == "options"
    assert [option["value"] for option in pii["options"]] == list(PII_MODES)
    assert pii["value"] == "keep"


def test_meltano_run_with_pii_hash_loads_no_raw_personal_data(
    meltano: Meltano, tmp_path: Path
) -> None:
    leads = generate_leads(300, seed=15)
    with Sandbox(Project(leads)) as sandbox:
        keep_dir, hash_dir = tmp_path / "keep", tmp_path / "hash"
        meltano(
            "run",
            "tap-leadtrackr",
            "target-jsonl",
            env=sandbox_env(sandbox, TARGET_JSONL_DESTINATION_PATH=keep_dir),
        )
        run = meltano(
            "run",
            "tap-leadtrackr",
            "target-jsonl",
            "--full-refresh",
            env=sandbox_env(
                sandbox, TAP_LEADTRACKR_PII="hash", TARGET_JSONL_DESTINATION_PATH=hash_dir
            ),
        )
        state = meltano.state("dev:tap-leadtrackr-to-target-jsonl")

    texts = {path.name: path.read_text(encoding="utf-8") for path in hash_dir.glob("*.jsonl")}
    assert sorted(texts) == ["lead_touchpoints.jsonl", "leads.jsonl"]
    assert_no_personal_data(leads, *texts.values(), run.stdout, run.stderr, json.dumps(state))
    kept = [json.loads(line) for line in (keep_dir / "leads.jsonl").read_text().splitlines()]
    hashed = [json.loads(line) for line in texts["leads.jsonl"].splitlines()]
    assert len(hashed) == len(leads)
    assert hashed == [expected_record(record, "hash") for record in kept]
    emails = {lead["id"]: lead["email"] for lead in leads if lead["email"]}
    assert {record["id"]: record["email"] for record in hashed if record["id"] in emails} == {
        lead_id: email_hash(email) for lead_id, email in emails.items()
    }
    keep_touchpoints = (keep_dir / "lead_touchpoints.jsonl").read_text(encoding="utf-8")
    assert texts["lead_touchpoints.jsonl"] == keep_touchpoints


def test_a_bad_pii_value_through_meltano_stops_before_any_request(meltano: Meltano) -> None:
    with Sandbox(Project(generate_leads(20, seed=15))) as sandbox:
        run = meltano(
            "invoke",
            "tap-leadtrackr",
            env=sandbox_env(sandbox, TAP_LEADTRACKR_PII="pseudonymise"),
            check=False,
        )
        requests = lead_requests(sandbox)

    assert run.returncode != 0
    assert "pii" in run.stdout + run.stderr
    assert requests == []
