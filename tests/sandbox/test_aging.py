"""`age`: a project some days later, with leads rated, deleted and added as asked."""

from __future__ import annotations

import copy
from datetime import timedelta

import requests

from tap_leadtrackr.sandbox import DEFAULT_API_KEY, Aging, Project, age, age_rounds, generate_leads
from tests.sandbox.conftest import LEADS, instant
from tests.sandbox.test_cli import running

CONVERSION_LABELS = {"Qualified lead", "Sale", "Afspraak gepland", "Offerte"}


def test_a_round_rates_deletes_and_adds_what_it_says() -> None:
    leads = generate_leads(3000, seed=5)
    before = {lead["id"]: copy.deepcopy(lead) for lead in leads}
    newest = max(instant(lead["createdAt"]) for lead in leads)
    project = Project(leads)
    aging = Aging(new_leads=25, recent_ratings=6, old_ratings=20, deletions=15)

    aged = age(project, aging, seed=3)

    after = {lead["id"]: lead for lead in project.leads}
    assert (len(aged.rated_recent), len(aged.rated_old)) == (6, 20)
    for lead_id in aged.rated:
        assert before[lead_id]["status"] in ("open", "pending")
        assert after[lead_id]["status"] in CONVERSION_LABELS
        assert after[lead_id]["price"] > 0
        assert after[lead_id]["createdAt"] == before[lead_id]["createdAt"]
    for lead_id in aged.rated_recent:
        assert instant(before[lead_id]["createdAt"]) >= newest - timedelta(days=10)
    for lead_id in aged.rated_old:
        assert instant(before[lead_id]["createdAt"]) < newest - timedelta(days=60)
    assert len(aged.deleted) == 15
    assert not set(aged.deleted) & (set(after) | set(aged.rated))
    assert len(aged.added) == 25
    assert min(aged.added) > max(before)
    assert all(instant(after[i]["createdAt"]) > newest for i in aged.added)
    # Nothing else changed.
    untouched = set(before) - set(aged.rated) - set(aged.deleted)
    assert all(after[i] == before[i] for i in untouched)
    assert len(after) == 3000 - 15 + 25


def test_rounds_are_the_same_for_the_same_project_and_seed() -> None:
    one, other = Project(generate_leads(800, seed=9)), Project(generate_leads(800, seed=9))

    assert age_rounds(one, 3) == [age(other, seed=number) for number in (1, 2, 3)]
    assert one.leads == other.leads


def test_fewer_leads_change_when_too_few_qualify() -> None:
    project = Project(generate_leads(4, seed=2))

    aged = age(project, Aging(new_leads=1, recent_ratings=50, old_ratings=50, deletions=50))

    assert len(aged.rated) <= 4
    assert len(aged.deleted) == 4 - len(aged.rated)
    assert len(project) == len(aged.rated) + 1


def test_the_command_serves_the_project_aged_by_rounds() -> None:
    expected = Project(generate_leads(400, seed=4))
    changes = age_rounds(expected, 2)
    with running("--leads", "400", "--seed", "4", "--aged", "2") as (process, line):
        assert process.stdout is not None
        summary = process.stdout.readline()
        response = requests.get(
            line["url"] + LEADS,
            params={"limit": 100, "sort": "createdAt:desc"},
            headers={"X-API-Key": DEFAULT_API_KEY},
            timeout=10,
        )

    assert line["count"] == str(len(expected))
    rated = sum(len(change.rated) for change in changes)
    assert summary == f"  aged 2 round(s): {rated} leads rated, 10 deleted, 50 added\n"
    # The newest leads, with those the two rounds added, as the same rounds age them here.
    served = response.json()["leads"]
    by_id = {lead["id"]: lead for lead in expected.leads}
    assert len(served) == 100
    assert all(lead == by_id[lead["id"]] for lead in served)
    added = {i for change in changes for i in change.added if i in by_id}
    assert added <= {lead["id"] for lead in served}
