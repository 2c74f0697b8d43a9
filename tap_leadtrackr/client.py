"""The LeadTrackr base stream: the singer-sdk glue around reading pages.

What is true of any request to LeadTrackr as a singer-sdk `RESTStream` lives here: the
URL, the key, the query parameters, what an answer's status means, decoding a page, and
writing a checkpoint after each. Sending and retrying are `sending.py`'s, the order pages
are read in is `paging.py`'s, projects are `projects.py`'s, and `streams.py` holds what is
particular to the leads list.
"""

from __future__ import annotations

import sys
import threading
import typing as t
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urlparse

import msgspec
import requests
import requests.adapters
from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext

from tap_leadtrackr.paging import MAX_LIMIT, ContractError, Fetch, Page, PageRequest, Pages
from tap_leadtrackr.projects import AccessRefusedError, PerProject, api_key_of, project_keys
from tap_leadtrackr.redaction import hide_queries_in_http_logs, redact
from tap_leadtrackr.sdk_hooks import FastRecordMessages, PageCheckpoints
from tap_leadtrackr.sending import Sender

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
MAX_PAGE_SIZE = MAX_LIMIT


class LeadTrackrStream(PageCheckpoints, FastRecordMessages, PerProject, RESTStream[PageRequest]):
    """A LeadTrackr list endpoint, read oldest first (see `paging.py` for the order)."""

    #: The key of the record list in the response envelope.
    records_key: str = "leads"

    def __init__(self, tap: Tap, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(tap, *args, **kwargs)
        #: The tap, whose state writer writes the per-page STATE messages.
        self.tap = tap
        hide_queries_in_http_logs()
        # One pooled connection per request in flight.
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=self.parallelism)
        self.requests_session.mount(self.url_base, adapter)

    @override
    @property
    def url_base(self) -> str:
        return str(self.config.get("api_url", DEFAULT_API_URL)).rstrip("/")

    @override
    @property
    def authenticator(self) -> APIKeyAuthenticator:
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

    @property
    def parallelism(self) -> int:
        """Requests in flight at once (`max_parallel_requests`)."""
        return int(self.config.get("max_parallel_requests", 1))

    @property
    def max_retries(self) -> int:
        """How many times a failed request is tried again (`max_retries`)."""
        return int(self.config.get("max_retries", 8))

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: PageRequest | None
    ) -> dict[str, t.Any]:
        ask = next_page_token or PageRequest(limit=self.page_size)
        return {
            "page": ask.page,
            "limit": ask.limit,
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
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
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
            return f"LeadTrackr rejected the API key ({server_says}). {self.key_help}"
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

    def pages(self, context: Context | None) -> Pages:
        """The pages of the project being read, fetched, decoded and checked."""
        return Pages(self.fetcher(context), self.page_size, self.log)

    @cached_property
    def sender(self) -> Sender:
        """Sends every request of the run: one `Retry-After` pause for every project."""
        return Sender(
            self.requests_session,
            timeout=self.timeout,
            max_retries=self.max_retries,
            parallelism=self.parallelism,
            validate=self.validate_response,
            log=self.log,
            api_url=self.url_base,
        )

    def fetcher(self, context: Context | None) -> Fetch:
        """A function that fetches one page of the project being read, from any thread."""
        sender = self.sender
        # Each project reads at `max_parallel_requests` again, whatever 429s another met.
        sender.slots.limit = self.parallelism
        authenticator = self.authenticator

        def fetch(ask: PageRequest, cancelled: threading.Event | None = None) -> Page:
            request = self.build_request(context, ask, authenticator)
            page = sender.send(
                request,
                lambda answer: self.decode_page(answer, ask),
                f"{ask} from {self.path}",
                cancelled,
            )
            self.check_page(page)
            return page

        return fetch

    def check_connection(self) -> None:
        """Ask each project for one lead (one request each); log what answered.

        Raises:
            FatalAPIError: a project could not be read; the message names each one and why.

        """
        failures = []
        contexts: list[dict | None] = [*(self.partitions or [])] or [None]
        for context in contexts:
            self.project = context["project"] if context else None
            who = "the API key" if self.project is None else f"project `{self.project}`"
            try:
                page = self.fetcher(context)(PageRequest(limit=1))
            except FatalAPIError as exc:
                failures.append(f"{who}: {exc}")
            else:
                self.logger.info(
                    "Connection test passed for %s: LeadTrackr at %s counts %s leads.",
                    who,
                    self.url_base,
                    f"{page.total:,}",
                )
            finally:
                self.project = None
        if failures:
            raise FatalAPIError("Connection test failed for " + "; ".join(failures))

    def build_request(
        self, context: Context | None, ask: PageRequest, authenticator: APIKeyAuthenticator
    ) -> requests.PreparedRequest:
        """Prepare the authenticated request for one page (thread-safe: no shared state)."""
        request = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=ask)
        )
        headers = {"User-Agent": self.user_agent, **request.headers}
        return self.requests_session.prepare_request(
            requests.Request(
                method=request.method,
                url=request.url,
                params=request.encode_params(),
                headers=headers,
                auth=authenticator,
            )
        )

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
        limit = body.get("limit")
        return Page(
            request=ask,
            records=body[self.records_key],
            total=body["total"],
            total_pages=body["totalPages"],
            has_more=body["hasMore"],
            limit=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
        )

    @override
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
