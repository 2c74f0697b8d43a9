"""Sending one request to LeadTrackr: retries, back-off, `Retry-After`, requests in flight.

Every thread reading a stream sends through one `Sender`: they share its pause (a
`Retry-After` binds the client, not the request that met it) and its slots (at most
`max_parallel_requests` requests in flight, halved after a 429).
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import threading
import time
import typing as t
from datetime import datetime, timezone
from http import HTTPStatus

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from urllib3.exceptions import NewConnectionError

from tap_leadtrackr.redaction import hide_query

#: Longest wait between two tries of the exponential back-off.
MAX_BACKOFF_SECONDS = 60.0
#: Longest `Retry-After` honoured; a server asking for more gets this much.
MAX_RETRY_AFTER_SECONDS = 600.0
#: Tries of a run's first request when the host refuses it or its name does not resolve:
#: waiting cannot help a wrong `api_url`, but a server restarting may need a few seconds.
UNREACHABLE_TRIES = 3

#: Failures of the connection itself, which a later try may not meet.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    RetriableAPIError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

T = t.TypeVar("T")
Log = t.Callable[..., None]


class RetriesExhaustedError(FatalAPIError):
    """A request still failed after every try `max_retries` allows."""


class UnreachableError(FatalAPIError):
    """The run's first request found no server at `api_url`."""


class FetchCancelledError(Exception):
    """A request was no longer wanted: the read it served has stopped."""


class Sender:
    """Sends requests until each is answered, a failure is final, or `max_retries` is spent."""

    def __init__(
        self,
        session: requests.Session,
        *,
        timeout: float,
        max_retries: int,
        parallelism: int,
        validate: t.Callable[[requests.Response], None],
        log: Log,
        api_url: str,
    ) -> None:
        self.session = session
        self.timeout = timeout
        self.max_retries = max_retries
        self.validate = validate
        self.log = log
        self.api_url = api_url
        self.slots = RequestSlots(parallelism, log)
        self._lock = threading.Lock()
        #: No thread sends before this `time.monotonic()` (a 429's `Retry-After`).
        self._not_before = 0.0
        #: Whether the server has answered anything in this run.
        self._answered = False

    @staticmethod
    def sleep(seconds: float, cancelled: threading.Event) -> None:
        """Wait before this request's retry, less if cancelled; tests replace it."""
        cancelled.wait(seconds)

    @staticmethod
    def pause(seconds: float, cancelled: threading.Event) -> None:
        """Wait out another request's `Retry-After`, less if cancelled; tests replace it."""
        cancelled.wait(seconds)

    def send(
        self,
        request: requests.PreparedRequest,
        read: t.Callable[[requests.Response], T],
        what: str,
        cancelled: threading.Event | None = None,
    ) -> T:
        """Send `request` and return `read` of its answer, trying again on transient failures.

        `read` may raise `RetriableAPIError` (a body that could not be read). `what` names
        the request in messages: never a URL, whose query holds filter values.

        Raises:
            FetchCancelledError: `cancelled` was set while it waited.
            RetriesExhaustedError: every try failed.
            UnreachableError: the run's first request found no server.

        """
        cancelled = cancelled or threading.Event()
        waited_until = None
        for attempt in range(1, self.max_retries + 2):
            with self.slots.taken(cancelled) as parallelism:
                # In the slot: a pause begun while this thread waited for one holds it too.
                self.wait_for_rate_limit(cancelled, waited_until)
                try:
                    # Not followed: a redirect would carry the API key header to another host.
                    response = self.session.send(
                        request, timeout=self.timeout, allow_redirects=False
                    )
                    self._answered = True
                    self.validate(response)
                    return read(response)
                except TRANSIENT_ERRORS as exc:
                    error, failure = exc, describe_failure(exc)
                wait = self.retry_wait(error, attempt)
                response_ = error.response if isinstance(error, RetriableAPIError) else None
                if retry_after_seconds(response_) is not None:
                    # Before the slot is freed: no other thread may slip a request in.
                    waited_until = self.hold_all(wait)
                if is_rate_limit(response_):
                    self.slots.halve(parallelism)
            # Out of the handler, so that no exception chain (which holds the URL with its
            # filter values) reaches a log.
            if not self._answered and is_unreachable(error) and attempt >= UNREACHABLE_TRIES:
                msg = (
                    f"No LeadTrackr API answers at {hide_query(self.api_url)} ({failure}). "
                    "Check `api_url` (and that the sandbox runs, if it is one)."
                )
                raise UnreachableError(msg)
            if attempt > self.max_retries:
                msg = (
                    f"Giving up on {what} after {attempt} tries (`max_retries` is "
                    f"{self.max_retries}); last failure: {failure}."
                )
                raise RetriesExhaustedError(msg)
            self.log(
                "%s failed (%s); try %d of %d in %.1f s",
                what[0].upper() + what[1:],
                failure,
                attempt + 1,
                self.max_retries + 1,
                wait,
                level=logging.WARNING,
            )
            self.sleep(wait, cancelled)
            if cancelled.is_set():
                raise FetchCancelledError(what)
        raise AssertionError("unreachable")  # pragma: no cover

    def hold_all(self, seconds: float) -> float:
        """Let no thread send anything for `seconds`, whatever becomes of this one.

        Returns the time (`time.monotonic()`) until which every thread now waits.
        """
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)
            return self._not_before

    def wait_for_rate_limit(self, cancelled: threading.Event, waited_until: float | None) -> None:
        """Return once every `Retry-After` met so far has passed, or when `cancelled` is set.

        The pause is a time, not a thread holding a lock: a thread that gives up waiting
        (its read stopped) ends no other thread's wait. `waited_until` is a pause this
        thread has already waited out.
        """
        while not cancelled.is_set():
            with self._lock:
                until = self._not_before
            left = until - time.monotonic()
            # Once per deadline: a later one (another 429 meanwhile) is waited out too.
            if left <= 0 or until == waited_until:
                return
            self.pause(left, cancelled)
            waited_until = until

    def retry_wait(self, exc: Exception, attempt: int) -> float:
        """Seconds to wait before the next try: `Retry-After` if given, else back-off."""
        response = exc.response if isinstance(exc, RetriableAPIError) else None
        asked = retry_after_seconds(response)
        if asked is not None:
            if asked > MAX_RETRY_AFTER_SECONDS:
                self.log(
                    "Retry-After of %.0f s is longer than %.0f s; waiting %.0f s",
                    asked,
                    MAX_RETRY_AFTER_SECONDS,
                    MAX_RETRY_AFTER_SECONDS,
                    level=logging.WARNING,
                )
            return min(asked, MAX_RETRY_AFTER_SECONDS)
        if not self._answered and is_unreachable(exc):
            return float(attempt)
        nominal = min(MAX_BACKOFF_SECONDS, 2.0 ** (attempt - 1))
        return nominal * random.uniform(0.5, 1.0)


class RequestSlots:
    """At most `limit` requests in flight at once; the limit halves after a 429, for good."""

    def __init__(self, limit: int, log: Log) -> None:
        self.limit = limit
        self.log = log
        self._busy = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def taken(self, cancelled: threading.Event) -> t.Iterator[int]:
        """Hold a slot while a request is in flight; yield the limit it was sent under."""
        with self._changed:
            # The timeout only notices a cancellation; a freed slot wakes the waiters.
            while self._busy >= self.limit and not cancelled.is_set():
                self._changed.wait(0.05)
            if cancelled.is_set():
                raise FetchCancelledError("a page no longer wanted")
            self._busy += 1
            limit = self.limit
        try:
            yield limit
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()

    def halve(self, sent_under: int) -> None:
        """After a 429, allow half as many requests at once (once per level reached)."""
        with self._changed:
            if self.limit == sent_under and self.limit > 1:
                self.limit = max(1, self.limit // 2)
                self.log(
                    "rate limited; now at most %d requests at once",
                    self.limit,
                    level=logging.WARNING,
                )


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Read a `Retry-After` header: delay-seconds or an HTTP date; None if absent or bad."""
    if response is None or not (value := response.headers.get("Retry-After", "").strip()):
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def is_rate_limit(response: requests.Response | None) -> bool:
    """Whether the API said to slow down."""
    return response is not None and response.status_code == HTTPStatus.TOO_MANY_REQUESTS


def is_unreachable(exc: Exception) -> bool:
    """Whether no connection could be opened: refused, or the host name did not resolve."""
    if not isinstance(exc, requests.exceptions.ConnectionError) or not exc.args:
        return False
    reason = getattr(exc.args[0], "reason", exc.args[0])
    return isinstance(reason, NewConnectionError)


def describe_failure(exc: Exception) -> str:
    """Say in a few words why a try failed, without headers or query (filter values)."""
    if isinstance(exc, RetriableAPIError) and exc.response is not None and not exc.response.ok:
        return f"{exc.response.status_code} {exc.response.reason}".strip()
    if isinstance(exc, RetriableAPIError):
        # A 200 that could not be read: the message says why ("200 OK" would not).
        return str(exc)
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer within `request_timeout`"
    if is_unreachable(exc):
        reason = getattr(exc.args[0], "reason", exc.args[0])
        return f"{type(reason).__name__}: {hide_query(str(reason))}"
    return f"{type(exc).__name__}: {hide_query(str(exc))}"
