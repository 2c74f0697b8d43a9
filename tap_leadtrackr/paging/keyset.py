"""Keyset pages: a `createdAt` range read by asking, each time, for page 1 from where it got."""

from __future__ import annotations

import typing as t

from tap_leadtrackr.paging.instant import read_instant
from tap_leadtrackr.paging.pages import Cursor, Lead, Pages


def read_keyset(
    pages: Pages, since: str | None, until: str | None, cursor: Cursor | None = None
) -> t.Iterator[list[Lead]]:
    """Yield each lead created in [since, until] and there all along, once, oldest first.

    Each request asks for page 1 of `createdAt >= t`, t the last instant emitted: an offset
    of 0, which no deletion, insertion or reordering can shift, so every lead from t to the
    page's last instant is on the page. The leads at t come again; those emitted are
    dropped by id. A full page of one instant cannot get past it: `read_instant` reads it.
    The read ends on a page that is not full.
    """
    cursor = cursor or Cursor(since)
    while True:
        page = pages.get(since=cursor.at, until=until)
        if new := cursor.take(page.records):
            yield new
        if pages.ends_list(page):
            if page.has_more:
                pages.warn_once(
                    "LeadTrackr said more leads follow (`hasMore: true`, `total` %d) on a "
                    "page of %d leads where it serves %d: the read ends here, as the page "
                    "is not full.",
                    page.total,
                    len(page.records),
                    pages.size,
                )
            return
        instant = page.records[0]["createdAt"]
        if page.records[-1]["createdAt"] == instant:
            yield from read_instant(pages, instant, cursor)
            if until is not None and instant >= until:
                return
            cursor.step_past(instant)
