"""The sandbox HTTP server: LeadTrackr's read endpoints over a `Project`, with faults."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tap_leadtrackr.sandbox.data import generate_leads
from tap_leadtrackr.sandbox.faults import Faults
from tap_leadtrackr.sandbox.project import Project
from tap_leadtrackr.sandbox.query import (
    BadRequest,
    LeadLookup,
    parse_lead_lookup,
    parse_leads_request,
)

DEFAULT_API_KEY = "sandbox-key"
"""The key a sandbox accepts unless told otherwise (a sandbox key, fine to print)."""


def project_key(api_key: str, number: int) -> str:
    """The key of project `number` of a sandbox of several (`--projects`): `sandbox-key-2`."""
    return f"{api_key}-{number}"


LEADS_PATH = "/api/leads/getLeads"
LEAD_PATH = "/api/leads/getLead"
_MAX_DISCARDED_BODY = 1 << 20
_PROXY_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>Bad Gateway</h1><p>The proxy server received an invalid response from an"
    b" upstream server.</p><hr><address>nginx</address></body></html>\n"
)
_JSON = "application/json; charset=utf-8"
_HTML = "text/html; charset=utf-8"


class RequestHeaders(dict[str, str]):
    """Request headers as sent, looked up case-insensitively (as HTTP header names are)."""

    def __getitem__(self, name: str) -> str:
        for key, value in self.items():
            if key.lower() == name.lower():
                return value
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(key.lower() == name.lower() for key in self)

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        """Return the value of header `name` (any case), or `default`."""
        try:
            return self[name]
        except KeyError:
            return default


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sandbox received, and the status it answered with."""

    method: str
    path: str
    """The path without the query string."""
    params: dict[str, str]
    """Query parameters, percent-decoded (brackets too); the last value if one repeats."""
    raw_query: str
    headers: dict[str, str]
    """Headers as sent; lookups ignore case."""
    status: int
    """The status answered, or 0 when the connection was reset without an answer."""
    number: int
    """The API request's arrival number from 1 (what faults count); 0 for other paths."""
    received_at: float = 0.0
    """`time.monotonic()` when the request arrived, to measure a client's waits."""


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str = _JSON
    headers: dict[str, str] = field(default_factory=dict)


def _message(status: int, message: str, **headers: str) -> _Answer:
    body = json.dumps({"message": message}, ensure_ascii=False, separators=(",", ":"))
    return _Answer(status, body.encode(), headers=headers)


class Sandbox:
    """A local LeadTrackr API serving a `Project` on 127.0.0.1 (a free port by default).

    Use it as a context manager, or call `start()` and `stop()`. `project`, `faults` and
    `api_key` may be replaced or changed while it runs; the next request sees the change.
    """

    def __init__(
        self,
        project: Project | None = None,
        *,
        leads: int = 1000,
        seed: int = 1,
        api_key: str = DEFAULT_API_KEY,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
        projects: dict[str, Project] | None = None,
    ) -> None:
        """Serve `project`, or else a project of `leads` generated leads from `seed`.

        `projects` are more projects, by the API key that reads each one (as LeadTrackr
        resolves the project from the key). `faults` that answer a request (errors, latency)
        count and hit every request; those that change data or revoke the key, `project`.
        """
        self.project = project if project is not None else Project(generate_leads(leads, seed))
        self.api_key = api_key
        self.projects: dict[str, Project] = dict(projects or {})
        self.faults = faults if faults is not None else Faults()
        self.host = host
        self.port = port
        self.verbose = verbose
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._records_lock = threading.Lock()
        self._records: list[tuple[int, RecordedRequest]] = []
        self._arrivals = 0
        self._api_requests = 0

    @property
    def url(self) -> str:
        """The base URL, such as `http://127.0.0.1:54321` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (since the last `clear_requests()`), in arrival order."""
        with self._records_lock:
            return [record for _, record in sorted(self._records, key=lambda item: item[0])]

    def clear_requests(self) -> None:
        """Forget the recorded requests and count API requests from 1 again."""
        with self._records_lock:
            self._records.clear()
            self._arrivals = 0
            self._api_requests = 0

    def start(self) -> Sandbox:
        """Bind the port and serve in a background thread; return self."""
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler, self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"leadtrackr-sandbox:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection and wait for the handler threads."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def answer(
        self, path: str, params: dict[str, Any], api_key: str | None = None
    ) -> tuple[int, bytes]:
        """Answer one GET as the running server would, in this process: status and body.

        The same routing, key, validation, data and faults (and data changes after it),
        without a socket, latency or slowness: for tests of a client's logic alone. The
        request counts as an API request but is not recorded in `requests`.
        """
        _, number = self._arrive(api=path in _ROUTES)
        query = urlencode(params)
        key = self.api_key if api_key is None else api_key

        def answer() -> _Answer:
            return self._answer("GET", path, query, key, number)

        fault = self.faults.fault_for(number) if path in _ROUTES else None
        result = answer() if fault is None else _faulted(fault, answer, self.faults)
        if path in _ROUTES:
            self._after_answer(number)
        return (0, b"") if result is None else (result.status, result.body)

    def _arrive(self, *, api: bool) -> tuple[int, int]:
        with self._records_lock:
            self._arrivals += 1
            if not api:
                return self._arrivals, 0
            self._api_requests += 1
            return self._arrivals, self._api_requests

    def _record(self, arrival: int, record: RecordedRequest) -> None:
        with self._records_lock:
            self._records.append((arrival, record))

    def _pause(self, seconds: float) -> None:
        # Interrupted by stop(), so a slow fault never holds up a shutdown.
        if seconds > 0:
            self._stopping.wait(seconds)

    def _answer(
        self, method: str, path: str, query: str, api_key: str | None, number: int
    ) -> _Answer:
        """Return the answer of the API proper: routing, auth, validation, the data."""
        route = _ROUTES.get(path)
        if route is None:
            return _message(404, "Not found")
        if method != "GET":
            return _message(405, "Method not allowed", Allow="GET")
        if not api_key:
            return _message(401, "Missing X-API-Key header")
        revoke_after = self.faults.revoke_key_after_request
        project = self.project if api_key == self.api_key else self.projects.get(api_key)
        if project is None or (project is self.project and 0 < revoke_after < number):
            return _message(401, "Invalid API key")
        if not project.active:
            return _message(403, "Project subscription is inactive")
        try:
            pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
            return route(project, pairs, self.faults, number)
        except UnicodeDecodeError:
            return _message(400, "Malformed query string: not UTF-8 after percent-decoding")
        except BadRequest as error:
            return _message(400, error.message)

    def _after_answer(self, number: int) -> None:
        """Make the data changes scheduled after API request `number`.

        The deletion comes first, then the insertion, then the ratings.
        """
        faults, project = self.faults, self.project
        delete_count = faults.deletes_after(number)
        if delete_count > 0:
            project.delete_leads(project.pick_ids(delete_count, faults.delete_from, seed=number))
        insert_count = faults.inserts_after(number)
        if insert_count > 0 and faults.insert_stamp == "tied":
            project.add_leads(insert_count, created_at=project.busiest_instant())
        elif insert_count > 0 and faults.insert_stamp == "past":
            project.add_leads(insert_count, created_at=project.instant_between(seed=number))
        elif insert_count > 0:
            project.add_leads(insert_count, tied=faults.insert_tied)
        if faults.rate_every > 0 and number % faults.rate_every == 0:
            for lead_id in project.pick_ids(faults.rate_count, "tied", seed=number):
                lead = project.find(LeadLookup("id", lead_id))
                status = json.loads(lead)["status"] if lead else None
                project.update_lead(lead_id, status="lost" if status == "open" else "open")


def _get_leads(
    project: Project, pairs: list[tuple[str, str]], faults: Faults, number: int
) -> _Answer:
    request = parse_leads_request(pairs)
    served = min(request.limit, faults.page_cap) if faults.page_cap > 0 else request.limit
    total, leads = project.page(
        request.query,
        (request.page - 1) * served,
        served,
        tie_order=faults.tie_order,
        request_number=number,
    )
    total += faults.overstate_total
    total = max(0, total - faults.understate_total)
    per_page = request.limit if faults.cap_envelope == "asked" else served
    total_pages = -(-total // per_page)
    has_more = request.page < total_pages
    if faults.has_more == "stuck_true":
        has_more = True
    elif faults.has_more == "false_early" and request.page == 2:
        has_more = False
    total_text = f'"{total}"' if faults.bad_envelope == "total_string" else str(total)
    pages_text = "null" if faults.bad_envelope == "total_pages_null" else str(total_pages)
    envelope = (
        f'],"total":{total_text},"page":{request.page},"limit":{request.limit},'
        f'"totalPages":{pages_text},"hasMore":{"true" if has_more else "false"}}}'
    )
    body = b"".join(
        (b'{"message":"Leads retrieved","leads":[', b",".join(leads), envelope.encode())
    )
    return _Answer(200, body)


def _get_lead(
    project: Project, pairs: list[tuple[str, str]], faults: Faults, number: int
) -> _Answer:
    """Answer getLead; tie order and paging faults concern lists, so they are ignored."""
    lead = project.find(parse_lead_lookup(pairs))
    if lead is None:
        return _message(404, "Lead not found")
    return _Answer(200, b'{"message":"Lead retrieved","lead":' + lead + b"}")


_ROUTES: dict[str, Callable[[Project, list[tuple[str, str]], Faults, int], _Answer]] = {
    LEADS_PATH: _get_leads,
    LEAD_PATH: _get_lead,
}


def _faulted(fault: str, answer: Callable[[], _Answer], faults: Faults) -> _Answer | None:
    """Return what a fault answers instead, or None for a reset (no answer at all)."""
    if fault == "reset":
        return None
    if fault == "truncated":
        body = answer().body
        return _Answer(200, body[: len(body) // 2])
    if fault == "html":
        return _Answer(200, _PROXY_ERROR_PAGE, _HTML)
    if fault == "429":
        headers = {} if faults.retry_after is None else {"Retry-After": faults.retry_after}
        return _message(429, "Too many requests", **headers)
    status = int(fault)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Server error"
    return _message(status, phrase)


class _Server(ThreadingHTTPServer):
    """One thread per connection, all tracked, so `stop()` can end and wait for every one.

    Daemon threads, so a sandbox nobody stopped cannot keep the interpreter from exiting.
    """

    request_queue_size = 128
    _STOP_TIMEOUT = 5.0

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sandbox: Sandbox
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sandbox = sandbox
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a broken resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"leadtrackr-sandbox:{self.server_address[1]}:connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that hang up (and connections stop() closes); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut every open connection and wait for its thread to finish."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + self._STOP_TIMEOUT
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LeadTrackrSandbox/1.0"
    # Buffered, so status line, headers and body leave in one write, not two small ones.
    wbufsize = -1
    server: _Server

    def version_string(self) -> str:
        """Return the Server header: the sandbox, without Python's version."""
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _handle(self) -> None:
        started = time.perf_counter()
        sandbox = self.server.sandbox
        url = urlsplit(self.path)
        self._discard_body()
        is_api = url.path in _ROUTES
        received_at = time.monotonic()
        arrival, number = sandbox._arrive(api=is_api)
        faults = sandbox.faults

        def answer() -> _Answer:
            try:
                return sandbox._answer(
                    self.command, url.path, url.query, self.headers.get("X-API-Key"), number
                )
            except Exception:
                # A sandbox bug, or a lead a test built that JSON cannot encode: say so loudly.
                traceback.print_exc()
                return _message(500, "Internal server error")

        result: _Answer | None
        if is_api:
            sandbox._pause(faults.latency_ms / 1000)
            if faults.is_slow(number):
                sandbox._pause(faults.slow_seconds)
            if sandbox._stopping.is_set():
                self.close_connection = True
                return
            fault = faults.fault_for(number)
            result = answer() if fault is None else _faulted(fault, answer, faults)
            sandbox._after_answer(number)
        else:
            result = answer()
        status = 0 if result is None else result.status
        # Recorded before answering, so a client that has its answer finds the record.
        sandbox._record(
            arrival,
            RecordedRequest(
                method=self.command,
                path=url.path,
                params=dict(parse_qsl(url.query, keep_blank_values=True, errors="replace")),
                raw_query=url.query,
                headers=RequestHeaders(self.headers.items()),
                status=status,
                number=number,
                received_at=received_at,
            ),
        )
        if result is None:
            self._reset()
        else:
            self._send(result)
        if sandbox.verbose:
            elapsed = (time.perf_counter() - started) * 1000
            self.log_message('"%s %s" %d %.1f ms', self.command, self.path, status, elapsed)

    def _send(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send RST: the client sees a reset, not an orderly close.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _discard_body(self) -> None:
        """Read any request body, so the next request on this connection parses cleanly."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = _MAX_DISCARDED_BODY + 1
        if length > _MAX_DISCARDED_BODY:
            self.close_connection = True
        elif length > 0:
            self.rfile.read(length)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer a request http.server itself rejects (bad request line...) in JSON too."""
        self.close_connection = True
        self.send_response(code, message)
        body = _message(code, message or HTTPStatus(code).phrase).body
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing here: `_handle` logs each request once, with its duration."""

    def log_message(self, format: str, *args: Any) -> None:
        """Write to stderr only when the sandbox is verbose."""
        if self.server.sandbox.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")
