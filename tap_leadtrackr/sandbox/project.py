"""A LeadTrackr project: its leads, whether its subscription is active, and read caches."""

from __future__ import annotations

import json
import random
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from tap_leadtrackr.sandbox.data import END_MS, LeadFactory, channel_flow_form, gc_paused
from tap_leadtrackr.sandbox.instants import format_instant, parse_instant
from tap_leadtrackr.sandbox.query import LeadLookup, LeadsQuery, shuffle_ties

_CACHED_ORDERS = 32
"""Distinct filter/sort combinations whose ordered ids are kept (each up to 8 bytes a lead)."""

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


class _Order:
    """The ids a query selects in response order, and where its tie groups start."""

    __slots__ = ("ascending_keys", "ids", "tie_starts")

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.tie_starts: list[int] | None = None
        """Computed on the first request that reorders ties."""
        self.ascending_keys: list[int] | None = None
        """For an order on `createdAt`: each lead's key, rising (negated when descending)."""


class Project:
    """The leads a sandbox serves, in creation order; safe to change while it serves them.

    Change leads through the methods, not by editing the dicts: every change bumps
    `version`, which invalidates the cached orders and encoded leads.
    """

    def __init__(self, leads: Iterable[Mapping[str, Any]] = (), *, active: bool = True) -> None:
        """Serve `leads` (dicts with at least a unique integer `id` and an ISO `createdAt`).

        Raises:
            ValueError: a lead has no integer id, a duplicate id, or no valid createdAt.

        """
        self.active = active
        """False answers every authenticated request 403, as for a lapsed subscription."""
        self._lock = threading.RLock()
        self._leads: list[dict[str, Any]] = []
        self._by_id: dict[int, dict[str, Any]] = {}
        self._created_ms: dict[int, int] = {}
        self._encoded: dict[int, bytes] = {}
        self._orders: OrderedDict[LeadsQuery, _Order] = OrderedDict()
        self._newest_ms: int | None = None
        self._version = 0
        self._next_id = 1
        with gc_paused():
            for lead in leads:
                self._append(lead if isinstance(lead, dict) else dict(lead))

    @property
    def leads(self) -> list[dict[str, Any]]:
        """A snapshot of the leads, in creation order."""
        with self._lock:
            return list(self._leads)

    @property
    def version(self) -> int:
        """A counter that increases with every change to the leads."""
        return self._version

    def __len__(self) -> int:
        return len(self._leads)

    def add_leads(
        self, count: int, *, created_at: str | None = None, tied: bool = False
    ) -> list[dict[str, Any]]:
        """Create `count` realistic leads with ids after the highest id so far, and return them.

        They are created at `created_at` (ISO 8601; all tied, wherever that falls), or else
        as the newest: a few milliseconds apart after the newest lead the project has ever
        held, or with `tied` all in the one millisecond after it, as a bulk import is.
        """
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            # Seeded by the first new id, so the same sequence of changes gives the same leads.
            rng = random.Random(self._next_id)
            factory = LeadFactory(rng)
            if created_at is not None:
                moment = parse_instant(created_at)
            else:
                # The newest ever, not the newest left: a server stamps creation time, and
                # a lead created after a deletion of the newest is still newer than it was.
                moment = END_MS if self._newest_ms is None else self._newest_ms
                if tied:
                    moment += 1
            added = []
            for _ in range(count):
                if created_at is None and not tied:
                    moment += rng.randint(1, 5)
                lead = factory.lead(self._next_id, moment, channel_flow_form(rng))
                self._append(lead)
                added.append(lead)
            self._changed()
            return added

    def update_lead(self, lead_id: int, **fields: Any) -> dict[str, Any]:
        """Change fields of a lead (as rating or converting it would) and return it.

        Raises:
            KeyError: no lead has this id.
            ValueError: `id` cannot change, and `createdAt` must be ISO 8601.

        """
        if "id" in fields:
            raise ValueError("a lead's id cannot change")
        with self._lock:
            lead = self._by_id.get(lead_id)
            if lead is None:
                raise KeyError(f"no lead with id {lead_id}")
            if "createdAt" in fields:
                self._created_ms[lead_id] = parse_instant(fields["createdAt"])
                self._note_created(self._created_ms[lead_id])
            lead.update(fields)
            self._encoded.pop(lead_id, None)
            self._changed()
            return lead

    def delete_leads(self, ids: Iterable[int]) -> int:
        """Delete the leads with these ids (unknown ids are ignored); return how many went."""
        doomed = set(ids)
        with self._lock:
            kept = [lead for lead in self._leads if lead["id"] not in doomed]
            deleted = len(self._leads) - len(kept)
            if deleted:
                for lead_id in doomed:
                    self._by_id.pop(lead_id, None)
                    self._created_ms.pop(lead_id, None)
                    self._encoded.pop(lead_id, None)
                self._leads = kept
                self._changed()
            return deleted

    def oldest_ids(self, count: int) -> list[int]:
        """Return the ids of the `count` oldest leads (by createdAt, then creation order)."""
        return self.pick_ids(count, "oldest")

    def pick_ids(self, count: int, where: str = "oldest", *, seed: int = 0) -> list[int]:
        """Return the ids of `count` leads, chosen by age (createdAt, then creation order).

        `where` is `oldest`, `newest` (the newest first), `middle` (a run of consecutive
        leads around the median, oldest first), `random` (drawn by `random.Random(seed)`)
        or `tied` (drawn the same way from the largest group of leads that share one
        `createdAt`; no more than it holds).

        Raises:
            ValueError: `where` is none of these.

        """
        if where not in ("oldest", "newest", "middle", "random", "tied"):
            raise ValueError(f"where must be oldest, newest, middle, random or tied, not {where!r}")
        with self._lock:
            count = max(0, min(count, len(self._leads)))
            if where == "random":
                return random.Random(seed).sample([lead["id"] for lead in self._leads], count)
            if where == "tied":
                groups: dict[int, list[int]] = {}
                for lead in self._leads:
                    groups.setdefault(self._created_ms[lead["id"]], []).append(lead["id"])
                largest = max(groups.values(), key=len, default=[])
                return random.Random(seed).sample(largest, min(count, len(largest)))
            ranked = sorted(range(len(self._leads)), key=self._oldest_key)
            if where == "newest":
                ranked.reverse()
            start = (len(ranked) - count) // 2 if where == "middle" else 0
            return [self._leads[index]["id"] for index in ranked[start : start + count]]

    def instant_between(self, *, seed: int) -> str:
        """A random instant from the oldest lead's `createdAt` to the newest's, as ISO 8601.

        Where a lead stamped by a server whose clock is behind lands. Raises ValueError
        when the project holds no lead.
        """
        with self._lock:
            if not self._created_ms:
                raise ValueError("no lead to stamp a new one between")
            moment = random.Random(seed).randint(
                min(self._created_ms.values()), max(self._created_ms.values())
            )
        return format_instant(moment)

    def busiest_instant(self) -> str:
        """The `createdAt` the most leads share (the oldest such), as ISO 8601.

        Raises ValueError when the project holds no lead.
        """
        with self._lock:
            if not self._created_ms:
                raise ValueError("no lead to share an instant with")
            counts: dict[int, int] = {}
            for moment in self._created_ms.values():
                counts[moment] = counts.get(moment, 0) + 1
            return format_instant(max(sorted(counts), key=counts.__getitem__))

    def page(
        self,
        query: LeadsQuery,
        offset: int,
        limit: int,
        *,
        tie_order: str = "fixed",
        request_number: int = 0,
    ) -> tuple[int, list[bytes]]:
        """Return the number of leads matching `query` and the JSON of `limit` from `offset`.

        `tie_order` (see `Faults.tie_order`) decides how leads tied on the sort field are
        ordered: `fixed`, `per_request` (shuffled afresh, seeded by `request_number`) or
        `per_offset` (shuffled, seeded by `offset` and `limit`).
        """
        with self._lock:
            if tie_order == "fixed" and query.sort_field == "createdAt":
                # A `createdAt` range of the cached unbounded order, as a database index
                # serves it: every keyset request has its own range, and sorting all the
                # leads for each would make a sync quadratic in them.
                start, stop, order = self._created_range(query)
                ids = order[start + offset : min(start + offset + limit, stop)]
                return stop - start, [self._json(lead_id) for lead_id in ids]
            ordered = self._order(query)
            order = ordered.ids
            if tie_order == "fixed":
                ids = order[offset : offset + limit]
            else:
                if ordered.tie_starts is None:
                    ordered.tie_starts = query.tie_starts(order, self._by_id, self._created_ms)
                seed = request_number if tie_order == "per_request" else f"{offset}:{limit}"
                ids = shuffle_ties(order, ordered.tie_starts, offset, limit, random.Random(seed))
            return len(order), [self._json(lead_id) for lead_id in ids]

    def _order(self, query: LeadsQuery) -> _Order:
        """The ids `query` selects, in response order, from the cache if it holds them."""
        ordered = self._orders.get(query)
        if ordered is None:
            ordered = _Order(query.select(self._leads, self._created_ms))
            self._orders[query] = ordered
            if len(self._orders) > _CACHED_ORDERS:
                self._orders.popitem(last=False)
        else:
            self._orders.move_to_end(query)
        return ordered

    def _created_range(self, query: LeadsQuery) -> tuple[int, int, list[int]]:
        """Where `query`'s `createdAt` range lies in the order without it: start, stop, ids."""
        ordered = self._order(replace(query, created_gte=None, created_lte=None))
        if ordered.ascending_keys is None:
            sign = -1 if query.descending else 1
            ordered.ascending_keys = [sign * self._created_ms[i] for i in ordered.ids]
        keys, low, high = ordered.ascending_keys, query.created_gte, query.created_lte
        if query.descending:
            low, high = (None if high is None else -high), (None if low is None else -low)
        start = 0 if low is None else bisect_left(keys, low)
        stop = len(keys) if high is None else bisect_right(keys, high)
        return start, max(start, stop), ordered.ids

    def find(self, lookup: LeadLookup) -> bytes | None:
        """Return the JSON of the lead a getLead lookup finds, or None.

        Lookups by anything but the id return the newest match (by createdAt, then creation).
        """
        with self._lock:
            if lookup.field == "id":
                lead_id = int(lookup.value)
                return self._json(lead_id) if lead_id in self._by_id else None
            matches = [
                index
                for index, lead in enumerate(self._leads)
                if lead.get(lookup.field) == lookup.value
            ]
            if not matches:
                return None
            newest = max(matches, key=self._oldest_key)
            return self._json(self._leads[newest]["id"])

    def _append(self, lead: dict[str, Any]) -> None:
        lead_id = lead.get("id")
        if not isinstance(lead_id, int) or isinstance(lead_id, bool):
            raise ValueError(f"a lead needs an integer id, got {lead_id!r}")
        if lead_id in self._by_id:
            raise ValueError(f"two leads have id {lead_id}")
        created_at = lead.get("createdAt")
        if not isinstance(created_at, str):
            raise ValueError(f"lead {lead_id} needs an ISO 8601 createdAt, got {created_at!r}")
        self._created_ms[lead_id] = parse_instant(created_at)
        self._note_created(self._created_ms[lead_id])
        self._leads.append(lead)
        self._by_id[lead_id] = lead
        # Ids keep growing past deleted ones, as a database sequence does.
        self._next_id = max(self._next_id, lead_id + 1)

    def _note_created(self, moment: int) -> None:
        if self._newest_ms is None or moment > self._newest_ms:
            self._newest_ms = moment

    def _oldest_key(self, index: int) -> tuple[int, int]:
        return self._created_ms[self._leads[index]["id"]], index

    def _json(self, lead_id: int) -> bytes:
        encoded = self._encoded.get(lead_id)
        if encoded is None:
            encoded = self._encoded[lead_id] = _encode(self._by_id[lead_id]).encode()
        return encoded

    def _changed(self) -> None:
        self._version += 1
        self._orders.clear()
