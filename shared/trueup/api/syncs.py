"""Routes: /syncs."""

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api import idempotency
from trueup.api.http import QueryParam, Request, answers, body_of
from trueup.api.identity import caller_of
from trueup.errors import InvalidInput
from trueup.services import sync_runs

router = APIGatewayHttpRouter()

LIMIT = QueryParam("limit", "How many runs", integer=True, default=20, minimum=1, maximum=100)

REQUESTS = {
    "POST /syncs": Request(body="SyncRequest", body_required=False),
    "GET /syncs": Request(query=(LIMIT,)),
    "POST /syncs/{run_id}/{source}/accept": Request(),
    "POST /syncs/{run_id}/{source}/discard": Request(),
}


@router.post(
    "/syncs",
    summary="Sync Pax8 and/or the RMM",
    responses=answers(202, "SyncRunOut", "The run, queued"),
    tags=["syncs"],
    compress=True,
)
def start_sync() -> tuple[dict[str, Any], int]:
    event = router.current_event
    body = event.body
    # No body, null, {} or {"sources": null}: both sources. Anything else must be the object documented.
    if body and not isinstance(json.loads(body), dict | None):
        raise InvalidInput('the body must be a JSON object such as {"sources": ["pax8"]}, or nothing')
    request = body_of(body, "SyncRequest")
    sources = request.sources if request is not None else None
    caller = caller_of(event.raw_event)

    def start() -> dict[str, str]:
        run = sync_runs.request_sync(sources, datetime.now(UTC), caller.actor())
        return {"run_id": run["id"]}

    # With an Idempotency-Key, a repeat answers the run the first request started, as it is now.
    started = idempotency.once(event.headers, caller, "POST /syncs", body, start, router.lambda_context)
    return sync_runs.get_run(started["run_id"], datetime.now(UTC)), 202


@router.get(
    "/syncs",
    summary="Recent sync runs, newest first",
    tags=["syncs"],
    responses=answers(200, "SyncRunList", "The runs"),
    compress=True,
)
def list_syncs() -> dict[str, Any]:
    limit = LIMIT.read(router.current_event.query_string_parameters)
    return {"items": sync_runs.list_runs(limit, datetime.now(UTC))}


@router.get(
    "/syncs/current",
    summary="What the next snapshot will use: each source's current data",
    tags=["syncs"],
    responses=answers(200, "CurrentData", "Each source's current data"),
    compress=True,
)
def current_data() -> dict[str, Any]:
    return sync_runs.current_data()


@router.get(
    "/syncs/<run_id>",
    summary="One sync run",
    tags=["syncs"],
    responses=answers(200, "SyncRunOut", "The run"),
    compress=True,
)
def get_sync(run_id: str) -> dict[str, Any]:
    return sync_runs.get_run(run_id, datetime.now(UTC))


@router.post(
    "/syncs/<run_id>/<source>/accept",
    summary="Make a held sync's data current after all",
    description="A sync whose data was too short to replace the current data (a list shrank by more "
    "than the settings allow) is held. Accept it once you have checked that the vendor's answer was "
    "right: its data becomes current. 409 when it is not held, or a newer sync's data is current.",
    responses=answers(200, "SyncRunOut", "The run, its source now succeeded"),
    tags=["syncs"],
    compress=True,
)
def accept_held(run_id: str, source: str) -> dict[str, Any]:
    caller = caller_of(router.current_event.raw_event)
    return sync_runs.accept_held(run_id, source, caller.actor(), datetime.now(UTC))


@router.post(
    "/syncs/<run_id>/<source>/discard",
    summary="Discard a held sync's data",
    description="The current data stays in use; the held data expires with superseded generations. "
    "409 when it is not held.",
    responses=answers(200, "SyncRunOut", "The run, its source now discarded"),
    tags=["syncs"],
    compress=True,
)
def discard_held(run_id: str, source: str) -> dict[str, Any]:
    caller = caller_of(router.current_event.raw_event)
    return sync_runs.discard_held(run_id, source, caller.actor(), datetime.now(UTC))
