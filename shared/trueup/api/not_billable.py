"""Routes: /ignored-organizations and /rejected-suggestions, what is not billable (decided by an
admin, each change in the audit log)."""

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

router = APIGatewayHttpRouter()

REQUESTS = {
    "PUT /ignored-organizations/{rmm_organization_id}": Request(body="IgnoreRequest"),
    "PUT /rejected-suggestions/{pax8_company_id}/{rmm_organization_id}": Request(body="RejectRequest"),
}
VERSION_ANSWERS = version_answers("Another write won a race (or the organization is mapped by hand)")


@router.get(
    "/ignored-organizations",
    summary="The RMM organizations that are not billable, with why",
    tags=["not billable"],
    responses=answers(200, "IgnoredList", "The ignored organizations, by name"),
    compress=True,
)
def list_ignored() -> dict[str, Any]:
    from trueup.services import not_billable

    return {"items": not_billable.list_ignored()}


@router.put(
    "/ignored-organizations/<rmm_organization_id>",
    summary="Ignore an RMM organization: it leaves every coverage and the unmapped lists",
    description="The MSP's own organization, a lab, a test tenant: from the next snapshot on, its devices "
    "are no one's. It must be in the current sync and in no manual mapping.",
    tags=["not billable"],
    responses={
        **answers(200, "IgnoredOrganization", "As recorded (ETag: its version)"),
        404: {"description": "No such organization in the current sync"},
        **VERSION_ANSWERS,
    },
)
def ignore(rmm_organization_id: str) -> Response[str]:
    from trueup.services import not_billable

    event = router.current_event
    request = body_of(event.body, "IgnoreRequest")
    if request is None:
        raise InvalidRequest(['body: required, such as {"reason": "our own IT"}'])
    by = caller_of(event.raw_event).actor()
    if_match = if_match_version(event.headers.get("if-match"))
    return versioned(not_billable.ignore_organization(rmm_organization_id, request.reason, by, if_match))


@router.delete(
    "/ignored-organizations/<rmm_organization_id>",
    summary="Restore an ignored organization: it counts again from the next snapshot on",
    tags=["not billable"],
    responses={204: {"description": "Restored"}, 404: {"description": "Not ignored"}, **VERSION_ANSWERS},
)
def restore(rmm_organization_id: str) -> Response[None]:
    from trueup.services import not_billable

    event = router.current_event
    by = caller_of(event.raw_event).actor()
    not_billable.restore_organization(
        rmm_organization_id, by, if_match_version(event.headers.get("if-match"))
    )
    return Response(status_code=204, body=None)


@router.get(
    "/rejected-suggestions",
    summary="The mapping suggestions a person rejected (never suggested again)",
    tags=["not billable"],
    responses=answers(200, "RejectedList", "The rejected suggestions"),
    compress=True,
)
def list_rejected() -> dict[str, Any]:
    from trueup.services import not_billable

    return {"items": not_billable.list_rejected()}


@router.put(
    "/rejected-suggestions/<pax8_company_id>/<rmm_organization_id>",
    summary="Reject a mapping suggestion: this organization is never suggested for this company again",
    tags=["not billable"],
    responses={
        **answers(200, "RejectedSuggestion", "As recorded (ETag: its version)"),
        404: {"description": "No such company or organization in the current sync"},
        **VERSION_ANSWERS,
    },
)
def reject(pax8_company_id: str, rmm_organization_id: str) -> Response[str]:
    from trueup.services import not_billable

    event = router.current_event
    request = body_of(event.body, "RejectRequest")
    by = caller_of(event.raw_event).actor()
    if_match = if_match_version(event.headers.get("if-match"))
    reason = request.reason if request is not None else None
    return versioned(
        not_billable.reject_suggestion(pax8_company_id, rmm_organization_id, reason, by, if_match)
    )


@router.delete(
    "/rejected-suggestions/<pax8_company_id>/<rmm_organization_id>",
    summary="Let a rejected suggestion be suggested again",
    tags=["not billable"],
    responses={
        204: {"description": "No longer rejected"},
        404: {"description": "Not rejected"},
        **VERSION_ANSWERS,
    },
)
def unreject(pax8_company_id: str, rmm_organization_id: str) -> Response[None]:
    from trueup.services import not_billable

    event = router.current_event
    by = caller_of(event.raw_event).actor()
    if_match = if_match_version(event.headers.get("if-match"))
    not_billable.unreject_suggestion(pax8_company_id, rmm_organization_id, by, if_match)
    return Response(status_code=204, body=None)
