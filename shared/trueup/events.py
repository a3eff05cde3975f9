"""The events trueup's functions exchange over its EventBridge bus (versioned pydantic models)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from trueup import aws
from trueup.config import aws_resources
from trueup.errors import UpstreamError

EVENT_SOURCE = "trueup"
SyncSource = Literal["pax8", "rmm"]


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    detail_type: ClassVar[str]
    version: int = 1


class SyncRequested(Event):
    detail_type: ClassVar[str] = "Sync Requested"
    run_id: str
    source: SyncSource


class SyncCompleted(Event):
    detail_type: ClassVar[str] = "Sync Completed"
    run_id: str
    source: SyncSource
    generation: str
    synced_at: datetime
    records: int
    skipped: int


class SyncFailed(Event):
    detail_type: ClassVar[str] = "Sync Failed"
    run_id: str
    source: SyncSource
    error: str


def publish(events: Sequence[Event]) -> None:
    """Put events on the trueup bus, ten per call; any entry EventBridge refuses is an error."""
    bus = aws_resources().event_bus
    for start in range(0, len(events), 10):
        batch = events[start : start + 10]
        answer = aws.client("events").put_events(
            Entries=[
                {
                    "EventBusName": bus,
                    "Source": EVENT_SOURCE,
                    "DetailType": event.detail_type,
                    "Detail": json.dumps(event.model_dump(mode="json")),
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
