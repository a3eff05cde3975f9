"""Each RMM adapter against its demo server at scale: requests made against the fewest the vendor's
paging allows, and the wall time, with the benchmark's latency on every request.

The adapters run as the RMM sync runs them (organizations, then devices), one after the other, each
against its own demo server over loopback. Nothing is asserted: `make bench` prints the figures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import closing
from typing import Any

from infra.demo.dataset import DemoDataset, build_dataset, datto_inventory
from infra.demo.servers import DEFAULT_DATTO_CREDENTIALS, DEFAULT_NINJAONE_CREDENTIALS, DemoUpstreams
from trueup.vendors.credentials import ClientCredentials
from trueup.vendors.datto import PAGE_SIZE as DATTO_PAGE
from trueup.vendors.datto import DattoAdapter
from trueup.vendors.ninjaone import NinjaOneAdapter
from trueup.vendors.rmm import RmmAdapter, RmmConnection, collect


def measure_rmms(
    clients: int, devices_per_client: int, latency: float, progress: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Per RMM ("ninjaone", "datto"): its organizations and devices, the requests it made, the
    minimum, and the wall time of reading them all."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    progress(f"building {clients:,} organizations and {clients * devices_per_client:,} devices per RMM...")
    ninjaone_data = build_dataset(clients, devices_per_client, now=now)
    sites, devices = datto_inventory(clients, devices_per_client, now=now)
    dataset = DemoDataset(
        ninjaone_organizations=ninjaone_data.ninjaone_organizations,
        ninjaone_devices=ninjaone_data.ninjaone_devices,
        ninjaone_roles=ninjaone_data.ninjaone_roles,
        datto_sites=sites,
        datto_devices=devices,
    )
    figures: dict[str, dict[str, Any]] = {}
    # The vendors' own page caps: NinjaOne serves what trueup asks (1,000), Datto RMM 250 at most.
    with DemoUpstreams(dataset, latency=latency, ninjaone_page_cap=1000) as demo:
        ninjaone = NinjaOneAdapter(
            RmmConnection(ClientCredentials(*DEFAULT_NINJAONE_CREDENTIALS), demo.ninjaone_url)
        )
        page = ninjaone.page_size
        # A token, the roles, and each list's pages plus the empty page that ends an `after` listing.
        ninjaone_minimum = (
            2
            + math.ceil(len(dataset.ninjaone_organizations) / page)
            + 1
            + math.ceil(len(dataset.ninjaone_devices) / page)
            + 1
        )
        figures["ninjaone"] = _measure("NinjaOne", ninjaone, ninjaone_minimum, page, progress)
        datto = DattoAdapter(RmmConnection(ClientCredentials(*DEFAULT_DATTO_CREDENTIALS), demo.datto_url))
        # A token and each list's pages: the last page says it is the last (no nextPageUrl).
        datto_minimum = 1 + math.ceil(len(sites) / DATTO_PAGE) + math.ceil(len(devices) / DATTO_PAGE)
        figures["datto"] = _measure("Datto RMM", datto, datto_minimum, DATTO_PAGE, progress)
    return figures


def _measure(
    name: str, adapter: RmmAdapter, minimum: int, page: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    from datetime import UTC, datetime

    progress(f"reading every organization and device of the demo {name}...")
    started = time.monotonic()
    with closing(adapter):
        data = collect(adapter, datetime.now(UTC))
        sent = getattr(adapter, "requests_sent")  # noqa: B009 - every adapter counts, the protocol does not say so
    wall = time.monotonic() - started
    return {
        "name": name,
        "organizations": len(data.organizations),
        "devices": len(data.devices) + sum(1 for s in data.skipped if s.kind == "device"),
        "page_size": page,
        "requests": sent,
        "minimum": minimum,
        "wall_s": round(wall, 2),
    }
