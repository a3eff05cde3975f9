"""Routes: a snapshot's CSV exports (its report, its evidence, the audit log's entries since the
snapshot before), each as a link and as a download (303 to a fresh presigned link)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import QueryParam, Request, answers
from trueup.services import exports
from trueup.services.snapshots import STATUS_LIST_PATTERN, parse_statuses

router = APIGatewayHttpRouter()

COVERAGE = QueryParam("coverage", "The coverage to export (default: the first).")
STATUS = QueryParam("status", "Only these statuses, comma-separated.", pattern=STATUS_LIST_PATTERN)

CLIENT = QueryParam(
    "client",
    "One row only: its Pax8 company id, or the RMM organization id of an unmapped organization "
    "(default: every row of the coverage)",
)

REQUESTS = {
    "POST /snapshots/{snapshot_id}/export": Request(query=(COVERAGE, STATUS)),
    "GET /snapshots/{snapshot_id}/export.csv": Request(query=(COVERAGE, STATUS)),
    "POST /snapshots/{snapshot_id}/evidence/export": Request(query=(COVERAGE, CLIENT)),
    "GET /snapshots/{snapshot_id}/evidence.csv": Request(query=(COVERAGE, CLIENT)),
    "POST /snapshots/{snapshot_id}/audit/export": Request(),
    "GET /snapshots/{snapshot_id}/audit.csv": Request(),
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


@router.post(
    "/snapshots/<snapshot_id>/evidence/export",
    summary="Export the evidence of one row, or of a whole coverage, as CSV",
    description="One line per device (counted, or left out with the reason) and per subscription "
    "(counted or not, with the reason), as the snapshot froze them.",
    tags=["exports"],
    responses={
        **answers(200, "ExportLink", "A link to the CSV (rows: its lines)"),
        404: {"description": "No such snapshot, coverage or row, or a snapshot without evidence"},
    },
    compress=True,
)
def export_evidence(snapshot_id: str) -> dict[str, Any]:
    return _evidence(snapshot_id)


@router.get(
    "/snapshots/<snapshot_id>/evidence.csv",
    summary="Download the evidence CSV (303 to a fresh presigned link)",
    tags=["exports"],
    responses={303: {"description": "See Other: Location is the download"}},
)
def evidence_csv(snapshot_id: str) -> Response[str]:
    link = _evidence(snapshot_id)
    return Response(status_code=303, headers={"Location": link["url"], "Cache-Control": "no-store"}, body="")


@router.post(
    "/snapshots/<snapshot_id>/audit/export",
    summary="Export the audit log's entries since the snapshot before this one as CSV",
    description="Who changed what (mappings, settings, decisions, ignored organizations, rejected "
    "suggestions, terms, rules, held syncs), when, before and after, and why: every entry after the "
    "snapshot before this one up to this one (for the first snapshot, every entry up to it).",
    tags=["exports"],
    responses={
        **answers(200, "ExportLink", "A link to the CSV (rows: its entries)"),
        404: {"description": "No such snapshot"},
    },
    compress=True,
)
def export_audit(snapshot_id: str) -> dict[str, Any]:
    return exports.export_audit(snapshot_id)


@router.get(
    "/snapshots/<snapshot_id>/audit.csv",
    summary="Download the audit CSV (303 to a fresh presigned link)",
    tags=["exports"],
    responses={303: {"description": "See Other: Location is the download"}},
)
def audit_csv(snapshot_id: str) -> Response[str]:
    link = exports.export_audit(snapshot_id)
    return Response(status_code=303, headers={"Location": link["url"], "Cache-Control": "no-store"}, body="")


def _evidence(snapshot_id: str) -> dict[str, Any]:
    query = router.current_event.query_string_parameters
    return exports.export_evidence(snapshot_id, COVERAGE.read(query) or None, CLIENT.read(query) or None)


def _export(snapshot_id: str) -> dict[str, Any]:
    query = router.current_event.query_string_parameters
    return exports.export_snapshot(snapshot_id, COVERAGE.read(query), parse_statuses(STATUS.read(query)))
