"""What people decided, applied by the engine: every case small and worked out by hand.

Builders: tests/engine_builders (SYNCED = 2026-11-01 12:00 UTC; a subscription is priced 5.00 a
licence and month, cost 4.00, USD, unless told otherwise; devices are workstations seen a day before
the sync). Coverages: EDR (product p-edr) and Backup (p-backup), both workstations and servers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tests.engine_builders import BACKUP, EDR, SYNCED, company, devices, org, pax8, rmm, sub
from trueup.domain.models import (
    ClientTerms,
    CoverageResult,
    Decision,
    DecisionKind,
    Device,
    DeviceClass,
    DeviceState,
    ExclusionReason,
    ExclusionRule,
    Pax8Data,
    Reconciliation,
    Review,
    RmmData,
    Row,
    Settings,
)
from trueup.domain.reconcile import reconcile

SETTINGS = Settings(coverages=[EDR, BACKUP])
DECIDED = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)
ADA = {"subject": "u-admin", "name": "Ada Admin"}


def coverage(result: Reconciliation, coverage_id: str) -> CoverageResult:
    found: CoverageResult = next(c for c in result.coverages if c.id == coverage_id)
    return found


def row(result: Reconciliation, coverage_id: str, client: str) -> Row:
    found: Row = next(r for r in coverage(result, coverage_id).rows if r.client == client)
    return found


def acme(device_count: int, licences: int = 10) -> tuple[Pax8Data, RmmData]:
    """Acme: `device_count` workstations in its organization, `licences` EDR licences."""
    return (
        pax8([company("acme", "Acme")], [sub("s1", "acme", licences)]),
        rmm([org(1, "Acme")], devices(1, device_count)),
    )


def decision(
    kind: DecisionKind, devices_then: int | None = 12, licences_then: int | None = 10, **more: object
) -> Decision:
    return Decision(
        kind=kind,
        reason="agreed with the client",
        decided_by=ADA,
        decided_at=DECIDED,
        devices=devices_then,
        licenses=licences_then,
        **more,
    )


# --- decisions ---------------------------------------------------------------------------------------


def test_a_will_bill_decision_carries_forward_while_the_figures_hold_and_lapses_when_they_change() -> None:
    review = Review(decisions={"edr/acme": decision(DecisionKind.WILL_BILL, effective=date(2026, 12, 1))})
    # 12 devices, 10 licences: as decided. The gap stays on the red card: it is being acted on.
    result = reconcile(*acme(12), SETTINGS, review=review)
    shown = row(result, "edr", "Acme")
    assert (shown.variance, shown.status.value) == (2, "under_licensed")
    assert shown.decision is not None
    assert (shown.decision.kind, shown.decision.lapsed, shown.decision.effective) == (
        DecisionKind.WILL_BILL,
        False,
        date(2026, 12, 1),
    )
    assert shown.decision.decided_by == ADA and shown.decision.reason == "agreed with the client"
    summary = coverage(result, "edr").summary
    assert summary.under_licensed == 1 and summary.set_aside == {}
    # One more device: the decision was about 12 devices, so it lapses (still shown, and why).
    later = row(reconcile(*acme(13), SETTINGS, review=review), "edr", "Acme")
    assert later.decision is not None and later.decision.lapsed
    assert later.decision.lapsed_because == (
        "the figures changed since it was decided (12 devices, 10 licences then, 13 devices, 10 licences now)"
    )
    # Fewer licences lapse it too.
    fewer = row(reconcile(*acme(12, licences=9), SETTINGS, review=review), "edr", "Acme")
    assert fewer.decision is not None and fewer.decision.lapsed


def test_a_dismissed_gap_leaves_the_cards_with_its_money_counted_apart_and_never_lapses() -> None:
    review = Review(decisions={"edr/acme": decision(DecisionKind.DISMISSED)})
    result = reconcile(*acme(12), SETTINGS, review=review)
    shown = row(result, "edr", "Acme")
    assert shown.status.value == "under_licensed"  # the gap is still what it is
    summary = coverage(result, "edr").summary
    assert (summary.under_licensed, summary.over_licensed, summary.matched, summary.unmapped) == (0, 0, 0, 0)
    assert summary.money == {}
    assert summary.set_aside == {DecisionKind.DISMISSED: 1}
    # +2 x 5.00 billed and 2 x 4.00 cost a month, set aside.
    totals = summary.set_aside_money["USD"]
    assert (totals.under_licensed_price_gap, totals.under_licensed_cost_gap) == (
        Decimal("10.00"),
        Decimal("8.00"),
    )
    # Other figures later: a dismissal stays until an admin removes it.
    later = row(reconcile(*acme(15), SETTINGS, review=review), "edr", "Acme")
    assert later.decision is not None and not later.decision.lapsed
    # It belongs to the coverage it was made in: Backup knows nothing of it.
    both = pax8([company("acme", "Acme")], [sub("s1", "acme", 10), sub("s2", "acme", 10, "p-backup")])
    backup = row(reconcile(both, acme(12)[1], SETTINGS, review=review), "backup", "Acme")
    assert (
        backup.decision is None
        and coverage(reconcile(both, acme(12)[1], SETTINGS, review=review), "backup").summary.under_licensed
        == 1
    )


@pytest.mark.parametrize(
    ("as_of", "muted"),
    [
        (datetime(2026, 11, 10, tzinfo=UTC), True),
        (datetime(2026, 11, 15, 23, 59, tzinfo=UTC), True),  # its last day
        (datetime(2026, 11, 16, 0, 1, tzinfo=UTC), False),
    ],
)
def test_a_mute_holds_until_its_date_and_then_expires(as_of: datetime, muted: bool) -> None:
    review = Review(decisions={"edr/acme": decision(DecisionKind.MUTED, until=date(2026, 11, 15))})
    result = reconcile(*acme(12), SETTINGS, review=review, as_of=as_of)
    shown = row(result, "edr", "Acme")
    summary = coverage(result, "edr").summary
    assert shown.decision is not None and shown.decision.lapsed is not muted
    if muted:
        assert (summary.under_licensed, summary.set_aside) == (0, {DecisionKind.MUTED: 1})
    else:
        assert shown.decision.lapsed_because == "muted until 2026-11-15, which has passed"
        assert (summary.under_licensed, summary.set_aside) == (1, {})


def test_an_unmapped_row_can_be_decided_on_by_its_organization_id() -> None:
    data = pax8([company("acme", "Acme")], [sub("s1", "acme", 1)])
    devs = rmm([org(1, "Acme"), org(7, "Internal IT - Lab")], [*devices(1, 1), *devices(7, 4)])
    review = Review(decisions={"edr/ninjaone:7": decision(DecisionKind.DISMISSED, 4, None)})
    result = reconcile(data, devs, SETTINGS, review=review)
    lab = row(result, "edr", "Internal IT - Lab")
    assert lab.status.value == "unmapped" and lab.decision is not None and not lab.decision.lapsed
    assert coverage(result, "edr").summary.unmapped == 0


# --- not billable ------------------------------------------------------------------------------------


def test_an_allowance_counts_devices_up_to_it_as_licensed() -> None:
    data = pax8(
        [company("birch", "Birch"), company("cedar", "Cedar")],
        [sub("s1", "birch", 2), sub("s2", "cedar", 5)],
    )
    devs = rmm([org(1, "Birch"), org(2, "Cedar")], [*devices(1, 27), *devices(2, 20)])
    plain = reconcile(data, devs, SETTINGS)
    assert row(plain, "edr", "Birch").variance == 25  # 27 devices, 2 licences
    review = Review(terms={"edr/birch": ClientTerms(allowance=25), "edr/cedar": ClientTerms(allowance=25)})
    result = reconcile(data, devs, SETTINGS, review=review)
    birch = row(result, "edr", "Birch")
    # max(27 - 25, 0) - 2 = 0: matched; the allowance is shown on the row.
    assert (birch.variance, birch.status.value, birch.allowance) == (0, "matched", 25)
    # 20 devices are all included: its 5 licences are not needed. max(20 - 25, 0) - 5 = -5.
    cedar = row(result, "edr", "Cedar")
    assert (cedar.variance, cedar.status.value) == (-5, "over_licensed")
    assert cedar.amounts is not None and cedar.amounts.monthly_price_gap == Decimal("-25.00")


def test_a_clients_own_tolerance_replaces_the_settings() -> None:
    data = pax8(
        [company("acme", "Acme"), company("dune", "Dune")], [sub("s1", "acme", 10), sub("s2", "dune", 10)]
    )
    devs = rmm([org(1, "Acme"), org(2, "Dune")], [*devices(1, 13), *devices(2, 13)])
    review = Review(terms={"edr/acme": ClientTerms(tolerance=3)})
    result = reconcile(data, devs, SETTINGS, review=review)
    acme_row, dune_row = row(result, "edr", "Acme"), row(result, "edr", "Dune")
    assert (acme_row.variance, acme_row.status.value, acme_row.tolerance) == (3, "matched", 3)
    assert (dune_row.variance, dune_row.status.value, dune_row.tolerance) == (3, "under_licensed", None)


def named(n: int, org_n: int, name: str, state: str = "active", tags: tuple[str, ...] = ()) -> Device:
    return Device(
        id=f"ninjaone:{n}",
        organization_id=f"ninjaone:{org_n}",
        name=name,
        device_class=DeviceClass.WORKSTATION,
        last_seen=SYNCED,
        state=DeviceState(state),
        tags=list(tags),
    )


def test_a_name_pattern_rule_leaves_devices_out_of_its_coverages_with_the_rules_name() -> None:
    rule = ExclusionRule(name="Lab machines", coverage_ids=["edr"], name_patterns=["LAB-*"])
    data = pax8([company("acme", "Acme")], [sub("s1", "acme", 10), sub("s2", "acme", 13, "p-backup")])
    devs = rmm(
        [org(1, "Acme")],
        [
            *devices(1, 10),
            named(901, 1, "LAB-1"),
            named(902, 1, "lab-2"),  # any case
            named(903, 1, "LAB-3", state="pending"),  # pending is checked first
            named(904, 1, "MYLAB-4"),  # the pattern is the whole name
        ],
    )
    result = reconcile(data, devs, SETTINGS, review=Review(rules=[rule]))
    edr = row(result, "edr", "Acme")
    # 10 + MYLAB-4 counted; LAB-1 and lab-2 by the rule; LAB-3 pending.
    assert edr.devices == 11 and edr.variance == 1
    assert edr.excluded[ExclusionReason.EXCLUDED_BY_RULE] == 2 and edr.excluded[ExclusionReason.PENDING] == 1
    assert edr.excluded_rules == {"Lab machines": 2}
    # Backup is not one of the rule's coverages: the lab machines count there.
    backup = row(result, "backup", "Acme")
    assert (
        backup.devices == 13
        and backup.excluded[ExclusionReason.EXCLUDED_BY_RULE] == 0
        and backup.excluded_rules == {}
    )


def test_a_tag_rule_fits_an_rmm_group_convention() -> None:
    rule = ExclusionRule(name="Not billable", tags=["_NotBillable_"])  # every coverage
    data = pax8([company("acme", "Acme")], [sub("s1", "acme", 2)])
    devs = rmm([org(1, "Acme")], [*devices(1, 2), named(950, 1, "KIOSK", tags=("_notbillable_",))])
    edr = row(reconcile(data, devs, SETTINGS, review=Review(rules=[rule])), "edr", "Acme")
    assert (edr.devices, edr.variance, edr.excluded_rules) == (2, 0, {"Not billable": 1})


def test_an_ignored_organization_leaves_every_coverage_and_the_unmapped_lists() -> None:
    data = pax8(
        [company("acme", "Acme")],
        [sub("s1", "acme", 3), sub("s2", "acme", 3, "p-backup")],
    )
    devs = rmm(
        [org(1, "Acme"), org(7, "Internal IT - Lab"), org(8, "Acme Annex")],
        [*devices(1, 3), *devices(7, 5), *devices(8, 2)],
    )
    plain = reconcile(data, devs, SETTINGS, {"acme": ["ninjaone:1", "ninjaone:8"]})
    assert {r.client for r in coverage(plain, "edr").rows} == {"Acme", "Internal IT - Lab"}
    review = Review(ignored_organizations={"ninjaone:7": "our own lab", "ninjaone:8": "a test tenant"})
    result = reconcile(data, devs, SETTINGS, {"acme": ["ninjaone:1", "ninjaone:8"]}, review=review)
    for coverage_id in ("edr", "backup"):
        rows = coverage(result, coverage_id).rows
        assert [(r.client, r.devices, r.variance, r.rmm_organization_ids) for r in rows] == [
            ("Acme", 3, 0, ["ninjaone:1"])  # the annex, though mapped by hand, is no one's now
        ]
        assert coverage(result, coverage_id).summary.unmapped == 0
    assert result.mapping.unmapped_rmm == []
