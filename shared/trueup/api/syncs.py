"""Routes: /syncs."""

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ConfigDict, Field

from trueup.api import idempotency
from trueup.api.identity import caller_of
from trueup.api.models import Actor, ApiModel
from trueup.errors import InvalidInput
from trueup.services import syncs

SourceStatus = Literal["queued", "running", "succeeded", "failed"]


class SyncRequest(ApiModel):
    model_config = ConfigDict(extra="forbid")  # and, from ApiModel, built on first use
    sources: list[Literal["pax8", "rmm"]] | None = Field(
        default=None, min_length=1, description="Which sources to sync; omitted: both."
    )


class SkippedRecordOut(ApiModel):
    kind: str
    id: str | None
    reason: str


class SourceRunOut(ApiModel):
    status: SourceStatus
    started_at: datetime | None
    finished_at: datetime | None
    records: int | None = Field(description="Records in the new generation (skipped ones not included).")
    skipped: int | None = Field(description="Malformed records skipped and reported, never counted.")
    skipped_records: list[SkippedRecordOut] = Field(description="The first skipped records, with reasons.")
    error: str | None
    generation: str | None
    joined: str | None = Field(
        default=None,
        description="Another run whose sync of this source was already running: this one follows it.",
    )


class SyncRunOut(ApiModel):
    id: str
    requested_at: datetime
    requested_by: Actor | None = Field(default=None, description="Who asked for it (null: before sign-in)")
    sources: dict[Literal["pax8", "rmm"], SourceRunOut]


class SyncRunList(ApiModel):
    items: list[SyncRunOut]


router = APIGatewayHttpRouter()


@router.post(
    "/syncs",
    summary="Sync Pax8 and/or the RMM",
    responses={202: {"description": "The run, queued"}},
    tags=["syncs"],
)
def start_sync(request: Annotated[SyncRequest | None, Body()] = None) -> tuple[SyncRunOut, int]:
    body = router.current_event.body
    # No body, null, {} or {"sources": null}: both sources. Anything else must be the object documented.
    if body and not isinstance(json.loads(body), dict | None):
        raise InvalidInput('the body must be a JSON object such as {"sources": ["pax8"]}, or nothing')
    event = router.current_event
    caller = caller_of(event.raw_event)

    def start() -> dict[str, str]:
        run = syncs.request_sync(request.sources if request else None, datetime.now(UTC), caller.actor())
        return {"run_id": run["id"]}

    # With an Idempotency-Key, a repeat answers the run the first request started, as it is now.
    started = idempotency.once(event.headers, caller, "POST /syncs", body, start, router.lambda_context)
    return SyncRunOut.model_validate(syncs.get_run(started["run_id"], datetime.now(UTC))), 202


@router.get("/syncs", summary="Recent sync runs, newest first", tags=["syncs"])
def list_syncs(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> SyncRunList:
    return SyncRunList(
        items=[SyncRunOut.model_validate(r) for r in syncs.list_runs(limit, datetime.now(UTC))]
    )


class CurrentSource(ApiModel):
    synced_at: datetime
    generation: str
    run_id: str
    records: int
    skipped: int


class CurrentData(ApiModel):
    pax8: CurrentSource | None = Field(description="null: Pax8 was never synced successfully")
    rmm: CurrentSource | None = Field(description="null: the RMM was never synced successfully")


@router.get(
    "/syncs/current", summary="What the next snapshot will use: each source's current data", tags=["syncs"]
)
def current_data() -> CurrentData:
    return CurrentData.model_validate(syncs.current_data())


@router.get("/syncs/<run_id>", summary="One sync run", tags=["syncs"])
def get_sync(run_id: str) -> SyncRunOut:
    run: dict[str, Any] = syncs.get_run(run_id, datetime.now(UTC))
    return SyncRunOut.model_validate(run)
