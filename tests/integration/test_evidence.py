"""A snapshot's evidence, hand-made: which devices and subscriptions each row holds, and why.

The case (every figure below is worked out by hand from it):
- Acme holds two RMM organizations (a manual mapping), Birch one (by name), Cedar none; "Lab" is an
  organization no company holds.
- Coverage EDR covers workstations and servers; Backup covers servers only.
- Acme's devices: HQ-WS-1 and HQ-WS-2 (workstations seen yesterday), HQ-SRV (a server last seen 40
  days before the sync: stale), HQ-NEW (a workstation waiting for approval); BR-SRV (a server seen
  yesterday), BR-OLD (a deleted workstation), BR-PHONE (a mobile), BR-GHOST (a workstation never seen).
- Subscriptions: Acme EDR 3 Active and 2 Cancelled, Backup 1 Active on a Trial term; Birch EDR 1
  Active without a price; Cedar EDR 4 Active.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.engine_builders import BACKUP, EDR, SYNCED, company, org, pax8, sub
from trueup.domain.mapping import map_clients
from trueup.domain.models import Device, DeviceClass, DeviceState, Settings
from trueup.domain.reconcile import reconcile, tally_rmm
from trueup.reports.evidence_csv import write_evidence_csv
from trueup.services.evidence import EvidenceCollector, row_evidence
from trueup.store import evidence_files
from trueup.store.table import TrueupTable

SERVERS_ONLY = BACKUP.model_copy(update={"device_classes": [DeviceClass.SERVER]})
SETTINGS = Settings(coverages=[EDR, SERVERS_ONLY])
TAKEN = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
W, S, M = DeviceClass.WORKSTATION, DeviceClass.SERVER, DeviceClass.MOBILE


def device(
    n: int, org_n: int, name: str, cls: DeviceClass, seen_days_ago: float | None, state: str
) -> Device:
    return Device(
        id=f"ninjaone:{n}",
        organization_id=f"ninjaone:{org_n}",
        name=name,
        device_class=cls,
        last_seen=None if seen_days_ago is None else SYNCED - timedelta(days=seen_days_ago),
        state=DeviceState(state),
    )


ORGS = [org(1, "Acme HQ"), org(2, "Acme Branch"), org(3, "Birch"), org(4, "Lab")]
DEVICES = [
    device(101, 1, "HQ-WS-1", W, 1, "active"),
    device(102, 1, "HQ-WS-2", W, 1, "active"),
    device(103, 1, "HQ-SRV", S, 40, "active"),
    device(104, 1, "HQ-NEW", W, 1, "pending"),
    device(201, 2, "BR-SRV", S, 1, "active"),
    device(202, 2, "BR-OLD", W, 1, "deleted"),
    device(203, 2, "BR-PHONE", M, 1, "active"),
    device(204, 2, "BR-GHOST", W, None, "active"),
    device(301, 3, "Birch-PC", W, 1, "active"),
    device(401, 4, "LAB-1", W, 1, "active"),
    device(402, 4, "LAB-2", W, 1, "active"),
]
PAX8 = pax8(
    [company("acme", "Acme"), company("birch", "Birch"), company("cedar", "Cedar")],
    [
        sub("s-acme-edr", "acme", 3),
        sub("s-acme-old", "acme", 2, status="Cancelled"),
        sub("s-acme-backup", "acme", 1, "p-backup", term="Trial"),
        sub("s-birch-edr", "birch", 1, price=None, cost=None),
        sub("s-cedar-edr", "cedar", 4),
    ],
)
MANUAL = {"acme": ["ninjaone:1", "ninjaone:2"]}


@pytest.fixture
def stored(table: TrueupTable) -> dict[str, Any]:
    """The case's snapshot rows and its evidence written to (moto's) S3, two buckets of rows on disk."""
    mapping = map_clients(PAX8.companies, ORGS, MANUAL, with_suggestions=False)
    with EvidenceCollector(PAX8, ORGS, mapping, buckets=2) as collector:
        tallied = tally_rmm("ninjaone", [*ORGS, *DEVICES], SYNCED, 30, each_device=collector.put_aside)
        result = reconcile(PAX8, tallied, SETTINGS, MANUAL, mapping=mapping)
        coverages = [c.model_dump(mode="json") for c in result.coverages]
        keys = collector.write("snap-1", TAKEN, coverages, SETTINGS)
        spilled = collector.devices
    return {"coverages": coverages, "evidence_keys": keys, "spilled": spilled}


def _snapshot(stored: dict[str, Any]) -> dict[str, Any]:
    return {"id": "snap-1", "taken_at": "2026-11-02T09:00:00Z", "evidence_keys": stored["evidence_keys"]}


def _evidence(stored: dict[str, Any], coverage: str, key: str, sort: str = "reason") -> dict[str, Any]:
    index = evidence_files.read_index(stored["evidence_keys"][coverage]["index"])
    return row_evidence(
        _snapshot(stored), coverage, key, index, (sort.removeprefix("-"), sort[0] == "-"), 0, 50
    )


def _devices(evidence: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(d["name"], d["reason"]) for d in evidence["devices"]]


def test_every_device_of_a_row_is_listed_counted_or_with_the_reason_it_is_left_out(
    stored: dict[str, Any],
) -> None:
    assert stored["spilled"] == 11  # every device belongs to a row's organization
    acme = _evidence(stored, "edr", "acme")
    # Left out first, in the order the reasons are checked, then by name; counted last.
    assert _devices(acme) == [
        ("HQ-NEW", "pending"),
        ("BR-OLD", "inactive"),
        ("BR-PHONE", "class_not_covered"),
        ("BR-GHOST", "never_seen"),
        ("HQ-SRV", "stale"),
        ("BR-SRV", None),
        ("HQ-WS-1", None),
        ("HQ-WS-2", None),
    ]
    assert acme["devices_total"] == 8 and acme["devices_counted"] == 3
    assert acme["devices_left_out"] == {
        "pending": 1,
        "inactive": 1,
        "class_not_covered": 1,
        "never_seen": 1,
        "stale": 1,
    }
    hq_srv = next(d for d in acme["devices"] if d["name"] == "HQ-SRV")
    assert hq_srv == {
        "id": "ninjaone:103",
        "name": "HQ-SRV",
        "organization": "Acme HQ",
        "device_class": "server",
        "last_seen": "2026-09-22T12:00:00Z",
        "state": "active",
        "reason": "stale",
        "rule": None,  # no exclusion rule left it out
    }
    # The same devices in a coverage of servers only: workstations and the phone are not covered.
    backup = _evidence(stored, "backup", "acme", "name")
    assert _devices(backup) == [
        ("BR-GHOST", "class_not_covered"),
        ("BR-OLD", "inactive"),
        ("BR-PHONE", "class_not_covered"),
        ("BR-SRV", None),
        ("HQ-NEW", "pending"),
        ("HQ-SRV", "stale"),
        ("HQ-WS-1", "class_not_covered"),
        ("HQ-WS-2", "class_not_covered"),
    ]


def test_the_evidence_agrees_with_the_rows_counts_in_every_coverage(stored: dict[str, Any]) -> None:
    for coverage in stored["coverages"]:
        for row in coverage["rows"]:
            key = row["pax8_company_id"] or row["rmm_organization_ids"][0]
            evidence = _evidence(stored, coverage["id"], key)
            if row["devices"] is not None:
                assert evidence["devices_counted"] == row["devices"], (coverage["id"], key)
            left_out = {reason: n for reason, n in row["excluded"].items() if n}
            assert evidence["devices_left_out"] == left_out, (coverage["id"], key)
            counted = sum(s["quantity"] for s in evidence["subscriptions"] if s["counted"])
            assert counted == (row["licenses"] or 0), (coverage["id"], key)


def test_each_subscription_says_whether_it_is_counted_and_why_not(stored: dict[str, Any]) -> None:
    acme = _evidence(stored, "edr", "acme")
    assert [(s["id"], s["quantity"], s["counted"], s["reason"]) for s in acme["subscriptions"]] == [
        ("s-acme-edr", 3, True, None),
        ("s-acme-old", 2, False, "status Cancelled is not counted"),
    ]
    first = acme["subscriptions"][0]
    assert (first["product"], first["price"], first["partner_cost"], first["currency"]) == (
        "Huntress Managed EDR",
        "5.00",
        "4.00",
        "USD",
    )
    backup = _evidence(stored, "backup", "acme")["subscriptions"]
    assert [(s["id"], s["price_left_out"]) for s in backup] == [
        ("s-acme-backup", "billing term Trial has no months per term in the settings")
    ]
    birch = _evidence(stored, "edr", "birch")["subscriptions"]
    assert [(s["id"], s["counted"], s["price_left_out"]) for s in birch] == [
        ("s-birch-edr", True, "no price")
    ]


def test_rows_without_devices_or_without_a_company_have_only_their_side(stored: dict[str, Any]) -> None:
    cedar = _evidence(stored, "edr", "cedar")  # a company no organization is mapped to
    assert cedar["devices"] == [] and [s["id"] for s in cedar["subscriptions"]] == ["s-cedar-edr"]
    lab = _evidence(stored, "edr", "ninjaone:4")  # an organization no company holds
    assert lab["client"] == "Lab" and lab["subscriptions"] == []
    assert _devices(lab) == [("LAB-1", None), ("LAB-2", None)]
    with pytest.raises(Exception, match="client 'ninjaone:4' has no row in coverage 'backup'"):
        _evidence(stored, "backup", "ninjaone:4")  # Lab has no server: no Backup row


def test_a_coverage_read_whole_lists_its_rows_in_the_clients_order_across_buckets(
    stored: dict[str, Any],
) -> None:
    rows = list(evidence_files.iter_rows(stored["evidence_keys"]["edr"]["data"]))
    assert [r["client"] for r in rows] == ["Acme", "Birch", "Cedar", "Lab"]
    out = io.BytesIO()
    lines = write_evidence_csv(out, rows, "EDR", "2026-11-02T09:00:00Z")
    table = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert lines == len(table) - 1 == 2 + 8 + 1 + 1 + 1 + 2  # Acme 2 subs 8 devices; Birch; Cedar; Lab
    header = table[0]
    assert header[:5] == ["Client", "Item", "Counted", "Reason", "Name or product"]
    first_device = dict(zip(header, table[3], strict=True))
    assert first_device["Client"] == "Acme" and first_device["Name or product"] == "HQ-NEW"
    assert (
        first_device["Counted"] == "No"
        and first_device["Reason"] == "pending: waiting for approval in the RMM"
    )
    cancelled = dict(zip(header, table[2], strict=True))
    assert (cancelled["Item"], cancelled["Quantity"], cancelled["Reason"]) == (
        "Subscription",
        "2",
        "status Cancelled is not counted",
    )
