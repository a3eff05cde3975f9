"""Tiny builders for hand-made engine cases: every number in a test is visible in the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trueup.domain.models import (
    Company,
    Coverage,
    Device,
    DeviceClass,
    DeviceState,
    Organization,
    Pax8Data,
    Product,
    RmmData,
    SkippedRecord,
    Subscription,
)

SYNCED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
EDR = Coverage(id="edr", name="EDR", product_ids=["p-edr"])
BACKUP = Coverage(id="backup", name="Backup", product_ids=["p-backup"])
PRODUCTS = [
    Product(id="p-edr", name="Huntress Managed EDR", vendor_name="Huntress"),
    Product(id="p-backup", name="Acronis Cyber Protect Cloud", vendor_name="Acronis"),
    Product(id="p-m365", name="Microsoft 365 Business Premium", vendor_name="Microsoft"),
]


def company(cid: str, name: str | None = None) -> Company:
    return Company(id=cid, name=name or cid.title(), status="Active")


def sub(
    sid: str,
    company_id: str,
    quantity: int,
    product_id: str = "p-edr",
    status: str = "Active",
    term: str = "Monthly",
    *,
    price: str | None = "5.00",
    cost: str | None = "4.00",
    currency: str | None = "USD",
    commitment_end: datetime | None = None,
) -> Subscription:
    """A subscription; priced (per unit and term, in USD) unless `price=None`."""
    return Subscription(
        id=sid,
        company_id=company_id,
        product_id=product_id,
        quantity=quantity,
        status=status,
        billing_term=term,
        price=None if price is None else Decimal(price),
        partner_cost=None if cost is None else Decimal(cost),
        currency=currency,
        commitment_end=commitment_end,
    )


def org(n: int, name: str) -> Organization:
    return Organization(id=f"ninjaone:{n}", name=name)


_next_device = iter(range(1, 1_000_000))


def devices(
    org_n: int,
    count: int,
    *,
    cls: DeviceClass = DeviceClass.WORKSTATION,
    seen_days_ago: float | None = 1,
    state: DeviceState = DeviceState.ACTIVE,
) -> list[Device]:
    out = []
    for _ in range(count):
        n = next(_next_device)
        seen = None if seen_days_ago is None else SYNCED - timedelta(days=seen_days_ago)
        out.append(
            Device(
                id=f"ninjaone:{n}",
                organization_id=f"ninjaone:{org_n}",
                name=f"PC-{n}",
                device_class=cls,
                last_seen=seen,
                state=state,
            )
        )
    return out


def pax8(
    companies: list[Company],
    subscriptions: list[Subscription],
    products: list[Product] | None = None,
    skipped: list[SkippedRecord] | None = None,
) -> Pax8Data:
    return Pax8Data(
        companies=companies,
        products=PRODUCTS if products is None else products,
        subscriptions=subscriptions,
        skipped=skipped or [],
        synced_at=SYNCED,
    )


def rmm(
    organizations: list[Organization], devs: list[Device], skipped: list[SkippedRecord] | None = None
) -> RmmData:
    return RmmData(
        source="ninjaone", organizations=organizations, devices=devs, skipped=skipped or [], synced_at=SYNCED
    )
