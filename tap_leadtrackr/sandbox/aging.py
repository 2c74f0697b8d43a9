"""A project some days later: leads rated, deleted and added, as between two syncs.

LeadTrackr rates a lead (its status becomes a conversion label and its price is set, in
cents) days or weeks after it arrived, and a lead can be deleted without a trace in the
API. `age` does that to a `Project`, the same way for the same seed, so that tests, the
demo (one round per `make demo`) and `leadtrackr-sandbox --aged N` give a sync something
to catch up with. Ages are counted back from the project's newest lead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tap_leadtrackr.sandbox.data import CONVERSION_LABELS
from tap_leadtrackr.sandbox.instants import parse_instant
from tap_leadtrackr.sandbox.project import Project

DAY_MS = 86_400_000
#: The statuses of a lead nobody has rated yet.
UNRATED = ("open", "pending")
#: Prices a rating sets, in cents.
PRICES = (2_500, 5_000, 15_000, 49_900, 125_000, 849_500)


@dataclass(frozen=True)
class Aging:
    """What one round of aging does to a project (the defaults: a demo round)."""

    new_leads: int = 25
    """Leads created after the newest one."""
    recent_ratings: int = 5
    """Unrated leads of the last `recent_days` days that get a conversion label and a price."""
    old_ratings: int = 10
    """Unrated leads older than `old_days` days that get a conversion label and a price."""
    deletions: int = 5
    """Leads of any age deleted (none of those rated in the round)."""
    recent_days: int = 10
    old_days: int = 60


@dataclass(frozen=True)
class Aged:
    """The ids of the leads a round of aging changed, by change."""

    rated_recent: tuple[int, ...]
    rated_old: tuple[int, ...]
    deleted: tuple[int, ...]
    added: tuple[int, ...]

    @property
    def rated(self) -> tuple[int, ...]:
        """Every lead rated in the round."""
        return self.rated_recent + self.rated_old


def age(project: Project, aging: Aging | None = None, *, seed: int = 0) -> Aged:
    """Rate, then delete, then add leads as `aging` says; return what changed.

    Fewer leads change when too few qualify (a small or young project).
    """
    aging = aging or Aging()
    rng = random.Random(seed)
    leads = sorted(project.leads, key=lambda lead: lead["id"])
    created = {lead["id"]: parse_instant(lead["createdAt"]) for lead in leads}
    now = max(created.values(), default=0)
    unrated = [lead["id"] for lead in leads if lead.get("status") in UNRATED]
    recent = [i for i in unrated if created[i] >= now - aging.recent_days * DAY_MS]
    old = [i for i in unrated if created[i] < now - aging.old_days * DAY_MS]
    rated_recent = _sample(rng, recent, aging.recent_ratings)
    rated_old = _sample(rng, old, aging.old_ratings)
    labels = sorted(CONVERSION_LABELS)
    for lead_id in rated_recent + rated_old:
        project.update_lead(lead_id, status=rng.choice(labels), price=rng.choice(PRICES))
    rated = set(rated_recent + rated_old)
    deleted = _sample(rng, [i for i in created if i not in rated], aging.deletions)
    project.delete_leads(deleted)
    added = [lead["id"] for lead in project.add_leads(aging.new_leads)]
    return Aged(tuple(rated_recent), tuple(rated_old), tuple(deleted), tuple(added))


def age_rounds(project: Project, rounds: int, aging: Aging | None = None) -> list[Aged]:
    """Age `project` by `rounds` rounds, seeded 1, 2, ...: round k is always the same."""
    return [age(project, aging, seed=number) for number in range(1, rounds + 1)]


def _sample(rng: random.Random, ids: list[int], count: int) -> list[int]:
    return sorted(rng.sample(ids, min(count, len(ids))))
