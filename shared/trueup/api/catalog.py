"""Which routers each function serves, and the API description of all of them.

template.yaml declares the same routes per function; tests/template checks the two agree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api import exports, mappings, settings, snapshots, syncs, web
from trueup.api.resolver import build_resolver

openapi_router = APIGatewayHttpRouter()

# functions/<name>/ -> the routers its handler serves
FUNCTION_ROUTERS: dict[str, Sequence[APIGatewayHttpRouter]] = {
    "api": (syncs.router, mappings.router, settings.router, openapi_router, web.router),
    "snapshot": (snapshots.router,),
    "export": (exports.router,),
}

TITLE = "trueup"
DESCRIPTION = (
    "Finds billing gaps between RMM device counts and Pax8 licence quantities. Variance is devices minus "
    "licences: positive = under-licensed, negative = over-licensed; unmapped rows have a null side."
)


def _everything() -> APIGatewayHttpResolver:
    return build_resolver([r for routers in FUNCTION_ROUTERS.values() for r in routers])


def openapi_document() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        _everything().get_openapi_json_schema(title=TITLE, version="1.0.0", description=DESCRIPTION)
    )
    return schema


@openapi_router.get("/openapi.json", summary="This API's OpenAPI description", tags=["meta"])
def get_openapi() -> dict[str, Any]:
    return openapi_document()


def routes_by_function() -> dict[str, set[tuple[str, str]]]:
    """functions/<name> -> {(METHOD, "/path/{param}")} as served by its handler."""
    result: dict[str, set[tuple[str, str]]] = {}
    for function, routers in FUNCTION_ROUTERS.items():
        schema = json.loads(build_resolver(routers).get_openapi_json_schema())
        result[function] = {
            (method.upper(), path) for path, operations in schema["paths"].items() for method in operations
        }
    return result
