"""Request and response models of the HTTP API (also what /openapi.json describes)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trueup.domain.models import CoverageResult, Settings, Summary

SourceStatus = Literal["queued", "running", "succeeded", "failed"]


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[Literal["pax8", "rmm"]] | None = Field(
        default=None, min_length=1, description="Which sources to sync; omitted: both."
    )


class SkippedRecordOut(BaseModel):
    kind: str
    id: str | None
    reason: str


class SourceRunOut(BaseModel):
    status: SourceStatus
    started_at: datetime | None
    finished_at: datetime | None
    records: int | None = Field(description="Records in the new generation (skipped ones not included).")
    skipped: int | None = Field(description="Malformed records skipped and reported, never counted.")
    skipped_records: list[SkippedRecordOut] = Field(description="The first skipped records, with reasons.")
    error: str | None
    generation: str | None


class SyncRunOut(BaseModel):
    id: str
    requested_at: datetime
    sources: dict[Literal["pax8", "rmm"], SourceRunOut]


class SyncRunList(BaseModel):
    items: list[SyncRunOut]


class DataAsOf(BaseModel):
    pax8: datetime
    rmm: datetime


class CoverageSummary(BaseModel):
    id: str
    name: str
    summary: Summary


class SnapshotSummary(BaseModel):
    id: str
    taken_at: datetime
    trigger: Literal["api", "schedule"]
    data_as_of: DataAsOf
    settings: Settings
    coverages: list[CoverageSummary]
    warnings: list[str] = []


class SnapshotOut(SnapshotSummary):
    coverages: list[CoverageResult]  # type: ignore[assignment]


class SnapshotPage(BaseModel):
    items: list[SnapshotSummary]
    next_cursor: str | None


class MappingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rmm_organization_ids: list[str] = Field(description="The organizations of this company; [] means none.")
