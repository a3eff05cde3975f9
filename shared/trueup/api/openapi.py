"""GET /openapi.json: the description of every route of every function (served by the API function only).

Each function serves its own routers (`functions/<name>/app.py`); this module alone knows them all,
and imports the other functions' routers only when the document is first asked for, so that no
function pays at its cold start for routes it does not serve. template.yaml declares the same
routes per function; tests/template checks the three agree.
"""

from __future__ import annotations

import functools
import importlib
import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

router = APIGatewayHttpRouter()

# functions/<name> -> the router modules its handler serves (the handler lists the same ones).
ROUTER_MODULES: dict[str, tuple[str, ...]] = {
    "api": (
        "trueup.api.syncs",
        "trueup.api.mappings",
        "trueup.api.settings",
        "trueup.api.openapi",
        "trueup.api.web",
    ),
    "snapshot": ("trueup.api.snapshots",),
    "export": ("trueup.api.exports",),
}

TITLE = "trueup"
VERSION = "1.0.0"
DESCRIPTION = (
    "Finds billing gaps between RMM device counts and Pax8 licence quantities. Variance is devices minus "
    "licences: positive = under-licensed, negative = over-licensed; unmapped rows have a null side."
)


def routers_of(function: str) -> list[APIGatewayHttpRouter]:
    """The routers a function serves, by its folder name under functions/."""
    return [importlib.import_module(name).router for name in ROUTER_MODULES[function]]


@functools.cache
def openapi_json() -> str:
    """The whole API's description, built once per warm container."""
    from trueup.api.resolver import build_resolver

    every = build_resolver([r for function in ROUTER_MODULES for r in routers_of(function)])
    return every.get_openapi_json_schema(title=TITLE, version=VERSION, description=DESCRIPTION)


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(openapi_json())
    return document


@router.get(
    "/openapi.json",
    summary="This API's OpenAPI description",
    tags=["meta"],
    compress=True,
    responses={200: {"description": "The OpenAPI 3 document", "content": {"application/json": {}}}},
)
def get_openapi() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


def routes_by_function() -> dict[str, set[tuple[str, str]]]:
    """functions/<name> -> {(METHOD, "/path/{param}")} as served by its handler."""
    from trueup.api.resolver import build_resolver

    result: dict[str, set[tuple[str, str]]] = {}
    for function in ROUTER_MODULES:
        schema = json.loads(build_resolver(routers_of(function)).get_openapi_json_schema())
        result[function] = {
            (method.upper(), path) for path, operations in schema["paths"].items() for method in operations
        }
    return result
