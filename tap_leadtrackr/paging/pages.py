"""The vocabulary of reading pages: what a request asks, what a page holds, and `Pages`.

`Pages` fetches through the stream's `fetch` (which sends, decodes and checks one page)
and learns how many leads the server puts on a page; `Cursor` says where a read got to.
"""

from __future__ import annotations

import logging
import threading
import typing as t
from dataclasses import dataclass, replace

from singer_sdk.exceptions import FatalAPIError

from tap_leadtrackr.timestamps import ONE_MILLISECOND, format_timestamp, parse_timestamp

#: The order a sync reads leads in: oldest first, so the bookmark can follow.
OLDEST_FIRST = "createdAt:asc"
#: The API's largest page (`limit`).
MAX_LIMIT = 100

Lead = dict[str, t.Any]


class ContractError(FatalAPIError):
    """The API answered 200 with something its documentation rules out."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PageRequest:
    """What one `getLeads` request asks for: a page of a `createdAt` range in one order."""

    since: str | None = None
    """`createdAt[gte]`, or no lower bound."""
    until: str | None = None
    """`createdAt[lte]`, or no upper bound."""
    page: int = 1
    sort: str = OLDEST_FIRST
    limit: int
    """Leads per page."""

    def __str__(self) -> str:
        """Name the page in messages: its number and range, never a filter value."""
        return (
            f"page {self.page} of leads created {self.since or '-inf'} .. "
            f"{self.until or '+inf'} ({self.sort})"
        )


@dataclass(frozen=True, slots=True)
class Page:
    """One decoded, checked page of `getLeads`, and the request it answers."""

    request: PageRequest
    records: list[Lead]
    total: int
    total_pages: int
    has_more: bool
    limit: int | None = None
    """The envelope's `limit`: the page size the server says it used, if it says."""


class Fetch(t.Protocol):
    """Sends one request and returns the page, checked against the request."""

    def __call__(self, ask: PageRequest, cancelled: threading.Event | None = None) -> Page:
        """Return the page `ask` names; give up waiting to retry once `cancelled` is set."""
        ...


class Pages:
    """Fetches pages, and learns from them how many leads the server really puts on one.

    A server may serve fewer than `limit` (a cap of its own). Once a page shows it (the
    envelope's `limit`, or a short page whose `total` says it is not the last, after
    which more leads do show up), no request asks for more: a
    page number then means the same offset to the server and to the tap, and a short
    page can be told from the last one.
    """

    def __init__(self, fetch: Fetch, page_size: int, log: t.Callable[..., None]) -> None:
        self.fetch = fetch
        self.log = log
        self.page_size = page_size
        #: The most leads the server has shown it puts on a page, once it has shown it.
        self.cap: int | None = None
        #: Set once the read has stopped: requests still waiting to retry give up.
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        #: How many leads the first page of the read counted: for the progress lines.
        self.first_total: int | None = None

    @property
    def size(self) -> int:
        """Leads per page: `page_size`, or fewer if the server serves fewer."""
        return min(self.page_size, self.largest)

    @property
    def largest(self) -> int:
        """The largest page to ask for: the API's, or the server's own if smaller."""
        return self.cap or MAX_LIMIT

    def get(
        self,
        *,
        page: int = 1,
        sort: str = OLDEST_FIRST,
        limit: int | None = None,
        since: str | None,
        until: str | None,
    ) -> Page:
        """Fetch one checked page (of `size` leads unless `limit` says otherwise)."""
        ask = PageRequest(since=since, until=until, page=page, sort=sort, limit=limit or self.size)
        got = self.fetch(ask, self.stopped)
        if self.first_total is None and ask.limit > 1:
            self.first_total = got.total
        served = served_page_size(got)
        said = got.limit is not None and got.limit == served
        if served is not None and served < self.largest and (said or self.confirms_cap(got)):
            with self._lock:
                if served < self.largest:
                    self.cap = served
                    self.log(
                        "LeadTrackr serves %d leads a page where %d were asked for; asking "
                        "for %d from now on.",
                        served,
                        ask.limit,
                        self.size,
                        level=logging.WARNING,
                    )
        return got

    def confirms_cap(self, short: Page) -> bool:
        """Whether leads follow a short page that its envelope says is not the last.

        Then the server caps its pages; if not, the short page was the last. After a page
        1, without an offset that a deletion could shift: page 1 of the leads created after
        its last instant, and of that instant in two orders (a page 1 holds every lead of
        its range up to its last one unless the server caps it, so any lead these hold that
        it did not shows the rest). After a later page, the next page. On page 1 of an
        instant, the count's word. Each costs requests only on a server whose envelope
        says more follow a short page.
        """
        ask = short.request
        if ask.page > 1:
            return bool(self.fetch(replace(ask, page=ask.page + 1), self.stopped).records)
        if ask.since is not None and ask.since == ask.until:
            # Page 1 of an instant that filled a page: its leads may share every value an
            # order sorts by, and so come in the server's order among ties, which no probe
            # can see past. The count is taken at its word (a wrong one costs requests).
            return True
        last = short.records[-1]["createdAt"]
        # A page all of one instant may hold the first leads of that instant by email: the
        # other end of the order shows whether there are more.
        one_instant = short.records[0]["createdAt"] == last
        orders = ["email:asc", "email:desc"] if one_instant else ["email:asc"]
        probes = [replace(ask, since=last, until=last, sort=order) for order in orders]
        if ask.since is None or ask.since != ask.until:  # a range, not one instant
            after = format_timestamp(parse_timestamp(last) + ONE_MILLISECOND)
            if ask.until is None or after <= ask.until:
                probes.insert(0, replace(ask, since=after, sort=OLDEST_FIRST))
        if one_instant:
            # Leads that share every value an order could sort them by come in the
            # server's order among ties: as a last resort, the next page.
            probes.append(replace(ask, page=2))
        seen = {lead["id"] for lead in short.records}
        for probe in probes:
            if any(lead["id"] not in seen for lead in self.fetch(probe, self.stopped).records):
                return True
        return False

    def warn_once(self, message: str, *args: object) -> None:
        """Log a server's contradiction, once per read."""
        with self._lock:
            if message in self._warned:
                return
            self._warned.add(message)
        self.log(message, *args, level=logging.WARNING)

    def ends_list(self, page: Page) -> bool:
        """Whether `page` reaches the end of the server's list: it is not full.

        Neither `hasMore` nor `total` decides: a server may overstate them, or understate.
        """
        return len(page.records) < min(page.request.limit, self.largest)


def served_page_size(page: Page) -> int | None:
    """The page size a short page may show the server serves, if fewer than asked; else None.

    Either the envelope's `limit`; or a short page whose `total` is not the leads served up
    to it: more, or fewer (either may lie: `Pages.confirms_cap` asks to be sure). `hasMore`
    does not count: a server stuck on it would cost requests at the end of every read, and
    one that computes it from the `limit` asked for hides a cap.
    """
    asked = page.request.limit
    if page.limit is not None and 0 < page.limit < asked:
        return page.limit
    served = len(page.records)
    offset = (page.request.page - 1) * asked
    seen = offset + served
    if 0 < served < asked and page.total != seen:
        return served
    return None


class Cursor:
    """Where reading has got to: the last instant emitted and the ids emitted at it."""

    __slots__ = ("at", "ids")

    def __init__(self, at: str | None) -> None:
        self.at = at
        self.ids: set[int] = set()

    def take(self, leads: list[Lead]) -> list[Lead]:
        """Return the leads not emitted yet, and move past them."""
        if self.at is not None and leads and leads[0]["createdAt"] == self.at:
            at, ids = self.at, self.ids
            leads = [lead for lead in leads if lead["createdAt"] != at or lead["id"] not in ids]
        if leads:
            last = leads[-1]["createdAt"]
            if last != self.at:
                self.at, self.ids = last, set()
            for lead in reversed(leads):
                if lead["createdAt"] != last:
                    break
                self.ids.add(lead["id"])
        return leads

    def step_past(self, instant: str) -> None:
        """Every lead of `instant` is emitted: go on from the next millisecond."""
        self.at = format_timestamp(parse_timestamp(instant) + ONE_MILLISECOND)
        self.ids = set()
