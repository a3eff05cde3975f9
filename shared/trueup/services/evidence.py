"""A snapshot's evidence: written while the snapshot is taken, read one row (or one coverage) at a time.

Taking a snapshot streams the RMM generation once: each device is tallied for the counts and, on the
way, put aside on local disk under its row (`EvidenceCollector.put_aside`). Once the rows are known,
each coverage's evidence is written row by row from those buckets (trueup.store.evidence_files).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trueup.domain.evidence import (
    DEVICE_FIELDS,
    device_entry,
    device_fragment,
    devices_as_objects,
    quoted,
    row_document,
    subscription_entries,
)
from trueup.domain.models import (
    Device,
    DeviceClass,
    ExclusionReason,
    ExclusionRule,
    MappingResult,
    Organization,
    Pax8Data,
    Settings,
)
from trueup.domain.names import natural
from trueup.errors import InvalidInput, NotFound
from trueup.store import evidence_files

if TYPE_CHECKING:
    from trueup.domain.review import RuleMatcher

Snapshot = dict[str, Any]


def _row_key(row: dict[str, Any]) -> str:
    key: str = row["pax8_company_id"] or row["rmm_organization_ids"][0]
    return key


class EvidenceCollector:
    """Puts each device aside under its row while the snapshot tallies them, then writes the evidence."""

    def __init__(
        self,
        pax8: Pax8Data,
        organizations: Sequence[Organization],
        mapping: MappingResult,
        buckets: int = 64,
        rules: Sequence[ExclusionRule] = (),
    ):
        """`buckets`: how many files the devices wait in (memory holds one: a 64th of them)."""
        from trueup.domain.reconcile import row_keys_of_organizations
        from trueup.domain.review import RuleMatcher
        from trueup.sources import display_name

        self._pax8 = pax8
        self._rules = RuleMatcher(rules)
        self._org_names = {o.id: o.name for o in organizations}
        self._row_of_org = row_keys_of_organizations(mapping)
        names = {c.id: c.name for c in pax8.companies} | {
            org: self._org_names.get(org, org) for org in mapping.unmapped_rmm
        }
        self.order = sorted(names, key=lambda key: (natural(names[key]), key))
        self._spill = evidence_files.DeviceSpill(self.order, buckets)
        # organization id -> (where its devices go, its name as JSON), for the organizations in a row;
        # with several RMMs, the name says which RMM (a client's sites may be named alike in both)
        sources = {o.id.split(":", 1)[0] for o in organizations}
        label = (
            (lambda o: f"{o.name} ({display_name(o.id.split(':', 1)[0])})")
            if len(sources) > 1
            else (lambda o: o.name)
        )
        self._orgs = {
            o.id: (place, quoted(label(o)))
            for o in organizations
            if (key := self._row_of_org.get(o.id)) is not None
            and (place := self._spill.place(key)) is not None
        }
        self._tags: dict[tuple[ExclusionReason | None, DeviceClass, tuple[int, ...]], bytes] = {}

    def put_aside(
        self,
        device: Device,
        reason: ExclusionReason | None,
        matched: tuple[int, ...],
        note: str | None = None,
    ) -> None:
        """One device, with its coverage-independent reason (None: it may count), the exclusion
        rules it matches and, for a duplicate, why it is one, under its row:
        `tally_rmm(..., each_device=collector.put_aside)`."""
        org = self._orgs.get(device.organization_id)
        if org is None:
            return  # an organization the RMM data does not list: in no row
        place, organization_quoted = org
        tag: bytes | None
        if note is not None:  # one per merged machine: not worth caching
            tag = f"{reason or ''},{device.device_class},,{note}".encode()
        else:
            tag = self._tags.get((reason, device.device_class, matched))
        if tag is None:
            rules = ".".join(str(i) for i in matched)
            tag = self._tags[(reason, device.device_class, matched)] = (
                f"{reason or ''},{device.device_class},{rules}".encode()
            )
        self._spill.add(place, tag, device_fragment(device, organization_quoted))

    def write(
        self, snapshot_id: str, taken_at: datetime, coverages: Sequence[Snapshot], settings: Settings
    ) -> dict[str, dict[str, str]]:
        """Each coverage's evidence (`coverages`: the snapshot's, with their rows), stored: coverage
        id -> {"data": key, "index": key}. Reads the spilled devices one bucket at a time."""
        from trueup.domain.reconcile import coverages_in_use, subscriptions_by_coverage

        definitions = {c.id: c for c in coverages_in_use(self._pax8, settings)}
        held = subscriptions_by_coverage(self._pax8, list(definitions.values()))
        product_names = {p.id: p.name for p in self._pax8.products}
        position = {key: i for i, key in enumerate(self.order)}
        last = self._spill.buckets - 1
        # coverage id -> bucket -> its rows, in the clients' order
        rows_by_bucket: dict[str, dict[int, list[Snapshot]]] = {}
        for coverage in coverages:
            per_bucket: dict[int, list[Snapshot]] = defaultdict(list)
            for row in sorted(coverage["rows"], key=lambda r: position.get(_row_key(r), len(position))):
                per_bucket[self._spill.bucket_of.get(_row_key(row), last)].append(row)
            rows_by_bucket[coverage["id"]] = per_bucket
        writers = {
            c["id"]: evidence_files.EvidenceWriter(
                evidence_files.evidence_keys(snapshot_id, taken_at, c["id"])
            )
            for c in coverages
        }
        reasons = {
            c["id"]: _reasons_in(
                c["id"], frozenset(d.device_classes) if (d := definitions.get(c["id"])) else None, self._rules
            )
            for c in coverages
        }
        try:
            for bucket in range(self._spill.buckets):
                devices = self._spill.bucket(bucket)
                for coverage in coverages:
                    reason_of, subs_of = reasons[coverage["id"]], held.get(coverage["id"], {})
                    for row in rows_by_bucket[coverage["id"]].get(bucket, []):
                        key = _row_key(row)
                        entries = [
                            device_entry(fragment, *reason_of(tag)) for tag, fragment in devices.get(key, ())
                        ]
                        subscriptions = (
                            subscription_entries(
                                subs_of.get(key, ()),
                                product_names,
                                settings.counted_statuses,
                                settings.months_per_term,
                            )
                            if row["pax8_company_id"]
                            else []
                        )
                        document = row_document(coverage["id"], key, row["client"], entries, subscriptions)
                        writers[coverage["id"]].add(key, document, len(entries), len(subscriptions))
            return {coverage_id: writer.upload() for coverage_id, writer in writers.items()}
        finally:
            for writer in writers.values():
                writer.discard()

    @property
    def devices(self) -> int:
        return self._spill.devices

    def close(self) -> None:
        self._spill.close()

    def __enter__(self) -> EvidenceCollector:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _reasons_in(
    coverage_id: str, classes: frozenset[DeviceClass] | None, rules: RuleMatcher
) -> Callable[[bytes], tuple[ExclusionReason | None, str | None]]:
    """A device's (reason, exclusion rule's name) in one coverage, from its spill tag. Few distinct
    tags: each is worked out once."""
    from trueup.domain.reconcile import coverage_reason

    covered = frozenset(DeviceClass) if classes is None else classes

    @functools.cache
    def reason_of(tag: bytes) -> tuple[ExclusionReason | None, str | None]:
        base, device_class, matched, *note = tag.decode().split(",", 3)
        if note:  # a duplicate: why, where an exclusion rule's name would be
            return ExclusionReason(base), note[0]
        indexes = tuple(int(i) for i in matched.split(".")) if matched else ()
        rule = rules.applying(indexes, coverage_id) if indexes else None
        reason = coverage_reason(
            ExclusionReason(base) if base else None, DeviceClass(device_class), covered, rule is not None
        )
        return reason, rule.name if rule is not None and reason is ExclusionReason.EXCLUDED_BY_RULE else None

    return reason_of


# --- Reading ----------------------------------------------------------------------------------------

DEVICE_SORT_KEYS = ("name", "organization", "device_class", "last_seen", "state", "reason")
DEVICE_SORT_PATTERN = rf"^-?({'|'.join(DEVICE_SORT_KEYS)})?$"
DEFAULT_DEVICES = 500
MAX_DEVICES = 5000


def parse_device_sort(value: str | None) -> tuple[str, bool]:
    """(field, descending) from ?sort=; by default the devices left out first, by reason, then by name."""
    text = (value or "").strip()
    field = text.removeprefix("-") or "reason"
    if field not in DEVICE_SORT_KEYS:
        raise InvalidInput(
            f"unknown sort {value!r}; use one of {', '.join(DEVICE_SORT_KEYS)}, with - for descending"
        )
    return field, text.startswith("-")


def sorted_devices(devices: list[dict[str, Any]], field: str, descending: bool) -> list[dict[str, Any]]:
    """Devices by a field, then by name; a device without the value (never seen, counted for
    `reason`) comes last either way."""
    by_name = sorted(devices, key=lambda d: (natural(d["name"]), d["id"]))
    if field == "name":
        return by_name[::-1] if descending else by_name
    present = [d for d in by_name if d[field] is not None]
    missing = [d for d in by_name if d[field] is None]
    rank = {reason.value: i for i, reason in enumerate(ExclusionReason)}  # the order they are checked in
    key = {
        "organization": lambda d: natural(d["organization"]),
        "reason": lambda d: rank.get(d["reason"], len(rank)),
    }.get(field, lambda d: d[field])
    return sorted(present, key=key, reverse=descending) + missing


def evidence_of(snapshot: Snapshot, coverage_id: str) -> dict[str, str]:
    """Where a coverage's evidence is, or NotFound saying why there is none."""
    kept = snapshot.get("evidence_keys")
    if not kept:
        raise NotFound(
            f"snapshot {snapshot['id']} has no evidence: it was taken before trueup kept the devices and "
            "subscriptions behind each row, or with evidence off; take a new snapshot"
        )
    keys: dict[str, str] = kept[coverage_id]
    return keys


def read_row(snapshot: Snapshot, coverage_id: str, key: str, index: dict[str, list[int]]) -> dict[str, Any]:
    """One row's stored evidence (its devices as arrays of DEVICE_FIELDS), or NotFound naming the key."""
    keys = evidence_of(snapshot, coverage_id)
    entry = index.get(key)
    if entry is None:
        raise NotFound(
            f"client {key!r} has no row in coverage {coverage_id!r} of snapshot {snapshot['id']} "
            "(key: the row's Pax8 company id, or the RMM organization id of an unmapped organization)"
        )
    return evidence_files.read_row(keys["data"], entry)


def row_evidence(
    snapshot: Snapshot,
    coverage_id: str,
    key: str,
    index: dict[str, list[int]],
    sort: tuple[str, bool],
    start: int,
    limit: int,
) -> dict[str, Any]:
    """One row's evidence as the API answers it: its subscriptions, and a page of its devices."""
    document = read_row(snapshot, coverage_id, key, index)
    devices = sorted_devices(devices_as_objects(document["devices"]), *sort)
    left_out: dict[str, int] = {}
    for device in devices:
        if device["reason"] is not None:
            left_out[device["reason"]] = left_out.get(device["reason"], 0) + 1
    page = devices[start : start + limit]
    return {
        "snapshot_id": snapshot["id"],
        "taken_at": snapshot["taken_at"],
        "coverage": coverage_id,
        "key": key,
        "client": document["client"],
        "subscriptions": document["subscriptions"],
        "devices_total": len(devices),
        "devices_counted": len(devices) - sum(left_out.values()),
        "devices_left_out": left_out,
        "devices": page,
        "next_cursor": str(start + limit) if start + limit < len(devices) else None,
    }


__all__ = ["DEVICE_FIELDS", "EvidenceCollector", "row_evidence"]
