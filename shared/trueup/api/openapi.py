"""GET /openapi.json: the description of every route of every function (served by the API function only).

Each function serves its own routers (`trueup.api.routes`); this module imports the other functions'
routers only when the document is first asked for, so that no function pays at its cold start for
routes it does not serve.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import Request

router = APIGatewayHttpRouter()

TITLE = "trueup"
VERSION = "1.0.0"
DESCRIPTION = (
    "Finds billing gaps between RMM device counts and Pax8 licence quantities. Variance is devices minus "
    "licences: positive = under-licensed, negative = over-licensed; unmapped rows have a null side."
)


ERROR_SCHEMA = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string", "description": "What is wrong, in words"},
        "detail": {"type": "array", "items": {"type": "string"}, "description": "422: each problem"},
        "required_role": {
            "type": "string",
            "enum": ["admin", "viewer"],
            "description": "403: the role needed",
        },
    },
}
# The errors every operation may answer (trueup.api.resolver), and those of some operations only.
EVERY_OPERATION = {
    "400": "The body or a parameter is malformed (not UTF-8 JSON, too long...): the message says which",
    "413": "The body is larger than 256 KB",
}
SIGNED_IN = {
    "401": "No valid access token",
    "403": "The caller's role may not do this: the message names the role needed",
}
_IDEMPOTENT = {
    "422": "This Idempotency-Key was already used with another body",
}
BY_ROUTE = {
    "POST /snapshots": {
        "409": "A source was never synced (sync first), or a request with this key is in progress",
        **_IDEMPOTENT,
    },
    "POST /syncs": {"409": "A request with this Idempotency-Key is still in progress", **_IDEMPOTENT},
    "PUT /mappings/{pax8_company_id}": {
        "404": "No such Pax8 company in the current sync",
        "409": "An organization is already mapped elsewhere or is not in the current sync, there is no "
        "sync yet, or a concurrent change won",
    },
    "DELETE /mappings/{pax8_company_id}": {
        "404": "The company has no manual mapping",
        "409": "A concurrent change won",
    },
    "PUT /settings": {"409": "A concurrent change won"},
    "GET /snapshots/latest": {"404": "No snapshot yet, or no such coverage in it"},
    "GET /auth/config": {"500": "Sign-in is on but not configured (the message names the variable)"},
}
NO_CONTENT = ("204", "303", "304")
IDEMPOTENT_ROUTES = ("POST /snapshots", "POST /syncs")


@functools.cache
def openapi_json() -> str:
    """The whole API's description, as this deployment answers, built once per warm container."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    from trueup.api.resolver import build_resolver
    from trueup.api.routes import PUBLIC_ROUTES, ROUTER_MODULES, routers_of
    from trueup.config import config

    signed_in = config().sign_in == "oidc"
    every = build_resolver([r for function in ROUTER_MODULES for r in routers_of(function)])
    security: dict[str, Any] = {}
    if signed_in:
        security = {
            "security_schemes": {
                "signIn": HTTPBearer(
                    bearerFormat="JWT",
                    description="An access token from the OpenID issuer trueup was deployed with "
                    "(GET /auth/config names it). Roles: admin changes things, viewer reads and exports.",
                )
            },
            "security": [{"signIn": []}],
        }
    document = json.loads(
        every.get_openapi_json_schema(title=TITLE, version=VERSION, description=DESCRIPTION, **security)
    )
    requests: dict[str, Request] = {}
    for function in ROUTER_MODULES:
        for name in ROUTER_MODULES[function]:
            requests.update(getattr(importlib.import_module(name), "REQUESTS", {}))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    schemas["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            route = f"{method.upper()} {path}"
            request = requests.get(route, Request())
            _describe_request(operation, route, request)
            responses = operation.setdefault("responses", {})
            for status in NO_CONTENT:  # these answer no body at all
                if status in responses:
                    responses[status].pop("content", None)
            answers = {**EVERY_OPERATION, **BY_ROUTE.get(route, {})}
            if signed_in and route not in PUBLIC_ROUTES:
                answers |= SIGNED_IN
            if "{" in path:
                answers.setdefault("404", "Not found: the message names what")
            if request.body or any(p.integer for p in request.query):  # trueup.api.http.InvalidRequest
                answers.setdefault(
                    "422", "The request does not match this description: detail lists each problem"
                )
            for status, description in answers.items():
                responses[status] = {"description": description, "content": error}
            for status, response in responses.items():  # every error a route names answers an Error
                if str(status)[0] in "45":
                    response["content"] = error
            if signed_in and route in PUBLIC_ROUTES:
                operation["security"] = []  # no token needed, against the document-wide requirement
    _add_models(document, requests)
    return json.dumps(document)


def _describe_request(operation: dict[str, Any], route: str, request: Request) -> None:
    """The operation's query parameters, Idempotency-Key and body, as trueup.api.http reads them."""
    from trueup.api.idempotency import KEY_PATTERN
    from trueup.api.resolver import MAX_PARAMETER_CHARS

    parameters = operation.setdefault("parameters", [])
    patterns = dict(request.path)
    for parameter in parameters:  # path parameters: resolver.MAX_PARAMETER_CHARS, and their form
        parameter.get("schema", {})["maxLength"] = MAX_PARAMETER_CHARS
        if parameter.get("name") in patterns:
            parameter["schema"]["pattern"] = patterns[parameter["name"]]
    for query in request.query:
        schema = query.schema()
        if schema["type"] == "string":
            schema["maxLength"] = MAX_PARAMETER_CHARS
        parameters.append(
            {
                "name": query.name,
                "in": "query",
                "required": query.required,
                "description": query.description,
                "schema": schema,
            }
        )
    if route in IDEMPOTENT_ROUTES:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Send the same key again (a retry, a double click) to get the first "
                "answer instead of a second one; scoped to you, bound to the body, kept a day.",
                "schema": {"type": "string", "pattern": KEY_PATTERN},
            }
        )
    if not parameters:
        del operation["parameters"]
    if request.body:
        body: dict[str, Any] = {"$ref": f"#/components/schemas/{request.body}"}
        if not request.body_required:
            body = {"anyOf": [body, {"type": "null"}]}
        operation["requestBody"] = {
            "required": request.body_required,
            "content": {"application/json": {"schema": body}},
        }


def _add_models(document: dict[str, Any], requests: dict[str, Request]) -> None:
    """The wire models the document names (trueup.api.wire), as JSON schemas under components."""
    from pydantic import BaseModel
    from pydantic.json_schema import models_json_schema

    from trueup.api import wire
    from trueup.services.reconciliation_settings import SettingsDocument

    def model(name: str) -> type[BaseModel]:
        # PUT /settings takes any JSON object so that one 400 lists every problem with what is allowed;
        # what it accepts is the settings document.
        found: type[BaseModel] = SettingsDocument if name == "SettingsDocument" else getattr(wire, name)
        return found

    taken = {r.body for r in requests.values() if r.body}
    named = set(re.findall(r'"#/components/schemas/(\w+)"', json.dumps(document["paths"])))
    wanted = [
        (name, "validation" if name in taken else "serialization") for name in sorted(named - {"Error"})
    ]
    refs, definitions = models_json_schema(
        [(model(name), mode) for name, mode in wanted],  # type: ignore[misc]
        ref_template="#/components/schemas/{model}",
    )
    document["components"]["schemas"].update(definitions.get("$defs", {}))
    # A model described in both modes may be named apart ("X-Input"); point each reference at its own.
    renamed = {
        f"#/components/schemas/{name}": refs[(model(name), mode)]["$ref"]  # type: ignore[index]
        for name, mode in wanted
    }

    def point(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("$ref") in renamed:
                node["$ref"] = renamed[node["$ref"]]
            for value in node.values():
                point(value)
        elif isinstance(node, list):
            for value in node:
                point(value)

    point(document["paths"])


@router.get(
    "/openapi.json",
    summary="This API's OpenAPI description",
    tags=["meta"],
    compress=True,
    responses={200: {"description": "The OpenAPI 3 document", "content": {"application/json": {}}}},
)
def get_openapi() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_json())
