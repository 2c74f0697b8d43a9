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

import logging
import math
import queue
import threading
import typing as t
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from singer_sdk.exceptions import FatalAPIError

from tap_leadtrackr.timestamps import ONE_MILLISECOND, format_timestamp, parse_timestamp

#: The order a sync reads leads in: oldest first, so the bookmark can follow.
OLDEST_FIRST = "createdAt:asc"
#: The orders tried in turn to read the leads of one instant; a server whose order among
#: them does not change needs only the first.
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
#: Fields whose order is read backwards too: what a lead is called, which rating does not
#: change while it is read (a status or price does, and moves the lead in their order).
NAME_FIELDS = frozenset({"email", "lastName", "firstName"})
#: Pages per window of a parallel read: it costs two requests more than reading it in
#: line (its start is asked for, and its last page), and is held in memory at most.
WINDOW_PAGES = 25
#: Pages a window holds at least: fewer would cost more requests than the time they save.
MIN_WINDOW_PAGES = 4

Lead = dict[str, t.Any]


class ContractError(FatalAPIError):
    """The API answered 200 with something its documentation rules out."""


class UnreadableInstantError(FatalAPIError):
    """The leads of one instant could not all be read, in any order the API offers."""


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
    envelope's `limit`, or a short page that both `hasMore` and `total` say is not the
    last, and after which the next page does hold leads), every later request asks for
    that many: a page number then means the same offset to the server and to the tap,
    and a short page can be told from the last one.
    """

    def __init__(
        self,
        fetch: Fetch,
        page_size: int,
        log: t.Callable[..., None],
        cancelled: threading.Event | None = None,
    ) -> None:
        self.fetch = fetch
        self.log = log
        self.cancelled = cancelled
        self._size = [page_size]
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        #: How many leads the first page of the read counted: for the progress lines.
        self.first_total: int | None = None

    @property
    def size(self) -> int:
        """Leads per page, as the server serves them."""
        return self._size[0]

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
        got = self.fetch(ask, self.cancelled)
        if self.first_total is None and ask.limit > 1:
            self.first_total = got.total
        served = served_page_size(got)
        if served is not None and served < self.size and self.confirms_cap(ask):
            with self._lock:
                if served < self.size:
                    self.log(
                        "LeadTrackr serves %d leads a page where %d were asked for; asking "
                        "for %d from now on.",
                        served,
                        self.size,
                        served,
                        level=logging.WARNING,
                    )
                    self._size[0] = served
        return got

    def confirms_cap(self, ask: PageRequest) -> bool:
        """Whether the page after a short one holds leads: the server caps its pages.

        If it is empty, the short page was the last, and the envelope overstated the rest.
        """
        after = self.fetch(replace(ask, page=ask.page + 1), self.cancelled)
        return bool(after.records)

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
        return len(page.records) < min(page.request.limit, self.size)

    def stopped_by(self, cancelled: threading.Event) -> Pages:
        """The same pages (one page size), whose requests stop once `cancelled` is set."""
        pages = Pages(self.fetch, self.size, self.log, cancelled)
        pages._size, pages._lock, pages._warned = self._size, self._lock, self._warned
        pages.first_total = self.first_total
        return pages


def served_page_size(page: Page) -> int | None:
    """The page size a page shows the server serves, if fewer than asked; else None."""
    asked = page.request.limit
    if page.limit is not None and 0 < page.limit < asked:
        return page.limit
    served = len(page.records)
    offset = (page.request.page - 1) * asked
    if 0 < served < asked and page.has_more and page.total > offset + served:
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
            cursor.step_past(instant)


def read_instant(pages: Pages, instant: str, cursor: Cursor) -> t.Iterator[list[Lead]]:
    """Yield the leads created at `instant` not yet emitted: every one that exists throughout.

    It reads the instant alone (`createdAt[gte]` = `[lte]`) in each order the API offers,
    a page after another until one is not full (then, in an order on another field than
    `createdAt`, back to page 1), and ends once the answers show that every lead there was
    seen; each of these shows it in any order, while leads are deleted:

    - an answer to page 1 that is not full: it holds every lead of the instant;
    - answers in a row that report one `total`, one of them not full, and hold that many
      distinct leads between them;
    - pages of an order on a name or email, read from the last to the first, each two
      neighbours parted by different values, or by a value all of whose leads one answer
      held (a lead that slipped from one page to the other while leads were deleted
      would have to share both values).

    Otherwise it gives up after `TIE_PASSES` passes through every order, each of at most
    twice as many pages as the leads seen so far fill, plus two.

    Raises:
        UnreadableInstantError: no answer showed that every lead of the instant was seen.

    """
    proof = InstantProof()
    asked, extent = 0, 1
    for attempt in range(TIE_PASSES * len(TIE_ORDERS)):
        order = TIE_ORDERS[attempt % len(TIE_ORDERS)]
        field = order.partition(":")[0]
        # An order on a name is read backwards from its last page (as many pages as the
        # last pass found): first forward to a page that ends the list, then back.
        backwards = field in NAME_FIELDS
        number = extent if backwards else 1
        while True:
            page = pages.get(since=instant, until=instant, page=number, sort=order)
            asked += 1
            if new := cursor.take(page.records):
                yield new
            if proof.shows_all(page, ended := pages.ends_list(page)):
                return
            proof.note_runs(page, field, ended)
            if ended or number > math.ceil(len(proof.seen) / pages.size):
                break
            number += 1
        if not ended:
            continue
        extent = number
        if not backwards or number == 1:
            continue
        # A deletion only ever moves a lead towards page 1, into pages not read yet,
        # unless it shares the value that parts two pages.
        parted, later = True, page
        for number in range(extent - 1, 0, -1):
            page = pages.get(
                since=instant, until=instant, page=number, sort=order, limit=later.request.limit
            )
            asked += 1
            if new := cursor.take(page.records):
                yield new
            if proof.shows_all(page, ended := pages.ends_list(page)):
                return
            proof.note_runs(page, field, ended)
            parted = parted and proof.parts(page, later, field)
            later = page
        if parted:
            return
    msg = (
        f"{proof.total} leads share createdAt {instant}, by LeadTrackr's count; after "
        f"{asked} requests in every order the API offers, {len(proof.seen)} of them came "
        "back, and no answer showed that none was missed. Every lead before that instant "
        "was emitted; the state resumes at it."
    )
    raise UnreadableInstantError(msg)


class InstantProof:
    """What the answers about one instant have shown: the leads seen, and runs seen whole."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.total = -1
        self.run: set[int] = set()
        self.run_ended = False
        #: By field: values all of whose leads one answer held, between other values.
        self.whole: dict[str, set[object]] = {}

    def shows_all(self, page: Page, ended: bool) -> bool:
        """Take one more answer; whether the answers now show every lead was seen.

        An answer to page 1 that ends the list holds every lead. Otherwise, answers in a
        row that report one `total` must hold that many distinct leads, and one of them
        end the list (so that an understated `total` cannot end the read early).
        """
        ids = [lead["id"] for lead in page.records]
        self.seen.update(ids)
        if ended and page.request.page == 1:
            return True
        if page.total != self.total:
            self.total, self.run, self.run_ended = page.total, set(), False
        self.run.update(ids)
        self.run_ended = self.run_ended or ended
        return self.run_ended and len(self.run) >= self.total

    def note_runs(self, page: Page, field: str, ended: bool) -> None:
        """Note the values of `field` whose leads all lie on `page`.

        A page of an order on `field` holds the leads of one value next to each other; a
        run of them with another value (or the list's start or end) on each side is every
        lead of that value the server had then.
        """
        if field not in NAME_FIELDS:
            return
        values = [sort_value(lead.get(field)) for lead in page.records]
        whole = self.whole.setdefault(field, set())
        start = 0
        for end in range(1, len(values) + 1):
            if end == len(values) or values[end] != values[start]:
                opened = start > 0 or page.request.page == 1
                closed = end < len(values) or ended
                if opened and closed:
                    whole.add(values[start])
                start = end

    def parts(self, before: Page, after: Page, field: str) -> bool:
        """Whether no lead can have slipped from `after` into `before`, read after it.

        `before` is the page in front of `after` in the order on `field`. A lead missing
        from both would have to share the value of `before`'s last lead and `after`'s
        first. It cannot if those differ, if every lead of that value was seen on one
        page, if `before` was not full, or if `after` was empty.
        """
        if len(before.records) < before.request.limit or not after.records:
            return True
        value = sort_value(before.records[-1].get(field))
        return value != sort_value(after.records[0].get(field)) or value in self.whole.get(
            field, ()
        )


def sort_value(value: object) -> object:
    """A value as loosely as a server's collation might compare it (case, accents, marks)."""
    if isinstance(value, str):
        text = unicodedata.normalize("NFKD", value).casefold()
        return "".join(char for char in text if char.isalnum()) or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def read_windows(
    pages: Pages, since: str | None, until: str | None, parallelism: int
) -> t.Iterator[list[Lead]]:
    """Yield each lead created in [since, until] and there all along, once, oldest first.

    After the range's first page (as `read_keyset` asks it), the range is cut where every
    `WINDOW_PAGES`-th page then started, and each window is read by `read_keyset` in a
    thread of its own: exactly as safe as the whole range read in line, whatever happens to
    `total` or to creation times, since the cuts are only instants (a lead that moves makes
    a window bigger or smaller). At most `parallelism` windows are read at once; pages are
    yielded window after window, each as it comes, and a thread holds at most
    `WINDOW_PAGES` pages that have not been yielded yet.
    """
    cursor = Cursor(since)
    first = pages.get(since=since, until=until)
    if new := cursor.take(first.records):
        yield new
    if pages.ends_list(first):
        return
    cuts = window_cuts(pages, first, since, until, parallelism)
    starts = [cursor.at, *cuts]
    ends = [format_timestamp(parse_timestamp(cut) - ONE_MILLISECOND) for cut in cuts] + [until]
    stop = threading.Event()
    window_pages = pages.stopped_by(stop)
    threads: list[WindowThread] = []
    try:
        for index in range(len(starts)):
            # Windows ahead start as earlier ones are yielded: `parallelism` at once.
            while len(threads) < min(len(starts), index + parallelism):
                number = len(threads)
                thread = WindowThread(
                    window_pages,
                    starts[number],
                    ends[number],
                    cursor if number == 0 else None,
                    stop,
                )
                thread.start()
                threads.append(thread)
            yield from threads[index].pages()
    finally:
        stop.set()


def window_cuts(
    pages: Pages, first: Page, since: str | None, until: str | None, parallelism: int
) -> list[str]:
    """The instants where the range's windows start, after `first`.

    As many windows as `parallelism` reads at once, or a multiple, each of at most
    `WINDOW_PAGES` pages and at least `MIN_WINDOW_PAGES`. Their starts are asked for a
    few at once, one lead each (`limit` 1, page = offset + 1), and are hints only: leads
    deleted or created meanwhile move them, which changes a window's size, never what is
    read.
    """
    rounds = math.ceil(first.total / (parallelism * WINDOW_PAGES * pages.size))
    windows = min(parallelism * rounds, first.total // (MIN_WINDOW_PAGES * pages.size))
    if windows < 2:
        return []
    step = math.ceil(first.total / windows)
    offsets = range(step, first.total, step)
    after = first.records[-1]["createdAt"]
    cuts: list[str] = []
    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="leads-cut") as pool:
        # `parallelism` at a time, up to the first that finds no lead: an overstated
        # `total` costs a few requests, not one per window it counts.
        for begin in range(0, len(offsets), parallelism):
            probes = pool.map(
                lambda offset: pages.get(since=since, until=until, page=offset + 1, limit=1),
                offsets[begin : begin + parallelism],
            )
            for probe in probes:
                if not probe.records:
                    return cuts
                if probe.records[0]["createdAt"] > (cuts[-1] if cuts else after):
                    cuts.append(probe.records[0]["createdAt"])
    return cuts


class WindowThread(threading.Thread):
    """Reads one window of a range by keyset pages, holding a few pages for the emitter."""

    _DONE = object()

    def __init__(
        self,
        pages: Pages,
        since: str | None,
        until: str | None,
        cursor: Cursor | None,
        stop: threading.Event,
    ) -> None:
        # A daemon: an interrupted sync exits without waiting for requests in flight.
        super().__init__(name=f"leads-window-{since}", daemon=True)
        self.window = (pages, since, until, cursor)
        self.stop = stop
        self.out: queue.Queue[object] = queue.Queue(maxsize=WINDOW_PAGES)

    def run(self) -> None:
        """Read the window, handing over each page, then an end mark or the error."""
        pages, since, until, cursor = self.window
        try:
            for leads in read_keyset(pages, since, until, cursor):
                self.hand_over(leads)
            self.hand_over(self._DONE)
        except BaseException as exc:
            self.hand_over(exc)

    def hand_over(self, item: object) -> None:
        """Queue an item for the emitter, waiting while it is full, unless the read stopped."""
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def pages(self) -> t.Iterator[list[Lead]]:
        """Yield the window's pages as they come; raise the error that ended it, if any."""
        while (item := self.out.get()) is not self._DONE:
            if isinstance(item, BaseException):
                raise item
            yield t.cast("list[Lead]", item)


def read_range(
    pages: Pages, since: str | None, until: str | None, parallelism: int
) -> t.Iterator[list[Lead]]:
    """Yield every lead created in [since, until] (see `read_keyset` and `read_windows`)."""
    if parallelism > 1:
        return read_windows(pages, since, until, parallelism)
    return read_keyset(pages, since, until)
