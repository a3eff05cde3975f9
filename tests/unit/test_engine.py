"""The reconciliation engine, case by case. Every expected number is worked out by hand beside it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.engine_builders import BACKUP, EDR, company, devices, org, pax8, rmm, sub
from trueup.domain.models import (
    Coverage,
    CurrencyTotals,
    DeviceClass,
    DeviceState,
    ExclusionReason,
    Row,
    Settings,
    SkippedRecord,
    Status,
    Summary,
)
from trueup.domain.reconcile import reconcile, status_for

ONLY_EDR = Settings(coverages=[EDR])


def table(rows: list[Row]) -> list[tuple[str, int | None, int | None, int | None, str]]:
    return [(r.client, r.devices, r.licenses, r.variance, r.status.value) for r in rows]


def test_every_status_with_both_unmapped_sides_in_reading_order() -> None:
    data = pax8(
        [company("alpha"), company("bravo"), company("charlie"), company("delta")],
        [sub("s1", "alpha", 5), sub("s2", "bravo", 10), sub("s3", "charlie", 3), sub("s4", "delta", 4)],
    )
    inventory = rmm(
        [org(1, "Alpha"), org(2, "Bravo"), org(3, "Charlie"), org(9, "Echo")],
        devices(1, 7) + devices(2, 6) + devices(3, 3) + devices(9, 2),
    )
    [edr] = reconcile(data, inventory, ONLY_EDR).coverages
    # Alpha 7 devices - 5 licences = +2 (under); Bravo 6 - 10 = -4 (over); Charlie 3 - 3 = 0 (matched);
    # Delta holds 4 licences but has no RMM organization; Echo has 2 devices but no Pax8 company.
    assert table(edr.rows) == [
        ("Alpha", 7, 5, 2, "under_licensed"),
        ("Delta", None, 4, None, "unmapped"),
        ("Echo", 2, None, None, "unmapped"),
        ("Bravo", 6, 10, -4, "over_licensed"),
        ("Charlie", 3, 3, 0, "matched"),
    ]
    # Every subscription here: $5.00 a month billed, $4.00 paid to Pax8. Alpha +2: $10.00 not billed,
    # $8.00 to buy; Bravo -4: the client overpays $20.00, the MSP $16.00; Charlie matched: in neither.
    usd = CurrencyTotals(
        under_licensed_price_gap=Decimal("10.00"),
        under_licensed_cost_gap=Decimal("8.00"),
        over_licensed_price_gap=Decimal("-20.00"),
        over_licensed_cost_gap=Decimal("-16.00"),
    )
    assert edr.summary == Summary(
        under_licensed=1, over_licensed=1, matched=1, unmapped=2, money={"USD": usd}
    )
    delta, echo = edr.rows[1], edr.rows[2]
    assert (delta.pax8_company_id, delta.rmm_organization_ids) == ("delta", [])
    assert (echo.pax8_company_id, echo.rmm_organization_ids) == (None, ["ninjaone:9"])


def test_two_coverages_are_never_added_together() -> None:
    # 20 workstations with EDR for 20 and backup for 20: 20 licences of each, not 40.
    data = pax8([company("acme")], [sub("s1", "acme", 20, "p-edr"), sub("s2", "acme", 20, "p-backup")])
    results = reconcile(
        data, rmm([org(1, "Acme")], devices(1, 20)), Settings(coverages=[EDR, BACKUP])
    ).coverages
    assert [(c.id, table(c.rows)) for c in results] == [
        ("edr", [("Acme", 20, 20, 0, "matched")]),
        ("backup", [("Acme", 20, 20, 0, "matched")]),
    ]


def test_a_client_holding_only_one_of_two_coverages_appears_only_in_that_one() -> None:
    data = pax8([company("acme")], [sub("s1", "acme", 8, "p-edr")])
    edr, backup = reconcile(
        data, rmm([org(1, "Acme")], devices(1, 10)), Settings(coverages=[EDR, BACKUP])
    ).coverages
    assert table(edr.rows) == [("Acme", 10, 8, 2, "under_licensed")]
    assert backup.rows == []
    assert backup.summary == Summary()


def test_billing_terms_and_class_variants_of_one_coverage_add_up() -> None:
    coverage = Coverage(id="s1", name="SentinelOne Control", product_ids=["p-ws", "p-srv"])
    data = pax8(
        [company("acme")],
        [
            sub("m", "acme", 3, "p-ws", term="Monthly"),
            sub("a", "acme", 2, "p-ws", term="Annual"),
            sub("srv", "acme", 1, "p-srv", term="Monthly"),
        ],
    )
    inventory = rmm([org(1, "Acme")], devices(1, 5) + devices(1, 1, cls=DeviceClass.SERVER))
    [row] = reconcile(data, inventory, Settings(coverages=[coverage])).coverages[0].rows
    # licences 3 + 2 + 1 = 6; devices 5 workstations + 1 server = 6
    assert (row.devices, row.licenses, row.variance, row.status) == (6, 6, 0, Status.MATCHED)


def test_sites_roll_up_into_one_company_through_a_manual_mapping() -> None:
    data = pax8([company("contoso", "Contoso")], [sub("s1", "contoso", 10)])
    inventory = rmm([org(1, "Contoso"), org(2, "Contoso - Denver")], devices(1, 8) + devices(2, 4))
    # Automatic mapping only takes "Contoso"; Denver shows as its own unmapped organization.
    [edr] = reconcile(data, inventory, ONLY_EDR).coverages
    assert table(edr.rows) == [
        ("Contoso - Denver", 4, None, None, "unmapped"),
        ("Contoso", 8, 10, -2, "over_licensed"),
    ]
    # Once both sites are mapped to the company, 8 + 4 = 12 devices against 10 licences.
    [edr] = reconcile(data, inventory, ONLY_EDR, {"contoso": ["ninjaone:1", "ninjaone:2"]}).coverages
    assert table(edr.rows) == [("Contoso", 12, 10, 2, "under_licensed")]
    assert edr.rows[0].rmm_organization_ids == ["ninjaone:1", "ninjaone:2"]


def test_every_exclusion_reason_is_counted_per_client() -> None:
    inventory = rmm(
        [org(1, "Acme")],
        devices(1, 2)  # counted
        + devices(1, 1, cls=DeviceClass.SERVER, seen_days_ago=30)  # exactly 30 days: still counted
        + devices(1, 1, state=DeviceState.PENDING)
        + devices(1, 1, state=DeviceState.DELETED)
        + devices(1, 1, state=DeviceState.SUSPENDED)
        + devices(1, 1, seen_days_ago=None)  # never seen
        + devices(1, 1, seen_days_ago=30.5)  # stale
        + devices(1, 1, cls=DeviceClass.NETWORK)
        + devices(1, 1, cls=DeviceClass.VIRTUAL_GUEST)
        + devices(1, 1, cls=DeviceClass.MOBILE)
        # a reason is counted once, in order: pending, inactive, class not covered, never seen, stale
        + devices(1, 1, cls=DeviceClass.NETWORK, state=DeviceState.PENDING)  # pending
        + devices(1, 1, cls=DeviceClass.NETWORK, seen_days_ago=90)  # class not covered, not stale
        + devices(1, 1, state=DeviceState.DELETED, seen_days_ago=None),  # inactive, not never seen
    )
    [row] = reconcile(pax8([company("acme")], [sub("s1", "acme", 3)]), inventory, ONLY_EDR).coverages[0].rows
    assert (row.devices, row.licenses, row.variance, row.status) == (3, 3, 0, Status.MATCHED)
    assert row.excluded == {
        ExclusionReason.DUPLICATE: 0,  # one RMM (tests/unit/test_device_identity.py: two)
        ExclusionReason.PENDING: 2,
        ExclusionReason.INACTIVE: 3,
        ExclusionReason.EXCLUDED_BY_RULE: 0,  # no exclusion rule (tests/unit/test_review.py)
        ExclusionReason.CLASS_NOT_COVERED: 4,
        ExclusionReason.NEVER_SEEN: 1,
        ExclusionReason.STALE: 1,
    }


def test_staleness_is_measured_from_the_rmm_sync_and_follows_the_setting() -> None:
    inventory = rmm([org(1, "Acme")], devices(1, 1, seen_days_ago=5) + devices(1, 1, seen_days_ago=12))
    data = pax8([company("acme")], [sub("s1", "acme", 2)])
    [row] = reconcile(data, inventory, Settings(coverages=[EDR], stale_after_days=10)).coverages[0].rows
    assert (row.devices, row.excluded[ExclusionReason.STALE], row.status) == (1, 1, Status.OVER_LICENSED)
    # A device whose clock runs ahead of the sync is seen, not stale.
    ahead = rmm([org(1, "Acme")], devices(1, 2, seen_days_ago=-1))
    [row] = reconcile(data, ahead, ONLY_EDR).coverages[0].rows
    assert row.devices == 2


def test_a_coverage_counts_only_its_device_classes() -> None:
    servers_only = Coverage(
        id="srv", name="Server backup", product_ids=["p-backup"], device_classes=[DeviceClass.SERVER]
    )
    inventory = rmm([org(1, "Acme")], devices(1, 6) + devices(1, 2, cls=DeviceClass.SERVER))
    data = pax8([company("acme")], [sub("s1", "acme", 2, "p-backup")])
    [row] = reconcile(data, inventory, Settings(coverages=[servers_only])).coverages[0].rows
    assert (row.devices, row.excluded[ExclusionReason.CLASS_NOT_COVERED], row.status) == (
        2,
        6,
        Status.MATCHED,
    )


@pytest.mark.parametrize(
    ("variance", "tolerance", "expected"),
    [
        (0, 0, Status.MATCHED),
        (1, 0, Status.UNDER_LICENSED),
        (-1, 0, Status.OVER_LICENSED),
        (1, 1, Status.MATCHED),
        (-1, 1, Status.MATCHED),
        (2, 1, Status.UNDER_LICENSED),
        (-2, 1, Status.OVER_LICENSED),
        (-5, 5, Status.MATCHED),
        (6, 5, Status.UNDER_LICENSED),
    ],
)
def test_status_follows_variance_and_tolerance(variance: int, tolerance: int, expected: Status) -> None:
    assert status_for(variance, tolerance) is expected


def test_tolerance_applies_to_rows_but_never_to_unmapped_rows() -> None:
    data = pax8([company("acme"), company("solo")], [sub("s1", "acme", 10), sub("s2", "solo", 1)])
    inventory = rmm([org(1, "Acme")], devices(1, 11))
    [edr] = reconcile(data, inventory, Settings(coverages=[EDR], tolerance=1)).coverages
    # Acme +1 is within the tolerance; Solo has 1 licence and no organization: unmapped, never matched.
    assert table(edr.rows) == [("Solo", None, 1, None, "unmapped"), ("Acme", 11, 10, 1, "matched")]


def test_only_counted_subscription_statuses_become_licences() -> None:
    data = pax8(
        [company("acme")],
        [
            sub("a", "acme", 4, status="Active"),
            sub("b", "acme", 2, status="Activated"),
            sub("c", "acme", 1, status="PendingCancel"),
            sub("d", "acme", 50, status="Cancelled"),
            sub("e", "acme", 50, status="Trial"),
            sub("f", "acme", 50, status="PendingManual"),
            sub("g", "acme", 50, status="SomethingPax8AddsLater"),
        ],
    )
    inventory = rmm([org(1, "Acme")], devices(1, 7))
    [row] = reconcile(data, inventory, ONLY_EDR).coverages[0].rows
    assert (row.licenses, row.variance, row.status) == (4 + 2 + 1, 0, Status.MATCHED)
    # Counting trials too is a setting: 7 + 50 = 57 licences against 7 devices.
    [row] = (
        reconcile(
            data,
            inventory,
            Settings(coverages=[EDR], counted_statuses=["Active", "Activated", "PendingCancel", "Trial"]),
        )
        .coverages[0]
        .rows
    )
    assert (row.licenses, row.variance, row.status) == (57, -50, Status.OVER_LICENSED)


def test_clients_without_licences_get_no_row_unless_the_coverage_is_required() -> None:
    required = EDR.model_copy(update={"required": True})
    data = pax8(
        [company("acme"), company("bolt"), company("calm"), company("dune")],
        [sub("s1", "acme", 5), sub("s2", "bolt", 9, status="Cancelled")],
    )
    inventory = rmm(
        [org(1, "Acme"), org(2, "Bolt"), org(3, "Calm")],
        devices(1, 5) + devices(2, 3) + devices(3, 2, state=DeviceState.PENDING),
    )
    # Not required: Bolt (cancelled, 3 devices) and Calm (only pending devices) have no row.
    assert table(reconcile(data, inventory, ONLY_EDR).coverages[0].rows) == [("Acme", 5, 5, 0, "matched")]
    # Required: Bolt's 3 counted devices with 0 licences are under-licensed; Calm counts 0 devices and
    # holds nothing, so still no row; Dune has no organization and no licence: no row.
    rows = reconcile(data, inventory, Settings(coverages=[required])).coverages[0].rows
    assert table(rows) == [("Bolt", 3, 0, 3, "under_licensed"), ("Acme", 5, 5, 0, "matched")]


def test_a_mapped_client_whose_devices_are_all_excluded_shows_zero_devices() -> None:
    data = pax8([company("acme")], [sub("s1", "acme", 4)])
    inventory = rmm([org(1, "Acme")], devices(1, 3, seen_days_ago=60))
    [row] = reconcile(data, inventory, ONLY_EDR).coverages[0].rows
    assert (row.devices, row.licenses, row.variance, row.status) == (0, 4, -4, Status.OVER_LICENSED)
    assert row.excluded[ExclusionReason.STALE] == 3


def test_an_unmapped_organization_appears_only_where_it_has_counted_devices() -> None:
    servers = Coverage(
        id="srv", name="Servers", product_ids=["p-backup"], device_classes=[DeviceClass.SERVER]
    )
    data = pax8([company("acme")], [sub("s1", "acme", 1), sub("s2", "acme", 1, "p-backup")])
    inventory = rmm(
        [org(1, "Acme"), org(7, "Orphan Workstations"), org(8, "Orphan Stale")],
        devices(1, 1)
        + devices(1, 1, cls=DeviceClass.SERVER)
        + devices(7, 3)
        + devices(8, 2, seen_days_ago=45),
    )
    edr, srv = reconcile(data, inventory, Settings(coverages=[EDR, servers])).coverages
    # EDR: Acme 1 workstation + 1 server against 1 licence; the orphan's 3 workstations count, the
    # stale organization has nothing counted and so no row. Servers: the orphans have no server.
    assert table(edr.rows) == [
        ("Acme", 2, 1, 1, "under_licensed"),
        ("Orphan Workstations", 3, None, None, "unmapped"),
    ]
    assert table(srv.rows) == [("Acme", 1, 1, 0, "matched")]


def test_rows_are_ordered_by_status_then_size_then_name_ignoring_case() -> None:
    names = ["delta", "Alpha", "bravo", "Charlie", "echo", "Foxtrot", "golf", "Hotel"]
    # licences, devices per client: under +1, +3, +3; over -2, -5, -2; matched twice
    plan = {
        "delta": (1, 2),
        "alpha": (1, 4),
        "bravo": (2, 5),
        "charlie": (5, 3),
        "echo": (6, 1),
        "foxtrot": (4, 2),
        "golf": (3, 3),
        "hotel": (2, 2),
    }
    companies = [company(n.casefold(), n) for n in names]
    subs = [sub(f"s{i}", cid, plan[cid][0]) for i, cid in enumerate(plan)]
    orgs = [org(i, n) for i, n in enumerate(names, start=1)]
    devs = [d for i, n in enumerate(names, start=1) for d in devices(i, plan[n.casefold()][1])]
    rows = reconcile(pax8(companies, subs), rmm(orgs, devs), ONLY_EDR).coverages[0].rows
    assert [(r.client, r.variance) for r in rows] == [
        ("Alpha", 3),
        ("bravo", 3),
        ("delta", 1),  # under: largest first, ties by name
        ("echo", -5),
        ("Charlie", -2),
        ("Foxtrot", -2),  # over: most negative first
        ("golf", 0),
        ("Hotel", 0),  # matched: by name
    ]


def test_skipped_records_become_warnings_on_the_rows_they_touch() -> None:
    bad_sub = SkippedRecord(
        source="pax8",
        kind="subscription",
        id="sub-9",
        reason="quantity 'ten' is not a number",
        company_id="acme",
    )
    bad_device = SkippedRecord(
        source="ninjaone",
        kind="device",
        id="ninjaone:77",
        reason="lastContact 'soon' is not a number",
        organization_id="ninjaone:2",
    )
    loose = SkippedRecord(source="pax8", kind="subscription", id=None, reason="record is not an object")
    data = pax8(
        [company("acme"), company("bolt")],
        [sub("s1", "acme", 2), sub("s2", "bolt", 2)],
        skipped=[bad_sub, loose],
    )
    inventory = rmm([org(1, "Acme"), org(2, "Bolt")], devices(1, 2) + devices(2, 2), skipped=[bad_device])
    result = reconcile(data, inventory, ONLY_EDR)
    acme, bolt = sorted(result.coverages[0].rows, key=lambda r: r.client)
    assert acme.warnings == [
        "Pax8: 1 subscription record skipped as malformed (sub-9: quantity 'ten' is not a number); "
        "licences may be undercounted"
    ]
    assert bolt.warnings == [
        "NinjaOne: 1 device record skipped as malformed (ninjaone:77: lastContact 'soon' is not a number); "
        "devices may be undercounted"
    ]
    assert result.warnings == [
        "Pax8: 1 subscription record skipped as malformed (no id: record is not an object); "
        "licences may be undercounted"
    ]


def test_the_same_data_always_gives_the_same_answer() -> None:
    data = pax8([company("acme")], [sub("s1", "acme", 2)])
    inventory = rmm([org(1, "Acme")], devices(1, 3, seen_days_ago=29))
    first = reconcile(data, inventory, ONLY_EDR)
    assert first == reconcile(data, inventory, ONLY_EDR)
    assert table(first.coverages[0].rows) == [("Acme", 3, 2, 1, "under_licensed")]
