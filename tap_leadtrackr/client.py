"""The LeadTrackr base stream: requests, authentication, errors, retries and pages.

Everything that is true of any LeadTrackr list endpoint lives here; `streams.py` says
what is particular to the leads list.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import sys
import threading
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urlparse

import msgspec
import requests
import requests.adapters
from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import PageNumberPaginator
from singer_sdk.singerlib import RecordMessage
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: Where LeadTrackr's API lives (the default of `api_url`).
DEFAULT_API_URL = "https://app.leadtrackr.io"
#: The API's largest page; the default, since fewer requests is the point.
MAX_PAGE_SIZE = 100
#: Longest wait between two tries of the exponential back-off.
MAX_BACKOFF_SECONDS = 60.0
#: Longest `Retry-After` honoured; a server asking for more gets this much.
MAX_RETRY_AFTER_SECONDS = 600.0

_QUERY = re.compile(r"\?[^\s'\")]*")

#: How often one sync pages again after deletions before it gives up.
MAX_RESTARTS = 20

#: Failures of the connection itself, which a later try may not meet.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    RetriableAPIError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

#: Where users get an API key, for the 401 message.
API_KEY_HELP = (
    "Set `api_key` (TAP_LEADTRACKR_API_KEY) to the key from the LeadTrackr dashboard: "
    "project -> Settings -> API Integration."
)


class RetriesExhaustedError(FatalAPIError):
    """A request still failed after every try `max_retries` allows."""


class FetchCancelledError(Exception):
    """A page fetched ahead was no longer wanted."""


class ContractError(FatalAPIError):
    """The API answered 200 with something its documentation rules out."""


@dataclass(frozen=True, slots=True)
class Page:
    """One decoded page of a list endpoint."""

    number: int
    records: list[dict[str, t.Any]]
    total: int
    total_pages: int
    has_more: bool


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


def describe_failure(exc: Exception) -> str:
    """Say in a few words why a try failed, without headers or query (filter values)."""
    if isinstance(exc, RetriableAPIError) and exc.response is not None:
        return f"{exc.response.status_code} {exc.response.reason}".strip()
    if isinstance(exc, RetriableAPIError):
        return str(exc)
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer within `request_timeout`"
    return f"{type(exc).__name__}: {_QUERY.sub('', str(exc))}"


class LeadTrackrStream(RESTStream[int]):
    """A page-numbered LeadTrackr list endpoint, read oldest first."""

    #: The key of the record list in the response envelope.
    records_key: str = "leads"

    _slow_down_lock = threading.Lock()

    @staticmethod
    def sleep(seconds: float, cancelled: threading.Event) -> None:
        """Wait before a retry, less if cancelled; tests replace it so as not to wait."""
        cancelled.wait(seconds)

    @override
    @property
    def url_base(self) -> str:
        return str(self.config.get("api_url", DEFAULT_API_URL)).rstrip("/")

    @override
    @cached_property
    def authenticator(self) -> APIKeyAuthenticator:
        # Read for every request: built once.
        return APIKeyAuthenticator(
            key="X-API-Key", value=self.config.get("api_key", ""), location="header"
        )

    @override
    @property
    def timeout(self) -> float:  # type: ignore[override]  # seconds may be fractional
        return float(self.config.get("request_timeout", 60))

    @property
    def page_size(self) -> int:
        """Leads per request (`page_size`, sent as `limit`)."""
        return int(self.config.get("page_size", MAX_PAGE_SIZE))

    @cached_property
    def parallelism(self) -> int:
        """Requests in flight at once; starts at `max_parallel_requests`, halves on 429."""
        return int(self.config.get("max_parallel_requests", 1))

    @property
    def max_retries(self) -> int:
        """How many times a failed request is tried again (`max_retries`)."""
        return int(self.config.get("max_retries", 8))

    @override
    def get_url_params(self, context: Context | None, next_page_token: int | None) -> dict:
        return {"page": next_page_token or 1, "limit": self.page_size}

    # Errors -----------------------------------------------------------------------------

    @override
    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status < HTTPStatus.MULTIPLE_CHOICES:
            return
        if status < HTTPStatus.BAD_REQUEST:
            raise FatalAPIError(
                f"LeadTrackr answered {status} {response.reason}, redirecting to "
                f"{response.headers.get('Location', '?')}. The tap does not follow redirects "
                "(they would carry the API key elsewhere): check `api_url`."
            )
        if is_rate_limit(response) or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(self.response_error_message(response), response)
        raise FatalAPIError(self.fatal_error_message(response))

    @override
    def response_error_message(self, response: requests.Response) -> str:
        # Path only: the query holds filter values (emails, phones) and the key is a header.
        path = urlparse(response.url).path or self.path
        return f"{response.status_code} {response.reason} from {path}"

    def fatal_error_message(self, response: requests.Response) -> str:
        """Explain a 4xx answer that no retry can fix, quoting the server."""
        server_says = self.redact(server_message(response))
        status = response.status_code
        if status == HTTPStatus.UNAUTHORIZED:
            return f"LeadTrackr rejected the API key ({server_says}). {API_KEY_HELP}"
        if status == HTTPStatus.FORBIDDEN:
            return (
                f"LeadTrackr refused access ({server_says}): the project's subscription is "
                "inactive. Reactivate it in the LeadTrackr dashboard."
            )
        if status == HTTPStatus.BAD_REQUEST:
            return f"LeadTrackr rejected the request ({server_says}). {self.blame(server_says)}"
        if status == HTTPStatus.NOT_FOUND:
            return (
                f"LeadTrackr answered 404 ({server_says}) for {urlparse(response.url).path}: "
                "the project was not found. Check `api_url` and `api_key`."
            )
        return f"{self.response_error_message(response)}: {server_says}"

    def redact(self, text: str) -> str:
        """Hide the API key in text from the server (a proxy page may echo the headers)."""
        key = self.config.get("api_key")
        return text.replace(key, "<api_key>") if key else text

    def blame(self, server_says: str) -> str:
        """Name the setting a 400 message points at; streams know their parameters."""
        return "Check the tap's settings."

    # Requests ---------------------------------------------------------------------------

    def fetch_page(
        self,
        request: requests.PreparedRequest,
        number: int,
        cancelled: threading.Event | None = None,
    ) -> Page:
        """Get and decode one page, trying again on transient failures.

        A page fetched ahead stops waiting and gives up once `cancelled` is set.
        """
        cancelled = cancelled or threading.Event()
        sent_at_parallelism = self.parallelism
        for attempt in range(1, self.max_retries + 2):
            try:
                # Not followed: a redirect would carry the API key header to another host.
                response = self.requests_session.send(
                    request, timeout=self.timeout, allow_redirects=False
                )
                self.validate_response(response)
                return self.decode_page(response, number)
            except TRANSIENT_ERRORS as exc:
                if attempt > self.max_retries:
                    msg = (
                        f"Giving up on page {number} of {self.path} after {attempt} tries "
                        f"(`max_retries` is {self.max_retries}); last failure: "
                        f"{describe_failure(exc)}."
                    )
                    raise RetriesExhaustedError(msg) from exc
                wait = self.retry_wait(exc, attempt)
                if isinstance(exc, RetriableAPIError) and is_rate_limit(exc.response):
                    self.slow_down(sent_at_parallelism)
                self.log(
                    "Page %d of %s failed (%s); try %d of %d in %.1f s",
                    number,
                    self.path,
                    describe_failure(exc),
                    attempt + 1,
                    self.max_retries + 1,
                    wait,
                    level=logging.WARNING,
                )
                self.sleep(wait, cancelled)
                if cancelled.is_set():
                    raise FetchCancelledError(number) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def build_request(self, context: Context | None, number: int) -> requests.PreparedRequest:
        """Prepare the authenticated request for one page."""
        request = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=number)
        )
        return self.build_prepared_request(
            method=request.method,
            url=request.url,
            params=request.encode_params(),
            headers=request.headers,
        )

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
        nominal = min(MAX_BACKOFF_SECONDS, 2.0 ** (attempt - 1))
        return nominal * random.uniform(0.5, 1.0)

    def decode_page(self, response: requests.Response, number: int) -> Page:
        """Decode the documented envelope; anything else is a transient failure.

        A truncated body or a proxy's HTML page can arrive with status 200.
        """
        try:
            body = msgspec.json.decode(response.content)
            page = Page(
                number=number,
                records=body[self.records_key],
                total=body["total"],
                total_pages=body["totalPages"],
                has_more=body["hasMore"],
            )
            if not isinstance(page.records, list) or not isinstance(page.has_more, bool):
                raise TypeError(page)
        except (msgspec.DecodeError, KeyError, TypeError) as exc:
            raise RetriableAPIError(
                f"200 from {self.path} with a body that is not the documented JSON: "
                f"{self.redact(response.text[:120])!r}",
                response,
            ) from exc
        return page

    def read_pages(self, context: Context | None) -> t.Iterator[Page]:
        """Yield pages in order until the API says there are no more.

        `hasMore` decides: N records cost ceil(N / page_size) requests, with no empty
        page at the end. If `total` drops between two pages, records were deleted and
        the later pages have shifted towards the start, so this page may have skipped
        some: it is thrown away and paging starts again after what was already emitted.
        With `max_parallel_requests` > 1 the next pages are fetched ahead, never past the
        last page the API announced, and still handed on strictly in order.
        """
        paginator, total, restarts = self.get_new_paginator(), None, 0
        with PageFetcher(self, context) as fetcher:
            while True:
                page = fetcher.get(paginator.current_value)
                if total is not None and page.total < total:
                    restarts += 1
                    if restarts > MAX_RESTARTS:
                        msg = (
                            f"{self.name}: records kept disappearing while paging "
                            f"({restarts} times); stopping rather than skip any. The last "
                            "state resumes after the records already emitted."
                        )
                        raise ContractError(msg)
                    self.log(
                        "%s: the total fell from %d to %d while paging (deleted records); "
                        "paging again from the last record emitted",
                        self.name,
                        total,
                        page.total,
                        level=logging.WARNING,
                    )
                    fetcher.discard()
                    self.restart_after_emitted()
                    paginator, total = self.get_new_paginator(), None
                    continue
                total = page.total
                self.log_progress(page)
                yield page
                paginator.advance(page)  # type: ignore[arg-type]  # reads the decoded page
                if paginator.finished:
                    return
                ahead = paginator.current_value
                fetcher.prefetch(range(ahead, min(ahead + self.parallelism, page.total_pages + 1)))

    @override
    def get_new_paginator(self) -> HasMorePaginator:
        return HasMorePaginator()

    def slow_down(self, sent_at_parallelism: int) -> None:
        """After a 429, fetch half as many pages at once for the rest of the run.

        Requests already in flight at that level that also meet a 429 halve nothing more.
        """
        with self._slow_down_lock:
            if self.parallelism == sent_at_parallelism and self.parallelism > 1:
                self.parallelism = max(1, self.parallelism // 2)
                self.log(
                    "%s: rate limited; now at most %d requests at once",
                    self.name,
                    self.parallelism,
                    level=logging.WARNING,
                )

    def restart_after_emitted(self) -> None:
        """Make page 1 start at the last record emitted (streams know their cursor)."""
        raise NotImplementedError

    def log_progress(self, page: Page) -> None:
        """Tell the operator how far the sync is."""
        done = min(page.total, (page.number - 1) * self.page_size + len(page.records))
        self.log(
            "%s: page %d/%d, %s of %s",
            self.name,
            page.number,
            page.total_pages,
            f"{done:,}",
            f"{page.total:,}",
        )

    @override
    def request_records(self, context: Context | None) -> t.Iterable[dict]:
        for page in self.read_pages(context):
            records = self.prepare_page(page)
            yield from records
            # The SDK has now written every record of the page: checkpoint here, not
            # every 10,000 records, so an interrupted sync resumes at this page.
            # Only for records written: a stream read just for its children (not
            # selected itself) keeps its bookmark, or those records would be skipped later.
            if records and self.replication_key and self.selected:
                self.advance_bookmark(records[-1], context)
            self._write_state_message()

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Context | None = None
    ) -> None:
        # Called by the SDK for every record; pages are sorted and checked in
        # `prepare_page`, so the bookmark moves once per page, in `advance_bookmark`.
        return

    def advance_bookmark(self, last_record: dict[str, t.Any], context: Context | None) -> None:
        """Move the bookmark to the last record of a page that has been written."""
        super()._increment_stream_state(last_record, context=context)

    @override
    def _generate_record_messages(
        self, record: dict[str, t.Any]
    ) -> t.Generator[RecordMessage, None, None]:
        # The SDK walks every record against the selection mask (a quarter of the CPU
        # per lead); with every property selected there is nothing to drop.
        if not self.every_property_selected:
            yield from super()._generate_record_messages(record)
            return
        for stream_map in self.stream_maps:
            if (mapped := stream_map.transform(record)) is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=utc_now(),
                )

    @cached_property
    def every_property_selected(self) -> bool:
        """Whether the catalog selects every property (nothing to drop per record)."""
        return self.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE and all(self.mask.values())

    def prepare_page(self, page: Page) -> list[dict[str, t.Any]]:
        """Check and shape a page's records before any of them is emitted."""
        return page.records


class HasMorePaginator(PageNumberPaginator):
    """Page 1, 2, ... until a page says `hasMore: false`.

    It reads the page already decoded (`Page`), so that no body is decoded twice.
    """

    def __init__(self) -> None:
        super().__init__(start_value=1)

    @override
    def has_more(self, response: Page) -> bool:  # type: ignore[override]
        return response.has_more


class PageFetcher:
    """Fetches a stream's pages, the next few ahead when parallelism allows.

    Requests are built here, in the sync's thread (they read the stream's window);
    only sending, retrying and decoding happen in the pool.
    """

    def __init__(self, stream: LeadTrackrStream, context: Context | None) -> None:
        self.stream = stream
        self.context = context
        self.pending: dict[int, Future[Page]] = {}
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

    def get(self, number: int) -> Page:
        """Page `number`, from what was fetched ahead or fetched now."""
        if (future := self.pending.pop(number, None)) is not None:
            return future.result()
        return self.stream.fetch_page(self.stream.build_request(self.context, number), number)

    def prefetch(self, numbers: t.Iterable[int]) -> None:
        """Start fetching these pages, if parallelism allows and they are not under way."""
        if self.pool is None:
            return
        for number in numbers:
            if number not in self.pending:
                request = self.stream.build_request(self.context, number)
                self.pending[number] = self.pool.submit(
                    self.stream.fetch_page, request, number, self.cancelled
                )

    def discard(self) -> None:
        """Forget pages fetched ahead (the window changed, or the sync ended).

        Those still waiting to retry stop at once, so an error is not held up by them.
        """
        self.cancelled.set()
        for future in self.pending.values():
            future.cancel()
        self.pending.clear()
        self.cancelled = threading.Event()


def server_message(response: requests.Response) -> str:
    """The `message` of a LeadTrackr error body, or the start of whatever came back."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return f"{response.status_code}: {body['message']}"
    text = response.text.strip()[:200]
    return f"{response.status_code}: {text}" if text else str(response.status_code)
