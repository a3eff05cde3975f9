"""The sources trueup syncs: Pax8, and each RMM in use (one or more: `RMM_SOURCES`).

Each source is synced on its own: its own secret, its own generations (`generations/pax8/...`,
`generations/rmm/<source>/...`), its own current pointer and its own state in a sync run. In a sync
request, "rmm" stands for every RMM source in use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

PAX8 = "pax8"
RMM = "rmm"  # in a request: every RMM source in use


@dataclass(frozen=True)
class RmmKind:
    name: str  # as people write it
    adapter: str  # "module:class" implementing trueup.vendors.rmm.RmmAdapter, imported when used


# The registry of RMMs: adding one is its adapter module and a line here (then the template: its
# secret, <SOURCE>_SECRET_ID and <SOURCE>_URL on RmmSyncFunction, and the name in RmmSources' pattern
# and the sync rule's; README "Adding an RMM").
RMMS: dict[str, RmmKind] = {
    "ninjaone": RmmKind("NinjaOne", "trueup.vendors.ninjaone:NinjaOneAdapter"),
    "datto": RmmKind("Datto RMM", "trueup.vendors.datto:DattoAdapter"),
}
RMM_NAMES: dict[str, str] = {source: kind.name for source, kind in RMMS.items()}
SOURCES = (PAX8, *RMMS)  # what a run syncs: Pax8 or one RMM
REQUESTABLE = (PAX8, RMM, *RMMS)  # what a sync request may name

if TYPE_CHECKING:  # to a type checker, text; to pydantic, one of the values (an enum in the schemas)
    SyncSource = str
    RequestedSource = str
else:
    SyncSource = Literal[SOURCES]
    RequestedSource = Literal[REQUESTABLE]


def is_rmm(source: str) -> bool:
    return source in RMM_NAMES


def display_name(source: str) -> str:
    """ "Pax8", "NinjaOne", "Datto RMM"; "RMM" for the data of every RMM source together."""
    if source == PAX8:
        return "Pax8"
    if source == RMM:
        return "RMM"
    return RMM_NAMES.get(source, source)


def generation_folder(source: str) -> str:
    """Where a source's generations live under `generations/`."""
    return source if source == PAX8 else f"rmm/{source}"


def chosen_sources(requested: Sequence[str] | None, rmm_sources: Sequence[str]) -> list[str]:
    """The sources a sync request names, "rmm" read as every RMM source in use; None is every source.

    Raises ValueError naming what may be asked for."""
    allowed = [PAX8, *rmm_sources]
    if requested is None:
        return allowed
    chosen: list[str] = []
    for source in requested:
        chosen.extend(rmm_sources if source == RMM else [source])
    chosen = list(dict.fromkeys(chosen))  # a source named twice: once
    unknown = [s for s in chosen if s not in allowed]
    if unknown or not chosen:
        allowed_names = [PAX8, RMM, *rmm_sources]
        raise ValueError(
            f"sources must be a non-empty list of values from {allowed_names}, got {list(requested)}"
        )
    return chosen


def data_ages(data_as_of: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot's `data_as_of` per source: Pax8, then each RMM source (a snapshot taken before
    several RMMs could be used has one "rmm")."""
    per_rmm = data_as_of.get("rmm_sources") or {RMM: data_as_of[RMM]}
    return {PAX8: data_as_of[PAX8], **per_rmm}


def parse_rmm_list(text: str) -> tuple[str, ...]:
    """ "ninjaone, datto" -> ("ninjaone", "datto"): each named once, in order; ValueError naming the
    RMMs trueup knows when one is unknown or none is named."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in RMMS]
    if unknown or not names:
        known = ", ".join(RMMS)
        raise ValueError(f"must name one or more of {known}, comma-separated; got {text[:60]!r}")
    return names
