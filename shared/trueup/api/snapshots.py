"""Routes: /snapshots."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import Field

from trueup.api import idempotency
from trueup.api.identity import caller_of
from trueup.api.models import Actor, ApiModel
from trueup.domain.models import CoverageResult, Settings, Summary
from trueup.services import snapshots


class DataAsOf(ApiModel):
    pax8: datetime
    rmm: datetime


class CoverageSummary(ApiModel):
    id: str
    name: str
    summary: Summary


class SnapshotSummary(ApiModel):
    id: str
    taken_at: datetime
    trigger: Literal["api", "schedule"]
    taken_by: Actor | None = Field(default=None, description="Who took it; null for the monthly schedule.")
    data_as_of: DataAsOf
    settings: Settings
    coverages: list[CoverageSummary]
    warnings: list[str] = Field(default_factory=list)


class SnapshotOut(SnapshotSummary):
    coverages: list[CoverageResult]  # type: ignore[assignment]


class SnapshotPage(ApiModel):
    items: list[SnapshotSummary]
    next_cursor: str | None


router = APIGatewayHttpRouter()

CoverageQuery = Annotated[str | None, Query(description="Only this coverage (its id).")]
StatusQuery = Annotated[
    str | None,
    Query(description="Only rows with these statuses, comma-separated: under_licensed,unmapped,..."),
]


@router.post(
    "/snapshots",
    summary="Take a snapshot of the current data",
    tags=["snapshots"],
    responses={201: {"description": "The new snapshot"}, 409: {"description": "A source was never synced"}},
    compress=True,
)
def take_snapshot() -> tuple[SnapshotOut, int]:
    event = router.current_event
    caller = caller_of(event.raw_event)

    def take() -> dict[str, str]:
        return {"snapshot_id": snapshots.take_snapshot("api", datetime.now(UTC), caller.actor())["id"]}

    # With an Idempotency-Key, a repeat answers the snapshot the first request took.
    taken = idempotency.once(
        event.headers, caller, "POST /snapshots", event.body, take, router.lambda_context
    )
    return SnapshotOut.model_validate(snapshots.get_snapshot(taken["snapshot_id"])), 201


@router.get("/snapshots", summary="Snapshots, newest first (summaries, no rows)", tags=["snapshots"])
def list_snapshots(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None,
        Query(description="next_cursor of the previous page (a snapshot id)"),
    ] = None,
) -> SnapshotPage:
    items, next_cursor = snapshots.list_snapshots(limit, cursor)
    return SnapshotPage(items=[SnapshotSummary.model_validate(i) for i in items], next_cursor=next_cursor)


@router.get("/snapshots/latest", summary="The newest snapshot", tags=["snapshots"], compress=True)
def latest_snapshot(coverage: CoverageQuery = None, status: StatusQuery = None) -> SnapshotOut:
    found = snapshots.get_snapshot("latest", coverage, snapshots.parse_statuses(status))
    return SnapshotOut.model_validate(found)


@router.get("/snapshots/<snapshot_id>", summary="One snapshot", tags=["snapshots"], compress=True)
def get_snapshot(snapshot_id: str, coverage: CoverageQuery = None, status: StatusQuery = None) -> SnapshotOut:
    found = snapshots.get_snapshot(snapshot_id, coverage, snapshots.parse_statuses(status))
    return SnapshotOut.model_validate(found)
