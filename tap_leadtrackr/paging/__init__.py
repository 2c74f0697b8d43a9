"""Which pages of the leads list to ask for, so that no lead is ever skipped.

`getLeads` pages by number over a list sorted on `createdAt` alone. A page number is an
offset, and offsets move while a sync reads: a lead deleted before the offset moves every
later lead one place back (one is skipped), a lead stamped a little in the past moves them
on (one is read twice), and leads that share a millisecond may come in another order on
every request. So no reader here trusts a page number from one request to the next:

- `read_keyset` reads a `createdAt` range by asking, each time, for page 1 from the last
  instant emitted.
- `read_instant` reads the leads of one millisecond that one page cannot hold.
- `read_windows` cuts a range into windows and reads each with `read_keyset`, in threads.

The readers know nothing of the stream: they are handed `Pages`, which fetches a checked
page (through the stream's `fetch`) and learns how many leads the server puts on a page.
"""

from __future__ import annotations

import typing as t

from tap_leadtrackr.paging.instant import (
    NAME_FIELDS,
    TIE_ORDERS,
    TIE_PASSES,
    InstantProof,
    UnreadableInstantError,
    read_instant,
    sort_value,
)
from tap_leadtrackr.paging.keyset import read_keyset
from tap_leadtrackr.paging.pages import (
    MAX_LIMIT,
    OLDEST_FIRST,
    ContractError,
    Cursor,
    Fetch,
    Lead,
    Page,
    PageRequest,
    Pages,
    served_page_size,
)
from tap_leadtrackr.paging.windows import MIN_WINDOW_PAGES, WINDOW_PAGES, read_windows, window_cuts

__all__ = [
    "MAX_LIMIT",
    "MIN_WINDOW_PAGES",
    "NAME_FIELDS",
    "OLDEST_FIRST",
    "TIE_ORDERS",
    "TIE_PASSES",
    "WINDOW_PAGES",
    "ContractError",
    "Cursor",
    "Fetch",
    "InstantProof",
    "Lead",
    "Page",
    "PageRequest",
    "Pages",
    "UnreadableInstantError",
    "read_instant",
    "read_keyset",
    "read_range",
    "read_windows",
    "served_page_size",
    "sort_value",
    "window_cuts",
]


def read_range(
    pages: Pages, since: str | None, until: str | None, parallelism: int
) -> t.Iterator[list[Lead]]:
    """Yield every lead created in [since, until] (see `read_keyset` and `read_windows`)."""
    if parallelism > 1:
        return read_windows(pages, since, until, parallelism)
    return read_keyset(pages, since, until)
