"""The local API Gateway: an HTTP/1.1 server that turns requests into payload format 2.0 events.

Routes come from the template (`Router`); each request goes to the function that serves its
route as an HTTP API event (version "2.0"), and the function's answer is mapped back the way API
Gateway maps it: `statusCode`, `headers`, `cookies` (one Set-Cookie each), `body` (base64-decoded
when `isBase64Encoded`), or any other JSON value as a 200 application/json body. A route that is
not in the template answers API Gateway's 404, a crashed handler its 500 and a timed-out one 504.

Local-only control endpoints live under `/_local/` (API Gateway reserves no such prefix, and
trueup's API uses none):

    GET  /_local/schedules                          the template's schedules
    GET  /_local/notifications                      what the notification topics said, newest first
    POST /_local/schedules/<FunctionId>/<EventName> fire one now; answers the function's result
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from infra.local.runtime import Outcome
from infra.local.sign_in import JwtAuthorizer, TokenRejected
from infra.local.template import RouteMatch, Router, Schedule

log = logging.getLogger("infra.local.gateway")

ACCOUNT_ID = "123456789012"
API_ID = "local"
MAX_REQUEST_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit (API Gateway's is larger)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_CONTENT = frozenset({204, 304})  # responses that carry no content (RFC 9110 15.3.5, 15.4.5)
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/graphql",
)

# invoke(function logical id, event, may_write) -> what the function did
Invoke = Callable[[str, dict[str, Any], bool], Outcome]


@dataclass(frozen=True)
class GatewayRequest:
    method: str
    target: str  # the request-target as received: path and query, percent-encoded
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""


class MalformedResponse(ValueError):
    """A function answered something API Gateway cannot turn into an HTTP response."""


def json_response(status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return HttpResponse(status, (("Content-Type", "application/json"), *headers), body)


def split_target(target: str) -> tuple[str, str]:
    """(rawPath, rawQueryString) of a request-target."""
    target = target.split("#", 1)[0]
    path, _, query = target.partition("?")
    return path or "/", query


def _is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(_TEXT_TYPES) or media.endswith(("+json", "+xml"))


def build_event(
    request: GatewayRequest,
    match: RouteMatch,
    *,
    request_id: str,
    now: datetime,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload format 2.0) event for `request` on `match`'s route."""
    raw_path, raw_query = split_target(request.target)
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        lower = name.lower()
        if lower == "cookie":
            # Format 2.0 moves cookies out of the headers into their own list.
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    host = headers.get("host", "localhost")
    port = host.rpartition(":")[2] if ":" in host else "80"
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-port", port)
    headers.setdefault("x-forwarded-proto", "http")

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": request.method,
            "path": unquote(raw_path),
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": match.route.key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    if request.body:
        text = _is_text(headers.get("content-type")) and "content-encoding" not in headers
        if text:
            try:
                event["body"] = request.body.decode("utf-8")
            except UnicodeDecodeError:
                text = False
        if not text:
            event["body"] = base64.b64encode(request.body).decode("ascii")
        event["isBase64Encoded"] = not text
    else:
        event["isBase64Encoded"] = False
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    return event


def map_response(result: Any) -> HttpResponse:
    """API Gateway's reading of a format 2.0 Lambda response."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # Without a statusCode API Gateway takes the whole answer as a JSON body.
        return HttpResponse(
            200, (("Content-Type", "application/json"),), json.dumps(result, separators=(",", ":")).encode()
        )
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode must be an HTTP status, got {status!r}")
    headers: list[tuple[str, str]] = []
    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise MalformedResponse("headers must be an object")
    for name, value in raw_headers.items():
        if name.lower() in ("content-length", "transfer-encoding", "connection"):
            continue  # framing is the gateway's business
        headers.append((str(name), _header_value(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), _header_value(v)) for v in values)
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise MalformedResponse("cookies must be a list of strings")
    headers.extend(("Set-Cookie", str(cookie)) for cookie in cookies)
    body = result.get("body")
    if status in NO_CONTENT:
        data = b""  # whatever the function put there: these statuses carry no content
    elif body is None:
        data = b""
    elif not isinstance(body, str):
        raise MalformedResponse(f"body must be a string, got {type(body).__name__}")
    elif result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedResponse(f"isBase64Encoded is true but the body is not base64: {exc}") from exc
    else:
        data = body.encode("utf-8")
    return HttpResponse(status, headers, data)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if "\r" in text or "\n" in text:
        raise MalformedResponse("a header value contains a line break")
    return text


def response_for(outcome: Outcome) -> HttpResponse:
    """What API Gateway answers for one Lambda invocation."""
    if outcome.status == "timeout":
        return json_response(504, {"message": "Gateway Timeout"})
    if not outcome.ok:
        return json_response(500, {"message": "Internal Server Error"})
    try:
        return map_response(outcome.result)
    except MalformedResponse as exc:
        log.error("malformed Lambda response (request %s): %s", outcome.request_id, exc)
        return json_response(500, {"message": "Internal Server Error"})


NOT_FOUND = json_response(404, {"message": "Not Found"})


@dataclass
class Gateway:
    """Routes requests to functions; the HTTP server around it is `GatewayServer`."""

    router: Router
    invoke: Invoke
    schedules: Sequence[Schedule] = ()
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # None: no authorizer (sign-in off). Otherwise every route but the public ones needs a good token.
    authorizer: JwtAuthorizer | None = None
    # What the stack's notification topics received (infra.local.notifications), newest first.
    notifications: Callable[[], list[dict[str, Any]]] = field(default=lambda: [])

    def handle(self, request: GatewayRequest) -> HttpResponse:
        raw_path, _ = split_target(request.target)
        if raw_path == "/_local" or raw_path.startswith("/_local/"):
            return self._local(request, raw_path)
        match = self.router.match(request.method, raw_path)
        if match is None:
            return NOT_FOUND
        if len(request.body) > MAX_REQUEST_BYTES:
            return json_response(413, {"message": "Request Entity Too Large"})
        request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")
        authorized = None
        if self.authorizer is not None and not match.route.public:
            header = next((v for k, v in request.headers if k.lower() == "authorization"), None)
            try:
                authorized = self.authorizer.authorize(header)
            except TokenRejected as exc:
                # API Gateway's answer: 401, {"message":"Unauthorized"}, and why in WWW-Authenticate.
                reason = str(exc).replace('"', "'")
                challenge = f'Bearer error="invalid_token", error_description="{reason}"'
                return json_response(
                    401,
                    {"message": "Unauthorized"},
                    (("WWW-Authenticate", challenge), ("Apigw-Requestid", request_id)),
                )
        event = build_event(request, match, request_id=request_id, now=self.clock(), authorizer=authorized)
        outcome = self.invoke(match.route.function, event, request.method not in SAFE_METHODS)
        response = response_for(outcome)
        return HttpResponse(
            response.status, (*response.headers, ("Apigw-Requestid", request_id)), response.body
        )

    def _local(self, request: GatewayRequest, raw_path: str) -> HttpResponse:
        parts = [unquote(p) for p in raw_path.strip("/").split("/")]
        if parts == ["_local", "notifications"] and request.method == "GET":
            return json_response(200, {"notifications": self.notifications()})
        if parts[:2] != ["_local", "schedules"]:
            return NOT_FOUND
        if len(parts) == 2 and request.method == "GET":
            return json_response(
                200,
                {
                    "schedules": [
                        {
                            "function": s.function,
                            "event": s.event,
                            "expression": s.expression,
                            "input": s.input,
                            "fire": f"POST /_local/schedules/{s.function}/{s.event}",
                        }
                        for s in self.schedules
                    ]
                },
            )
        if len(parts) != 4 or request.method != "POST":
            return NOT_FOUND
        schedule = next((s for s in self.schedules if (s.function, s.event) == (parts[2], parts[3])), None)
        if schedule is None:
            known = ", ".join(f"{s.function}/{s.event}" for s in self.schedules) or "none"
            return json_response(404, {"message": f"no schedule {parts[2]}/{parts[3]} (known: {known})"})
        # EventBridge Scheduler hands the schedule's Input to the function as the event, with its
        # context attributes filled in (this firing's time stands for the scheduled time).
        event = scheduler_input(schedule, self.clock())
        outcome = self.invoke(schedule.function, event, True)
        if outcome.ok:
            return json_response(200, outcome.result)
        error = outcome.error or {}
        return json_response(
            504 if outcome.status == "timeout" else 500,
            {
                "message": "the function failed",
                "errorType": error.get("errorType"),
                "errorMessage": error.get("errorMessage"),
            },
        )


def scheduler_input(schedule: Schedule, now: datetime) -> Any:
    """A schedule's Input as EventBridge Scheduler delivers it: each `<aws.scheduler.*>` context
    attribute replaced by its value for this firing."""
    values = {
        "<aws.scheduler.scheduled-time>": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.attempt-number>": "1",
        "<aws.scheduler.schedule-arn>": (
            f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{schedule.function}-{schedule.event}"
        ),
    }
    text = json.dumps(schedule.input)
    for attribute, value in values.items():
        text = text.replace(attribute, value)
    return json.loads(text)


class _GatewayHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        self.gateway = gateway
        self._connections: set[Any] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _GatewayHandler)

    def track(self, connection: Any, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        # Keep-alive connections would otherwise hold their handler threads after shutdown.
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(2)


class _BadRequest(Exception):
    pass


class _GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else every response waits ~40 ms for a delayed ACK
    server: _GatewayHTTPServer

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

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, PROPFIND...) is routed like the rest: API Gateway answers a method no
        # route declares with its JSON 404, never http.server's HTML 501.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is logged by _handle

    def _handle(self) -> None:
        started = time.perf_counter()
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            response = json_response(400, {"message": f"Bad Request: {exc}"})
        else:
            request = GatewayRequest(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                protocol=self.request_version,
            )
            try:
                response = self.server.gateway.handle(request)
            except Exception:
                log.exception("the local gateway failed on %s %s", self.command, self.path)
                response = json_response(500, {"message": "Internal Server Error"})
        self._write(response)
        elapsed = (time.perf_counter() - started) * 1000
        log.info("%s %s %d %.1f ms", self.command, self.path, response.status, elapsed)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise _BadRequest(f"Content-Length {length!r} is not a number") from None
        if size < 0:
            raise _BadRequest("negative Content-Length")
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            line = self.rfile.readline(65537).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise _BadRequest("malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(65537).strip():  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(3)

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status != 204:  # a 204 must not say Content-Length (RFC 9110 8.6)
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and response.status not in NO_CONTENT:
            self.wfile.write(response.body)


class GatewayServer:
    """The gateway on host:port in a background thread (port 0: any free port)."""

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0) -> None:
        try:
            self._server = _GatewayHTTPServer((host, port), gateway)
        except OSError as exc:
            raise OSError(f"cannot listen on http://{host}:{port}: {exc.strerror}") from exc
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{host if isinstance(host, str) else host.decode()}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="gateway", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self._server.close_connections()
