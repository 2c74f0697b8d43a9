"""In which order the leads list is asked for, so that no lead is ever skipped.

`getLeads` pages by number over a list sorted on `createdAt` alone. A page number is an
offset, and offsets move while a sync reads: a lead deleted before the offset moves every
later lead one place back (one is skipped), and leads that share a millisecond may come in
another order on every request (some are read twice, others never). So a page number is
never trusted on its own:

- **Keyset pages.** A request asks for page 1 of `createdAt >= t`, where `t` is the
  `createdAt` of the last lead emitted, and drops the ids already emitted at `t`. Page 1
  starts at offset 0, which nothing can shift: every lead from `t` up to the page's last
  instant is on it. The leads at `t` come again (usually one), so N leads cost about
  N / (page_size - 1) requests.
- **Instants shared by a whole page.** When every lead of a full page has one `createdAt`,
  page 1 of `>= t` cannot get past it: that instant is read alone (`createdAt[gte]` =
  `createdAt[lte]`), in each order the API offers, until as many distinct leads have come
  back as the server counts there, in answers that all agree on that count (leads are only
  created later, so an unchanged count means an unchanged set).
- **Pages ahead** (`max_parallel_requests` > 1). Page numbers are used over a range closed
  just before the newest lead that existed when it was set, so that its count can only
  fall. Page p+1 is kept only if it reports the same `total` as page 1 and starts strictly
  after page p's last instant: then the leads up to that instant fill exactly the offsets
  before it, in every request, and none was skipped. Anything else re-anchors a keyset
  page at the last lead emitted.
"""

from __future__ import annotations

import logging
import threading
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import requests.adapters

from tap_leadtrackr.client import OLDEST_FIRST, ContractError, Page, PageRequest
from tap_leadtrackr.timestamps import ONE_MILLISECOND, format_timestamp, parse_timestamp

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_leadtrackr.client import LeadTrackrStream

#: The orders tried in turn to read every lead of an instant shared by a whole page.
#: Only the first is needed from a server whose order among ties does not change.
TIE_ORDERS = (
    OLDEST_FIRST,
    "email:asc",
    "lastName:asc",
    "firstName:asc",
    "createdAt:desc",
    "email:desc",
    "lastName:desc",
    "firstName:desc",
    "price:asc",
    "price:desc",
    "status:asc",
    "status:desc",
)
#: Passes through every order before an instant counts as unreadable.
TIE_PASSES = 3

Lead = dict[str, t.Any]


class LeadCursor:
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


class LeadReader:
    """Reads a `createdAt` range of leads, oldest first, each lead once (see the module)."""

    def __init__(
        self,
        stream: LeadTrackrStream,
        context: Context | None,
        since: str | None,
        until: str | None,
        *,
        pages_ahead: bool,
    ) -> None:
        self.stream = stream
        self.context = context
        self.since = since
        self.until = until
        self.pages_ahead = pages_ahead
        self.limit = stream.page_size
        self.warned: set[str] = set()
        self.emitted = 0
        #: Instants read on their own, all of whose leads have been emitted.
        self.read: set[str] = set()

    def __iter__(self) -> t.Iterator[list[Lead]]:
        """Yield the leads to emit, a page at a time, oldest first."""
        cursor = LeadCursor(self.since)
        with PageFetcher(self.stream, self.context) as fetcher:
            self.fetcher = fetcher
            # The range read by page numbers: None before it is set or once it is done.
            ahead_until: str | None = None
            probed = not self.pages_ahead
            while True:
                in_range = ahead_until is not None and (
                    cursor.at is None or cursor.at <= ahead_until
                )
                ask = PageRequest(cursor.at, ahead_until if in_range else self.until)
                page = self.fetch(ask)
                if leads := cursor.take(page.records):
                    yield self.progress(page, leads)
                if self.fills_one_instant(page):
                    # Pages fetched ahead from where this one started are no use now.
                    self.fetcher.discard()
                    instant = page.records[0]["createdAt"]
                    yield from self.read_instant(instant, cursor)
                    cursor.step_past(instant)
                    continue
                if in_range:
                    done = yield from self.read_ahead(page, cursor)
                    if done:
                        ahead_until = None
                    continue
                if not self.more_after(page, leads):
                    return
                if not probed:
                    probed = True
                    ahead_until = self.range_to_read_ahead(cursor)
                    if ahead_until is not None:
                        # Its first pages at once: about as many as this page counted.
                        pages = min(self.stream.parallelism, -(-page.total // self.limit))
                        self.fetcher.prefetch(
                            PageRequest(cursor.at, ahead_until, page=number)
                            for number in range(1, pages + 1)
                        )

    def fetch(self, ask: PageRequest) -> Page:
        """Fetch a page now and check it."""
        page = self.fetcher.get(ask)
        self.stream.check_page(page)
        return page

    def progress(self, page: Page, leads: list[Lead]) -> list[Lead]:
        """Count the leads about to be emitted, and tell the operator how far the sync is."""
        self.emitted += len(leads)
        ask = page.request
        left = max(0, page.total - ask.page * self.limit) if ask.sort == OLDEST_FIRST else 0
        self.stream.log(
            "%s: %s read, up to %s; about %s left",
            self.stream.name,
            f"{self.emitted:,}",
            leads[-1]["createdAt"],
            f"{left:,}",
        )
        return leads

    def fills_one_instant(self, page: Page) -> bool:
        """Whether a full page holds one instant only, which may go on past it."""
        records = page.records
        return len(records) >= self.limit and records[0]["createdAt"] == records[-1]["createdAt"]

    def more_after(self, page: Page, new: list[Lead]) -> bool:
        """Whether leads may follow a keyset page; a server's contradictions are logged.

        A page that brought nothing not read before ends the stream whatever it says, so
        that a server stuck on `hasMore: true` costs one request past the last lead.
        """
        records = page.records
        says_more = page.has_more or page.total > len(records)
        if not new:
            if says_more:
                self.warn(
                    "nothing_new",
                    "LeadTrackr said more leads follow (`hasMore: %s`, `total` %d) on a page "
                    "that brought none not already read: the stream ends here.",
                    str(page.has_more).lower(),
                    page.total,
                )
            return False
        if len(records) < self.limit:
            if says_more:
                self.warn(
                    "short",
                    "LeadTrackr sent %d leads of the %d asked for while saying more follow "
                    "(`hasMore: %s`, `total` %d): reading on from the last of them.",
                    len(records),
                    self.limit,
                    str(page.has_more).lower(),
                    page.total,
                )
            return says_more
        if not page.has_more and page.total > len(records):
            self.warn(
                "total",
                "LeadTrackr said `hasMore: false` on a full page while counting %d leads "
                "(%d pages); reading on rather than leave a hole.",
                page.total,
                page.total_pages,
            )
        return says_more

    def range_to_read_ahead(self, cursor: LeadCursor) -> str | None:
        """Close the range that pages ahead may read; None if there is none.

        It ends a millisecond before the newest lead now: leads created later (which
        could balance deletions and hide them from `total`) fall outside it.
        """
        newest = self.fetch(PageRequest(cursor.at, self.until, sort="createdAt:desc", limit=1))
        if not newest.records:
            return None
        end = format_timestamp(parse_timestamp(newest.records[0]["createdAt"]) - ONE_MILLISECOND)
        return end if cursor.at is None or end >= cursor.at else None

    def read_ahead(self, first: Page, cursor: LeadCursor) -> t.Generator[list[Lead], None, bool]:
        """Read the range's pages 2, 3, ... fetched ahead, while each one can be trusted.

        Return True once the range is read; False to re-anchor at the last lead emitted.
        """
        if len(first.records) < self.limit or first.total <= len(first.records):
            return True
        previous = first
        for number in range(2, first.total_pages + 1):
            self.fetcher.prefetch(
                replace(first.request, page=ahead)
                for ahead in range(
                    number, min(number + self.stream.parallelism, first.total_pages + 1)
                )
            )
            page = self.fetch(replace(first.request, page=number))
            last_instant = previous.records[-1]["createdAt"]
            if (
                page.total != previous.total
                or len(previous.records) < self.limit
                or not page.records
                or page.records[0]["createdAt"] < last_instant
            ):
                # Leads went between the two requests (or the server sent a short page
                # that its count contradicts): page numbers cannot be trusted.
                self.fetcher.discard()
                self.stream.log(
                    "%s: leads went while paging (total %d -> %d); reading on from the "
                    "last lead emitted",
                    self.stream.name,
                    previous.total,
                    page.total,
                )
                return False
            if (
                page.records[0]["createdAt"] == last_instant
                and last_instant not in self.read
                and not self.whole_across(previous, page)
            ):
                # An instant across the boundary whose leads changed places between the
                # two requests (or may go on past them): it is read on its own.
                yield from self.read_instant(last_instant, cursor)
            if leads := cursor.take(page.records):
                yield self.progress(page, leads)
            previous = page
        return True

    @staticmethod
    def whole_across(before: Page, after: Page) -> bool:
        """Whether two pages of one unchanged range hold every lead of the instant they share.

        When the instant starts after the first page's first lead and ends before the
        second page's last, its leads fill exactly the tail of one and the head of the
        other: if no lead is on both, none is missing either.
        """
        instant = before.records[-1]["createdAt"]
        tail = [lead["id"] for lead in before.records if lead["createdAt"] == instant]
        head = [lead["id"] for lead in after.records if lead["createdAt"] == instant]
        if len(tail) == len(before.records) or len(head) == len(after.records):
            return False
        return len(set(tail) | set(head)) == len(tail) + len(head)

    def read_instant(self, instant: str, cursor: LeadCursor) -> t.Iterator[list[Lead]]:
        """Read every lead created at `instant`, however many share it.

        Done once the leads seen since the server's count last changed are as many as
        it counts: with only deletions possible, they are then all its leads.

        Raises:
            ContractError: the server's order among them never let all be read.

        """
        self.read.add(instant)
        count, seen, asked = -1, set[int](), 0
        for _ in range(TIE_PASSES):
            for order in TIE_ORDERS:
                number, pages = 1, 1
                while number <= pages:
                    page = self.fetch(PageRequest(instant, instant, page=number, sort=order))
                    asked += 1
                    if page.total != count:
                        count, seen = page.total, set()
                    seen.update(lead["id"] for lead in page.records)
                    if leads := cursor.take(page.records):
                        yield self.progress(page, leads)
                    if len(seen) >= count:
                        return
                    number, pages = number + 1, page.total_pages
        msg = (
            f"{count} leads share createdAt {instant}, and after {asked} requests in every "
            f"order the API offers only {len(seen)} of them came back: the server's order "
            "among them changes in a way no paging can follow. Every lead before that "
            "instant was emitted; the state resumes at it."
        )
        raise ContractError(msg)

    def warn(self, what: str, message: str, *args: object) -> None:
        """Log a server's contradiction once per sync."""
        if what not in self.warned:
            self.warned.add(what)
            self.stream.log(message, *args, level=logging.WARNING)


class PageFetcher:
    """Fetches pages, the next few ahead when parallelism allows.

    Requests are built here, in the sync's thread; only sending, retrying and decoding
    happen in the pool.
    """

    def __init__(self, stream: LeadTrackrStream, context: Context | None) -> None:
        self.stream = stream
        self.context = context
        self.pending: dict[PageRequest, Future[Page]] = {}
        self.cancelled = threading.Event()
        self.pool: ThreadPoolExecutor | None = None
        if stream.parallelism > 1:
            self.pool = ThreadPoolExecutor(
                max_workers=stream.parallelism, thread_name_prefix=f"{stream.name}-page"
            )
            # One pooled connection per request in flight.
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=stream.parallelism)
            stream.requests_session.mount(stream.url_base, adapter)

    def __enter__(self) -> PageFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def get(self, ask: PageRequest) -> Page:
        """The page `ask` names, from what was fetched ahead or fetched now."""
        if (future := self.pending.pop(ask, None)) is not None:
            return future.result()
        return self.stream.fetch_page(self.stream.build_request(self.context, ask), ask)

    def prefetch(self, asks: t.Iterable[PageRequest]) -> None:
        """Start fetching these pages, if parallelism allows and they are not under way."""
        if self.pool is None:
            return
        for ask in asks:
            if ask not in self.pending:
                request = self.stream.build_request(self.context, ask)
                self.pending[ask] = self.pool.submit(
                    self.stream.fetch_page, request, ask, self.cancelled
                )

    def discard(self) -> None:
        """Forget pages fetched ahead (the range changed, or the sync ended).

        Those still waiting to retry stop at once, so an error is not held up by them.
        """
        self.cancelled.set()
        for future in self.pending.values():
            future.cancel()
        self.pending.clear()
        self.cancelled = threading.Event()
