"""A shared instant: the leads of one millisecond that one page cannot hold."""

from __future__ import annotations

import math
import typing as t
import unicodedata

from singer_sdk.exceptions import FatalAPIError

from tap_leadtrackr.paging.pages import OLDEST_FIRST, Cursor, Lead, Page, Pages

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


class UnreadableInstantError(FatalAPIError):
    """The leads of one instant could not all be read, in any order the API offers."""


def read_instant(pages: Pages, instant: str, cursor: Cursor) -> t.Iterator[list[Lead]]:
    """Yield the leads created at `instant` not yet emitted: every one that exists throughout.

    It reads the instant alone (`createdAt[gte]` = `[lte]`), in the largest pages the
    server serves, in each order the API offers, a page after another until one is not
    full (in an order on `email` or a name: from the last page the previous pass found,
    then back to page 1). It ends once the answers show that every lead there was seen.
    Each of these shows it in any order the server may use, while leads are deleted (an
    instant already past gains none; the stream reads it without a filter leads can join
    when rated):

    - an answer to page 1 that is not full: it holds every lead of the instant;
    - pages 1 to the last of one pass, all with one `total`, full but the last, and no
      lead on two of them: slices of one list that share nothing split it between them;
    - answers in a row that report one `total` and hold as many distinct leads as such a
      pass among them showed the list to hold;
    - pages of an order on `email` or a name, read from the last to the first, each two
      neighbours parted by different values, or by a value all of whose leads one answer
      held (a lead that slipped from one page to the other while leads were deleted
      would have to share both values).

    Otherwise it gives up after `TIE_PASSES` passes through every order, each of at most
    twice as many pages as the leads seen so far fill, plus two.

    Raises:
        UnreadableInstantError: no answer showed that every lead of the instant was seen.

    """
    proof = InstantProof()
    extent = 1
    for attempt in range(TIE_PASSES * len(TIE_ORDERS)):
        order = TIE_ORDERS[attempt % len(TIE_ORDERS)]
        field = order.partition(":")[0]
        backwards = field in NAME_FIELDS
        read: dict[int, Page] = {}
        limit = pages.largest
        number = extent if backwards else 1
        while True:
            page = read[number] = yield from read_page(pages, instant, order, number, limit, cursor)
            if proof.take(page, field, ended := pages.ends_list(page)):
                return
            if ended or number > math.ceil(len(proof.seen) / limit):
                break
            number += 1
        if not ended:
            continue
        extent, parted, later = number, backwards and number > 1, page
        for number in range(extent - 1, 0, -1) if backwards else ():
            # A deletion only ever moves a lead towards page 1, into pages not read yet,
            # unless it shares the value that parts two pages.
            page = read[number] = yield from read_page(pages, instant, order, number, limit, cursor)
            if proof.take(page, field, pages.ends_list(page)):
                return
            parted = parted and proof.parts(page, later, field)
            later = page
        if parted or proof.take_pass([read.get(n) for n in range(1, extent + 1)]):
            return
    msg = (
        f"{proof.total} leads share createdAt {instant}, by LeadTrackr's count; after "
        f"{proof.asked} requests in every order the API offers, {len(proof.seen)} of them "
        "came back, and no answer showed that none was missed. Every lead before that "
        "instant was emitted; the state resumes at it."
    )
    raise UnreadableInstantError(msg)


def read_page(
    pages: Pages, instant: str, order: str, number: int, limit: int, cursor: Cursor
) -> t.Generator[list[Lead], None, Page]:
    """Fetch one page of the instant, yield its leads not emitted yet, and return it."""
    page = pages.get(since=instant, until=instant, page=number, sort=order, limit=limit)
    if new := cursor.take(page.records):
        yield new
    return page


class InstantProof:
    """What the answers about one instant have shown: the leads seen, and values seen whole.

    A "run" is the answers since `total` last changed: with leads only ever deleted from
    an instant already past, one `total` means one set of leads all along.
    """

    def __init__(self) -> None:
        self.asked = 0
        self.seen: set[int] = set()
        self.total = -1
        self.run: set[int] = set()
        #: How many leads a whole pass of the run showed the list to hold.
        self.length: int | None = None
        #: By field: exact values all of whose leads one answer held, between other values.
        self.whole: dict[str, set[object]] = {}

    def take(self, page: Page, field: str, ended: bool) -> bool:
        """Take one more answer; whether the answers now show every lead was seen.

        An answer to page 1 that ends the list holds every lead. Otherwise the run must
        hold as many distinct leads as a whole pass of it showed the list to hold (never
        `total`, which a server may overstate or understate).
        """
        self.asked += 1
        self.note_runs(page, field, ended)
        ids = [lead["id"] for lead in page.records]
        self.seen.update(ids)
        if ended and page.request.page == 1:
            return True
        if page.total != self.total:
            self.total, self.run, self.length = page.total, set(), None
        self.run.update(ids)
        # A count below the leads its run holds is stale: one total is not one set.
        honest = self.total >= len(self.run)
        return honest and self.length is not None and len(self.run) >= self.length

    def take_pass(self, read: list[Page | None]) -> bool:
        """Take pages 1 to the last of one pass; whether they show every lead was seen.

        With the run's `total` on each, they are slices of one list, and full but the
        last they cover it: their lengths add up to its length. If no lead is on two of
        them, they hold it all, whatever the order; otherwise the run must reach it.
        """
        if not read or None in read:
            return False
        pages = t.cast("list[Page]", read)
        limit = pages[0].request.limit
        sizes = [len(page.records) for page in pages]
        if {page.total for page in pages} != {self.total} or any(
            page.request.limit != limit for page in pages
        ):
            return False
        if sizes[-1] >= limit or any(size != limit for size in sizes[:-1]):
            return False
        self.length = sum(sizes)
        distinct = {lead["id"] for page in pages for lead in page.records}
        if self.total < len(self.run | distinct):
            return False  # a stale count (see `take`)
        return len(distinct) == self.length or len(self.run) >= self.length

    def note_runs(self, page: Page, field: str, ended: bool) -> None:
        """Note the values of `field` all of whose leads lie on `page`.

        A page of an order on `field` holds the leads of one value next to each other; a
        run of them with another value (or the list's start or end) on each side holds
        every lead of that value the server had then. Values are compared loosely (a
        server's collation may fold case or accents) and noted exactly (or it may not).
        """
        if field not in NAME_FIELDS:
            return
        values = [lead.get(field) for lead in page.records]
        keys = [sort_value(value) for value in values]
        whole = self.whole.setdefault(field, set())
        start = 0
        for end in range(1, len(keys) + 1):
            if end == len(keys) or keys[end] != keys[start]:
                opened = start > 0 or page.request.page == 1
                closed = end < len(keys) or ended
                if opened and closed:
                    whole.update(values[start:end])
                start = end

    def parts(self, before: Page, after: Page, field: str) -> bool:
        """Whether no lead can have slipped from `after` into `before`, read after it.

        `before` is the page in front of `after` in the order on `field`. A lead missing
        from both would have to sort equal to `before`'s last lead and `after`'s first.
        It cannot if those differ, if all the leads of one of them were seen on one page,
        if `before` was not full, or if `after` was empty.
        """
        if len(before.records) < before.request.limit or not after.records:
            return True
        last, first = before.records[-1].get(field), after.records[0].get(field)
        whole = self.whole.get(field, set())
        return sort_value(last) != sort_value(first) or last in whole or first in whole


def sort_value(value: object) -> object:
    """A value as loosely as a server's collation might compare it (case, accents, marks)."""
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKD", value).casefold()
    return "".join(char for char in text if char.isalnum()) or None
