"""The RMM adapter interface and registry.

An adapter turns one RMM's API into organizations and normalized devices. Adding an RMM (Datto
RMM, Atera, N-central, a CSV import) means a new module implementing `RmmAdapter` and one line in
`ADAPTERS`; the engine never changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from trueup.domain.models import Device, Organization, RmmData, SkippedRecord
from trueup.errors import InvalidInput
from trueup.sources import RMMS
from trueup.vendors.credentials import ClientCredentials


@dataclass(frozen=True)
class RmmConnection:
    """Where and how to reach one RMM. `base_url` None means the vendor's default host.

    `match_hostnames`: with several RMMs in use, the device names (case-folded) the other RMMs have;
    an adapter then reads the serial numbers a machine seen by two could be matched by (NinjaOne: for
    every device, at no extra request; Datto RMM: one audit per device, so only for these names).
    None: one RMM in use, nothing to match.
    """

    credentials: ClientCredentials
    base_url: str | None = None
    match_hostnames: frozenset[str] | None = None


class RmmAdapter(Protocol):
    """Yields one RMM's organizations and devices, with records it could not read as SkippedRecord.

    Ids are source-prefixed strings (`ninjaone:12`); `last_seen` is aware UTC or None. Vendor
    failures raise `trueup.errors.UpstreamError`: an adapter never yields a silently short list.
    """

    source: str
    # True when serial numbers cost a request per device, so only the devices whose names the other
    # RMMs have get one (`RmmConnection.match_hostnames`); False when every device comes with its own.
    reads_serials_by_name: bool

    def organizations(self) -> Iterator[Organization | SkippedRecord]: ...

    def devices(self) -> Iterator[Device | SkippedRecord]: ...

    def close(self) -> None:
        """Release connections (adapters are used once per sync)."""


def adapter_class(source: str) -> type[RmmAdapter]:
    """The adapter class registered for `source` (e.g. "ninjaone"), imported now: a function loads
    only the adapter it uses."""
    try:
        target = RMMS[source].adapter
    except KeyError:
        known = ", ".join(sorted(RMMS))
        raise InvalidInput(f"unknown RMM source {source!r}; known sources: {known}") from None
    module_name, class_name = target.split(":")
    found: type[RmmAdapter] = getattr(importlib.import_module(module_name), class_name)
    return found


def create_adapter(source: str, connection: RmmConnection) -> RmmAdapter:
    """Build the adapter registered for `source` (e.g. "ninjaone")."""
    adapter: RmmAdapter = adapter_class(source)(connection)  # type: ignore[call-arg]
    return adapter


def collect(adapter: RmmAdapter, synced_at: datetime) -> RmmData:
    """Read everything an adapter yields into one RmmData (small inventories and tests)."""
    organizations: list[Organization] = []
    devices: list[Device] = []
    skipped: list[SkippedRecord] = []
    for org in adapter.organizations():
        (skipped if isinstance(org, SkippedRecord) else organizations).append(org)  # type: ignore[arg-type]
    for dev in adapter.devices():
        (skipped if isinstance(dev, SkippedRecord) else devices).append(dev)  # type: ignore[arg-type]
    return RmmData(
        source=adapter.source,
        organizations=organizations,
        devices=devices,
        skipped=skipped,
        synced_at=synced_at,
    )
