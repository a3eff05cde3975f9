"""Routes: /snapshots/{id}/export and /snapshots/{id}/export.csv."""

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import Field

from trueup.api.models import ApiModel
from trueup.services import exports
from trueup.services.snapshots import parse_statuses

router = APIGatewayHttpRouter()

CoverageQuery = Annotated[str | None, Query(description="The coverage to export (default: the first).")]
StatusQuery = Annotated[str | None, Query(description="Only these statuses, comma-separated.")]


class ExportLink(ApiModel):
    url: str = Field(description="A presigned GET of the CSV; it expires at expires_at.")
    expires_at: datetime
    key: str
    file_name: str
    rows: int


@router.post(
    "/snapshots/<snapshot_id>/export", summary="Export one coverage of a snapshot as CSV", tags=["exports"]
)
def export(snapshot_id: str, coverage: CoverageQuery = None, status: StatusQuery = None) -> ExportLink:
    return ExportLink.model_validate(exports.export_snapshot(snapshot_id, coverage, parse_statuses(status)))


@router.get(
    "/snapshots/<snapshot_id>/export.csv",
    summary="Download the CSV (303 to a fresh presigned link)",
    tags=["exports"],
    responses={303: {"description": "See Other: Location is the download"}},
)
def export_csv(snapshot_id: str, coverage: CoverageQuery = None, status: StatusQuery = None) -> Response[str]:
    link = exports.export_snapshot(snapshot_id, coverage, parse_statuses(status))
    return Response(status_code=303, headers={"Location": link["url"], "Cache-Control": "no-store"}, body="")
