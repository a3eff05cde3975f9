"""Routes: /cycles (the monthly cycle: sync, snapshot, exports, notification)."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api import idempotency
from trueup.api.http import QueryParam, Request, answers
from trueup.api.identity import caller_of
from trueup.services import cycles

router = APIGatewayHttpRouter()

LIMIT = QueryParam("limit", "How many cycles", integer=True, default=20, minimum=1, maximum=100)

REQUESTS = {
    "POST /cycles": Request(),
    "GET /cycles": Request(query=(LIMIT,)),
}


@router.post(
    "/cycles",
    summary="Start a cycle now: sync every source, then snapshot, export and notify",
    description="What the monthly schedule does, now. The answer is the cycle as it starts; follow it "
    "with GET /cycles/{cycle_id}.",
    responses=answers(202, "CycleOut", "The cycle, its syncs asked for"),
    tags=["cycles"],
    compress=True,
)
def start_cycle() -> tuple[dict[str, Any], int]:
    event = router.current_event
    caller = caller_of(event.raw_event)

    def start() -> dict[str, str]:
        return {"cycle_id": cycles.start_cycle_now(datetime.now(UTC), caller.actor())["id"]}

    # With an Idempotency-Key, a repeat answers the cycle the first request started, as it is now.
    started = idempotency.once(
        event.headers, caller, "POST /cycles", event.body, start, router.lambda_context
    )
    return cycles.get_cycle(started["cycle_id"]), 202


@router.get(
    "/cycles",
    summary="Recent cycles, newest first",
    tags=["cycles"],
    responses=answers(200, "CycleList", "The cycles"),
    compress=True,
)
def list_cycles() -> dict[str, Any]:
    return {"items": cycles.list_cycles(LIMIT.read(router.current_event.query_string_parameters))}


@router.get(
    "/cycles/<cycle_id>",
    summary="One cycle: each step's state, times and reasons",
    tags=["cycles"],
    responses=answers(200, "CycleOut", "The cycle"),
    compress=True,
)
def get_cycle(cycle_id: str) -> dict[str, Any]:
    return cycles.get_cycle(cycle_id)
