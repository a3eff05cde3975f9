"""template.yaml and the code declare the same HTTP routes, function by function."""

from __future__ import annotations

import importlib

from tests.aws_fixtures import RESOURCES
from trueup.api.routes import ROUTER_MODULES, routes_by_function


def template_routes() -> dict[str, set[tuple[str, str]]]:
    routes: dict[str, set[tuple[str, str]]] = {}
    for resource in RESOURCES.values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        function = properties["CodeUri"].strip("/").removeprefix("functions/")
        for event in (properties.get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                routes.setdefault(function, set()).add(
                    (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
                )
    return routes


def test_every_route_in_code_is_in_the_template_and_every_template_route_in_code() -> None:
    in_code = routes_by_function()
    in_template = template_routes()
    assert in_template == in_code
    assert ("GET", "/snapshots/{snapshot_id}") in in_template["snapshot"]
    assert ("POST", "/syncs") in in_template["api"]


def test_every_declared_request_belongs_to_a_route_its_router_serves() -> None:
    # A misspelt key in a router's REQUESTS would drop its parameters from /openapi.json unnoticed.
    for function, modules in ROUTER_MODULES.items():
        served = {f"{method} {path}" for method, path in routes_by_function()[function]}
        for name in modules:
            declared = set(getattr(importlib.import_module(name), "REQUESTS", {}))
            assert declared <= served, (name, declared - served)
