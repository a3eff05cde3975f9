"""The reconciliation engine: per coverage, per client, devices against licences.

Pure: data in, rows out. It reads no clock (staleness is measured from when the RMM data was
synced, so the same data always gives the same answer) and does no I/O.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from trueup.domain.coverages import in_coverage, products_in_use, propose_coverages
from trueup.domain.device_identity import (
    MergedDevice,
    describe_merge,
    merged_across_sources,
    rows_across_sources,
    source_of,
)
from trueup.domain.mapping import map_clients
from trueup.domain.models import (
    Coverage,
    CoverageResult,
    Device,
    DeviceClass,
    DeviceState,
    ExclusionReason,
    ExclusionRule,
    MappingResult,
    Organization,
    Pax8Data,
    Reconciliation,
    Review,
    RmmData,
    Row,
    RowDecision,
    Settings,
    SkippedRecord,
    Status,
    Subscription,
    Summary,
)
from trueup.domain.money import commitment_ends, coverage_totals, row_amounts
from trueup.domain.review import (
    RuleMatcher,
    billable_organizations,
    decision_on,
    review_key,
    sets_aside,
    variance_with_allowance,
)

_STATUS_RANK = {Status.UNDER_LICENSED: 0, Status.UNMAPPED: 1, Status.OVER_LICENSED: 2, Status.MATCHED: 3}
_VENDOR_LABELS = {"pax8": "Pax8", "ninjaone": "NinjaOne"}

# (reason independent of the coverage or None when the device may count, its class, the exclusion
# rules it matches by index) -> devices
_DeviceTally = Counter[tuple[ExclusionReason | None, DeviceClass, tuple[int, ...]]]


def device_reason(device: Device, rmm_synced_at: datetime, stale_after: timedelta) -> ExclusionReason | None:
    """Why a device is left out whatever the coverage, or None when only its class remains to check.

    Reasons are checked in this order: pending, inactive (deleted or suspended), then, after the
    coverage's class check, never seen and stale. A device last seen exactly `stale_after` before the
    sync still counts; one seen "after" the sync (clock skew) counts too.
    """
    if device.state is DeviceState.PENDING:
        return ExclusionReason.PENDING
    if device.state is not DeviceState.ACTIVE:
        return ExclusionReason.INACTIVE
    if device.last_seen is None:
        return ExclusionReason.NEVER_SEEN
    if rmm_synced_at - device.last_seen > stale_after:
        return ExclusionReason.STALE
    return None


def coverage_reason(
    reason: ExclusionReason | None,
    device_class: DeviceClass,
    classes: frozenset[DeviceClass],
    by_rule: bool = False,
) -> ExclusionReason | None:
    """Why a device is left out of one coverage (None: counted), from its coverage-independent
    reason: pending and inactive first, then a person's exclusion rule for this coverage (`by_rule`),
    then a class the coverage does not cover, then the rest."""
    if reason in (ExclusionReason.DUPLICATE, ExclusionReason.PENDING, ExclusionReason.INACTIVE):
        return reason
    if by_rule:
        return ExclusionReason.EXCLUDED_BY_RULE
    if device_class not in classes:
        return ExclusionReason.CLASS_NOT_COVERED
    return reason


def status_for(variance: int, tolerance: int) -> Status:
    """matched within the tolerance, under-licensed above it, over-licensed below it."""
    if abs(variance) <= tolerance:
        return Status.MATCHED
    return Status.UNDER_LICENSED if variance > 0 else Status.OVER_LICENSED


@dataclass(frozen=True)
class TalliedRmm:
    """An RMM sync with its devices already counted per organization, reason and class.

    What the engine needs from the devices, without holding them: a snapshot streams a large
    inventory through `tally_rmm` instead of loading every device.
    """

    source: str
    organizations: Sequence[Organization]
    skipped: Sequence[SkippedRecord]
    synced_at: datetime
    stale_after_days: int
    tallies: Mapping[str, _DeviceTally]
    rules: Sequence[ExclusionRule] = ()  # the exclusion rules the devices were matched against
    merged: Sequence[MergedDevice] = ()  # machines seen by two RMM sources, counted once


def merge_rows(mapping: MappingResult) -> dict[str, str]:
    """organization id -> client, for the clients whose organizations come from several RMM
    sources: where one machine may be seen twice (`tally_rmm`'s `rows_across_sources`)."""
    return rows_across_sources({m.pax8_company_id: m.rmm_organization_ids for m in mapping.mappings})


# Called with each device, its coverage-independent reason, the exclusion rules it matches, and for a
# duplicate why it is one ("counted once: seen in NinjaOne and Datto RMM, serial ...").
EachDevice = Callable[[Device, ExclusionReason | None, tuple[int, ...], str | None], object]


def tally_rmm(
    source: str,
    records: Iterable[Organization | Device | SkippedRecord],
    synced_at: datetime | Mapping[str, datetime],
    stale_after_days: int,
    each_device: EachDevice | None = None,
    rules: Sequence[ExclusionRule] = (),
    rows_across_sources: Mapping[str, str] | None = None,
    source_names: Mapping[str, str] | None = None,
) -> TalliedRmm:
    """Count a stream of RMM records (organizations, devices, skipped records in any order).

    `rules`: the exclusion rules to match each device against (trueup.domain.review). `each_device`:
    also called with every device, its coverage-independent reason and the rules it matches (what a
    snapshot's evidence keeps), so that the devices are read and judged once. `synced_at`: when the
    RMM was synced, or per RMM source (each device is judged stale against its own source's sync;
    the data is as old as the oldest). `rows_across_sources`: organization id -> row, for the rows
    whose organizations come from several RMM sources (`device_identity.rows_across_sources`): their
    devices with a serial or hardware id are held back until every device is read, then one machine
    seen by two sources is counted once (`device_identity.merged_across_sources`, preferring an
    appearance that counts); the other appearance is left out as a duplicate, and `each_device`
    gets why (`source_names` names the sources in it)."""
    by_source = synced_at if isinstance(synced_at, Mapping) else None
    oldest = min(by_source.values()) if by_source else synced_at
    assert isinstance(oldest, datetime)
    stale_after = timedelta(days=stale_after_days)
    matcher = RuleMatcher(rules)
    organizations: list[Organization] = []
    skipped: list[SkippedRecord] = []
    tallies: dict[str, _DeviceTally] = defaultdict(Counter)
    spanning = rows_across_sources or {}
    held: list[tuple[Device, ExclusionReason | None, tuple[int, ...]]] = []

    def count(
        device: Device, reason: ExclusionReason | None, matched: tuple[int, ...], note: str | None
    ) -> None:
        tallies[device.organization_id][(reason, device.device_class, matched)] += 1
        if each_device is not None:
            each_device(device, reason, matched, note)

    for record in records:
        if isinstance(record, Device):
            when = by_source.get(source_of(record), oldest) if by_source else oldest
            reason = device_reason(record, when, stale_after)
            matched = matcher.matched(record) if matcher else ()
            if record.organization_id in spanning and (record.serial or record.hardware_id):
                held.append((record, reason, matched))  # perhaps seen by another source too
            else:
                count(record, reason, matched, None)
        elif isinstance(record, Organization):
            organizations.append(record)
        else:
            skipped.append(record)
    reasons = {device.id: reason for device, reason, _ in held}
    merged = merged_across_sources(
        [device for device, _, _ in held],
        lambda device: spanning.get(device.organization_id),
        prefer=lambda device: reasons[device.id] is not None,  # one that counts, if any does
    )
    duplicates = {m.duplicate: m for m in merged}
    for device, reason, matched in held:
        twin = duplicates.get(device.id)
        if twin is None:
            count(device, reason, matched, None)
        else:
            count(device, ExclusionReason.DUPLICATE, matched, describe_merge(twin, source_names or {}))
    return TalliedRmm(
        source, organizations, skipped, oldest, stale_after_days, tallies, tuple(rules), tuple(merged)
    )


def reconcile(
    pax8: Pax8Data,
    rmm: RmmData | TalliedRmm,
    settings: Settings,
    manual_mappings: Mapping[str, Sequence[str]] | None = None,
    mapping: MappingResult | None = None,
    review: Review | None = None,
    as_of: datetime | None = None,
) -> Reconciliation:
    """Reconcile one Pax8 sync against one RMM sync under `settings` and the manual mappings.

    Returns one CoverageResult per coverage (the settings' coverages, or the proposal when the
    settings have none), each with its rows in reading order and a summary of client counts.
    `mapping`: the clients' mapping when the caller worked it out already (from the same data,
    manual mappings and ignored organizations), so that it is not worked out twice. `review`: what
    people decided (trueup.domain.review), judged `as_of` (when the snapshot is taken; default: the
    newer sync).
    """
    review = review or Review()
    if isinstance(rmm, RmmData):
        if mapping is None:
            billable = billable_organizations(rmm.organizations, review)
            mapping = map_clients(pax8.companies, billable, manual_mappings or {}, with_suggestions=False)
        rmm = tally_rmm(
            rmm.source,
            [*rmm.organizations, *rmm.skipped, *rmm.devices],
            rmm.synced_at,
            settings.stale_after_days,
            rules=review.rules,
            rows_across_sources=merge_rows(mapping),
        )
    elif rmm.stale_after_days != settings.stale_after_days:
        raise ValueError("the RMM data was tallied with another stale_after_days than the settings'")
    elif tuple(rmm.rules) != tuple(review.rules):
        raise ValueError("the RMM data was tallied with other exclusion rules than the review's")
    as_of = as_of or max(pax8.synced_at, rmm.synced_at)
    organizations = billable_organizations(rmm.organizations, review)
    if mapping is None:
        mapping = map_clients(pax8.companies, organizations, manual_mappings or {}, with_suggestions=False)
    coverages = coverages_in_use(pax8, settings)
    matcher = RuleMatcher(review.rules)

    tallies = rmm.tallies
    counted = _counted_by_coverage(pax8, coverages, settings.counted_statuses)
    licences = {
        cov: {company: n for company, subs in per.items() if (n := sum(s.quantity for s in subs)) > 0}
        for cov, per in counted.items()
    }
    warnings_by_company = _warnings(pax8.skipped, "company_id")
    warnings_by_org = _warnings(rmm.skipped, "organization_id")

    companies = {c.id: c for c in pax8.companies}
    org_names = {o.id: o.name for o in organizations}
    mapped = [(m.pax8_company_id, m.rmm_organization_ids) for m in mapping.mappings]
    org_ids_of = dict(mapped)

    results = []
    for coverage in coverages:
        held = licences.get(coverage.id, {})
        classes = frozenset(coverage.device_classes)

        def decided(key: str, devices: int | None, licensed: int | None) -> RowDecision | None:
            decision = review.decisions.get(review_key(coverage.id, key))  # noqa: B023 (used at once)
            return None if decision is None else decision_on(decision, devices, licensed, as_of)

        rows: list[Row] = []
        for company_id in held.keys() | ({c for c, orgs in mapped if orgs} if coverage.required else set()):
            org_ids = org_ids_of.get(company_id, [])
            licensed = held.get(company_id, 0)
            warnings = [w for w in warnings_by_company.get(company_id, [])]
            for org_id in org_ids:
                warnings.extend(warnings_by_org.get(org_id, []))
            if not org_ids:
                rows.append(
                    Row(
                        client=companies[company_id].name,
                        pax8_company_id=company_id,
                        rmm_organization_ids=[],
                        rmm_organization_names=[],
                        devices=None,
                        licenses=licensed,
                        variance=None,
                        status=Status.UNMAPPED,
                        excluded=_no_exclusions(),
                        warnings=warnings,
                        decision=decided(company_id, None, licensed),
                    )
                )
                continue
            devices, excluded, by_rule = _count(org_ids, tallies, classes, coverage.id, matcher)
            if licensed == 0 and devices == 0:
                continue  # a required coverage: nothing to bill, nothing held
            terms = review.terms.get(review_key(coverage.id, company_id))
            allowance = terms.allowance if terms is not None and terms.allowance else None
            tolerance = terms.tolerance if terms is not None else None
            variance = variance_with_allowance(devices, licensed, allowance or 0)
            subscriptions = counted.get(coverage.id, {}).get(company_id, [])
            amounts, why_not = row_amounts(variance, subscriptions, settings.months_per_term)
            rows.append(
                Row(
                    client=companies[company_id].name,
                    pax8_company_id=company_id,
                    rmm_organization_ids=list(org_ids),
                    rmm_organization_names=[org_names[o] for o in org_ids],
                    devices=devices,
                    licenses=licensed,
                    variance=variance,
                    status=status_for(variance, settings.tolerance if tolerance is None else tolerance),
                    excluded=excluded,
                    excluded_rules=by_rule,
                    warnings=warnings,
                    amounts=amounts,
                    amounts_warning=why_not if licensed else None,
                    commitment_ends=commitment_ends(subscriptions, pax8.synced_at),
                    allowance=allowance,
                    tolerance=tolerance,
                    decision=decided(company_id, devices, licensed),
                )
            )
        for org_id in mapping.unmapped_rmm:
            devices, excluded, by_rule = _count([org_id], tallies, classes, coverage.id, matcher)
            if devices > 0:
                rows.append(
                    Row(
                        client=org_names[org_id],
                        pax8_company_id=None,
                        rmm_organization_ids=[org_id],
                        rmm_organization_names=[org_names[org_id]],
                        devices=devices,
                        licenses=None,
                        variance=None,
                        status=Status.UNMAPPED,
                        excluded=excluded,
                        excluded_rules=by_rule,
                        warnings=list(warnings_by_org.get(org_id, [])),
                        decision=decided(org_id, devices, None),
                    )
                )
        rows.sort(key=_row_order)
        kept = [row for row in rows if not sets_aside(row.decision)]
        aside = [row for row in rows if sets_aside(row.decision)]
        summary = Summary(
            **Counter(row.status.value for row in kept),
            money=coverage_totals(kept),
            set_aside=Counter(row.decision.kind for row in aside if row.decision is not None),
            set_aside_money=coverage_totals(aside),
        )
        results.append(CoverageResult(id=coverage.id, name=coverage.name, summary=summary, rows=rows))

    attributed = {*companies, *org_names, *review.ignored_organizations}
    loose = [
        s for s in (*pax8.skipped, *rmm.skipped) if (s.company_id or s.organization_id) not in attributed
    ]
    return Reconciliation(coverages=results, mapping=mapping, warnings=_describe(loose) if loose else [])


def coverages_in_use(pax8: Pax8Data, settings: Settings) -> list[Coverage]:
    """The settings' coverages, or the proposal from the Pax8 data when the settings name none."""
    if settings.coverages is not None:
        return list(settings.coverages)
    return propose_coverages(pax8.products, pax8.subscriptions, settings.counted_statuses)


def row_keys_of_organizations(mapping: MappingResult) -> dict[str, str]:
    """Each RMM organization's row key in every coverage: its company's id when a company holds it,
    its own id when none does (trueup.domain.changes.row_key)."""
    keys = {org: m.pax8_company_id for m in mapping.mappings for org in m.rmm_organization_ids}
    keys.update({org: org for org in mapping.unmapped_rmm})
    return keys


def _row_order(row: Row) -> tuple[int, int, str, str]:
    variance = row.variance or 0
    tie = (
        -variance
        if row.status is Status.UNDER_LICENSED
        else variance
        if row.status is Status.OVER_LICENSED
        else 0
    )
    return (
        _STATUS_RANK[row.status],
        tie,
        row.client.casefold(),
        row.pax8_company_id or row.rmm_organization_ids[0],
    )


def _no_exclusions() -> dict[ExclusionReason, int]:
    return dict.fromkeys(ExclusionReason, 0)


def _count(
    org_ids: Iterable[str],
    tallies: Mapping[str, _DeviceTally],
    classes: frozenset[DeviceClass],
    coverage_id: str,
    rules: RuleMatcher,
) -> tuple[int, dict[ExclusionReason, int], dict[str, int]]:
    """(devices counted, devices left out per reason, devices left out per exclusion rule's name)."""
    counted = 0
    excluded = _no_exclusions()
    by_rule: dict[str, int] = {}
    for org_id in org_ids:
        for (reason, device_class, matched), n in tallies.get(org_id, Counter()).items():
            rule = rules.applying(matched, coverage_id) if matched else None
            left_out = coverage_reason(reason, device_class, classes, rule is not None)
            if left_out is None:
                counted += n
            else:
                excluded[left_out] += n
                if left_out is ExclusionReason.EXCLUDED_BY_RULE and rule is not None:
                    by_rule[rule.name] = by_rule.get(rule.name, 0) + n
    return counted, excluded, by_rule


def _counted_by_coverage(
    pax8: Pax8Data, coverages: Sequence[Coverage], counted_statuses: Iterable[str]
) -> dict[str, dict[str, list[Subscription]]]:
    """coverage id -> company id -> the subscriptions counted for it (a counted status, a product in
    the coverage): their quantities are its licences, their prices its amounts."""
    return subscriptions_by_coverage(pax8, coverages, counted_statuses)


def subscriptions_by_coverage(
    pax8: Pax8Data, coverages: Sequence[Coverage], counted_statuses: Iterable[str] | None = None
) -> dict[str, dict[str, list[Subscription]]]:
    """coverage id -> company id -> its subscriptions of the coverage's products, of a counted status
    (`counted_statuses`), or of any status (None: what a row's evidence lists)."""
    counted = None if counted_statuses is None else {s.casefold() for s in counted_statuses}
    subs = [s for s in pax8.subscriptions if counted is None or s.status.casefold() in counted]
    coverages_of = {
        p.id: [c.id for c in coverages if in_coverage(c, p)] for p in products_in_use(pax8.products, subs)
    }
    found: dict[str, dict[str, list[Subscription]]] = defaultdict(lambda: defaultdict(list))
    for sub in subs:
        for coverage_id in coverages_of[sub.product_id]:
            found[coverage_id][sub.company_id].append(sub)
    return found


def _warnings(skipped: Sequence[SkippedRecord], key: str) -> dict[str, list[str]]:
    grouped: dict[str, list[SkippedRecord]] = defaultdict(list)
    for record in skipped:
        owner = getattr(record, key)
        if owner:
            grouped[owner].append(record)
    return {owner: _describe(records) for owner, records in grouped.items()}


def _describe(records: Sequence[SkippedRecord]) -> list[str]:
    """ "Pax8: 1 subscription record skipped as malformed (id: reason); licences may be undercounted"."""
    by_kind: dict[tuple[str, str], list[SkippedRecord]] = defaultdict(list)
    for record in records:
        by_kind[(record.source, record.kind)].append(record)
    messages = []
    for (source, kind), group in sorted(by_kind.items()):
        label = _VENDOR_LABELS.get(source, source)
        what = "licences" if source == "pax8" else "devices"
        details = "; ".join(f"{r.id or 'no id'}: {r.reason}" for r in group[:5])
        more = f"; and {len(group) - 5} more" if len(group) > 5 else ""
        plural = "record" if len(group) == 1 else "records"
        messages.append(
            f"{label}: {len(group)} {kind} {plural} skipped as malformed ({details}{more}); "
            f"{what} may be undercounted"
        )
    return messages
