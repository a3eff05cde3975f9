"""Routes: /terms (a client's allowance and tolerance in a coverage) and /rules (exclusion rules), on
the snapshot function: both are checked against the latest snapshot and applied from the next one."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import (
    InvalidRequest,
    Request,
    answers,
    body_of,
    if_match_version,
    version_answers,
    versioned,
)
from trueup.api.identity import caller_of
from trueup.domain.rule_names import RULE_NAME_PATTERN

router = APIGatewayHttpRouter()

REQUESTS = {
    "PUT /terms/{coverage}/{key}": Request(body="TermsRequest"),
    "PUT /rules/{name}": Request(body="RuleRequest", path=(("name", RULE_NAME_PATTERN),)),
    "DELETE /rules/{name}": Request(path=(("name", RULE_NAME_PATTERN),)),
}
VERSION_ANSWERS = version_answers()


@router.get(
    "/terms",
    summary="Every client's terms: devices included (allowance) and its own tolerance",
    tags=["terms"],
    responses=answers(200, "TermsList", "The terms"),
    compress=True,
)
def list_terms() -> dict[str, Any]:
    from trueup.services import client_terms

    return {"items": client_terms.list_terms()}


@router.put(
    "/terms/<coverage>/<key>",
    summary="Set a client's terms in a coverage: devices included, its own tolerance",
    description="`key`: the row's Pax8 company id in the latest snapshot (a mapped client). Devices up to "
    "the allowance count as licensed: variance = max(devices - allowance, 0) - licences. Applied from the "
    "next snapshot on.",
    tags=["terms"],
    responses={
        **answers(200, "TermsOut", "As recorded (ETag: its version)"),
        404: {"description": "No such coverage or row in the latest snapshot"},
        **VERSION_ANSWERS,
    },
)
def put_terms(coverage: str, key: str) -> Response[str]:
    from trueup.services import client_terms

    event = router.current_event
    request = body_of(event.body, "TermsRequest")
    if request is None:
        raise InvalidRequest(['body: required, such as {"allowance": 25, "reason": "25 included"}'])
    by = caller_of(event.raw_event).actor()
    if_match = if_match_version(event.headers.get("if-match"))
    return versioned(client_terms.set_terms(coverage, key, request.model_dump(), by, if_match))


@router.delete(
    "/terms/<coverage>/<key>",
    summary="Remove a client's terms (no allowance, the settings' tolerance)",
    tags=["terms"],
    responses={204: {"description": "Removed"}, 404: {"description": "No terms"}, **VERSION_ANSWERS},
)
def delete_terms(coverage: str, key: str) -> Response[None]:
    from trueup.services import client_terms

    event = router.current_event
    by = caller_of(event.raw_event).actor()
    client_terms.remove_terms(coverage, key, by, if_match_version(event.headers.get("if-match")))
    return Response(status_code=204, body=None)


@router.get(
    "/rules",
    summary="The exclusion rules: devices left out by name, role or tag",
    tags=["rules"],
    responses=answers(200, "RuleList", "The rules, by name"),
    compress=True,
)
def list_rules() -> dict[str, Any]:
    from trueup.services import exclusion_rules

    return {"items": exclusion_rules.list_rules()}


@router.put(
    "/rules/<name>",
    summary="Create or replace an exclusion rule",
    description="A device matches when its name matches a pattern (shell-style, any case), its role is one "
    "of `roles`, or it has one of `tags` (an RMM's tags or groups). Matching devices are counted under "
    "`excluded_by_rule` with the rule's name, in the coverages named ([]: every one), from the next "
    "snapshot on.",
    tags=["rules"],
    responses={**answers(200, "RuleOut", "As recorded (ETag: its version)"), **VERSION_ANSWERS},
)
def put_rule(name: str) -> Response[str]:
    from trueup.services import exclusion_rules

    event = router.current_event
    request = body_of(event.body, "RuleRequest")
    if request is None:
        raise InvalidRequest(['body: required, such as {"name_patterns": ["LAB-*"]}'])
    by = caller_of(event.raw_event).actor()
    if_match = if_match_version(event.headers.get("if-match"))
    return versioned(exclusion_rules.set_rule(name, request.model_dump(), by, if_match))


@router.delete(
    "/rules/<name>",
    summary="Remove an exclusion rule",
    tags=["rules"],
    responses={204: {"description": "Removed"}, 404: {"description": "No such rule"}, **VERSION_ANSWERS},
)
def delete_rule(name: str) -> Response[None]:
    from trueup.services import exclusion_rules

    event = router.current_event
    by = caller_of(event.raw_event).actor()
    exclusion_rules.remove_rule(name, by, if_match_version(event.headers.get("if-match")))
    return Response(status_code=204, body=None)
