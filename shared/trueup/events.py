"""The events trueup's functions exchange over its EventBridge bus (versioned pydantic models).

Events are read with `received`, not Powertools' Parser: its envelopes module loads a model for
every AWS event source there is, which would cost a sync function a third of `import boto3` at
every cold start to read three fields.
"""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trueup import aws, sources
from trueup.config import config
from trueup.errors import InvalidInput, UpstreamError

EVENT_SOURCE = "trueup"
# Pax8, or one RMM source (trueup.sources.RMMS): every RMM in use is synced on its own.
SyncSource = sources.SyncSource


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    detail_type: ClassVar[str]
    version: int = 1


class SyncRequested(Event):
    """A source's sync was asked for (POST /syncs): its sync function runs it for the run."""

    detail_type: ClassVar[str] = "Sync Requested"
    run_id: str
    source: SyncSource


class SyncCompleted(Event):
    """A sync's data became current (or an admin accepted a held sync's data)."""

    detail_type: ClassVar[str] = "Sync Completed"
    run_id: str
    source: SyncSource
    generation: str
    synced_at: datetime
    records: int
    skipped: int
    cycle_ids: list[str] | None = Field(
        default=None, description="The monthly cycles waiting on this sync; absent when none is."
    )


class SyncHeld(Event):
    """A sync's data was too short to replace the current data: kept, not current, until a person
    accepts or discards it."""

    detail_type: ClassVar[str] = "Sync Held"
    run_id: str
    source: SyncSource
    generation: str
    reason: str
    cycle_ids: list[str] | None = Field(
        default=None, description="The monthly cycles waiting on this sync; absent when none is."
    )


class SyncFailed(Event):
    """A sync failed; the data synced before stays current."""

    detail_type: ClassVar[str] = "Sync Failed"
    run_id: str
    source: SyncSource
    error: str
    cycle_ids: list[str] | None = Field(
        default=None, description="The monthly cycles waiting on this sync; absent when none is."
    )


class SuggestionsRequested(Event):
    """The mapping view found no suggestions stored for the current data (the function that works
    them out after each sync is still at it, failed, or ran before they were kept)."""

    detail_type: ClassVar[str] = "Suggestions Requested"
    pax8_generation: str
    rmm_generation: str


class CycleSynced(Event):
    """Every sync of a monthly cycle succeeded: its snapshot is next."""

    detail_type: ClassVar[str] = "Cycle Synced"
    cycle_id: str


class CycleStopped(Event):
    """A monthly cycle stopped before its exports (a sync failed or was held, or the snapshot
    failed): someone is told why."""

    detail_type: ClassVar[str] = "Cycle Stopped"
    cycle_id: str
    reason: str


class SnapshotCreated(Event):
    """A snapshot was taken (by a person, a script or a monthly cycle)."""

    detail_type: ClassVar[str] = "Snapshot Created"
    snapshot_id: str
    taken_at: datetime
    trigger: Literal["api", "schedule"]
    cycle_id: str | None = Field(
        default=None, description="The monthly cycle that took it (its exports are next); absent otherwise."
    )


class ExportsReady(Event):
    """A monthly cycle's exports are in the bucket: someone is told."""

    detail_type: ClassVar[str] = "Exports Ready"
    cycle_id: str
    snapshot_id: str
    keys: list[str] = Field(description="The CSV files' keys in the data bucket: one per coverage, then all.")


# Every event trueup publishes: each has a JSON Schema in shared/events/ (`make event-schemas`).
ALL_EVENTS: tuple[type[Event], ...] = (
    SyncRequested,
    SyncCompleted,
    SyncHeld,
    SyncFailed,
    SuggestionsRequested,
    CycleSynced,
    CycleStopped,
    SnapshotCreated,
    ExportsReady,
)


def schema_of(model: type[Event]) -> dict[str, Any]:
    """The JSON Schema of an event's detail, as consumers outside trueup may rely on it."""
    schema = model.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": model.detail_type,
        "description": (model.__doc__ or f"The detail of a {model.detail_type!r} event.").strip(),
        "x-eventbridge": {"source": EVENT_SOURCE, "detail-type": model.detail_type},
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def schema_file_name(model: type[Event]) -> str:
    return model.detail_type.lower().replace(" ", "-") + ".json"


E = TypeVar("E", bound=Event)


def received(event: Any, model: type[E]) -> E:
    """The detail of an EventBridge event as delivered to Lambda, checked to be the expected event."""
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        keys = sorted(event) if isinstance(event, dict) else type(event).__name__
        raise InvalidInput(f"not an EventBridge event with a detail (got {keys})")
    if event.get("source") != EVENT_SOURCE or event.get("detail-type") != model.detail_type:
        raise InvalidInput(
            f"expected a {EVENT_SOURCE!r} {model.detail_type!r} event, got "
            f"{event.get('source')!r} {event.get('detail-type')!r}: check the rule's pattern"
        )
    try:
        return model.model_validate(event["detail"])
    except ValidationError as exc:
        raise InvalidInput(f"malformed {model.detail_type!r} event: {exc}") from None


def publish(events: Sequence[Event]) -> None:
    """Put events on the trueup bus, ten per call; any entry EventBridge refuses is an error."""
    bus = config().event_bus
    for start in range(0, len(events), 10):
        batch = events[start : start + 10]
        answer = aws.client("events").put_events(
            Entries=[
                {
                    "EventBusName": bus,
                    "Source": EVENT_SOURCE,
                    "DetailType": event.detail_type,
                    # Absent, not null: a rule matches a field's presence ({"exists": true}).
                    "Detail": json.dumps(event.model_dump(mode="json", exclude_none=True)),
                }
                for event in batch
            ]
        )
        if answer.get("FailedEntryCount"):
            problems = sorted(
                {e.get("ErrorMessage", "unknown") for e in answer["Entries"] if e.get("ErrorCode")}
            )
            raise UpstreamError(
                "eventbridge",
                f"{answer['FailedEntryCount']} of {len(batch)} events not accepted: {'; '.join(problems)}",
                retryable=True,
            )
