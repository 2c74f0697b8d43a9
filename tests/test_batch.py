"""BATCH messages: a checkpoint never points past leads still waiting in a batch file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tests.conftest import bookmark_of, config_for, run_tap
from tests.test_touchpoints import catalog_selecting


def batch_records(manifest: list[str]) -> list[dict]:
    records = []
    for uri in manifest:
        with gzip.open(Path(urlparse(uri).path), "rt", encoding="utf-8") as lines:
            records += [json.loads(line) for line in lines]
    return records


@pytest.mark.parametrize("touchpoints", [False, True], ids=["leads", "with touchpoints"])
@pytest.mark.parametrize("parallel", [1, 4])
def test_no_state_points_past_a_lead_the_target_has_not_received(
    tmp_path, touchpoints, parallel
) -> None:
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": tmp_path.as_uri(), "prefix": "batch-"},
        "batch_size": 230,
    }
    with Sandbox(Project(generate_leads(1000, seed=41))) as server:
        config = config_for(
            server, batch_config=batch_config, page_size=50, max_parallel_requests=parallel
        )
        streams = ("leads", "lead_touchpoints") if touchpoints else ("leads",)
        result = run_tap(config, catalog=catalog_selecting(config, *streams))

    received: list[dict] = []
    states = 0
    for message in result.messages:
        if message["type"] == "BATCH" and message["stream"] == "leads":
            received += batch_records(message["manifest"])
        elif message["type"] == "STATE" and (bookmark := bookmark_of(message["value"])):
            states += 1
            newest_received = max((lead["createdAt"] for lead in received), default=None)
            assert newest_received is not None, "a bookmark before any lead was received"
            assert bookmark <= newest_received, "a checkpoint past leads still in a batch"
    assert sorted(lead["id"] for lead in received) == list(range(1, 1001))
    assert states >= 1
    assert bookmark_of(result.last_state) == max(lead["createdAt"] for lead in received)
