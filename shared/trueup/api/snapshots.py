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
SET_ASIDE = QueryParam(
    "set_aside",
    "true: only the rows a decision sets aside (dismissed or muted); false: only the others, the rows "
    "the cards count",
    pattern=r"^(|true|false)$",
)
DECISION = QueryParam(
    "decision",
    "Only rows with these decisions, comma-separated: will_bill, will_adjust, dismissed, muted (in "
    "effect), undecided (none in effect), lapsed",
    pattern=snapshots.DECISION_LIST_PATTERN,
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
ROW_QUERY = (COVERAGE, STATUS, SORT, SEARCH, CHANGE, SET_ASIDE, DECISION, ROWS, ROWS_CURSOR)
EVIDENCE_COVERAGE = QueryParam("coverage", "The coverage (its id; default: the snapshot's first)")
EVIDENCE_CLIENT = QueryParam(
    "client",
    "The row: its Pax8 company id, or the RMM organization id of an unmapped organization",
    required=True,
)
EVIDENCE_SORT = QueryParam(
    "sort",
    "Devices by name, organization, device_class, last_seen, state or reason; -field: descending. "
    "By default the devices left out first, by reason, then by name.",
    pattern=r"^-?(name|organization|device_class|last_seen|state|reason)?$",
)
EVIDENCE_LIMIT = QueryParam("limit", "Devices per page", integer=True, default=500, minimum=1, maximum=5000)
EVIDENCE_CURSOR = QueryParam("cursor", "next_cursor of the previous page of devices", pattern=r"^\d{0,9}$")
HISTORY_COVERAGE = QueryParam("coverage", "The coverage (its id; default: the snapshot's first)")
HISTORY_SNAPSHOT = QueryParam("snapshot", "Up to this snapshot (its id; default: the latest)")

REQUESTS = {
    "POST /snapshots": Request(body="SnapshotRequest", body_required=False),
    "GET /snapshots": Request(query=(LIMIT, CURSOR)),
    "GET /snapshots/latest": Request(query=ROW_QUERY),
    "GET /snapshots/{snapshot_id}": Request(query=ROW_QUERY),
    "GET /clients/{key}/history": Request(query=(HISTORY_COVERAGE, HISTORY_SNAPSHOT)),
    "GET /snapshots/{snapshot_id}/evidence": Request(
        query=(EVIDENCE_COVERAGE, EVIDENCE_CLIENT, EVIDENCE_SORT, EVIDENCE_LIMIT, EVIDENCE_CURSOR)
    ),
}


@router.post(
    "/snapshots",
    summary="Take a snapshot of the current data (or sync first: a cycle)",
    description="No body: the snapshot of the current data, now (201); when the RMM data is too large "
    "for the snapshot to be answered within the request (more devices than the SnapshotWaitDevices "
    "parameter, 250,000 by default), a cycle that takes it without syncing (202 with the "
    'cycle). {"sync": true}: a cycle that '
    "syncs every source first, then takes the snapshot of the fresh data, exports it and tells the "
    "notification topic (202 with the cycle; follow it with GET /cycles/{cycle_id}).",
    tags=["snapshots"],
    responses={
        **answers(201, "SnapshotSummary", "The new snapshot, without its rows (GET it for them)"),
        **answers(202, "CycleOut", '{"sync": true}, or large data: the cycle, its first step asked for'),
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
        if not snapshots.fits_in_a_request():
            from trueup.services import cycles

            return {"cycle_id": cycles.start_snapshot_cycle(datetime.now(UTC), caller.actor())["id"]}
        return {"snapshot_id": snapshots.take_snapshot("api", datetime.now(UTC), caller.actor())["id"]}

    # With an Idempotency-Key, a repeat answers the snapshot (or the cycle) the first request started.
    taken = idempotency.once(event.headers, caller, "POST /snapshots", body, take, router.lambda_context)
    if "cycle_id" in taken:
        from trueup.services import cycles

        return cycles.get_cycle(taken["cycle_id"]), 202
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
        set_aside=_flag(SET_ASIDE.read(query)),
        decisions=snapshots.parse_decisions(DECISION.read(query)),
        start=parse_cursor(ROWS_CURSOR.read(query)),
        limit=ROWS.read(query),
    )


@router.get(
    "/snapshots/<snapshot_id>/evidence",
    summary="Why one row's counts are what they are: its devices and subscriptions, frozen with the snapshot",
    description="Every device of the row's RMM organizations, counted (reason null) or left out with the "
    "reason, a page at a time; and every subscription of the coverage's products its Pax8 company holds, "
    "counted or not with the reason. Later syncs never change it.",
    tags=["snapshots"],
    responses={
        **answers(200, "RowEvidence", "The row's subscriptions and a page of its devices"),
        404: {
            "description": "No such snapshot, coverage or row, or a snapshot taken before evidence was kept"
        },
    },
    compress=True,
)
def row_evidence(snapshot_id: str) -> dict[str, Any]:
    from trueup.services.evidence import parse_device_sort

    query = router.current_event.query_string_parameters
    return snapshots.row_evidence(
        snapshot_id,
        EVIDENCE_COVERAGE.read(query) or None,
        EVIDENCE_CLIENT.read(query),
        parse_device_sort(EVIDENCE_SORT.read(query)),
        start=parse_cursor(EVIDENCE_CURSOR.read(query)),
        limit=EVIDENCE_LIMIT.read(query),
    )


def _flag(value: str | None) -> bool | None:
    if value is None or not value.strip():
        return None
    if value.strip() not in ("true", "false"):
        raise InvalidInput(f"set_aside must be true or false, got {value[:40]!r}")
    return value.strip() == "true"


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
