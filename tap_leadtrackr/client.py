"""The LeadTrackr base stream: requests, authentication, errors and retries.

Everything that is true of any request to LeadTrackr lives here; `paging.py` says in
which order pages are asked for, and `streams.py` what is particular to the leads list.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import sys
import threading
import typing as t
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from http import HTTPStatus
from urllib.parse import quote_plus, urlparse

import msgspec
import requests
from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext

from tap_leadtrackr.sdk_hooks import EndOfSyncCheck, FastRecordMessages, PageCheckpoints

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk import Tap
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

#: Settings whose values no message may show: the key, and filters on personal data.
PRIVATE_SETTINGS = ("api_key", "email", "phone", "search", "unique_identifier", "form_name")
#: urllib3's loggers that log URLs, query included (every request line, at DEBUG).
URL_LOGGERS = ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry")

#: The order a sync reads leads in: oldest first, so the bookmark can follow.
OLDEST_FIRST = "createdAt:asc"

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
#: The same, when the keys come from `projects`.
PROJECT_KEY_HELP = (
    "Set this project's `api_key` in `projects` (TAP_LEADTRACKR_PROJECTS) to the key from "
    "the LeadTrackr dashboard: project -> Settings -> API Integration."
)


class RetriesExhaustedError(FatalAPIError):
    """A request still failed after every try `max_retries` allows."""


class FetchCancelledError(Exception):
    """A page fetched ahead was no longer wanted."""


class ContractError(FatalAPIError):
    """The API answered 200 with something its documentation rules out."""


class AccessRefusedError(FatalAPIError):
    """LeadTrackr refused the project: its key was rejected (401) or it is inactive (403)."""


class ProjectsFailedError(FatalAPIError):
    """Some projects were refused; the others were read to the end."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What one `getLeads` request asks for: a page of a `createdAt` range in one order."""

    since: str | None = None
    """`createdAt[gte]`, or no lower bound."""
    until: str | None = None
    """`createdAt[lte]`, or no upper bound."""
    page: int = 1
    sort: str = OLDEST_FIRST
    limit: int | None = None
    """Leads per page; None for `page_size`."""

    def __str__(self) -> str:
        """Name the page in messages: its number and range, never a filter value."""
        return (
            f"page {self.page} of leads created {self.since or '-inf'} .. "
            f"{self.until or '+inf'} ({self.sort})"
        )


@dataclass(frozen=True, slots=True)
class Page:
    """One decoded page of a list endpoint, and the request it answers."""

    request: PageRequest
    records: list[dict[str, t.Any]]
    total: int
    total_pages: int
    has_more: bool


class RateLimitGate:
    """Holds every request of a stream while one of its threads waits out a 429.

    `Retry-After` binds the client, not the page that met it: while any thread waits
    before its retry, no other thread sends anything.
    """

    def __init__(self) -> None:
        self._holders = 0
        self._opened = threading.Condition()

    def hold(self) -> None:
        """Close the gate until a matching `release`."""
        with self._opened:
            self._holders += 1

    def release(self) -> None:
        """Open the gate again once no thread holds it."""
        with self._opened:
            self._holders -= 1
            if not self._holders:
                self._opened.notify_all()

    def pass_through(self, cancelled: threading.Event) -> None:
        """Return once the gate is open (at once if it is), or when `cancelled` is set."""
        with self._opened:
            # Woken when the gate opens; the timeout only notices a cancellation.
            while self._holders and not cancelled.is_set():
                self._opened.wait(0.05)


def api_key_of(config: t.Mapping[str, t.Any]) -> str:
    """The configured API key without the surrounding white space a copy may add."""
    return str(config.get("api_key") or "").strip()


def project_keys(config: t.Mapping[str, t.Any]) -> dict[str, str]:
    """The API key of each project of `projects` by name, stripped; empty without `projects`.

    Entries that are not objects are skipped: the settings check reports them.
    """
    return {
        str(project.get("name")): str(project.get("api_key") or "").strip()
        for project in config.get("projects") or []
        if isinstance(project, dict)
    }


def secret_values(config: t.Mapping[str, t.Any]) -> list[str]:
    """Every API key of the config, as given and stripped: no message may show one."""
    keys = [api_key_of(config), str(config.get("api_key") or "")]
    for project in config.get("projects") or []:
        if isinstance(project, dict) and isinstance(key := project.get("api_key"), str):
            keys += [key, key.strip()]
    return [key for key in dict.fromkeys(keys) if key.strip()]


def hide_query(text: str) -> str:
    """Drop the query strings from text: they hold the filter values."""
    return _QUERY.sub("", text)


def redact(text: str, config: t.Mapping[str, t.Any]) -> str:
    """Hide query strings and the values of `PRIVATE_SETTINGS` in text the tap did not write."""
    text = hide_query(text)
    for key in secret_values(config):
        for shown in (key, quote_plus(key)):
            text = text.replace(shown, "<api_key>")
    for setting in PRIVATE_SETTINGS:
        value = config.get(setting)
        if setting != "api_key" and isinstance(value, str) and value:
            for shown in (value, quote_plus(value)):
                text = text.replace(shown, f"<{setting}>")
    return text


class HideQueries(logging.Filter):
    """Drops query strings from log records (urllib3 logs each request's URL at DEBUG).

    A filter rather than a quieter logger: whoever turned urllib3's logging on still
    sees every request, only without the filter values.
    """

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = hide_query(message), None
        return True


_HIDE_QUERIES = HideQueries()


def hide_queries_in_http_logs() -> None:
    """Install `HideQueries` on urllib3's loggers that log URLs; doing it again is a no-op."""
    for name in URL_LOGGERS:
        logging.getLogger(name).addFilter(_HIDE_QUERIES)


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
    if isinstance(exc, RetriableAPIError) and exc.response is not None and not exc.response.ok:
        return f"{exc.response.status_code} {exc.response.reason}".strip()
    if isinstance(exc, RetriableAPIError):
        # A 200 that could not be read: the message says why ("200 OK" would not).
        return str(exc)
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer within `request_timeout`"
    return f"{type(exc).__name__}: {hide_query(str(exc))}"


class LeadTrackrStream(
    PageCheckpoints, FastRecordMessages, EndOfSyncCheck, RESTStream[PageRequest]
):
    """A LeadTrackr list endpoint, read oldest first (see `paging.py` for the order)."""

    #: The key of the record list in the response envelope.
    records_key: str = "leads"

    _slow_down_lock = threading.Lock()

    def __init__(self, tap: Tap, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(tap, *args, **kwargs)
        #: The tap, whose state writer writes the per-page STATE messages.
        self.tap = tap
        #: Shared by every thread fetching this stream's pages.
        self.rate_limit = RateLimitGate()
        #: The project being read (`projects`), or None with `api_key` alone.
        self.project: str | None = None
        #: Projects LeadTrackr refused in this run, and why; the others were read.
        self.refused_projects: dict[str, str] = {}
        hide_queries_in_http_logs()

    @override
    @property
    def partitions(self) -> list[dict] | None:
        # One context per project: the SDK then keeps a bookmark per project.
        return [{"project": name} for name in project_keys(self.config)] or None

    @override
    def log(self, message: str, *args: t.Any, level: int = logging.INFO, **kwargs: t.Any) -> None:
        if self.project is not None:
            message, args = "project %s: " + message, (self.project, *args)
        super().log(message, *args, level=level, **kwargs)

    @staticmethod
    def sleep(seconds: float, cancelled: threading.Event) -> None:
        """Wait before a retry, less if cancelled; tests replace it so as not to wait."""
        cancelled.wait(seconds)

    @override
    @property
    def url_base(self) -> str:
        return str(self.config.get("api_url", DEFAULT_API_URL)).rstrip("/")

    @override
    @property
    def authenticator(self) -> APIKeyAuthenticator:
        # Requests are built in the sync's thread only (see `PageFetcher`), where
        # `project` names the project being read.
        return self.authenticators[self.project]

    @cached_property
    def authenticators(self) -> dict[str | None, APIKeyAuthenticator]:
        """The authenticator of each project (None: `api_key`), built once: read per request.

        Keys are stripped: one read from a file or a CRLF `.env` ends in a line break,
        which the HTTP library rejects with a message quoting the whole header value.
        """
        keys: dict[str | None, str] = {None: api_key_of(self.config)}
        keys.update(project_keys(self.config))
        return {
            project: APIKeyAuthenticator(key="X-API-Key", value=key, location="header")
            for project, key in keys.items()
        }

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
    def get_url_params(
        self, context: Context | None, next_page_token: PageRequest | None
    ) -> dict[str, t.Any]:
        ask = next_page_token or PageRequest()
        return {
            "page": ask.page,
            "limit": ask.limit or self.page_size,
            "sort": ask.sort,
            "createdAt[gte]": ask.since,
            "createdAt[lte]": ask.until,
        }

    # Errors -----------------------------------------------------------------------------

    @override
    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status < HTTPStatus.MULTIPLE_CHOICES:
            return
        if status < HTTPStatus.BAD_REQUEST:
            raise FatalAPIError(
                f"LeadTrackr answered {status} {response.reason}, redirecting to "
                f"{self.redact(response.headers.get('Location', '')) or '?'}. The tap does not "
                "follow redirects (they would carry the API key elsewhere): check `api_url`."
            )
        if is_rate_limit(response) or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(self.response_error_message(response), response)
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise AccessRefusedError(self.fatal_error_message(response))
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
            help = API_KEY_HELP if self.project is None else PROJECT_KEY_HELP
            return f"LeadTrackr rejected the API key ({server_says}). {help}"
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
        """Hide the key and filter values in text from the server (which may echo a request)."""
        return redact(text, self.config)

    def blame(self, server_says: str) -> str:
        """Name the setting a 400 message points at; streams know their parameters."""
        return "Check the tap's settings."

    # Requests ---------------------------------------------------------------------------

    def fetch_page(
        self,
        request: requests.PreparedRequest,
        ask: PageRequest,
        cancelled: threading.Event | None = None,
    ) -> Page:
        """Get and decode one page, trying again on transient failures.

        A page fetched ahead stops waiting and gives up once `cancelled` is set.
        """
        cancelled = cancelled or threading.Event()
        sent_at_parallelism = self.parallelism
        for attempt in range(1, self.max_retries + 2):
            self.rate_limit.pass_through(cancelled)
            if cancelled.is_set():
                raise FetchCancelledError(ask)
            try:
                # Not followed: a redirect would carry the API key header to another host.
                response = self.requests_session.send(
                    request, timeout=self.timeout, allow_redirects=False
                )
                self.validate_response(response)
                return self.decode_page(response, ask)
            except TRANSIENT_ERRORS as exc:
                error, failure = exc, describe_failure(exc)
            # Out of the handler, so that no exception chain (which holds the URL with its
            # filter values) reaches a log.
            if attempt > self.max_retries:
                msg = (
                    f"Giving up on {ask} from {self.path} after {attempt} tries "
                    f"(`max_retries` is {self.max_retries}); last failure: {failure}."
                )
                raise RetriesExhaustedError(msg)
            self.wait_to_retry(error, attempt, ask, failure, sent_at_parallelism, cancelled)
        raise AssertionError("unreachable")  # pragma: no cover

    def wait_to_retry(
        self,
        exc: Exception,
        attempt: int,
        ask: PageRequest,
        failure: str,
        sent_at_parallelism: int,
        cancelled: threading.Event,
    ) -> None:
        """Wait before the next try; after a 429, every thread of the stream waits too."""
        wait = self.retry_wait(exc, attempt)
        rate_limited = isinstance(exc, RetriableAPIError) and is_rate_limit(exc.response)
        if rate_limited:
            self.slow_down(sent_at_parallelism)
        self.log(
            "%s of %s failed (%s); try %d of %d in %.1f s",
            str(ask)[0].upper() + str(ask)[1:],
            self.path,
            failure,
            attempt + 1,
            self.max_retries + 1,
            wait,
            level=logging.WARNING,
        )
        if rate_limited:
            self.rate_limit.hold()
        try:
            self.sleep(wait, cancelled)
        finally:
            if rate_limited:
                self.rate_limit.release()
        if cancelled.is_set():
            raise FetchCancelledError(ask)

    def build_request(self, context: Context | None, ask: PageRequest) -> requests.PreparedRequest:
        """Prepare the authenticated request for one page."""
        request = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=ask)
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

    def decode_page(self, response: requests.Response, ask: PageRequest) -> Page:
        """Decode the documented envelope.

        A body that is not JSON (a truncated body, a proxy's HTML page, both seen with
        status 200) is a transient failure; JSON of another shape breaks the contract.
        Neither message quotes the body: it may hold leads' personal data.
        """
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            kind = response.headers.get("Content-Type", "no content type")
            msg = (
                f"200 from {self.path} with a body that is not JSON "
                f"({len(response.content):,} bytes, {kind})"
            )
            raise RetriableAPIError(msg, response) from None
        if wrong := envelope_errors(body, self.records_key):
            msg = (
                f"LeadTrackr answered {ask} with an envelope this tap cannot page "
                f"through: {'; '.join(wrong)}. The sync stops rather than guess."
            )
            raise ContractError(msg)
        return Page(
            request=ask,
            records=body[self.records_key],
            total=body["total"],
            total_pages=body["totalPages"],
            has_more=body["hasMore"],
        )

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

    @override
    def request_records(self, context: Context | None) -> t.Iterable[dict]:
        self.project = context.get("project") if context else None
        if self.project is None:
            yield from self.request_project_records(context)
            return
        # Each project reads at `max_parallel_requests` again, whatever 429s another met.
        self.__dict__.pop("parallelism", None)
        self.log("reading %s", self.name)
        try:
            yield from self.request_project_records(context)
        except AccessRefusedError as exc:
            # The others go on; the run fails at the end (`check_sync_finished`).
            self.refused_projects[self.project] = str(exc)
            self.log(
                "%s The other projects go on; the run fails at the end.", exc, level=logging.ERROR
            )
        finally:
            self.project = None

    @override
    def check_sync_finished(self) -> None:
        # Every project that was read has its state written; now a refused one fails the run.
        if self.refused_projects:
            reasons = "; ".join(f"`{name}`: {why}" for name, why in self.refused_projects.items())
            msg = (
                f"{len(self.refused_projects)} of {len(self.partitions or [])} projects could "
                f"not be read (the others were read to the end): {reasons}"
            )
            raise ProjectsFailedError(msg)

    def request_project_records(self, context: Context | None) -> t.Iterable[dict]:
        """Request one project's records (all of them with `api_key`), checkpointing per page."""
        # In batch mode records wait in a batch file until the SDK writes its BATCH
        # message and then the state: the bookmark may move only once all are written.
        per_page = self.get_batch_config(self.config) is None
        last: dict[str, t.Any] | None = None
        for leads in self.read_records(context):
            records = self.prepare_records(leads)
            yield from records
            last = records[-1] if records else last
            if per_page:
                # The SDK has now written the page's records: checkpoint here, not every
                # 10,000 records, so an interrupted sync resumes after this page.
                self.checkpoint(last, context)
                self.write_state_message()
        if not per_page:
            self.checkpoint(last, context)

    def checkpoint(self, last: dict[str, t.Any] | None, context: Context | None) -> None:
        """Move the bookmark to the last record written, if any.

        Only for records written: a stream read just for its children (not selected
        itself) keeps its bookmark, or those records would be skipped later.
        """
        if last is not None and self.replication_key and self.selected:
            self.advance_bookmark(last, context)

    def read_records(self, context: Context | None) -> t.Iterator[list[dict[str, t.Any]]]:
        """Yield the records to emit, a page at a time, each checked and not seen before."""
        raise NotImplementedError

    def advance_bookmark(self, last_record: dict[str, t.Any], context: Context | None) -> None:
        """Move the bookmark to the last record of a page that has been written."""
        # As the SDK does per record, with its sort check; only incremental streams have one.
        if self.replication_method == REPLICATION_INCREMENTAL and self.replication_key:
            self.state_manager.increment_state(
                last_record, context=context, replication_key=self.replication_key
            )

    def write_state_message(self) -> None:
        """Write a STATE message, unless nothing changed since the last one (as the SDK does)."""
        if not self.state_manager.is_flushed:
            _ = self.stream_state  # the stream's entry exists before the state is written
            self.tap.state_writer.write_state(self.tap_state)
            self.state_manager.is_flushed = True

    def check_page(self, page: Page) -> None:
        """Check a page against the API's contract before anything is taken from it."""

    def prepare_records(self, records: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        """Shape checked records that are about to be emitted; return those to emit."""
        return records


#: The documented envelope of a list: its fields and their JSON types.
ENVELOPE_TYPES: dict[str, type] = {"total": int, "totalPages": int, "hasMore": bool}


def envelope_errors(body: object, records_key: str) -> list[str]:
    """What is wrong with a list's envelope, field by field (no values: they may be personal)."""
    if not isinstance(body, dict):
        return [f"the body is a JSON {type(body).__name__}, not an object"]
    errors = []
    for name, kind in {records_key: list, **ENVELOPE_TYPES}.items():
        value = body.get(name)
        if name not in body:
            errors.append(f"`{name}` is missing")
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            errors.append(f"`{name}` is a {type(value).__name__}, not {kind.__name__}")
    return errors


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
