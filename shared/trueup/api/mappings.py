"""Routes: /mappings."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ConfigDict, Field

from trueup.api.identity import caller_of
from trueup.api.models import ApiModel
from trueup.services import mappings


class MappingRequest(ApiModel):
    model_config = ConfigDict(extra="forbid")  # and, from ApiModel, built on first use
    rmm_organization_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        max_length=50, description="The organizations of this company (at most 50); [] means none."
    )


router = APIGatewayHttpRouter()


@router.get("/mappings", summary="Mappings, suggestions and unmapped clients", tags=["mappings"])
def get_mappings() -> dict[str, Any]:
    return mappings.mapping_view()


@router.put(
    "/mappings/<pax8_company_id>",
    summary="Map a Pax8 company to RMM organizations by hand",
    tags=["mappings"],
)
def put_mapping(pax8_company_id: str, request: Annotated[MappingRequest, Body()]) -> dict[str, Any]:
    by = caller_of(router.current_event.raw_event).actor()
    return mappings.set_mapping(pax8_company_id, request.rmm_organization_ids, by)


@router.delete(
    "/mappings/<pax8_company_id>",
    summary="Return a company to automatic mapping",
    tags=["mappings"],
    responses={204: {"description": "Removed"}},
)
def delete_mapping(pax8_company_id: str) -> Response[None]:
    mappings.clear_mapping(pax8_company_id)
    return Response(status_code=204, body=None)  # no content: not even `null`
