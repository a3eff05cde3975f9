"""The snapshot at the million-device size, with each row's evidence and without it.

Syncing a million devices through the demo NinjaOne takes many minutes and measures the sync, not the
snapshot; here the current generations are written straight into the AWS stand-in in trueup's own
stored format (`trueup.store.generations.GenerationWriter`, as a sync writes them), from records
made up as they are written (memory flat), then POST /snapshots is invoked through the snapshot
function twice: with evidence on (as deployed) and off. Each invocation runs in a fresh measured
process (`infra.bench.invoke`), so its CPU and peak memory are its own.

The made-up inventory: `clients` companies, each with an RMM organization of the same name (mapped
automatically) holding `devices_per_client` devices (mostly workstations seen a day before the sync;
every 20th a server, and some phones, pending, deleted and stale devices so that every reason of the
evidence occurs), an EDR subscription for roughly as many, and every fourth client a server backup.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from trueup.domain.models import (
    Company,
    Device,
    DeviceClass,
    DeviceState,
    Organization,
    Product,
    Subscription,
)

PRODUCTS = [
    Product(id="bench-edr", name="Huntress Managed EDR", vendor_name="Huntress"),
    Product(id="bench-backup", name="Acronis Cyber Protect Cloud - Servers", vendor_name="Acronis"),
]


def _client(i: int) -> str:
    return f"Client {i:05d}"


def pax8_records(clients: int, devices_per_client: int, synced_at: datetime) -> Iterator[Any]:
    yield from PRODUCTS
    for i in range(clients):
        company = f"bench-company-{i:05d}"
        yield Company(id=company, name=_client(i), status="Active")
        yield Subscription(
            id=f"bench-edr-{i:05d}",
            company_id=company,
            product_id="bench-edr",
            quantity=max(0, devices_per_client - 5 + i % 11),
            status="Active",
            billing_term="Monthly",
            price=Decimal("6.50"),
            partner_cost=Decimal("4.50"),
            currency="USD",
        )
        if i % 4 == 0:
            yield Subscription(
                id=f"bench-backup-{i:05d}",
                company_id=company,
                product_id="bench-backup",
                quantity=devices_per_client // 20,
                status="Active",
                billing_term="Annual",
                price=Decimal("120.00"),
                partner_cost=Decimal("90.00"),
                currency="USD",
                commitment_end=synced_at + timedelta(days=200),
            )


def rmm_records(clients: int, devices_per_client: int, synced_at: datetime) -> Iterator[Any]:
    for i in range(clients):
        yield Organization(id=f"ninjaone:{i}", name=_client(i))
    seen, stale = synced_at - timedelta(days=1), synced_at - timedelta(days=60)
    n = 0
    for i in range(clients):
        for j in range(devices_per_client):
            n += 1
            device_class, state, last_seen = DeviceClass.WORKSTATION, DeviceState.ACTIVE, seen
            if j % 20 == 0:
                device_class = DeviceClass.SERVER
            elif j % 50 == 1:
                device_class = DeviceClass.MOBILE
            elif j % 97 == 2:
                state = DeviceState.PENDING
            elif j % 89 == 3:
                state = DeviceState.DELETED
            elif j % 31 == 4:
                last_seen = stale
            yield Device(
                id=f"ninjaone:{n}",
                organization_id=f"ninjaone:{i}",
                name=f"C{i:05d}-{'SRV' if device_class is DeviceClass.SERVER else 'PC'}-{j:03d}",
                device_class=device_class,
                last_seen=last_seen,
                state=state,
            )


def write_current_generations(
    environment: Mapping[str, str], clients: int, devices_per_client: int
) -> datetime:
    """Write both sources' generations into the stand-in and make them current; answers their sync
    time. trueup's store reads its configuration from the environment: it is set for the call and put
    back after (this may run inside a test process, whose other tests must not reach the stand-in)."""
    from trueup import aws

    saved = dict(os.environ)
    os.environ.update(environment)
    aws.reset_clients()
    try:
        return _write(clients, devices_per_client)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        aws.reset_clients()


def _write(clients: int, devices_per_client: int) -> datetime:
    from trueup.ids import new_id
    from trueup.store.generations import GenerationWriter
    from trueup.store.table import TrueupTable

    synced_at = datetime.now(UTC)
    table = TrueupTable()
    for source, records in (
        ("pax8", pax8_records(clients, devices_per_client, synced_at)),
        ("ninjaone", rmm_records(clients, devices_per_client, synced_at)),
    ):
        writer = GenerationWriter(source, new_id(synced_at), synced_at)
        writer.add_all(records)
        stored = writer.upload()
        stamp = synced_at.isoformat().replace("+00:00", "Z")
        done, _ = table.set_current(
            source,
            {
                "generation": stored.generation,
                "key": stored.key,
                "synced_at": stamp,
                "started_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "run_id": f"bench-{source}",
                "counts": stored.counts,
                "parties_key": stored.parties_key,
                "rmm_source": None if source == "pax8" else source,
            },
        )
        if not done:
            raise RuntimeError(f"the made-up {source} generation could not be made current")
    return synced_at


_S3_WRITES = frozenset(
    {"s3:PutObject", "s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload"}
)


def snapshot_with_and_without_evidence(
    take: Callable[[Mapping[str, str]], Any],
) -> dict[str, dict[str, Any]]:
    """POST /snapshots with evidence on, then off: {"on": figures, "off": figures}. `take(env)` takes
    one snapshot with these variables over the function's own and answers its Invocation."""
    figures = {}
    for evidence in ("on", "off"):
        invocation = take(
            {"TRUEUP_SNAPSHOT_EVIDENCE": evidence, "TRUEUP_SNAPSHOT_WAIT_DEVICES": "1000000000"}
        )
        figures[evidence] = {
            "cpu_s": round(invocation.cpu_s, 2),
            "wall_s": round(invocation.wall_s, 2),
            "peak_mb": round(invocation.max_rss_kib / 1024, 1),
            "limit_s": invocation.timeout_s,
            "function_memory_mb": invocation.memory_mb,
            "s3_writes": sum(n for op, n in invocation.aws_calls.items() if op in _S3_WRITES),
        }
    return figures
