"""Helper process: the demo Pax8 and NinjaOne servers at benchmark size, with injected latency.

    python -m infra.bench.upstreams --clients 2000 --devices-per-client 50 --latency 0.1 --ready FILE

Runs apart from the measured processes so that the data set's memory and the servers' CPU are
not counted against trueup. The ready file gives the URLs, how many records each list serves and
the largest page each server answers, from which the benchmark works out the minimum requests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.bench.processes import announce_ready, serve_until_stopped
from infra.demo.dataset import build_dataset
from infra.demo.servers import DemoUpstreams


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.upstreams")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--devices-per-client", type=int, required=True)
    parser.add_argument("--latency", type=float, required=True, help="seconds added to every API request")
    parser.add_argument("--pax8-max-page-size", type=int, required=True)
    parser.add_argument("--ninjaone-page-cap", type=int, required=True)
    parser.add_argument("--ready", type=Path, required=True, help="where to write the ready JSON")
    args = parser.parse_args(argv)

    dataset = build_dataset(args.clients, args.devices_per_client)
    upstreams = DemoUpstreams(
        dataset,
        latency=args.latency,
        pax8_max_page_size=args.pax8_max_page_size,
        ninjaone_page_cap=args.ninjaone_page_cap,
    )
    with upstreams:
        announce_ready(
            args.ready,
            {
                "pax8_api_url": upstreams.pax8_api_url,
                "pax8_token_url": upstreams.pax8_token_url,
                "pax8_control_url": upstreams.pax8_url,
                "ninjaone_url": upstreams.ninjaone_url,
                "records": {
                    "companies": len(dataset.pax8_companies),
                    "products": len(dataset.pax8_products),
                    "subscriptions": len(dataset.pax8_subscriptions),
                    "organizations": len(dataset.ninjaone_organizations),
                    "devices": len(dataset.ninjaone_devices),
                    "roles": len(dataset.ninjaone_roles),
                },
            },
        )
        serve_until_stopped()
    return 0


if __name__ == "__main__":
    sys.exit(main())
