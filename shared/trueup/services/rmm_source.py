"""The RMM side of a sync: one RMM source's organizations and devices, read into a generation."""

from __future__ import annotations

from contextlib import closing
from functools import partial

from trueup.config import config
from trueup.observability import logger
from trueup.services.current_generations import current_pointer
from trueup.services.syncs import Fetch
from trueup.sources import display_name
from trueup.store.generations import GenerationWriter
from trueup.store.table import TrueupTable
from trueup.vendors.credentials import credentials_from_secret
from trueup.vendors.rmm import RmmConnection, adapter_class, create_adapter


def write_rmm(source: str, writer: GenerationWriter) -> None:
    settings = config()
    variable, secret_id = settings.rmm_secret_id(source)
    credentials = credentials_from_secret(secret_id, display_name(source), variable)
    by_name = adapter_class(source).reads_serials_by_name
    # Only an RMM that reads serials by name needs the others' device names (read from S3); for
    # the others "several RMMs in use" is enough to read every serial.
    hostnames, matched_against = other_hostnames(source, read_names=by_name)
    connection = RmmConnection(credentials, settings.rmm_url(source), match_hostnames=hostnames)
    adapter = create_adapter(source, connection)
    if by_name:
        writer.matched_against = matched_against
    with closing(adapter):
        # Organizations first: mapping reads only them, without streaming every device.
        writer.add_all(adapter.organizations())
        writer.add_all(adapter.devices())


def other_hostnames(
    source: str, *, read_names: bool = True
) -> tuple[frozenset[str] | None, list[str] | None]:
    """With several RMMs in use, the device names (case-folded) in the other RMMs' current data (the
    machines this RMM may see too, whose serial numbers are worth reading) and which RMMs had data.
    (None, None) with one RMM."""
    from trueup.domain.models import Device
    from trueup.store.generations import iter_rmm

    others = [other for other in config().rmm_sources if other != source]
    if not others:
        return None, None
    if not read_names:
        return frozenset(), None
    table = TrueupTable()
    names: set[str] = set()
    read: list[str] = []
    for other in others:
        pointer = current_pointer(table, other)
        if pointer is None:
            continue  # not synced yet: the snapshot says a machine in both may be counted twice
        read.append(other)
        names.update(
            record.name.strip().casefold()
            for record in iter_rmm(pointer["key"])
            if isinstance(record, Device)
        )
    logger.info(
        "device names in the other RMMs", extra={"source": source, "others": others, "names": len(names)}
    )
    return frozenset(names), read


def rmm_fetch(source: str) -> Fetch:
    return Fetch(partial(write_rmm, source), vendor=display_name(source), rmm_source=source)
