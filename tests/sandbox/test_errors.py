"""Errors: 400 for every invalid parameter, 401, 403, 404, 405, in the documented shape."""

from __future__ import annotations

from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest
import requests

from tap_leadtrackr.sandbox import Project, Sandbox
from tests.sandbox.conftest import JSON, LEAD, LEADS, get_json, session_for

LIMIT = "Invalid value for limit: must be an integer between 1 and 100"
PAGE = "Invalid value for page: must be an integer of at least 1"
SORT = (
    "Invalid value for sort: must be field:direction with field one of createdAt, firstName,"
    " lastName, email, price, status and direction asc or desc"
)


def _date(name: str) -> str:
    return (
        f"Invalid value for {name}: must be an ISO 8601 date or date-time,"
        " such as 2026-03-15T10:30:00.000Z"
    )


BAD_LIST_QUERIES = [
    ("offset=10", "Unknown query parameter: offset"),
    ("createdAt=2026-01-01", "Unknown query parameter: createdAt"),
    ("createdAt[gt]=2026-01-01", "Unknown query parameter: createdAt[gt]"),
    ("limit=10&Status=open", "Unknown query parameter: Status"),
    ("leadId=5", "Unknown query parameter: leadId"),
    ("limit=10&limit=20", "Query parameter given more than once: limit"),
    ("status=open&status=lost", "Query parameter given more than once: status"),
    (
        "createdAt[gte]=2026-01-01&createdAt%5Bgte%5D=2026-01-02",
        "Query parameter given more than once: createdAt[gte]",
    ),
    *((f"limit={value}", LIMIT) for value in ("0", "101", "abc", "1.5", "-1", "", "%2B5", "1e2")),
    *((f"page={value}", PAGE) for value in ("0", "-1", "x", "", "2.0")),
    ("createdAt[gte]=yesterday", _date("createdAt[gte]")),
    ("createdAt[lte]=2026-02-30", _date("createdAt[lte]")),
    ("createdAt[lte]=2026-03-15T25:00:00Z", _date("createdAt[lte]")),
    # An unencoded "+" in an offset arrives as a space: the client must send %2B.
    ("createdAt[gte]=2026-03-15T10:30:00+02:00", _date("createdAt[gte]")),
    ("createdAt[gte]=1773532800000", _date("createdAt[gte]")),
    ("createdAt[gte]=", _date("createdAt[gte]")),
    *(
        (f"sort={value}", SORT)
        for value in ("createdAt", "createdAt:up", "id:asc", "CreatedAt:asc", "price:DESC", "")
    ),
    *(
        (f"{key}[exists]={value}", f"Invalid value for {key}[exists]: must be true or false")
        for key, value in (("gclid", "yes"), ("cid", "1"), ("fbp", "True"), ("fbc", ""))
    ),
    ("search=a", "Invalid value for search: must be at least 2 characters"),
    ("search=", "Invalid value for search: must be at least 2 characters"),
    (
        "status=open,,lost",
        "Invalid value for status: must be one status or several separated by commas",
    ),
    ("status=", "Invalid value for status: must be one status or several separated by commas"),
    *(
        (f"{name}=", f"Invalid value for {name}: must be a non-empty string")
        for name in ("formName", "uniqueIdentifier", "email", "phone")
    ),
    ("email=%FF", "Malformed query string: not UTF-8 after percent-decoding"),
]


@pytest.mark.parametrize(("query", "message"), BAD_LIST_QUERIES)
def test_get_leads_bad_request(api, sandbox, query: str, message: str) -> None:
    assert get_json(api, f"{sandbox.url}{LEADS}?{query}", status=400) == {"message": message}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Missing parameter: give one of leadId, uniqueIdentifier, email or phone"),
        ("leadId=abc", "Invalid value for leadId: must be an integer"),
        ("leadId=-3", "Invalid value for leadId: must be an integer"),
        ("leadId=", "Invalid value for leadId: must be an integer"),
        ("leadId=1&leadId=2", "Query parameter given more than once: leadId"),
        ("id=1", "Unknown query parameter: id"),
        ("status=open", "Unknown query parameter: status"),
        ("email=", "Invalid value for email: must be a non-empty string"),
        # Lower-priority parameters are still validated when a higher one is given.
        ("leadId=1&phone=", "Invalid value for phone: must be a non-empty string"),
    ],
)
def test_get_lead_bad_request(api, sandbox, query: str, message: str) -> None:
    assert get_json(api, f"{sandbox.url}{LEAD}?{query}", status=400) == {"message": message}


@pytest.mark.parametrize("path", [LEADS, LEAD])
def test_missing_and_invalid_key(sandbox, path: str) -> None:
    bare = requests.Session()
    assert get_json(bare, sandbox.url + path, status=401) == {"message": "Missing X-API-Key header"}
    empty = session_for(sandbox)
    empty.headers["X-API-Key"] = ""
    assert get_json(empty, sandbox.url + path, status=401) == {
        "message": "Missing X-API-Key header"
    }
    wrong = session_for(sandbox, key="not-the-key")
    assert get_json(wrong, sandbox.url + path, status=401) == {"message": "Invalid API key"}


def test_auth_comes_before_validation(sandbox) -> None:
    url = f"{sandbox.url}{LEADS}?limit=1000&offset=3"
    bare = requests.Session()
    assert get_json(bare, url, status=401) == {"message": "Missing X-API-Key header"}
    assert get_json(session_for(sandbox, "wrong"), url, status=401) == {
        "message": "Invalid API key"
    }


def test_header_name_is_case_insensitive(sandbox) -> None:
    session = requests.Session()
    session.headers["x-api-key"] = sandbox.api_key
    get_json(session, sandbox.url + LEADS)


def test_inactive_project_is_forbidden_until_reactivated() -> None:
    project = Project([{"id": 1, "createdAt": "2026-01-01T00:00:00.000Z", "status": "open"}])
    with Sandbox(project, api_key="k") as sandbox:
        session = session_for(sandbox)
        project.active = False
        forbidden = {"message": "Project subscription is inactive"}
        assert get_json(session, sandbox.url + LEADS, status=403) == forbidden
        assert get_json(session, f"{sandbox.url}{LEAD}?leadId=1", status=403) == forbidden
        # Authentication and the subscription are checked before the parameters.
        assert get_json(session, f"{sandbox.url}{LEADS}?limit=0", status=403) == forbidden
        assert get_json(requests.Session(), sandbox.url + LEADS, status=401)
        project.active = True
        assert get_json(session, sandbox.url + LEADS)["total"] == 1


@pytest.mark.parametrize(
    "path",
    ["/", "/api/leads", "/api/leads/getleads", "/api/leads/getLeads/", "/api/leads/createLead"],
)
def test_unknown_path(api, sandbox, path: str) -> None:
    assert get_json(api, sandbox.url + path, status=404) == {"message": "Not found"}
    assert get_json(requests.Session(), sandbox.url + path, status=404) == {"message": "Not found"}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", [LEADS, LEAD])
def test_wrong_method(api, sandbox, method: str, path: str) -> None:
    response = api.request(method, sandbox.url + path, json={"leadId": 1}, timeout=10)
    assert response.status_code == 405
    assert response.headers["Content-Type"] == JSON
    assert response.headers["Allow"] == "GET"
    assert response.json() == {"message": "Method not allowed"}


def test_head_gets_405_without_a_body(api, sandbox) -> None:
    response = api.head(sandbox.url + LEADS, timeout=10)
    assert response.status_code == 405
    assert response.content == b""


def test_keep_alive_serves_many_requests_on_one_connection(sandbox) -> None:
    connection = HTTPConnection(urlsplit(sandbox.url).netloc, timeout=10)
    headers = {"X-API-Key": sandbox.api_key}
    for path in (f"{LEADS}?limit=2", "/nope", f"{LEAD}?leadId=1", f"{LEADS}?limit=0"):
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        assert response.version == 11
        assert response.getheader("Content-Length") == str(len(body))
        assert response.getheader("Content-Type") == JSON
        assert not response.will_close
    # A body sent with a wrong method is read and discarded, keeping the connection usable.
    connection.request("POST", LEADS, body=b'{"x": 1}', headers=headers)
    assert connection.getresponse().read()
    connection.request("GET", f"{LEADS}?limit=1", headers=headers)
    assert connection.getresponse().status == 200
    connection.close()


def test_malformed_request_line_gets_json(sandbox) -> None:
    connection = HTTPConnection(urlsplit(sandbox.url).netloc, timeout=10)
    connection.request("BREW", LEADS)
    response = connection.getresponse()
    assert response.status == 501
    assert response.getheader("Content-Type") == JSON
    assert b"message" in response.read()
    connection.close()
