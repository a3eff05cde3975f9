"""Builds the Powertools resolver a function serves, with the one domain-error -> HTTP map.

The resolver does not validate (`enable_validation` would load pydantic and Powertools' OpenAPI models
at every cold start): each router reads its parameters and body itself (trueup.api.http) and answers
JSON documents, written as they are."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import InvalidRequest
from trueup.api.identity import ADMIN, VIEWER, Forbidden, Unauthorized, caller_of
from trueup.api.routes import ADMIN_ROUTES, PUBLIC_ROUTES
from trueup.config import ConfigurationError
from trueup.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unprocessable,
    UpstreamError,
)
from trueup.observability import logger


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"message": message, **extra}),
        headers=headers,
    )


def _json(document: Any) -> str:
    # Compact, and strict: a value JSON cannot carry is a bug to hear about, not something to stringify.
    return json.dumps(document, separators=(",", ":"))


def build_resolver(routers: Sequence[APIGatewayHttpRouter]) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(serializer=_json)
    for router in routers:
        app.include_router(router)

    @app.exception_handler(InvalidRequest)
    def invalid_request(exc: InvalidRequest) -> Response[str]:
        return _error(422, str(exc), detail=exc.problems)

    @app.exception_handler(InvalidInput)
    def bad_input(exc: InvalidInput) -> Response[str]:
        return _error(400, str(exc))

    @app.exception_handler(Unprocessable)
    def unprocessable(exc: Unprocessable) -> Response[str]:
        return _error(422, str(exc))

    @app.exception_handler(NotFound)
    def not_found(exc: NotFound) -> Response[str]:
        return _error(404, str(exc))

    @app.exception_handler(PreconditionFailed)
    def precondition_failed(exc: PreconditionFailed) -> Response[str]:
        return _error(412, str(exc))

    @app.exception_handler(Conflict)
    def conflict(exc: Conflict) -> Response[str]:
        return _error(409, str(exc))

    @app.exception_handler(UpstreamError)
    def upstream(exc: UpstreamError) -> Response[str]:
        logger.warning("upstream failure", extra={"source": exc.source, "error": str(exc)})
        return _error(502, str(exc))

    @app.exception_handler(Unauthorized)
    def unauthorized(exc: Unauthorized) -> Response[str]:
        return _error(401, str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    def forbidden(exc: Forbidden) -> Response[str]:
        return _error(403, str(exc))

    @app.exception_handler(ConfigurationError)
    def misconfigured(exc: ConfigurationError) -> Response[str]:
        # The function's environment is not what template.yaml sets: say which variable, not a bare 500.
        logger.error("misconfigured", extra={"error": str(exc)})
        return _error(500, str(exc))

    @app.not_found
    def no_route(_: Exception) -> Response[str]:
        return _error(404, "Not Found")

    return app


# Limits checked before any work (README, "Limits"): the largest real body, a settings document with
# every coverage, is a few kilobytes.
MAX_BODY_BYTES = 256 * 1024
MAX_PARAMETER_CHARS = 200  # path and query parameters: ids and names are far shorter


def resolve(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Resolve an HTTP event: who may call it first, then the request's shape, then the route.

    This is a JSON API: a body must be UTF-8 JSON within MAX_BODY_BYTES, whatever its Content-Type
    says (`curl -d '{...}'` sends form encoding unless told otherwise); anything else is a 400 or 413
    naming the problem, before any work and with nothing written."""
    denied = _access_denied(event)
    if denied is not None:
        return denied
    checked = _checked_request(event)
    if isinstance(checked, tuple):
        return _plain_error(*checked)
    result: dict[str, Any] = app.resolve(checked, context)
    return result


def _plain_error(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """An error answered before the resolver runs, in the same shape as `_error`."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON, **(headers or {})},
        "body": json.dumps({"message": message, **extra}),
        "isBase64Encoded": False,
    }


def _checked_request(event: dict[str, Any]) -> dict[str, Any] | tuple[int, str]:
    """The event with its body as UTF-8 JSON text, or (status, what is wrong with the request)."""
    for kind, values in (
        ("path", event.get("pathParameters")),
        ("query", event.get("queryStringParameters")),
    ):
        for name, value in (values or {}).items():
            if len(str(name)) > MAX_PARAMETER_CHARS or len(str(value)) > MAX_PARAMETER_CHARS:
                too_long = (
                    f"the {kind} parameter {str(name)[:40]!r} is longer than {MAX_PARAMETER_CHARS} characters"
                )
                return 400, too_long
    event = _decoded_path(event)
    body = event.get("body")
    if not body:
        return event
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return 400, "the body is marked base64 but is not"
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        return 413, f"the body is larger than {MAX_BODY_BYTES // 1024} KB"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return 400, f"the body is not UTF-8 text (byte {exc.start})"
    try:
        json.loads(text)
    except RecursionError:
        return 400, "the body's JSON is nested too deeply"
    except json.JSONDecodeError as exc:
        return 400, f"the body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except ValueError:
        return 400, "the body's JSON has a number with too many digits"
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    return {
        **event,
        "body": text,
        "isBase64Encoded": False,
        "headers": {**headers, "content-type": "application/json"},
    }


def _decoded_path(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its path made of the route and the decoded path parameters.

    API Gateway matches the route on the raw path and hands the parameters decoded, but the resolver
    matches its routes on the raw path again, so a parameter sent encoded ("ninjaone%3A30", as a page
    sends an RMM organization id) would reach the handler still encoded."""
    parameters = event.get("pathParameters") or {}
    route = event.get("routeKey") or ""
    if not parameters or " " not in route:
        return event
    path = route.split(" ", 1)[1]
    for name, value in parameters.items():
        if "/" in str(value):  # cannot be one segment again: leave the path as it came
            return event
        path = path.replace("{" + name + "}", str(value))
    return {**event, "rawPath": path}


def _access_denied(event: dict[str, Any]) -> dict[str, Any] | None:
    """401/403 before anything else runs (a viewer's malformed PUT is a 403, not a 422), or None."""
    route = event.get("routeKey") or ""
    if route in PUBLIC_ROUTES:
        return None
    try:
        caller = caller_of(event)
    except Unauthorized as exc:
        return _plain_error(401, str(exc), {"WWW-Authenticate": "Bearer"})
    except ConfigurationError:
        return None  # the handlers' own ConfigurationError answer says which variable
    role = ADMIN if route in ADMIN_ROUTES else VIEWER
    try:
        caller.require(role, ADMIN_ROUTES.get(route, "Reading trueup"))
    except Forbidden as exc:
        return _plain_error(403, str(exc), required_role=role)
    return None
