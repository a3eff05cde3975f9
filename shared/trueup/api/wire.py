"""The HTTP API's request and response bodies, as pydantic models: what /openapi.json describes.

Handlers answer the services' JSON documents as they are (a 10,000-client snapshot is not parsed
into models only to be written out again), so nothing here is imported when a function starts: the
API function imports it to build /openapi.json, a handler to read a request body (`trueup.api.http`),
and the tests to check that every answer is what this module says. Response models forbid unknown
fields, so the description says exactly which fields an answer has and the fuzzing tests hold every
answer to it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trueup.domain.models import Row, Settings, Summary
from trueup.sources import RequestedSource


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Actor(ApiModel):
    """Who made a change: the token's subject, and a name or e-mail where the token carries one."""

    subject: str
    name: str | None = None


# --- /snapshots --------------------------------------------------------------------------------------


class DataAsOf(ApiModel):
    pax8: datetime
    rmm: datetime = Field(description="The RMM data's sync (the oldest, when several RMMs are in use)")
    rmm_sources: dict[str, datetime] | None = Field(
        default=None, description="Each RMM source's sync (ninjaone, datto); absent in older snapshots"
    )


class CoverageSummary(ApiModel):
    id: str
    name: str
    summary: Summary


class SnapshotRequest(ApiModel):
    sync: bool = Field(
        default=False,
        strict=True,  # "yes" or 1 is a mistake to name, not a true to guess
        description="true: sync every source first, then snapshot the fresh data, export it and tell "
        "the notification topic (a cycle, answered with 202); false or no body: snapshot the current "
        "data now (201).",
    )


class SnapshotSummary(ApiModel):
    id: str
    taken_at: datetime
    trigger: Literal["api", "schedule"] = Field(
        description="schedule: taken by the monthly cycle; api: by a request (or a cycle one started)."
    )
    taken_by: Actor | None = Field(default=None, description="Who took it; null for a cycle.")
    cycle_id: str | None = Field(default=None, description="The cycle that took it, if one did.")
    data_as_of: DataAsOf
    generations: dict[str, str] | None = Field(
        default=None,
        description="The synced data it was taken from, per source: pax8 and each RMM source (ninjaone, "
        "datto; rmm in snapshots taken before several RMMs could be used); GET /syncs/current names them.",
    )
    settings: Settings
    coverages: list[CoverageSummary]
    warnings: list[str] = Field(default_factory=list)


class CoverageRows(ApiModel):
    id: str
    name: str
    summary: Summary
    rows: list[Row] | None = Field(
        default=None, description="Only in the coverage asked for (?coverage=, else the first): one page."
    )
    rows_total: int | None = Field(
        default=None, description="How many rows of that coverage match ?status= and ?q= in all."
    )


class SnapshotRowsPage(SnapshotSummary):
    coverages: list[CoverageRows]  # type: ignore[assignment]
    next_cursor: str | None = Field(description="The next page of rows (?cursor=); null on the last page.")


class HistoryPoint(ApiModel):
    snapshot_id: str
    taken_at: datetime
    devices: int | None
    licenses: int | None
    variance: int | None
    status: Literal["under_licensed", "over_licensed", "matched", "unmapped"]


class ClientHistory(ApiModel):
    key: str = Field(description="The row's Pax8 company id, or an unmapped organization's RMM id")
    coverage: str
    snapshot_id: str = Field(description="The snapshot the history runs up to")
    points: list[HistoryPoint] = Field(description="At most twelve, oldest first")


class DeviceEvidence(ApiModel):
    id: str = Field(description="The RMM's device id, prefixed by the RMM (ninjaone:481)")
    name: str
    organization: str = Field(description="The RMM organization's name")
    device_class: str
    last_seen: datetime | None
    state: Literal["active", "pending", "deleted", "suspended"]
    reason: (
        Literal["pending", "inactive", "excluded_by_rule", "class_not_covered", "never_seen", "stale"] | None
    ) = Field(description="Why it is left out of the count; null: counted")
    rule: str | None = Field(default=None, description="The exclusion rule that left it out, if one did")


class SubscriptionEvidence(ApiModel):
    id: str = Field(description="The Pax8 subscription id")
    product: str
    quantity: int
    status: str
    billing_term: str | None
    price: str | None = Field(description="Per unit and billing term, as Pax8 sent it")
    partner_cost: str | None
    currency: str | None
    commitment_end: date | None
    counted: bool = Field(description="Whether its quantity is in the row's licences")
    reason: str | None = Field(description="Why it is not counted; null: counted")
    price_left_out: str | None = Field(description="Why a counted subscription is not in the row's price")


class RowEvidence(ApiModel):
    snapshot_id: str
    taken_at: datetime
    coverage: str
    key: str = Field(description="The row's Pax8 company id, or an unmapped organization's RMM id")
    client: str
    subscriptions: list[SubscriptionEvidence] = Field(description="Counted first")
    devices_total: int
    devices_counted: int
    devices_left_out: dict[str, int] = Field(description="Devices left out per reason")
    devices: list[DeviceEvidence] = Field(description="This page of the devices, in ?sort= order")
    next_cursor: str | None = Field(description="The next page of devices (?cursor=); null on the last")


class SnapshotPage(ApiModel):
    items: list[SnapshotSummary]
    next_cursor: str | None


# --- exports -----------------------------------------------------------------------------------------


class ExportLink(ApiModel):
    url: str = Field(description="A presigned GET of the CSV; it expires at expires_at.")
    expires_at: datetime
    key: str
    file_name: str
    rows: int


# --- /syncs ------------------------------------------------------------------------------------------

SourceStatus = Literal["queued", "running", "succeeded", "failed", "held", "discarded"]
SyncSourceName = RequestedSource
# A run's or a cycle's source: "pax8" or one RMM source ("rmm" in runs made before several RMMs).
RunSource = str


class SyncRequest(ApiModel):
    sources: list[SyncSourceName] | None = Field(
        default=None,
        min_length=1,
        description='Which sources to sync: "pax8", "rmm" (every RMM in use) or one RMM source in use; '
        "omitted: every source.",
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
    held_reason: str | None = Field(
        default=None,
        description="Why its data was held rather than made current (a list shrank too much); it stays "
        "after an admin accepted (succeeded) or discarded it.",
    )
    decided_by: Actor | None = Field(default=None, description="Who accepted or discarded the held data")
    decided_at: datetime | None = Field(default=None, description="When it was accepted or discarded")


class SyncRunOut(ApiModel):
    id: str
    requested_at: datetime
    requested_by: Actor | None = Field(
        default=None, description="Who asked for it (null: a schedule, or before sign-in)"
    )
    cycle_id: str | None = Field(default=None, description="The monthly cycle it syncs for, if any")
    sources: dict[RunSource, SourceRunOut]


class SyncRunList(ApiModel):
    items: list[SyncRunOut]


class CurrentSource(ApiModel):
    synced_at: datetime
    generation: str
    run_id: str
    records: int
    skipped: int


class HeldSync(ApiModel):
    """A sync whose data is kept but not current, until an admin accepts or discards it."""

    run_id: str
    source: RunSource
    finished_at: datetime
    records: int
    reason: str = Field(
        description='In words, e.g. "NinjaOne returned 240 devices; the current data has 628"'
    )


class CurrentData(ApiModel):
    pax8: CurrentSource | None = Field(description="null: Pax8 was never synced successfully")
    rmm: dict[str, CurrentSource | None] = Field(
        description="Each RMM source in use (ninjaone, datto): null when it was never synced successfully"
    )
    names: dict[str, str] = Field(description='Each source as people write it: {"pax8": "Pax8", ...}')
    held: list[HeldSync] = Field(description="Syncs waiting for an admin to accept or discard their data")


# --- /cycles -----------------------------------------------------------------------------------------

StepState = Literal["queued", "running", "succeeded", "failed", "skipped", "held"]


class CycleStep(ApiModel):
    state: StepState
    reason: str | None = Field(description="Why it failed, was held or was skipped")
    at: datetime | None = Field(description="When it reached this state")


class CycleOut(ApiModel):
    """A cycle: every source synced, then a snapshot of the fresh data, its exports, a notification."""

    id: str = Field(description="A scheduled cycle's id is its scheduled time (20261201T060000Z-monthly)")
    trigger: Literal["schedule", "api"]
    status: Literal["running", "succeeded", "failed", "held"] = Field(
        description="running until someone was told; then succeeded (snapshot and exports made), held "
        "(stopped because a sync's data was held: an admin decides) or failed (a step failed)"
    )
    started_at: datetime
    finished_at: datetime | None
    started_by: Actor | None = Field(default=None, description="Who asked for it; null for the schedule")
    run_id: str | None = Field(description="Its sync run (GET /syncs/{run_id})")
    syncs: dict[RunSource, CycleStep]
    snapshot: CycleStep
    exports: CycleStep
    notification: CycleStep
    snapshot_id: str | None
    export_keys: list[str] = Field(description="The CSV files in the data bucket: one per coverage, then all")


class CycleList(ApiModel):
    items: list[CycleOut]


# --- /decisions and /audit ---------------------------------------------------------------------------


class DecisionRequest(ApiModel):
    kind: Literal["will_bill", "will_adjust", "dismissed", "muted"]
    reason: str = Field(min_length=1, max_length=1000, pattern=r"\S", description="Why: required")
    effective: date | None = Field(default=None, description="will_bill / will_adjust: when it takes effect")
    until: date | None = Field(default=None, description="muted: the last day it is muted (required)")


class DecisionOut(ApiModel):
    coverage: str
    key: str = Field(description="The row's Pax8 company id, or an unmapped organization's RMM id")
    client: str
    kind: Literal["will_bill", "will_adjust", "dismissed", "muted"]
    reason: str
    decided_by: dict[str, str | None] | None
    decided_at: datetime
    effective: date | None
    until: date | None
    devices: int | None = Field(description="The row's devices when it was decided")
    licenses: int | None = Field(description="The row's licences when it was decided")
    version: int


class DecisionList(ApiModel):
    items: list[DecisionOut]


class AuditEntry(ApiModel):
    id: str
    at: datetime
    by: dict[str, str | None] | None = Field(description="Who (from the token)")
    kind: str = Field(description="What changed: decision, mapping, settings...")
    client: str | None
    coverage: str | None = None
    what: str
    before: Any
    after: Any
    reason: str | None


class AuditPage(ApiModel):
    items: list[AuditEntry]
    next_cursor: str | None


# --- /ignored-organizations, /rejected-suggestions, /terms, /rules -----------------------------------

Reason = Annotated[str, Field(min_length=1, max_length=1000, pattern=r"\S")]
Listed = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
MATCHERS = ("name_patterns", "roles", "tags")


class IgnoreRequest(ApiModel):
    reason: Reason = Field(description='Why it is not billable: required ("our own IT", "test tenant")')


class IgnoredOrganization(ApiModel):
    """An RMM organization left out of every coverage and the unmapped lists."""

    rmm_organization_id: str
    name: str = Field(description="Its name when it was ignored")
    reason: str
    updated_by: Actor | None
    updated_at: datetime
    version: int = Field(description="Its version (also the ETag): If-Match on a stale one is 412")


class IgnoredList(ApiModel):
    items: list[IgnoredOrganization]


class RejectRequest(ApiModel):
    reason: Reason | None = Field(default=None, description="Why, if there is one to say")


class RejectedSuggestion(ApiModel):
    """A mapping suggestion a person rejected: that pair is never suggested again."""

    pax8_company_id: str
    client: str
    rmm_organization_id: str
    rmm_organization_name: str
    reason: str | None
    updated_by: Actor | None
    updated_at: datetime
    version: int


class RejectedList(ApiModel):
    items: list[RejectedSuggestion]


class TermsRequest(ApiModel):
    allowance: int = Field(
        default=0, ge=0, le=1_000_000, description="Devices included: they count as licensed"
    )
    tolerance: int | None = Field(
        default=None, ge=0, le=1000, description="This client's tolerance (null: the settings')"
    )
    reason: Reason | None = Field(default=None, description='Why ("25 devices included in the contract")')


class TermsOut(ApiModel):
    coverage: str
    key: str = Field(description="The row's Pax8 company id")
    client: str
    allowance: int
    tolerance: int | None
    reason: str | None
    updated_by: Actor | None
    updated_at: datetime
    version: int


class TermsList(ApiModel):
    items: list[TermsOut]


class RuleRequest(ApiModel):
    """At least one of name_patterns, roles and tags is needed: a rule that matches nothing is refused."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [{"required": [field], "properties": {field: {"minItems": 1}}} for field in MATCHERS]
        }
    )
    coverage_ids: list[Listed] = Field(
        default=[], max_length=50, description="Where it applies ([]: everywhere)"
    )
    name_patterns: list[Listed] = Field(
        default=[], max_length=50, description='Device names, shell-style and any case: "LAB-*", "*-TEST"'
    )
    roles: list[Listed] = Field(default=[], max_length=50, description="Device roles, as the RMM names them")
    tags: list[Listed] = Field(
        default=[], max_length=50, description='Device tags or groups, as the RMM names them: "_NotBillable_"'
    )
    reason: Reason | None = None

    @model_validator(mode="after")
    def _matches_something(self) -> RuleRequest:
        if not (self.name_patterns or self.roles or self.tags):
            raise ValueError("a rule needs at least one device name pattern, role or tag")
        return self


class RuleOut(ApiModel):
    name: str
    coverage_ids: list[str]
    name_patterns: list[str]
    roles: list[str]
    tags: list[str]
    reason: str | None
    updated_by: Actor | None
    updated_at: datetime
    version: int


class RuleList(ApiModel):
    items: list[RuleOut]


# --- /mappings ---------------------------------------------------------------------------------------


class MappingRequest(ApiModel):
    rmm_organization_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        max_length=50, description="The organizations of this company (at most 50); [] means none."
    )


class ManualMapping(ApiModel):
    pax8_company_id: str
    client: str
    rmm_organization_ids: list[str]
    source: Literal["manual"]
    updated_at: datetime
    updated_by: Actor | None
    version: int = Field(description="Its version (also the ETag): If-Match on a stale one is 412")


class MappingSummary(ApiModel):
    """How many entries each list holds in all (suggestions: null when this answer did not work them out)."""

    mappings: int
    manual: int
    suggestions: int | None
    unmapped_pax8: int
    unmapped_rmm: int
    companies: int


class NamedOrganization(ApiModel):
    id: str
    name: str


class MappingEntry(ApiModel):
    """A Pax8 company and the RMM organizations counted for it."""

    pax8_company_id: str
    client: str | None = Field(description="The company's name (null: not in the current sync)")
    rmm_organization_ids: list[str]
    source: Literal["auto", "manual"] = Field(description="auto: the names match; manual: set by hand")
    rmm_organizations: list[NamedOrganization] | None = Field(
        default=None, description="The organizations with their names (absent before any sync)"
    )
    updated_at: datetime | None = Field(default=None, description="A manual mapping: when it was set")
    updated_by: Actor | None = Field(default=None, description="A manual mapping: who set it")
    version: int | None = Field(default=None, description="A manual mapping: its version, for If-Match")


class SuggestionEntry(ApiModel):
    """An unmapped RMM organization whose name is close to a Pax8 company's: a person accepts or not."""

    pax8_company_id: str
    client: str
    rmm_organization_id: str
    rmm_organization_name: str
    score: float = Field(ge=0, le=100, description="How similar the names are (100: the same)")


class CompanyEntry(ApiModel):
    """A Pax8 company (a client), by id and name."""

    pax8_company_id: str
    client: str


class UnmappedOrganization(ApiModel):
    rmm_organization_id: str
    name: str


class MappingView(ApiModel):
    """GET /mappings: the current mappings, suggestions and unmapped clients, each list a page."""

    summary: MappingSummary
    next: dict[str, str | None] = Field(description="Per list answered: ?cursor= for its next page, or null.")
    mappings: list[MappingEntry] | None = None
    manual: list[MappingEntry] | None = Field(default=None, description="The mappings set by hand.")
    suggestions: list[SuggestionEntry] | None = None
    unmapped_pax8: list[CompanyEntry] | None = None
    unmapped_rmm: list[UnmappedOrganization] | None = None
    companies: list[CompanyEntry] | None = Field(
        default=None, description="Every Pax8 company, mapped or not: where an organization may go."
    )
    data: str | None = Field(default=None, description="Set when there is no current sync to map.")
    suggestions_pending: bool | None = Field(
        default=None,
        description="True while the suggestions for the current data are being worked out (after a sync): "
        "`suggestions` is empty and its count null until then; ask again in a few seconds.",
    )


# --- /settings ---------------------------------------------------------------------------------------


class SettingsOut(Settings):
    updated_at: datetime | None = Field(default=None, description="Last changed (null: never saved)")
    updated_by: Actor | None = Field(default=None, description="Who changed them last")


# --- sign-in -----------------------------------------------------------------------------------------


class SignInConfig(ApiModel):
    sign_in: Literal["oidc", "off"] = Field(description="off: no sign-in (the local stack's default)")
    issuer: str | None = Field(description="The OpenID Connect issuer; its discovery document is below it.")
    client_id: str | None = Field(description="The page's client id (authorization code with PKCE).")
    scope: str | None
    redirect_uri: str | None = Field(description="Where the provider sends the person back: this page.")


class Me(ApiModel):
    subject: str
    name: str | None
    roles: list[str] = Field(description="admin may change things; viewer reads and exports.")
    sign_in: Literal["oidc", "off"]
