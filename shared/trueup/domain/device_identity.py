"""One machine seen by two RMM sources (an agent in each tool) is counted once.

Devices of one client (one row) are matched across sources by serial number or hardware id, never by
name alone. Failing to merge is the safer error: counting one machine twice shows on the row, merging
two machines hides one. So an identifier is used only when it can only be one machine's:

- junk serials never match: blanks, firmware placeholders ("To be filled by O.E.M.", "Default
  string", "System Serial Number", "0", "None"...), and a value made of one repeated character;
- a serial or hardware id that two devices of the same source share (cloned virtual machines) never
  matches, in any row;
- devices of the same source are never merged with each other, and a group that would hold two
  devices of one source (linked through different identifiers) is not merged at all.

Pure: devices in, the merged pairs out. Which appearance is kept: the first by `prefer` (default:
by source, then id; a snapshot prefers an appearance that counts, so that a machine stale in one
RMM and seen yesterday in the other is counted).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trueup.domain.models import Device

# Compared case-folded, with spaces, dashes, dots and underscores removed.
JUNK_SERIALS = frozenset(
    {
        "",
        "tobefilledbyoem",
        "defaultstring",
        "systemserialnumber",
        "none",
        "null",
        "na",
        "notapplicable",
        "notspecified",
        "unknown",
        "serialnumber",
        "chassisserialnumber",
        "0123456789",
        "123456789",
        "oem",
        "invalid",
    }
)
_IGNORED = str.maketrans("", "", " -._/\t")


def usable_identifier(value: str | None) -> str | None:
    """The identifier as compared (upper case, no spaces or separators), or None when it is junk."""
    if value is None:
        return None
    folded = value.strip().casefold().translate(_IGNORED)
    if folded in JUNK_SERIALS or len(set(folded)) <= 1:  # "", "0", "0000000", "xxxxxxxx"
        return None
    return folded.upper()


def source_of(device: Device) -> str:
    """The RMM source a device came from: its id's prefix ("ninjaone:481" -> "ninjaone")."""
    return device.id.split(":", 1)[0]


@dataclass(frozen=True)
class MergedDevice:
    """Two appearances of one machine: `duplicate` is not counted again; `via` says why they are one."""

    kept: str  # device id
    duplicate: str  # device id
    sources: tuple[str, str]  # (kept's, duplicate's)
    via: str  # "serial 5CG1234XYZ" or "hardware id ..."


def _identifiers(device: Device) -> Iterable[tuple[str, str]]:
    for kind, value in (("serial", device.serial), ("hardware id", device.hardware_id)):
        usable = usable_identifier(value)
        if usable is not None:
            yield kind, usable


def merged_across_sources(
    devices: Sequence[Device],
    row_of: Callable[[Device], str | None],
    prefer: Callable[[Device], Any] | None = None,
) -> list[MergedDevice]:
    """The appearances to count once, within each row (`row_of`: a device's row, None for none).
    `prefer`: a sort key; the first appearance of a machine by it is the one kept."""
    # An identifier two devices of one source share is no one machine's, whatever their rows.
    seen: dict[tuple[str, str, str], int] = defaultdict(int)
    for device in devices:
        for kind, value in _identifiers(device):
            seen[(source_of(device), kind, value)] += 1
    # Devices that share an identifier within a row, grouped (union-find over the row's devices).
    parent: dict[str, str] = {}

    def root(device_id: str) -> str:
        while parent[device_id] != device_id:
            parent[device_id] = parent[parent[device_id]]
            device_id = parent[device_id]
        return device_id

    by_id = {d.id: d for d in devices}
    usable = {
        d.id: {(kind, value) for kind, value in _identifiers(d) if seen[(source_of(d), kind, value)] == 1}
        for d in devices
    }
    holders: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for device in devices:
        row = row_of(device)
        if row is None:
            continue
        for kind, value in usable[device.id]:
            holders[(row, kind, value)].append(device.id)
    shared = {key: ids for key, ids in holders.items() if len({source_of(by_id[i]) for i in ids}) > 1}
    for ids in shared.values():
        for device_id in ids:
            parent.setdefault(device_id, device_id)
        first = root(ids[0])
        for other in ids[1:]:
            parent[root(other)] = first
    groups: dict[str, list[str]] = defaultdict(list)
    for device_id in parent:
        groups[root(device_id)].append(device_id)

    merged = []
    for members in groups.values():
        sources = [source_of(by_id[i]) for i in members]
        if len(set(sources)) != len(sources):  # two of one source linked: surely not one machine
            continue
        order = prefer or (lambda d: ())
        kept, *duplicates = sorted(members, key=lambda i: (order(by_id[i]), source_of(by_id[i]), i))
        for duplicate in duplicates:
            merged.append(
                MergedDevice(
                    kept,
                    duplicate,
                    (source_of(by_id[kept]), source_of(by_id[duplicate])),
                    _via(usable, duplicate, [kept, *members]),
                )
            )
    return sorted(merged, key=lambda m: (m.kept, m.duplicate))


def _via(usable: dict[str, set[tuple[str, str]]], duplicate: str, others: list[str]) -> str:
    """The identifier `duplicate` shares with the kept appearance (or, failing that, with another)."""
    for other in others:
        if other != duplicate:
            common = usable[duplicate] & usable[other]
            if common:
                kind, value = sorted(common)[0]
                return f"{kind} {value}"
    raise AssertionError("merged devices share an identifier")  # grouped only through shared ones


def rows_across_sources(organizations_by_row: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """organization id -> its row, for the rows whose organizations come from two or more RMM
    sources (only there can one machine be seen twice). `organizations_by_row`: each row's
    organization ids (source-prefixed)."""
    spanning: dict[str, str] = {}
    for row, organization_ids in organizations_by_row.items():
        if len({org.split(":", 1)[0] for org in organization_ids}) > 1:
            spanning.update(dict.fromkeys(organization_ids, row))
    return spanning


def describe_merge(merged: MergedDevice, names: Mapping[str, str]) -> str:
    """Why a duplicate is counted once: "seen in NinjaOne and Datto RMM, serial 5CG1234XYZ"
    (`names`: RMM source -> its name as people write it)."""
    kept, duplicate = (names.get(source, source) for source in merged.sources)
    return f"seen in {kept} and {duplicate}, {merged.via}"
