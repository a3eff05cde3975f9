"""Routes: /snapshots/{id}/export and /snapshots/{id}/export.csv."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import QueryParam, Request, answers
from trueup.services import exports
from trueup.services.snapshots import STATUS_LIST_PATTERN, parse_statuses

router = APIGatewayHttpRouter()

COVERAGE = QueryParam("coverage", "The coverage to export (default: the first).")
STATUS = QueryParam("status", "Only these statuses, comma-separated.", pattern=STATUS_LIST_PATTERN)

REQUESTS = {
    "POST /snapshots/{snapshot_id}/export": Request(query=(COVERAGE, STATUS)),
    "GET /snapshots/{snapshot_id}/export.csv": Request(query=(COVERAGE, STATUS)),
}


@router.post(
    "/snapshots/<snapshot_id>/export",
    summary="Export one coverage of a snapshot as CSV",
    tags=["exports"],
    responses=answers(200, "ExportLink", "A link to the CSV"),
    compress=True,
)
def export(snapshot_id: str) -> dict[str, Any]:
    return _export(snapshot_id)


@router.get(
    "/snapshots/<snapshot_id>/export.csv",
    summary="Download the CSV (303 to a fresh presigned link)",
    tags=["exports"],
    responses={303: {"description": "See Other: Location is the download"}},
)
def export_csv(snapshot_id: str) -> Response[str]:
    link = _export(snapshot_id)
    return Response(status_code=303, headers={"Location": link["url"], "Cache-Control": "no-store"}, body="")


def _export(snapshot_id: str) -> dict[str, Any]:
    query = router.current_event.query_string_parameters
    return exports.export_snapshot(snapshot_id, COVERAGE.read(query), parse_statuses(STATUS.read(query)))
