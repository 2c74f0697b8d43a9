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
import time
import typing as t
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urlparse

import msgspec
import requests
from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: The API's largest page; the default, since fewer requests is the point.
MAX_PAGE_SIZE = 100
#: Longest wait between two tries of the exponential back-off.
MAX_BACKOFF_SECONDS = 60.0
#: Longest `Retry-After` honoured; a server asking for more gets this much.
MAX_RETRY_AFTER_SECONDS = 600.0

_QUERY = re.compile(r"\?[^\s'\")]*")

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

    #: How a retry waits; tests replace it so that they need not sleep for real.
    sleep: t.ClassVar[t.Callable[[float], None]] = staticmethod(time.sleep)

    @override
    @property
    def url_base(self) -> str:
        return str(self.config.get("api_url", "https://app.leadtrackr.io")).rstrip("/")

    @override
    @cached_property
    def authenticator(self) -> APIKeyAuthenticator:
        # Read for every request: built once.
        return APIKeyAuthenticator(
            key="X-API-Key", value=self.config.get("api_key", ""), location="header"
        )

    @override
    @property
    def timeout(self) -> int:
        return int(self.config.get("request_timeout", 60))

    @property
    def page_size(self) -> int:
        """Leads per request (`page_size`, sent as `limit`)."""
        return int(self.config.get("page_size", MAX_PAGE_SIZE))

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
        if status < HTTPStatus.BAD_REQUEST:
            return
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(self.response_error_message(response), response)
        raise FatalAPIError(self.fatal_error_message(response))

    @override
    def response_error_message(self, response: requests.Response) -> str:
        # Path only: the query holds filter values (emails, phones) and the key is a header.
        path = urlparse(response.url).path or self.path
        return f"{response.status_code} {response.reason} from {path}"

    def fatal_error_message(self, response: requests.Response) -> str:
        """Explain a 4xx answer that no retry can fix, quoting the server."""
        server_says = server_message(response)
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

    def blame(self, server_says: str) -> str:
        """Name the setting a 400 message points at; streams know their parameters."""
        return "Check the tap's settings."

    # Requests ---------------------------------------------------------------------------

    def fetch_page(self, context: Context | None, number: int) -> Page:
        """Get and decode one page, trying again on transient failures."""
        request = self.build_request(context, number)
        for attempt in range(1, self.max_retries + 2):
            try:
                response = self.requests_session.send(request, timeout=self.timeout)
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
                self.sleep(wait)
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
        except (msgspec.DecodeError, KeyError, TypeError) as exc:
            raise RetriableAPIError(
                f"200 from {self.path} with a body that is not the documented JSON: "
                f"{response.text[:120]!r}",
                response,
            ) from exc
        if not isinstance(page.records, list) or not isinstance(page.has_more, bool):
            raise RetriableAPIError(
                f"200 from {self.path} with a malformed envelope: {response.text[:120]!r}",
                response,
            )
        return page

    def read_pages(self, context: Context | None) -> t.Iterator[Page]:
        """Yield pages in order until the API says there are no more.

        `hasMore` decides: N records cost ceil(N / page_size) requests, with no empty
        page at the end.
        """
        number = 1
        while True:
            page = self.fetch_page(context, number)
            self.log_progress(page)
            yield page
            if not page.has_more:
                return
            number += 1

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
            yield from self.prepare_page(page)
            # The SDK has now written every record of the page: checkpoint here, not
            # every 10,000 records, so an interrupted sync resumes at this page.
            self._write_state_message()

    def prepare_page(self, page: Page) -> list[dict[str, t.Any]]:
        """Check and shape a page's records before any of them is emitted."""
        return page.records


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
