"""Which routers each HTTP function serves: the one list `functions/<name>/app.py` and /openapi.json use.

Module names, imported on demand, so that a function loads only its own routers; template.yaml
declares the same routes per function and tests/unit checks the two agree.
"""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

# functions/<name> -> the router modules its handler serves
ROUTER_MODULES: dict[str, tuple[str, ...]] = {
    "api": (
        "trueup.api.syncs",
        "trueup.api.cycles",
        "trueup.api.mappings",
        "trueup.api.not_billable",
        "trueup.api.settings",
        "trueup.api.audit",
        "trueup.api.openapi",
        "trueup.api.session",
        "trueup.api.web",
    ),
    "snapshot": ("trueup.api.snapshots", "trueup.api.decisions", "trueup.api.terms_and_rules"),
    "export": ("trueup.api.exports",),
}

# Who may call what, by API Gateway route key. Every route not public needs a signed-in caller with
# the viewer or admin role; these need admin. template.yaml marks the same public routes
# `Auth: {Authorizer: NONE}`, and tests/unit checks the two agree.
PUBLIC_ROUTES: frozenset[str] = frozenset({"GET /", "GET /static/{asset}", "GET /auth/config"})
ADMIN_ROUTES: dict[str, str] = {  # route -> what it does, as a 403 says it
    "POST /syncs": "Starting a sync",
    "POST /syncs/{run_id}/{source}/accept": "Accepting a held sync",
    "POST /syncs/{run_id}/{source}/discard": "Discarding a held sync",
    "PUT /mappings/{pax8_company_id}": "Changing a mapping",
    "DELETE /mappings/{pax8_company_id}": "Changing a mapping",
    "PUT /settings": "Changing the settings",
    "POST /snapshots": "Taking a snapshot",
    "POST /cycles": "Starting a cycle",
    "PUT /decisions/{coverage}/{key}": "Deciding on a gap",
    "DELETE /decisions/{coverage}/{key}": "Removing a decision",
    "PUT /ignored-organizations/{rmm_organization_id}": "Ignoring an organization",
    "DELETE /ignored-organizations/{rmm_organization_id}": "Restoring an ignored organization",
    "PUT /rejected-suggestions/{pax8_company_id}/{rmm_organization_id}": "Rejecting a suggestion",
    "DELETE /rejected-suggestions/{pax8_company_id}/{rmm_organization_id}": "Changing a rejected suggestion",
    "PUT /terms/{coverage}/{key}": "Changing a client's terms",
    "DELETE /terms/{coverage}/{key}": "Changing a client's terms",
    "PUT /rules/{name}": "Changing the exclusion rules",
    "DELETE /rules/{name}": "Changing the exclusion rules",
}


def routers_of(function: str) -> list[APIGatewayHttpRouter]:
    """The routers a function serves, by its folder name under functions/."""
    return [importlib.import_module(name).router for name in ROUTER_MODULES[function]]


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
