"""Serve the demo Pax8 and NinjaOne upstreams until Ctrl-C (or SIGTERM).

python -m infra.demo [--clients 2000 --devices-per-client 50] --pax8-port 8081 --ninjaone-port 8082
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TextIO

from infra.demo.dataset import CLIENTS
from infra.demo.servers import (
    DEFAULT_DATTO_CREDENTIALS,
    DEFAULT_NINJAONE_CREDENTIALS,
    DEFAULT_PAX8_CREDENTIALS,
    DemoUpstreams,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.demo",
        description="Local fake Pax8 and NinjaOne servers over the demo data set.",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=len(CLIENTS),
        help=f"clients in the data set (default {len(CLIENTS)}: the hand-written story)",
    )
    parser.add_argument(
        "--devices-per-client", type=int, default=50, help="devices per generated client (beyond the story)"
    )
    parser.add_argument("--pax8-port", type=int, default=8081, help="0 = any free port (default 8081)")
    parser.add_argument("--ninjaone-port", type=int, default=8082, help="0 = any free port (default 8082)")
    parser.add_argument("--datto-port", type=int, default=8083, help="0 = any free port (default 8083)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API response")
    parser.add_argument("--token-ttl", type=int, default=3600, help="access token lifetime in seconds")
    parser.add_argument(
        "--ninjaone-page-cap", type=int, default=500, help="most devices in one NinjaOne page"
    )
    return parser


def _wait_for_signal() -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM ends the servers as Ctrl-C does, so that `make run` or a test harness can stop them cleanly.
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        while True:
            threading.Event().wait(3600)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(
    argv: Sequence[str] | None = None,
    *,
    wait: Callable[[], None] = _wait_for_signal,
    out: TextIO | None = None,
) -> int:
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    if args.clients < 0 or args.devices_per_client < 0:
        print("--clients and --devices-per-client must be 0 or more", file=sys.stderr)
        return 2
    # Imported here: the data generator is large and the servers do not need it to import.
    from infra.demo.dataset import build_dataset

    dataset = build_dataset(args.clients, args.devices_per_client)
    upstreams = DemoUpstreams(
        dataset,
        pax8_port=args.pax8_port,
        ninjaone_port=args.ninjaone_port,
        datto_port=args.datto_port,
        token_ttl=args.token_ttl,
        latency=args.latency,
        ninjaone_page_cap=args.ninjaone_page_cap,
    )
    try:
        upstreams.start()
    except (RuntimeError, ValueError) as exc:
        print(f"cannot start the demo upstreams: {exc}", file=sys.stderr)
        return 1
    try:
        pax8_id, pax8_secret = DEFAULT_PAX8_CREDENTIALS
        ninja_id, ninja_secret = DEFAULT_NINJAONE_CREDENTIALS
        datto_key, datto_secret = DEFAULT_DATTO_CREDENTIALS
        # These are the demo's own published credentials, not secrets, so printing them is the point.
        print(
            f"Demo upstreams: {len(dataset.pax8_companies)} Pax8 companies, "
            f"{len(dataset.pax8_subscriptions)} subscriptions, {len(dataset.ninjaone_organizations)} "
            f"NinjaOne organizations, {len(dataset.ninjaone_devices)} devices\n"
            f"  Pax8      API {upstreams.pax8_api_url}  token POST {upstreams.pax8_token_url}\n"
            f"            client_id={pax8_id} client_secret={pax8_secret}\n"
            f"  NinjaOne  API {upstreams.ninjaone_url}/v2  token POST {upstreams.ninjaone_token_url}\n"
            f"            client_id={ninja_id} client_secret={ninja_secret} scope=monitoring\n"
            f"  Datto RMM API {upstreams.datto_url}/api/v2  "
            f"token POST {upstreams.datto_url}/auth/oauth/token "
            f"({len(dataset.datto_sites)} sites, {len(dataset.datto_devices)} devices)\n"
            f"            API key={datto_key} secret key={datto_secret}\n"
            f"  Control   {upstreams.pax8_url}/_demo/stats, /_demo/faults, /_demo/reset (on either server)\n"
            "Ctrl-C to stop.",
            file=out,
            flush=True,
        )
        wait()
    finally:
        upstreams.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
