"""Builds the Powertools resolver a function serves, with the one domain-error -> HTTP map."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.identity import ADMIN, VIEWER, Forbidden, Unauthorized, caller_of
from trueup.api.routes import ADMIN_ROUTES, PUBLIC_ROUTES
from trueup.config import ConfigurationError
from trueup.errors import Conflict, InvalidInput, NotFound, UpstreamError
from trueup.observability import logger


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"message": message, **extra}),
        headers=headers,
    )


def _unauthorized(message: str) -> dict[str, Any]:
    return {
        "statusCode": 401,
        "headers": {"Content-Type": content_types.APPLICATION_JSON, "WWW-Authenticate": "Bearer"},
        "body": json.dumps({"message": message}),
        "isBase64Encoded": False,
    }


def build_resolver(routers: Sequence[APIGatewayHttpRouter]) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    for router in routers:
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    def invalid_request(exc: RequestValidationError) -> Response[str]:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg') or err.get('type', 'invalid')}"
            for err in exc.errors()
        ]
        return _error(422, "invalid request: " + "; ".join(problems), detail=problems)

    @app.exception_handler(InvalidInput)
    def bad_input(exc: InvalidInput) -> Response[str]:
        return _error(400, str(exc))

    @app.exception_handler(NotFound)
    def not_found(exc: NotFound) -> Response[str]:
        return _error(404, str(exc))

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


def resolve(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Resolve an HTTP event. This is a JSON API: a JSON body counts as JSON whatever its Content-Type
    says (`curl -d '{...}'` sends form encoding unless told otherwise)."""
    headers = event.get("headers") or {}
    body = event.get("body") or ""
    if not event.get("isBase64Encoded") and body.lstrip()[:1] in ("{", "["):
        content_type = next((k for k in headers if k.lower() == "content-type"), None)
        if content_type is None or "json" not in headers[content_type].lower():
            event = {
                **event,
                "headers": {
                    **{k: v for k, v in headers.items() if k != content_type},
                    "content-type": "application/json",
                },
            }
    denied = _access_denied(event)
    if denied is not None:
        return denied
    result: dict[str, Any] = app.resolve(event, context)
    return result


def _access_denied(event: dict[str, Any]) -> dict[str, Any] | None:
    """401/403 before anything else runs (a viewer's malformed PUT is a 403, not a 422), or None."""
    route = event.get("routeKey") or ""
    if route in PUBLIC_ROUTES:
        return None
    try:
        caller = caller_of(event)
    except Unauthorized as exc:
        return _unauthorized(str(exc))
    except ConfigurationError:
        return None  # the handlers' own ConfigurationError answer says which variable
    role = ADMIN if route in ADMIN_ROUTES else VIEWER
    try:
        caller.require(role, ADMIN_ROUTES.get(route, "Reading trueup"))
    except Forbidden as exc:
        body = json.dumps({"message": str(exc), "required_role": role})
        return {
            "statusCode": 403,
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": body,
            "isBase64Encoded": False,
        }
    return None
