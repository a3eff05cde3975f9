"""Routes: /mappings.

The mapping service (the company and organization models, the name matcher) loads with the first
mapping request, so that the API function's other routes start without it."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import (
    InvalidRequest,
    QueryParam,
    Request,
    answers,
    body_of,
    if_match_version,
    parse_cursor,
    versioned,
)
from trueup.api.identity import caller_of

router = APIGatewayHttpRouter()

LIST = QueryParam(
    "list",
    "Only this list (then ?cursor= pages it): mappings, manual, suggestions, unmapped_pax8, unmapped_rmm, "
    "companies.",
    pattern=r"^(|mappings|manual|suggestions|unmapped_pax8|unmapped_rmm|companies)$",
)
SEARCH = QueryParam("q", "Only entries whose client or organization name contains this (any case).")
LIMIT = QueryParam("limit", "Entries per list", integer=True, default=100, minimum=1, maximum=1000)
CURSOR = QueryParam("cursor", "The list's next cursor from the previous page", pattern=r"^\d{0,9}$")
COMPANY = QueryParam("company", "Only the entries of this Pax8 company (its id).")
ORGANIZATION = QueryParam("organization", "Only the entries of this RMM organization (its id).")

REQUESTS = {
    "GET /mappings": Request(query=(LIST, SEARCH, LIMIT, CURSOR, COMPANY, ORGANIZATION)),
    "PUT /mappings/{pax8_company_id}": Request(body="MappingRequest"),
}


@router.get(
    "/mappings",
    summary="Mappings, suggestions and unmapped clients",
    tags=["mappings"],
    responses=answers(200, "MappingView", "The mappings"),
    compress=True,
)
def get_mappings() -> dict[str, Any]:
    from trueup.services import mappings

    query = router.current_event.query_string_parameters
    return mappings.mapping_view(
        mappings.parse_list(LIST.read(query)),
        SEARCH.read(query),
        start=parse_cursor(CURSOR.read(query)),
        limit=LIMIT.read(query),
        company=COMPANY.read(query),
        organization=ORGANIZATION.read(query),
    )


@router.put(
    "/mappings/<pax8_company_id>",
    summary="Map a Pax8 company to RMM organizations by hand",
    tags=["mappings"],
    responses=answers(200, "ManualMapping", "The company's mapping, as stored"),
    compress=True,
)
def put_mapping(pax8_company_id: str) -> Response[str]:
    event = router.current_event
    request = body_of(event.body, "MappingRequest")
    if request is None:
        raise InvalidRequest(['body: required, a JSON object such as {"rmm_organization_ids": ["..."]}'])
    by = caller_of(event.raw_event).actor()
    from trueup.services import mappings

    if_match = if_match_version(event.headers.get("if-match"))
    mapped = mappings.set_mapping(pax8_company_id, request.rmm_organization_ids, by, if_match)
    return versioned(mapped)


@router.delete(
    "/mappings/<pax8_company_id>",
    summary="Return a company to automatic mapping",
    tags=["mappings"],
    responses={204: {"description": "Removed"}},
)
def delete_mapping(pax8_company_id: str) -> Response[None]:
    from trueup.services import mappings

    event = router.current_event
    by = caller_of(event.raw_event).actor()
    mappings.clear_mapping(pax8_company_id, by, if_match_version(event.headers.get("if-match")))
    return Response(status_code=204, body=None)  # no content: not even `null`
