"""Routes: /snapshots."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api import idempotency
from trueup.api.http import QueryParam, Request, answers
from trueup.api.identity import caller_of
from trueup.services import snapshots

router = APIGatewayHttpRouter()

COVERAGE = QueryParam("coverage", "Only this coverage (its id).")
STATUS = QueryParam("status", "Only rows with these statuses, comma-separated: under_licensed,unmapped,...")
LIMIT = QueryParam("limit", "How many snapshots", integer=True, default=20, minimum=1, maximum=100)
CURSOR = QueryParam("cursor", "next_cursor of the previous page (a snapshot id)")

REQUESTS = {
    "GET /snapshots": Request(query=(LIMIT, CURSOR)),
    "GET /snapshots/latest": Request(query=(COVERAGE, STATUS)),
    "GET /snapshots/{snapshot_id}": Request(query=(COVERAGE, STATUS)),
}


@router.post(
    "/snapshots",
    summary="Take a snapshot of the current data",
    tags=["snapshots"],
    responses={
        **answers(201, "SnapshotOut", "The new snapshot"),
        409: {"description": "A source was never synced"},
    },
    compress=True,
)
def take_snapshot() -> tuple[dict[str, Any], int]:
    event = router.current_event
    caller = caller_of(event.raw_event)

    def take() -> dict[str, str]:
        return {"snapshot_id": snapshots.take_snapshot("api", datetime.now(UTC), caller.actor())["id"]}

    # With an Idempotency-Key, a repeat answers the snapshot the first request took.
    taken = idempotency.once(
        event.headers, caller, "POST /snapshots", event.body, take, router.lambda_context
    )
    return snapshots.get_snapshot(taken["snapshot_id"]), 201


@router.get(
    "/snapshots",
    summary="Snapshots, newest first (summaries, no rows)",
    tags=["snapshots"],
    responses=answers(200, "SnapshotPage", "A page of snapshots"),
)
def list_snapshots() -> dict[str, Any]:
    query = router.current_event.query_string_parameters
    items, next_cursor = snapshots.list_snapshots(LIMIT.read(query), CURSOR.read(query))
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/snapshots/latest",
    summary="The newest snapshot",
    tags=["snapshots"],
    compress=True,
    responses=answers(200, "SnapshotOut", "The newest snapshot"),
)
def latest_snapshot() -> dict[str, Any]:
    return _snapshot("latest")


@router.get(
    "/snapshots/<snapshot_id>",
    summary="One snapshot",
    tags=["snapshots"],
    compress=True,
    responses=answers(200, "SnapshotOut", "The snapshot"),
)
def get_snapshot(snapshot_id: str) -> dict[str, Any]:
    return _snapshot(snapshot_id)


def _snapshot(snapshot_id: str) -> dict[str, Any]:
    query = router.current_event.query_string_parameters
    statuses = snapshots.parse_statuses(STATUS.read(query))
    return snapshots.get_snapshot(snapshot_id, COVERAGE.read(query), statuses)
