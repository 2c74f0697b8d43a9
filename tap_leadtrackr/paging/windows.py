"""Parallel windows: a range cut in windows, each read by keyset pages in a thread of its own."""

from __future__ import annotations

import math
import queue
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor

from tap_leadtrackr.paging.keyset import read_keyset
from tap_leadtrackr.paging.pages import Cursor, Lead, Page, Pages
from tap_leadtrackr.timestamps import ONE_MILLISECOND, format_timestamp, parse_timestamp

#: Pages per window of a parallel read: it costs two requests more than reading it in
#: line (its start is asked for, and its last page), and is held in memory at most.
WINDOW_PAGES = 25
#: Pages a window holds at least: fewer would cost more requests than the time they save.
MIN_WINDOW_PAGES = 4


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
    threads: list[WindowThread] = []
    try:
        for index in range(len(starts)):
            # Windows ahead start as earlier ones are yielded: `parallelism` at once.
            while len(threads) < min(len(starts), index + parallelism):
                number = len(threads)
                window_cursor = cursor if number == 0 else None
                thread = WindowThread(pages, starts[number], ends[number], window_cursor)
                thread.start()
                threads.append(thread)
            yield from threads[index].leads()
    finally:
        # Windows still reading stop at their next request, or wait to retry no more.
        pages.stopped.set()


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
        self, pages: Pages, since: str | None, until: str | None, cursor: Cursor | None
    ) -> None:
        # A daemon: an interrupted sync exits without waiting for requests in flight.
        super().__init__(name=f"leads-window-{since}", daemon=True)
        self.read = (pages, since, until, cursor)
        self.stopped = pages.stopped
        self.out: queue.Queue[object] = queue.Queue(maxsize=WINDOW_PAGES)

    def run(self) -> None:
        """Read the window, handing over each page, then an end mark or the error."""
        try:
            for leads in read_keyset(*self.read):
                self.hand_over(leads)
            self.hand_over(self._DONE)
        except BaseException as exc:
            self.hand_over(exc)

    def hand_over(self, item: object) -> None:
        """Queue an item for the emitter, waiting while it is full, unless the read stopped."""
        while not self.stopped.is_set():
            try:
                self.out.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def leads(self) -> t.Iterator[list[Lead]]:
        """Yield the window's pages as they come; raise the error that ended it, if any."""
        while (item := self.out.get()) is not self._DONE:
            if isinstance(item, BaseException):
                raise item
            yield t.cast("list[Lead]", item)
