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
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKD", value).casefold()
    return "".join(char for char in text if char.isalnum()) or None
