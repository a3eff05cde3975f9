"""Request and response models of the HTTP API (also what /openapi.json describes)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trueup.domain.models import CoverageResult, Settings, Summary

SourceStatus = Literal["queued", "running", "succeeded", "failed"]


class ApiModel(BaseModel):
    # Built on first use, not at import: a function's cold start pays only for the models it answers with.
    model_config = ConfigDict(defer_build=True)


class SyncRequest(ApiModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
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


class SyncRunOut(ApiModel):
    id: str
    requested_at: datetime
    sources: dict[Literal["pax8", "rmm"], SourceRunOut]


class SyncRunList(ApiModel):
    items: list[SyncRunOut]


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
    data_as_of: DataAsOf
    settings: Settings
    coverages: list[CoverageSummary]
    warnings: list[str] = []


class SnapshotOut(SnapshotSummary):
    coverages: list[CoverageResult]  # type: ignore[assignment]


class SnapshotPage(ApiModel):
    items: list[SnapshotSummary]
    next_cursor: str | None


class MappingRequest(ApiModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    rmm_organization_ids: list[str] = Field(description="The organizations of this company; [] means none.")
