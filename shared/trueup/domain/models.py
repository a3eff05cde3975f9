"""Domain models: what the vendor adapters produce and what the engine consumes and returns.

These are strict (unknown fields are rejected, datetimes must be timezone-aware); the vendor wire
formats have their own tolerant models in `trueup.vendors`.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from trueup.domain.status import Status

__all__ = ["Status"]  # and every model below


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class DomainModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


# --- Pax8 side -----------------------------------------------------------------------------------


class Company(DomainModel):
    """A Pax8 company: the billing entity, i.e. the client."""

    id: str
    name: str
    status: str | None = None


class Product(DomainModel):
    """A Pax8 catalogue product."""

    id: str
    name: str
    vendor_name: str | None = None


class Subscription(DomainModel):
    """A Pax8 subscription: `quantity` licences of one product for one company."""

    id: str
    company_id: str
    product_id: str
    product_name: str | None = None
    quantity: int = Field(ge=0)
    # Pax8's status and billingTerm are kept as sent: unknown values are not rejected.
    status: str
    billing_term: str | None = None
    start_date: AwareDatetime | None = None
    end_date: AwareDatetime | None = None
    # Per unit and per billing term (trueup.domain.money): what the client is billed, what Pax8 bills.
    price: Decimal | None = None
    partner_cost: Decimal | None = None
    currency: str | None = None  # ISO 4217, e.g. "USD"
    commitment_term: str | None = None  # e.g. "1-Year": a commitment cannot be reduced before its end
    commitment_end: AwareDatetime | None = None


class SkippedRecord(DomainModel):
    """A vendor record that could not be read. It never becomes a count; it is reported instead."""

    source: str  # "pax8" or an RMM source name such as "ninjaone"
    kind: str  # "subscription", "company", "product", "organization", "device"
    id: str | None
    reason: str
    # What the record could still be attributed to, so the affected rows can carry a warning.
    company_id: str | None = None
    organization_id: str | None = None


class Pax8Data(DomainModel):
    """One complete Pax8 sync."""

    companies: list[Company]
    products: list[Product]
    subscriptions: list[Subscription]
    skipped: list[SkippedRecord] = []
    synced_at: AwareDatetime


# --- RMM side ------------------------------------------------------------------------------------


class DeviceClass(StrEnum):
    WORKSTATION = "workstation"
    SERVER = "server"
    VIRTUAL_HOST = "virtual_host"
    VIRTUAL_GUEST = "virtual_guest"
    MOBILE = "mobile"
    NETWORK = "network"  # agentless, monitored over the network
    OTHER = "other"


class DeviceState(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"  # waiting for approval in the RMM
    DELETED = "deleted"
    SUSPENDED = "suspended"


class Organization(DomainModel):
    """An RMM organization (NinjaOne organization, Datto site...). Ids are source-prefixed."""

    id: str  # e.g. "ninjaone:12"
    name: str


class Device(DomainModel):
    """A normalized RMM device."""

    id: str  # e.g. "ninjaone:481"
    organization_id: str  # e.g. "ninjaone:12"
    name: str
    device_class: DeviceClass
    last_seen: AwareDatetime | None
    state: DeviceState
    # What exclusion rules can match besides the name (trueup.domain.review): the RMM's role of the
    # device, and its tags or groups (Datto RMM's `_NotBillable_` convention is a group).
    role: str | None = None
    tags: list[str] = []
    # What tells one machine seen by two RMM sources (trueup.domain.device_identity): its serial
    # number and a hardware id (a UUID from the firmware, where the RMM gives one).
    serial: str | None = None
    hardware_id: str | None = None


class RmmData(DomainModel):
    """One complete RMM sync."""

    source: str
    organizations: list[Organization]
    devices: list[Device]
    skipped: list[SkippedRecord] = []
    synced_at: AwareDatetime


# --- Settings --------------------------------------------------------------------------------------

DEFAULT_DEVICE_CLASSES: tuple[DeviceClass, ...] = (DeviceClass.WORKSTATION, DeviceClass.SERVER)
DEFAULT_COUNTED_STATUSES: tuple[str, ...] = ("Active", "Activated", "PendingCancel")

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


class Coverage(DomainModel):
    """A set of Pax8 products that license devices, and the device classes it covers.

    Quantities of the products within one coverage add up; different coverages never do.
    A product belongs to the coverage when its id is listed, its vendor is listed, or its name
    contains one of `name_contains` (both compared case-insensitively).
    """

    id: str = Field(pattern=SLUG_PATTERN, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    product_ids: list[str] = []
    vendor_names: list[str] = []
    name_contains: list[str] = []
    device_classes: list[DeviceClass] = Field(
        default_factory=lambda: list(DEFAULT_DEVICE_CLASSES), min_length=1
    )
    # When true, every mapped client is expected to hold it: one with counted devices and no licence
    # is under-licensed rather than left out.
    required: bool = False


class Settings(DomainModel):
    """What the engine needs to know beyond the data. `coverages=None` means: use the proposal."""

    coverages: list[Coverage] | None = None
    counted_statuses: list[str] = Field(default_factory=lambda: list(DEFAULT_COUNTED_STATUSES), min_length=1)
    stale_after_days: int = Field(default=30, ge=1, le=3650)
    tolerance: int = Field(default=0, ge=0)
    # A sync whose companies, subscriptions, organizations or devices shrank by more than this share
    # and this many records (or to none) is held, not made current (trueup.domain.holds).
    hold_shrink_percent: int = Field(default=20, ge=0, le=100)
    hold_shrink_records: int = Field(default=10, ge=0)
    # A snapshot of data synced longer ago than this carries a warning (trueup.domain.freshness).
    stale_data_hours: int = Field(default=26, ge=1, le=8760)
    # How many months a subscription's price covers, by billing term (trueup.domain.money). Pax8 does
    # not say; a term not listed (Trial, One-Time, Activation) is left out of a row's price.
    months_per_term: dict[str, Annotated[int, Field(ge=1, le=120)]] = Field(
        default_factory=lambda: {"Monthly": 1, "Annual": 12, "2-Year": 24, "3-Year": 36}
    )


# --- What people decided (trueup.domain.review) ----------------------------------------------------


class DecisionKind(StrEnum):
    WILL_BILL = "will_bill"  # the gap is real: the client will be billed (under-licensed)
    WILL_ADJUST = "will_adjust"  # the gap is real: the licences will be adjusted
    DISMISSED = "dismissed"  # explained and expected ("flat-fee contract"): until an admin removes it
    MUTED = "muted"  # not now: until a date


class Decision(DomainModel):
    """What a person decided about one client's gap in one coverage (not about one snapshot)."""

    kind: DecisionKind
    reason: str = Field(min_length=1, max_length=1000)
    decided_by: dict[str, str | None] | None = None  # who (from the token): subject and name
    decided_at: AwareDatetime
    effective: date | None = None  # will_bill / will_adjust: when it takes effect ("on the 1st")
    until: date | None = None  # muted: the last day it is muted
    # The row's figures when it was decided: a will_bill or will_adjust holds while they do.
    devices: int | None = None
    licenses: int | None = None


class RowDecision(DomainModel):
    """A decision as a snapshot's row shows it: in effect, or lapsed (still shown, with why)."""

    kind: DecisionKind
    reason: str
    decided_by: dict[str, str | None] | None
    decided_at: AwareDatetime
    effective: date | None = None
    until: date | None = None
    lapsed: bool
    lapsed_because: str | None = None


class ExclusionRule(DomainModel):
    """Devices a person leaves out of some coverages' counts, whatever their client: a lab, test
    machines, a role or tag the MSP does not bill. A device matches when its name matches one of
    `name_patterns` (shell-style, any case: "LAB-*"), or its role is one of `roles`, or it carries one
    of `tags` (RMM tags or groups, any case)."""

    name: str = Field(min_length=1, max_length=100)
    coverage_ids: list[str] = []  # the coverages it applies to; empty: every coverage
    name_patterns: list[str] = []
    roles: list[str] = []
    tags: list[str] = []


class ClientTerms(DomainModel):
    """One client's terms in one coverage: devices included in its contract (they count as licensed),
    and a tolerance of its own (None: the settings')."""

    allowance: int = Field(default=0, ge=0, le=1_000_000)
    tolerance: int | None = Field(default=None, ge=0, le=1000)


class Review(DomainModel):
    """What people decided that a reconciliation applies. Keys of `terms` and `decisions` are
    "<coverage id>/<row key>" (trueup.domain.review.review_key)."""

    ignored_organizations: dict[str, str] = {}  # RMM organization id -> why it is not billable
    rules: list[ExclusionRule] = []
    terms: dict[str, ClientTerms] = {}
    decisions: dict[str, Decision] = {}


# --- Results ---------------------------------------------------------------------------------------


class ExclusionReason(StrEnum):
    """Why a device of a client was not counted, in the order the reasons are checked."""

    DUPLICATE = "duplicate"  # the same machine seen by another RMM source: counted once, there
    PENDING = "pending"
    INACTIVE = "inactive"
    EXCLUDED_BY_RULE = "excluded_by_rule"  # a person's rule (trueup.domain.review), named on the row
    CLASS_NOT_COVERED = "class_not_covered"
    NEVER_SEEN = "never_seen"
    STALE = "stale"


class MappingSource(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


class ClientMapping(DomainModel):
    pax8_company_id: str
    client: str
    rmm_organization_ids: list[str]
    source: MappingSource


class Suggestion(DomainModel):
    pax8_company_id: str
    rmm_organization_id: str
    score: float  # 0-100, higher is closer


class MappingResult(DomainModel):
    mappings: list[ClientMapping]
    suggestions: list[Suggestion]
    unmapped_rmm: list[str]  # organization ids that belong to no company
    unmapped_pax8: list[str] = []  # company ids with neither a manual nor an automatic mapping


class Amounts(DomainModel):
    """A row's money, per month, in its subscriptions' currency, rounded to its minor unit."""

    currency: str
    unit_price: Decimal  # what the client is billed per licence and month
    unit_cost: Decimal | None  # what Pax8 bills the MSP per licence and month (None: not given)
    monthly_price_gap: Decimal  # variance x unit_price: + not billed, - the client overpays
    monthly_cost_gap: Decimal | None  # variance x unit_cost: + to buy, - the MSP overpays Pax8


class CurrencyTotals(DomainModel):
    """One currency's monthly gaps over a coverage's under-licensed and over-licensed rows."""

    under_licensed_price_gap: Decimal
    under_licensed_cost_gap: Decimal
    over_licensed_price_gap: Decimal
    over_licensed_cost_gap: Decimal


class Change(StrEnum):
    """How a row differs from the same client's row in the snapshot taken just before."""

    NEW = "new"  # a gap (under-licensed, over-licensed or unmapped) that was not there
    CLOSED = "closed"  # matched now, a gap before
    CHANGED = "changed"  # still a gap, with other figures
    SAME = "same"
    FIRST = "first"  # no row of this client in the snapshot before


class PreviousRow(DomainModel):
    """The same client's figures in the snapshot taken just before."""

    snapshot_id: str
    devices: int | None
    licenses: int | None
    variance: int | None
    status: Status


class Summary(DomainModel):
    under_licensed: int = 0
    over_licensed: int = 0
    matched: int = 0
    unmapped: int = 0
    # Per currency, the monthly gaps of the under- and over-licensed rows (matched ones not added).
    money: dict[str, CurrencyTotals] = {}
    # Rows per change since the snapshot before (trueup.domain.changes); {} in older snapshots.
    changes: dict[Change, int] = {}
    # Rows a decision in effect sets aside (dismissed, muted): not in the four counts above (nor in
    # `money`), but here, with what their gaps come to (trueup.domain.review).
    set_aside: dict[DecisionKind, int] = {}
    set_aside_money: dict[str, CurrencyTotals] = {}


class Row(DomainModel):
    client: str
    pax8_company_id: str | None
    rmm_organization_ids: list[str]
    rmm_organization_names: list[str] = []  # in the order of rmm_organization_ids
    devices: int | None
    licenses: int | None
    variance: int | None
    status: Status
    excluded: dict[ExclusionReason, int]
    warnings: list[str] = []
    amounts: Amounts | None = None  # None: unmapped, or no price to work from (amounts_warning says why)
    amounts_warning: str | None = None  # why a mapped row with licences has no amounts
    commitment_ends: date | None = None  # the earliest end of a running commitment of its licences
    previous: PreviousRow | None = None  # this client's row in the snapshot before (None: none)
    change: Change | None = None  # None only in snapshots taken before changes were kept
    excluded_rules: dict[str, int] = {}  # devices left out per exclusion rule (by its name)
    allowance: int | None = None  # devices included in the client's contract (its terms), if any
    tolerance: int | None = None  # the client's own tolerance, when it has one
    decision: RowDecision | None = None  # what a person decided about this gap


class CoverageResult(DomainModel):
    id: str
    name: str
    summary: Summary
    rows: list[Row]


class Reconciliation(DomainModel):
    coverages: list[CoverageResult]
    mapping: MappingResult
    # Skipped records that could not be attributed to any client (e.g. a record without a company id).
    warnings: list[str] = []
