"""GET /openapi.json: the description of every route of every function (served by the API function only).

Each function serves its own routers (`trueup.api.routes`); this module imports the other functions'
routers only when the document is first asked for, so that no function pays at its cold start for
routes it does not serve.
"""

from __future__ import annotations

import functools
import json

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

router = APIGatewayHttpRouter()

TITLE = "trueup"
VERSION = "1.0.0"
DESCRIPTION = (
    "Finds billing gaps between RMM device counts and Pax8 licence quantities. Variance is devices minus "
    "licences: positive = under-licensed, negative = over-licensed; unmapped rows have a null side."
)


@functools.cache
def openapi_json() -> str:
    """The whole API's description, built once per warm container."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    from trueup.api.resolver import build_resolver
    from trueup.api.routes import PUBLIC_ROUTES, ROUTER_MODULES, routers_of

    every = build_resolver([r for function in ROUTER_MODULES for r in routers_of(function)])
    document = json.loads(
        every.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description=DESCRIPTION,
            security_schemes={
                "signIn": HTTPBearer(
                    bearerFormat="JWT",
                    description="An access token from the OpenID issuer trueup was deployed with "
                    "(GET /auth/config names it). Roles: admin changes things, viewer reads and exports.",
                )
            },
            security=[{"signIn": []}],
        )
    )
    for route in PUBLIC_ROUTES:  # no token needed: say so, against the document-wide requirement
        method, path = route.split(" ", 1)
        document["paths"][path][method.lower()]["security"] = []
    return json.dumps(document)


@router.get(
    "/openapi.json",
    summary="This API's OpenAPI description",
    tags=["meta"],
    compress=True,
    responses={200: {"description": "The OpenAPI 3 document", "content": {"application/json": {}}}},
)
def get_openapi() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_json())
