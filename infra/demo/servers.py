"""Local fake Pax8, NinjaOne and Datto RMM servers that serve a `DemoDataset` in the vendors' wire formats.

Used by demo mode, by tests over real loopback HTTP and by benchmarks. Each server is a standard
library `ThreadingHTTPServer` on 127.0.0.1 in a daemon thread. Each speaks its vendor's OAuth
token endpoint (client credentials; Datto RMM's password grant as its public client; 401 without
a valid token), paging (Pax8 `page`/`size` envelopes; NinjaOne `pageSize`/`after` bare arrays;
Datto `page`/`max` with `pageDetails.nextPageUrl`), rate-limit answers (Datto: 429 beyond its
read budget) and error shapes, counts the requests it serves, and injects faults on demand (see
`infra.demo.faults`), programmatically or over HTTP:

    POST   /_demo/faults         one fault as JSON (the server defaults to the one receiving it)
    GET    /_demo/faults         the active faults
    DELETE /_demo/faults         clear faults
    GET    /_demo/stats          request counts of every server
    POST   /_demo/reset          clear faults and request counts
    POST   /_demo/revoke-tokens  every issued access token stops working

DELETE, reset and revoke-tokens act on every server unless `?server=pax8` (or ninjaone, datto)
narrows them. Control requests need no token, get no latency and are not counted.

Records are served exactly as they are in the dataset, so a malformed record in the data set
reaches the client unchanged. Tests may mutate `dataset` between calls: appending or removing
records is noticed; after replacing a record in place with one that sorts differently, call
`dataset_changed()`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import hmac
import json
import logging
import secrets
import socket
import threading
import time
from bisect import bisect_right
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

from infra.demo.dataset import DemoDataset, WireRecord
from infra.demo.faults import SERVERS, Fault, FaultError, FaultRegistry, Server, parse_fault_body

log = logging.getLogger("infra.demo")

PAX8: Server = "pax8"
NINJAONE: Server = "ninjaone"
DATTO: Server = "datto"
PAX8_AUDIENCE = "https://api.pax8.com"
PAX8_DEFAULT_PAGE_SIZE = 10
NINJAONE_SCOPES = frozenset({"monitoring", "management", "control"})
NINJAONE_ROLES_PATH = "/v2/roles"  # device roles: one array, not paged
NINJAONE_DETAILED_PATH = "/v2/devices-detailed"  # /v2/devices with each device's `system`
DEFAULT_PAX8_CREDENTIALS = ("demo-pax8-client", "demo-pax8-secret")
DEFAULT_NINJAONE_CREDENTIALS = ("demo-ninjaone-client", "demo-ninjaone-secret")
DEFAULT_DATTO_CREDENTIALS = ("demo-datto-api-key", "demo-datto-secret")  # API key, API secret key
DATTO_TOKEN_PATH = "/auth/oauth/token"
DATTO_AUDIT_PREFIX = "/api/v2/audit/device/"
DATTO_OAUTH_CLIENT = ("public-client", "public")
DATTO_PAGE_CAP = 250

# Served instead of the page by a `malformed` fault with no body of its own: JSON documents cut short.
PAX8_MALFORMED_BODY = b'{"content": [{"id": "9ba32659-d339-4539-be21-1f461dc1a415", "name": '
NINJAONE_MALFORMED_BODY = b'[{"id": 7, "organizationId": 2, "nodeClass": '
DATTO_MALFORMED_BODY = b'{"pageDetails": {"count": 250, "nextPageUrl": "'

_JSON = "application/json"
T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]  # first value of each query parameter
    authorization: str | None
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = _JSON
    headers: tuple[tuple[str, str], ...] = ()


def json_response(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, _encode(payload), _JSON, headers)


def _oauth_error(status: int, error: str, description: str) -> Response:
    # RFC 6749 section 5.2: token endpoint errors are {"error", "error_description"} and never cached.
    body = {"error": error, "error_description": description}
    return json_response(status, body, (("Cache-Control", "no-store"),))


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class RequestStats:
    """Requests served by one server, by method and path and by status code (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._by_path: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()

    def request(self, method: str, path: str) -> None:
        with self._lock:
            self._requests += 1
            self._by_path[f"{method} {path}"] += 1

    def status(self, status: int) -> None:
        with self._lock:
            self._by_status[str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "by_path": dict(sorted(self._by_path.items())),
                "by_status": dict(sorted(self._by_status.items())),
            }

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._by_path.clear()
            self._by_status.clear()


class TokenStore:
    """Access tokens one server has issued, with their expiry (thread-safe)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def issue(self, ttl: float) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            # Expired tokens are dropped here so that a long benchmark does not grow the table forever.
            self._expiry = {t: exp for t, exp in self._expiry.items() if exp > now}
            self._expiry[token] = now + ttl
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._expiry.get(token)
            return expiry is not None and self._clock() < expiry

    def revoke_all(self) -> int:
        with self._lock:
            count = len(self._expiry)
            self._expiry.clear()
            return count


class _OrderCache:
    """Orders and filters of the served lists, computed once per dataset change.

    A list counts as changed when it is another list object or its length changed, or after
    `invalidate()`. Entries hold indices into the list, so records edited in place are served as
    they are now.
    """

    def __init__(self, max_entries: int = 64) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[tuple[int, int, int], Any]] = OrderedDict()
        self._generation = 0
        self._max = max_entries

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def get(self, key: Hashable, records: list[WireRecord], build: Callable[[Sequence[WireRecord]], T]) -> T:
        with self._lock:
            # Built under the lock: concurrent first requests for 100,000 devices then sort only once.
            size = len(records)
            fingerprint = (id(records), size, self._generation)
            cached = self._entries.get(key)
            if cached is not None and cached[0] == fingerprint:
                self._entries.move_to_end(key)
                value: T = cached[1]
                return value
            value = build(records[:size])
            self._entries[key] = (fingerprint, value)
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)
            return value


def _lookup(record: WireRecord, path: tuple[str, ...]) -> Any:
    value: Any = record
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    # Malformed records (e.g. "quantity": "ten") must not break sorting; they group after the numbers.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if value is None:
        return (3, 0)
    return (2, json.dumps(value, sort_keys=True, default=str))


def _matches(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == wanted.lower()
    return value is not None and str(value) == wanted


class _BadRequest(Exception):
    """A query parameter the server cannot accept; the message names it."""


def _int_param(query: dict[str, str], name: str, default: int | None) -> int | None:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be an integer, got {raw!r}") from None


class _Upstream:
    """What both fake vendors share: counting, latency, auth, faults. Subclasses route their API."""

    name: Server
    malformed_body: bytes

    def __init__(self, demo: DemoUpstreams, credentials: tuple[str, str]) -> None:
        self.demo = demo
        self.client_id, self._client_secret = credentials
        self.stats = RequestStats()
        self.tokens = TokenStore(demo.clock)

    def handle(self, request: Request) -> Response:
        if request.path == "/_demo" or request.path.startswith("/_demo/"):
            try:
                return self.demo.control(self.name, request)
            except Exception:
                log.exception("%s demo control failed on %s %s", self.name, request.method, request.path)
                return json_response(500, {"error": "the control endpoint failed; see the demo server's log"})
        self.stats.request(request.method, request.path)
        try:
            response = self._serve(request)
        except Exception:
            log.exception("%s demo server failed on %s %s", self.name, request.method, request.path)
            response = self.error(500, "The demo server failed; see its log.", request)
        self.stats.status(response.status)
        return response

    def _serve(self, request: Request) -> Response:
        if self.demo.latency > 0:
            self.demo.sleep(self.demo.latency)
        denied = self.authorize(request)
        if denied is not None:
            return denied
        fault = self.demo.faults.take(self.name, request.path, **self.fault_position(request))
        if fault is None:
            return self.route(request, None)
        if fault.delay:
            self.demo.sleep(fault.delay)
        if fault.status is not None:
            return self.fault_response(fault, request)
        if fault.malformed:
            body = fault.body
            if body is None:
                return Response(200, self.malformed_body, _JSON)
            return Response(200, body.encode() if isinstance(body, str) else _encode(body), _JSON)
        return self.route(request, fault if fault.shift else None)

    def fault_response(self, fault: Fault, request: Request) -> Response:
        assert fault.status is not None
        headers: tuple[tuple[str, str], ...] = ()
        if fault.retry_after is not None:
            value = fault.retry_after
            headers = (("Retry-After", value if isinstance(value, str) else f"{value:g}"),)
        if fault.body is None:
            response = self.error(fault.status, _phrase(fault.status) + " (injected fault)", request)
            return Response(response.status, response.body, response.content_type, response.headers + headers)
        if isinstance(fault.body, str):
            return Response(fault.status, fault.body.encode(), "text/plain; charset=utf-8", headers)
        return json_response(fault.status, fault.body, headers)

    def bearer_token(self, request: Request) -> str | None:
        header = request.authorization or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def check_token(self, request: Request) -> str | None:
        """None when the request carries a valid token, else what is wrong with it."""
        token = self.bearer_token(request)
        if token is None:
            return "Full authentication is required: send Authorization: Bearer <access token>."
        if not self.tokens.valid(token):
            return "The access token is invalid, expired or revoked."
        return None

    def credentials_ok(self, client_id: str, client_secret: str) -> bool:
        # Both compared in constant time, and both always, so timing does not tell which one was wrong.
        id_ok = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), self._client_secret.encode())
        return id_ok and secret_ok

    # Subclasses
    def authorize(self, request: Request) -> Response | None:
        raise NotImplementedError

    def fault_position(self, request: Request) -> dict[str, int | None]:
        raise NotImplementedError

    def route(self, request: Request, shift: Fault | None) -> Response:
        raise NotImplementedError

    def error(self, status: int, message: str, request: Request) -> Response:
        raise NotImplementedError


def _page_position(request: Request) -> dict[str, int | None]:
    """Where a request of a list paged by number is, for matching faults: its `page` (missing = 0)."""
    try:
        return {"page": int(request.query.get("page", "0"))}
    except ValueError:
        return {"page": None}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _status_type(status: int) -> str:
    try:
        return HTTPStatus(status).name
    except ValueError:
        return "ERROR"


@dataclass(frozen=True)
class _Pax8List:
    attr: str  # DemoDataset attribute
    sorts: dict[str, tuple[str, ...]]  # `sort` field -> where it is in the record
    filters: dict[str, tuple[str, ...]]  # query parameter -> where it is in the record
    search: tuple[tuple[str, ...], ...] = ()  # fields the `search` parameter looks in


_ID = ("id",)
_PAX8_LISTS: dict[str, _Pax8List] = {
    "/v1/companies": _Pax8List(
        "pax8_companies",
        sorts={
            "id": _ID,
            "name": ("name",),
            "city": ("address", "city"),
            "country": ("address", "country"),
            "stateOrProvince": ("address", "stateOrProvince"),
            "postalCode": ("address", "postalCode"),
        },
        filters={
            "status": ("status",),
            "city": ("address", "city"),
            "country": ("address", "country"),
            "stateOrProvince": ("address", "stateOrProvince"),
            "postalCode": ("address", "postalCode"),
            "selfServiceAllowed": ("selfServiceAllowed",),
            "billOnBehalfOfEnabled": ("billOnBehalfOfEnabled",),
            "orderApprovalRequired": ("orderApprovalRequired",),
        },
    ),
    "/v1/products": _Pax8List(
        "pax8_products",
        sorts={"id": _ID, "name": ("name",), "vendor": ("vendorName",)},
        filters={"vendorName": ("vendorName",)},
        search=(("name",), ("vendorName",), ("sku",), ("vendorSku",), ("id",)),
    ),
    "/v1/subscriptions": _Pax8List(
        "pax8_subscriptions",
        sorts={
            "id": _ID,
            "quantity": ("quantity",),
            "startDate": ("startDate",),
            "endDate": ("endDate",),
            "createdDate": ("createdDate",),
            "billingStart": ("billingStart",),
            "price": ("price",),
        },
        filters={
            "status": ("status",),
            "billingTerm": ("billingTerm",),
            "companyId": ("companyId",),
            "productId": ("productId",),
        },
    ),
}


class Pax8Server(_Upstream):
    """Pax8 partner API: `POST /v1/token`, `GET /v1/companies|products|subscriptions`."""

    name = PAX8
    malformed_body = PAX8_MALFORMED_BODY

    def __init__(self, demo: DemoUpstreams, credentials: tuple[str, str], max_page_size: int) -> None:
        super().__init__(demo, credentials)
        self.max_page_size = max_page_size
        self._shifted = 0

    def authorize(self, request: Request) -> Response | None:
        if not request.path.startswith("/v1/") or request.path == "/v1/token":
            return None
        problem = self.check_token(request)
        if problem is None:
            return None
        response = self.error(401, problem, request)
        return Response(401, response.body, response.content_type, (("WWW-Authenticate", "Bearer"),))

    def fault_position(self, request: Request) -> dict[str, int | None]:
        return _page_position(request)

    def error(self, status: int, message: str, request: Request) -> Response:
        if request.path == "/v1/token":
            return _oauth_error(status, _status_type(status).lower(), message)
        return json_response(
            status,
            {
                "type": _status_type(status),
                "message": message,
                "instance": request.path,
                "status": status,
                "details": [],
            },
        )

    def route(self, request: Request, shift: Fault | None) -> Response:
        if request.path == "/v1/token":
            if request.method != "POST":
                return self._not_allowed(request, "POST")
            return self._token(request)
        spec = _PAX8_LISTS.get(request.path)
        if spec is None:
            return self.error(404, f"No such endpoint: {request.method} {request.path}", request)
        if request.method != "GET":
            return self._not_allowed(request, "GET")
        try:
            return self._list(request, spec, shift)
        except _BadRequest as exc:
            return self.error(400, str(exc), request)

    def _not_allowed(self, request: Request, allowed: str) -> Response:
        message = f"{request.method} is not supported on {request.path}; use {allowed}."
        response = self.error(405, message, request)
        return Response(405, response.body, response.content_type, (("Allow", allowed),))

    def _token(self, request: Request) -> Response:
        def denied(status: int, description: str) -> Response:
            return _oauth_error(status, "access_denied", description)

        try:
            body = json.loads(request.body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        fields = ("client_id", "client_secret", "audience", "grant_type")
        if not isinstance(body, dict) or not all(isinstance(body.get(f), str) for f in fields):
            return denied(401, "Unauthorized: the body must be a JSON object with " + ", ".join(fields))
        if body["grant_type"] != "client_credentials":
            return denied(400, f"Unsupported grant_type {body['grant_type']!r}; use client_credentials")
        if body["audience"] != PAX8_AUDIENCE:
            return denied(400, f"Unknown audience {body['audience']!r}; the partner API uses {PAX8_AUDIENCE}")
        if not self.credentials_ok(body["client_id"], body["client_secret"]):
            return denied(401, "Unauthorized")
        token = self.tokens.issue(self.demo.token_ttl)
        return json_response(
            200,
            {"access_token": token, "expires_in": self.demo.token_ttl, "token_type": "Bearer"},
            (("Cache-Control", "no-store"),),
        )

    def _list(self, request: Request, spec: _Pax8List, shift: Fault | None) -> Response:
        query = request.query
        page = _int_param(query, "page", 0)
        size = _int_param(query, "size", PAX8_DEFAULT_PAGE_SIZE)
        assert page is not None
        assert size is not None
        if page < 0:
            raise _BadRequest(f"page must be 0 or more (pages are 0-based), got {page}")
        if size < 1:
            raise _BadRequest(f"size must be 1 or more, got {size}")
        size = min(size, self.max_page_size)
        sort_path, descending = self._sort(query.get("sort"), spec)
        filters = tuple(
            (name, path, query[name]) for name, path in sorted(spec.filters.items()) if name in query
        )
        search = query.get("search", "").strip().lower() if spec.search else ""

        records: list[WireRecord] = getattr(self.demo.dataset, spec.attr)
        key = (spec.attr, sort_path, descending, tuple((n, v) for n, _, v in filters), search)

        def build(snapshot: Sequence[WireRecord]) -> list[int]:
            indices = [
                i
                for i, record in enumerate(snapshot)
                if all(_matches(_lookup(record, path), wanted) for _, path, wanted in filters)
                and (not search or any(search in str(_lookup(record, f) or "").lower() for f in spec.search))
            ]
            if sort_path is not None:
                # Ties are broken by id (ascending in both directions) so that paging is stable.
                indices.sort(key=lambda i: _sort_key(_lookup(snapshot[i], _ID)))
                indices.sort(key=lambda i: _sort_key(_lookup(snapshot[i], sort_path)), reverse=descending)
            return indices

        order = self.demo.order_cache.get(key, records, build)
        total = len(order)
        start = page * size
        content = [records[i] for i in order[start : start + size]]
        pages = -(-total // size)
        body = _encode(
            {
                "content": content,
                "page": {"size": size, "totalElements": total, "totalPages": pages, "number": page},
            }
        )
        if shift is not None:
            self._shift(records, [records[i] for i in order[:1]], shift)
        return Response(200, body, _JSON)

    def _sort(self, raw: str | None, spec: _Pax8List) -> tuple[tuple[str, ...] | None, bool]:
        if raw is None or not raw.strip():
            return None, False
        field_name, _, direction = (part.strip() for part in raw.partition(","))
        if field_name not in spec.sorts:
            raise _BadRequest(f"cannot sort by {field_name!r}; sortable fields: {', '.join(spec.sorts)}")
        direction = direction.lower() or "asc"
        if direction not in ("asc", "desc"):
            raise _BadRequest(f"sort direction must be asc or desc, got {direction!r}")
        return spec.sorts[field_name], direction == "desc"

    def _shift(self, records: list[WireRecord], first: list[WireRecord], fault: Fault) -> None:
        if isinstance(fault.body, dict):
            record: WireRecord = copy.deepcopy(fault.body)
        elif first:
            record = copy.deepcopy(first[0])
            with self.demo.lock:
                self._shifted += 1
                serial = self._shifted
            # Counting down from the top makes each new id sort before the earlier ones, so that a copy
            # of the first record also comes first among records that tie with it on the sort field.
            record["id"] = f"00000000-0000-4000-8000-{0xFFFFFFFFFFFF - serial:012x}"
        else:
            return  # an empty list has nothing to copy; a shift fault with a record body still works
        records.insert(0, record)


class NinjaOneServer(_Upstream):
    """NinjaOne public API v2: `POST /ws/oauth/token`, `GET /v2/organizations|devices|roles`."""

    name = NINJAONE
    malformed_body = NINJAONE_MALFORMED_BODY
    _lists: ClassVar[dict[str, str]] = {
        "/v2/organizations": "ninjaone_organizations",
        "/v2/devices": "ninjaone_devices",
        NINJAONE_DETAILED_PATH: "ninjaone_devices",
        NINJAONE_ROLES_PATH: "ninjaone_roles",
    }

    def __init__(self, demo: DemoUpstreams, credentials: tuple[str, str], page_cap: int) -> None:
        super().__init__(demo, credentials)
        self.page_cap = page_cap

    def authorize(self, request: Request) -> Response | None:
        if not request.path.startswith("/v2/"):
            return None
        if self.check_token(request) is None:
            return None
        return Response(401, b"", None, (("WWW-Authenticate", "Bearer"),))

    def fault_position(self, request: Request) -> dict[str, int | None]:
        try:
            return {"after": int(request.query.get("after", "0"))}
        except ValueError:
            return {"after": None}

    def error(self, status: int, message: str, request: Request) -> Response:
        if request.path == "/ws/oauth/token":
            return _oauth_error(status, _status_type(status).lower(), message)
        # The vendor spec declares no error body for the v2 API: errors are bare status codes.
        return Response(status, b"", None)

    def route(self, request: Request, shift: Fault | None) -> Response:
        if request.path == "/ws/oauth/token":
            if request.method != "POST":
                return Response(405, b"", None, (("Allow", "POST"),))
            return self._token(request)
        attr = self._lists.get(request.path)
        if attr is None:
            return self.error(404, "", request)
        if request.method != "GET":
            return Response(405, b"", None, (("Allow", "GET"),))
        if request.path == NINJAONE_ROLES_PATH:
            # The vendor spec declares no paging for roles: the whole list in one array.
            return Response(200, _encode(self.demo.dataset.ninjaone_roles), _JSON)
        try:
            return self._list(request, attr)
        except _BadRequest:
            return self.error(400, "", request)

    def _token(self, request: Request) -> Response:
        if request.content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            return _oauth_error(
                400,
                "invalid_request",
                "The token request must be form-encoded (application/x-www-form-urlencoded)",
            )
        try:
            form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            return _oauth_error(400, "invalid_request", "The token request body is not UTF-8")
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(
                400,
                "unsupported_grant_type",
                f"Unsupported grant_type {form.get('grant_type')!r}; use client_credentials",
            )
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = self._basic_credentials(request)
        if basic is not None:
            client_id, client_secret = basic
        if client_id is None or client_secret is None or not self.credentials_ok(client_id, client_secret):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        scopes = form.get("scope", "").split()
        unknown = [s for s in scopes if s not in NINJAONE_SCOPES]
        if unknown or "monitoring" not in scopes:
            return _oauth_error(
                400,
                "invalid_scope",
                "scope must include monitoring (allowed: control, management, monitoring)",
            )
        token = self.tokens.issue(self.demo.token_ttl)
        return json_response(
            200,
            {
                "access_token": token,
                "expires_in": self.demo.token_ttl,
                "scope": " ".join(scopes),
                "token_type": "Bearer",
            },
            (("Cache-Control", "no-store"),),
        )

    @staticmethod
    def _basic_credentials(request: Request) -> tuple[str, str] | None:
        scheme, _, encoded = (request.authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, client_secret = decoded.partition(":")
        return client_id, client_secret

    def _list(self, request: Request, attr: str) -> Response:
        page_size = _int_param(request.query, "pageSize", None)
        after = _int_param(request.query, "after", None)
        if page_size is not None and page_size < 1:
            raise _BadRequest(f"pageSize must be 1 or more, got {page_size}")
        if "df" in request.query:
            # Ignoring a device filter would silently return other organizations' devices.
            raise _BadRequest("the demo server does not support device filters (df)")
        limit = self.page_cap if page_size is None else min(page_size, self.page_cap)
        records: list[WireRecord] = getattr(self.demo.dataset, attr)

        def build(snapshot: Sequence[WireRecord]) -> tuple[list[tuple[int, Any]], list[int]]:
            keyed = sorted((_sort_key(record.get("id")), i) for i, record in enumerate(snapshot))
            return [k for k, _ in keyed], [i for _, i in keyed]

        keys, order = self.demo.order_cache.get(attr, records, build)
        start = 0 if after is None else bisect_right(keys, (0, after))
        page = [records[i] for i in order[start : start + limit]]
        if request.path == NINJAONE_DETAILED_PATH:
            systems = self.demo.dataset.ninjaone_systems
            page = [
                {**record, "system": systems[record["id"]]} if record.get("id") in systems else record
                for record in page
            ]
        return Response(200, _encode(page), _JSON)


class DattoServer(_Upstream):
    """Datto RMM API v2: `POST /auth/oauth/token` (password grant), `GET /api/v2/account/sites|devices`
    paged by `page`/`max` with `pageDetails.nextPageUrl`, `GET /api/v2/audit/device/{uid}`, and the
    account's read budget (`datto_rate_limit` reads per rolling window; beyond it, 429)."""

    name = DATTO
    malformed_body = DATTO_MALFORMED_BODY
    _lists: ClassVar[dict[str, tuple[str, str]]] = {
        "/api/v2/account/sites": ("datto_sites", "sites"),
        "/api/v2/account/devices": ("datto_devices", "devices"),
    }

    def __init__(
        self, demo: DemoUpstreams, credentials: tuple[str, str], rate_limit: tuple[int, float]
    ) -> None:
        super().__init__(demo, credentials)
        self.rate_limit = rate_limit
        self._reads: deque[float] = deque()
        self._reads_lock = threading.Lock()

    def authorize(self, request: Request) -> Response | None:
        if not request.path.startswith("/api/"):
            return None
        problem = self.check_token(request)
        if problem is None:
            return self._within_budget()
        return _oauth_error(401, "invalid_token", problem)

    def _within_budget(self) -> Response | None:
        limit, window = self.rate_limit
        now = self.demo.clock()
        with self._reads_lock:
            while self._reads and now - self._reads[0] >= window:
                self._reads.popleft()
            if len(self._reads) >= limit:
                return json_response(
                    429, {"message": f"Rate limit of {limit} read requests per {window:g}s exceeded"}
                )
            self._reads.append(now)
        return None

    def fault_position(self, request: Request) -> dict[str, int | None]:
        return _page_position(request)

    def error(self, status: int, message: str, request: Request) -> Response:
        if request.path == DATTO_TOKEN_PATH:
            return _oauth_error(status, _status_type(status).lower(), message)
        return json_response(status, {"message": message or _phrase(status)})

    def route(self, request: Request, shift: Fault | None) -> Response:
        if request.path == DATTO_TOKEN_PATH:
            if request.method != "POST":
                return Response(405, b"", None, (("Allow", "POST"),))
            return self._token(request)
        if request.method != "GET":
            return Response(405, b"", None, (("Allow", "GET"),))
        if request.path.startswith(DATTO_AUDIT_PREFIX):
            audit = self.demo.dataset.datto_audits.get(request.path.removeprefix(DATTO_AUDIT_PREFIX))
            if audit is None:
                return self.error(404, "Device was not found.", request)
            return json_response(200, audit)
        listed = self._lists.get(request.path)
        if listed is None:
            return self.error(404, f"No such endpoint: {request.method} {request.path}", request)
        try:
            return self._list(request, *listed)
        except _BadRequest as exc:
            return self.error(400, str(exc), request)

    def _token(self, request: Request) -> Response:
        if NinjaOneServer._basic_credentials(request) != DATTO_OAUTH_CLIENT:
            return _oauth_error(
                401, "unauthorized", "Full authentication is required to access this resource"
            )
        try:
            form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            return _oauth_error(400, "invalid_request", "The token request body is not UTF-8")
        if form.get("grant_type") != "password":
            return _oauth_error(
                400, "unsupported_grant_type", f"Unsupported grant type: {form.get('grant_type')}"
            )
        if not self.credentials_ok(form.get("username", ""), form.get("password", "")):
            return _oauth_error(400, "invalid_grant", "Bad credentials")
        token = self.tokens.issue(self.demo.token_ttl)
        body = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.demo.token_ttl,
            "scope": "default",
        }
        return json_response(200, body, (("Cache-Control", "no-store"),))

    def _list(self, request: Request, attr: str, key: str) -> Response:
        size = _int_param(request.query, "max", DATTO_PAGE_CAP)
        page = _int_param(request.query, "page", 0)
        assert size is not None and page is not None
        if size < 1 or page < 0:
            raise _BadRequest("Request parameters are invalid.")
        size = min(size, DATTO_PAGE_CAP)
        records: list[WireRecord] = getattr(self.demo.dataset, attr)
        chunk = records[page * size : (page + 1) * size]
        base = f"{self.demo.url(DATTO)}{request.path}"
        more = (page + 1) * size < len(records)
        details = {
            "count": len(chunk),
            "totalCount": len(records),
            "prevPageUrl": f"{base}?max={size}&page={page - 1}" if page > 0 else "",
            "nextPageUrl": f"{base}?max={size}&page={page + 1}" if more else "",
        }
        return json_response(200, {"pageDetails": details, key: chunk})


class _DemoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow (delayed) answer must not block stop()
    # The default backlog of 5 makes a benchmark's burst of parallel connections wait for SYN retries.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], upstream: _Upstream) -> None:
        self.upstream = upstream
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """End idle keep-alive connections, whose threads would otherwise wait for the client forever."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is part of the demo, not a server failure.
        log.debug(
            "%s demo connection from %s ended abruptly", self.upstream.name, client_address, exc_info=True
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # else each small response waits ~40 ms for the client's delayed ACK
    server: _DemoHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the stats count requests; a benchmark must not pay for a stderr line each

    def _handle(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            self._write(Response(411, b"", None))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._write(Response(400, b"", None))
            return
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        request = Request(
            method=self.command,
            path=url.path or "/",
            query=query,
            authorization=self.headers.get("Authorization"),
            content_type=self.headers.get("Content-Type") or "",
            body=body,
        )
        self._write(self.server.upstream.handle(request))

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        if response.content_type is not None:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)


@dataclass
class _Running:
    server: _DemoHTTPServer
    thread: threading.Thread
    port: int


class DemoUpstreams:
    """Fake Pax8 and NinjaOne servers over one DemoDataset, on 127.0.0.1 (port 0 = any free port).

    `latency` seconds are added to every API response (settable while running). `sleep` waits for
    latency and delay faults (default: a wait that `stop()` cuts short); `clock` times token expiry.
    """

    def __init__(
        self,
        dataset: DemoDataset,
        *,
        pax8_port: int = 0,
        ninjaone_port: int = 0,
        datto_port: int = 0,
        pax8_credentials: tuple[str, str] = DEFAULT_PAX8_CREDENTIALS,
        ninjaone_credentials: tuple[str, str] = DEFAULT_NINJAONE_CREDENTIALS,
        datto_credentials: tuple[str, str] = DEFAULT_DATTO_CREDENTIALS,
        datto_rate_limit: tuple[int, float] = (600, 60.0),
        token_ttl: int = 3600,
        latency: float = 0.0,
        ninjaone_page_cap: int = 500,
        pax8_max_page_size: int = 200,
        host: str = "127.0.0.1",
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if token_ttl <= 0:
            raise ValueError(f"token_ttl must be a positive number of seconds, got {token_ttl!r}")
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency!r}")
        if ninjaone_page_cap < 1:
            raise ValueError(f"ninjaone_page_cap must be 1 or more, got {ninjaone_page_cap!r}")
        if pax8_max_page_size < 1:
            raise ValueError(f"pax8_max_page_size must be 1 or more, got {pax8_max_page_size!r}")
        self._dataset = dataset
        self.token_ttl = token_ttl
        self.latency = latency
        self.host = host
        self.clock = clock
        self.lock = threading.Lock()
        self.faults = FaultRegistry()
        self.order_cache = _OrderCache()
        self._stopping = threading.Event()
        self.sleep: Callable[[float], None] = sleep or self._interruptible_sleep
        self._ports: dict[Server, int] = {PAX8: pax8_port, NINJAONE: ninjaone_port, DATTO: datto_port}
        self._upstreams: dict[Server, _Upstream] = {
            PAX8: Pax8Server(self, pax8_credentials, pax8_max_page_size),
            NINJAONE: NinjaOneServer(self, ninjaone_credentials, ninjaone_page_cap),
            DATTO: DattoServer(self, datto_credentials, datto_rate_limit),
        }
        self._running: dict[Server, _Running] = {}

    def __repr__(self) -> str:
        state = ", ".join(f"{name}={self.url(name)}" for name in self._running) or "stopped"
        return f"DemoUpstreams({state})"

    # Life cycle
    def start(self) -> Self:
        if self._running:
            raise RuntimeError("the demo upstreams are already running")
        self._stopping.clear()
        try:
            for name, upstream in self._upstreams.items():
                port = self._ports[name]
                try:
                    server = _DemoHTTPServer((self.host, port), upstream)
                except OSError as exc:
                    where = f"{self.host}:{port}"
                    raise RuntimeError(f"the {name} demo server cannot listen on {where}: {exc}") from exc
                # A short poll interval keeps stop() quick.
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.02},
                    name=f"demo-{name}",
                    daemon=True,
                )
                thread.start()
                self._running[name] = _Running(server, thread, server.server_address[1])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stopping.set()
        running, self._running = self._running, {}
        for entry in running.values():
            entry.server.shutdown()
            entry.server.server_close()
            entry.server.close_connections()
            entry.thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _interruptible_sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    # Addresses
    def url(self, server: Server) -> str:
        running = self._running.get(server)
        if running is None:
            raise RuntimeError(f"the {server} demo server is not running; call start() first")
        return f"http://{self.host}:{running.port}"

    @property
    def pax8_url(self) -> str:
        return self.url(PAX8)

    @property
    def pax8_api_url(self) -> str:
        return self.pax8_url + "/v1"

    @property
    def pax8_token_url(self) -> str:
        return self.pax8_url + "/v1/token"

    @property
    def ninjaone_url(self) -> str:
        return self.url(NINJAONE)

    @property
    def ninjaone_token_url(self) -> str:
        return self.ninjaone_url + "/ws/oauth/token"

    @property
    def datto_url(self) -> str:
        return self.url(DATTO)

    # Data
    @property
    def dataset(self) -> DemoDataset:
        return self._dataset

    @dataset.setter
    def dataset(self, dataset: DemoDataset) -> None:
        self._dataset = dataset
        self.order_cache.invalidate()

    def dataset_changed(self) -> None:
        """Re-sort on the next request (needed only after replacing records in place)."""
        self.order_cache.invalidate()

    # Observation and control
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per server: requests served, by "METHOD /path" and by status code."""
        return {name: upstream.stats.snapshot() for name, upstream in self._upstreams.items()}

    def reset_stats(self, server: Server | None = None) -> None:
        for name in self._selected(server):
            self._upstreams[name].stats.reset()

    def revoke_tokens(self, server: Server | None = None) -> int:
        """Invalidate every access token issued so far (the next API call gets 401); returns how many."""
        return sum(self._upstreams[name].tokens.revoke_all() for name in self._selected(server))

    def _selected(self, server: Server | None) -> tuple[Server, ...]:
        if server is None:
            return SERVERS
        if server not in SERVERS:
            raise ValueError(f"server must be one of {', '.join(SERVERS)}, got {server!r}")
        return (server,)

    def control(self, receiver: Server, request: Request) -> Response:
        """The `/_demo/*` endpoints: faults, stats, reset and token revocation over HTTP."""
        action = (request.method, request.path.rstrip("/"))
        scope = request.query.get("server")
        if scope is not None and scope not in SERVERS:
            return json_response(400, {"error": f"server must be one of {', '.join(SERVERS)}, got {scope!r}"})
        selected: Server | None = next((name for name in SERVERS if name == scope), None)
        if action == ("POST", "/_demo/faults"):
            try:
                fault = parse_fault_body(request.body, receiver)
            except (FaultError, TypeError) as exc:
                return json_response(400, {"error": str(exc)})
            fault_id = self.faults.add(fault)
            return json_response(201, {"id": fault_id, **fault.to_json()})
        if action == ("GET", "/_demo/faults"):
            return json_response(200, {"faults": self.faults.active(selected)})
        if action == ("DELETE", "/_demo/faults"):
            return json_response(200, {"removed": self.faults.clear(selected)})
        if action == ("GET", "/_demo/stats"):
            return json_response(200, self.stats())
        if action == ("POST", "/_demo/reset"):
            removed = self.faults.clear(selected)
            self.reset_stats(selected)
            reset = list(self._selected(selected))
            return json_response(200, {"faults_removed": removed, "stats_reset": reset})
        if action == ("POST", "/_demo/revoke-tokens"):
            return json_response(200, {"revoked": self.revoke_tokens(selected)})
        known = (
            "POST|GET|DELETE /_demo/faults, GET /_demo/stats, POST /_demo/reset, POST /_demo/revoke-tokens"
        )
        problem = f"no control endpoint {request.method} {request.path}; known: {known}"
        return json_response(404, {"error": problem})
