"""Routes: /snapshots."""

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api import idempotency
from trueup.api.http import QueryParam, Request, answers, body_of, parse_cursor
from trueup.api.identity import caller_of
from trueup.errors import InvalidInput
from trueup.services import snapshots
from trueup.store.table import CURSOR_PATTERN

router = APIGatewayHttpRouter()

COVERAGE = QueryParam("coverage", "The coverage whose rows to answer (its id; default: the first).")
STATUS = QueryParam(
    "status",
    "Only rows with these statuses, comma-separated: under_licensed,unmapped,...",
    pattern=snapshots.STATUS_LIST_PATTERN,
)
SORT = QueryParam(
    "sort",
    "Rows by client, devices, licenses, variance, status or monthly (the monthly price gap); -column: "
    "descending. Rows without a value "
    "for the column come last either way; by default, the snapshot's order (under-licensed first).",
    pattern=snapshots.SORT_PATTERN,
)
SEARCH = QueryParam("q", "Only clients whose name contains this (any case, accents ignored).")
CHANGE = QueryParam(
    "change",
    "Only rows with these changes since the snapshot before, comma-separated: new (a gap that was not "
    "there), closed, changed, same, first",
    pattern=snapshots.CHANGE_LIST_PATTERN,
)
ROWS = QueryParam(
    "limit",
    "Rows per page",
    integer=True,
    default=snapshots.DEFAULT_PAGE_ROWS,
    minimum=1,
    maximum=snapshots.MAX_PAGE_ROWS,
)
ROWS_CURSOR = QueryParam("cursor", "next_cursor of the previous page of rows", pattern=r"^\d{0,9}$")
LIMIT = QueryParam("limit", "How many snapshots", integer=True, default=20, minimum=1, maximum=100)
# An empty ?cursor= is the first page, as no cursor is.
CURSOR = QueryParam(
    "cursor",
    "next_cursor of the previous page (a snapshot id)",
    pattern=f"^(|{CURSOR_PATTERN[1:-1]})$",
)
ROW_QUERY = (COVERAGE, STATUS, SORT, SEARCH, CHANGE, ROWS, ROWS_CURSOR)
HISTORY_COVERAGE = QueryParam("coverage", "The coverage (its id; default: the snapshot's first)")
HISTORY_SNAPSHOT = QueryParam("snapshot", "Up to this snapshot (its id; default: the latest)")

REQUESTS = {
    "POST /snapshots": Request(body="SnapshotRequest", body_required=False),
    "GET /snapshots": Request(query=(LIMIT, CURSOR)),
    "GET /snapshots/latest": Request(query=ROW_QUERY),
    "GET /snapshots/{snapshot_id}": Request(query=ROW_QUERY),
    "GET /clients/{key}/history": Request(query=(HISTORY_COVERAGE, HISTORY_SNAPSHOT)),
}


@router.post(
    "/snapshots",
    summary="Take a snapshot of the current data (or sync first: a cycle)",
    description='No body: the snapshot of the current data, now (201). {"sync": true}: a cycle that '
    "syncs every source first, then takes the snapshot of the fresh data, exports it and tells the "
    "notification topic (202 with the cycle; follow it with GET /cycles/{cycle_id}).",
    tags=["snapshots"],
    responses={
        **answers(201, "SnapshotSummary", "The new snapshot, without its rows (GET it for them)"),
        **answers(202, "CycleOut", '{"sync": true}: the cycle, its syncs asked for'),
        409: {"description": "A source was never synced"},
    },
    compress=True,
)
def take_snapshot() -> tuple[dict[str, Any], int]:
    event = router.current_event
    body = event.body
    if body and not isinstance(json.loads(body), dict | None):
        raise InvalidInput('the body must be a JSON object such as {"sync": true}, or nothing')
    request = body_of(body, "SnapshotRequest")
    caller = caller_of(event.raw_event)
    if request is not None and request.sync:
        from trueup.services import cycles

        def start() -> dict[str, str]:
            return {"cycle_id": cycles.start_cycle_now(datetime.now(UTC), caller.actor())["id"]}

        started = idempotency.once(
            event.headers, caller, "POST /snapshots", body, start, router.lambda_context
        )
        return cycles.get_cycle(started["cycle_id"]), 202

    def take() -> dict[str, str]:
        return {"snapshot_id": snapshots.take_snapshot("api", datetime.now(UTC), caller.actor())["id"]}

    # With an Idempotency-Key, a repeat answers the snapshot the first request took.
    taken = idempotency.once(event.headers, caller, "POST /snapshots", body, take, router.lambda_context)
    return snapshots.snapshot_summary(taken["snapshot_id"]), 201


@router.get(
    "/snapshots",
    summary="Snapshots, newest first (summaries, no rows)",
    tags=["snapshots"],
    responses=answers(200, "SnapshotPage", "A page of snapshots"),
    compress=True,
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
    responses=answers(200, "SnapshotRowsPage", "The newest snapshot, with a page of one coverage's rows"),
)
def latest_snapshot() -> dict[str, Any]:
    return _snapshot("latest")


@router.get(
    "/snapshots/<snapshot_id>",
    summary="One snapshot",
    tags=["snapshots"],
    compress=True,
    responses=answers(200, "SnapshotRowsPage", "The snapshot, with a page of one coverage's rows"),
)
def get_snapshot(snapshot_id: str) -> dict[str, Any]:
    return _snapshot(snapshot_id)


def _snapshot(snapshot_id: str) -> dict[str, Any]:
    query = router.current_event.query_string_parameters
    return snapshots.snapshot_page(
        snapshot_id,
        COVERAGE.read(query),
        snapshots.parse_statuses(STATUS.read(query)),
        sort=snapshots.parse_sort(SORT.read(query)),
        search=SEARCH.read(query),
        changes=snapshots.parse_changes(CHANGE.read(query)),
        start=parse_cursor(ROWS_CURSOR.read(query)),
        limit=ROWS.read(query),
    )


@router.get(
    "/clients/<key>/history",
    summary="One client's devices, licences and status over the last twelve snapshots",
    description="`key`: the row's Pax8 company id, or the RMM organization id of an unmapped "
    "organization. Points oldest first, up to the latest snapshot (or ?snapshot=).",
    tags=["snapshots"],
    responses=answers(200, "ClientHistory", "The client's points, oldest first"),
    compress=True,
)
def client_history(key: str) -> dict[str, Any]:
    query = router.current_event.query_string_parameters
    return snapshots.client_history(
        key, HISTORY_COVERAGE.read(query) or None, HISTORY_SNAPSHOT.read(query) or "latest"
    )
