"""The current generation of each source, and the RMM side read as one: every RMM in use together.

Each RMM source has its own current generation; a snapshot, the mapping and the suggestions read
them together (organization and device ids are prefixed by their source, so they never collide).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trueup.config import config
from trueup.sources import display_name, is_rmm
from trueup.store.table import TrueupTable

if TYPE_CHECKING:  # the models (pydantic) load only where the generations are read
    from trueup.domain.models import Device, Organization, SkippedRecord

Pointer = dict[str, Any]


def current_pointer(table: TrueupTable, source: str) -> Pointer | None:
    """A source's current generation. Data synced when trueup read one RMM only is the current data
    of that RMM until its first sync as one of several."""
    pointer = table.get_current(source)
    if pointer is None and is_rmm(source):
        legacy = table.get_current("rmm")
        if legacy is not None and (legacy.get("rmm_source") or "ninjaone") == source:
            return legacy
    return pointer


@dataclass(frozen=True)
class CurrentRmm:
    """The current generations of the RMM sources in use (`missing`: those never synced)."""

    pointers: dict[str, Pointer]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing and bool(self.pointers)

    @property
    def generation(self) -> str:
        """One name for this set of generations (what suggestions are stored under)."""
        return "+".join(pointer["generation"] for pointer in self.pointers.values())

    @property
    def synced_at(self) -> datetime:
        """When the oldest of them was synced: the RMM data is as old as its oldest part."""
        return min(datetime.fromisoformat(p["synced_at"]) for p in self.pointers.values())

    def synced_at_by_source(self) -> dict[str, datetime]:
        return {source: datetime.fromisoformat(p["synced_at"]) for source, p in self.pointers.items()}

    @property
    def devices(self) -> int:
        return sum(int((p.get("counts") or {}).get("device", 0)) for p in self.pointers.values())

    def missing_names(self) -> str:
        return " and ".join(display_name(source) for source in self.missing)

    def organizations(self) -> list[Organization]:
        from trueup.store.generations import read_rmm_organizations

        found: list[Organization] = []
        for pointer in self.pointers.values():
            found.extend(read_rmm_organizations(pointer["key"], pointer.get("parties_key")))
        return found

    def records(self) -> Iterator[Organization | Device | SkippedRecord]:
        from trueup.store.generations import iter_rmm

        for pointer in self.pointers.values():
            yield from iter_rmm(pointer["key"])


def current_rmm(table: TrueupTable) -> CurrentRmm:
    pointers: dict[str, Pointer] = {}
    missing = []
    for source in config().rmm_sources:
        pointer = current_pointer(table, source)
        if pointer is None:
            missing.append(source)
        else:
            pointers[source] = pointer
    return CurrentRmm(pointers, tuple(missing))
