"""`make bench` (python -m infra.bench): sync both sources and take a snapshot at scale, print the figures.

    make bench                                   2,000 clients, ~100,000 devices, ~10,000 subscriptions
    make bench ARGS="--devices-per-client 500"   ~1,000,000 devices (takes a few minutes)
    make bench ARGS="--json-only"                only the JSON line

Prints a table, then one line of JSON with the same numbers. Progress goes to stderr. Nothing here
is asserted: the targets are printed as met or not met.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from infra.bench.benchmark import BenchmarkError, Options, run
from infra.bench.figures import render


def _parser() -> argparse.ArgumentParser:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m infra.bench",
        description="trueup's scale benchmark: a full sync and a snapshot through the real handlers.",
    )
    parser.add_argument(
        "--clients", type=int, default=defaults.clients, help=f"clients (default {defaults.clients:,})"
    )
    parser.add_argument(
        "--devices-per-client",
        type=int,
        default=defaults.devices_per_client,
        help=f"devices per generated client (default {defaults.devices_per_client}; 500 gives ~1,000,000)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=defaults.latency,
        help=f"seconds the demo upstreams add to every request (default {defaults.latency})",
    )
    parser.add_argument(
        "--ninjaone-page-cap",
        type=int,
        default=defaults.ninjaone_page_cap,
        help=f"most devices the demo NinjaOne serves per page (default {defaults.ninjaone_page_cap}, "
        "what trueup asks for)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="write each handler invocation's cProfile statistics into DIR (<step>-<function>.prof)",
    )
    parser.add_argument(
        "--snapshot-devices",
        type=int,
        default=defaults.snapshot_devices,
        help=f"the snapshot alone, evidence on and off, at this many made-up devices (default "
        f"{defaults.snapshot_devices:,}; 0 skips it)",
    )
    parser.add_argument("--json-only", action="store_true", help="print only the JSON line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = Options(
        clients=args.clients,
        devices_per_client=args.devices_per_client,
        latency=args.latency,
        ninjaone_page_cap=args.ninjaone_page_cap,
        profile_dir=args.profile,
        snapshot_devices=args.snapshot_devices,
    )

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    try:
        figures = run(options, progress)
    except BenchmarkError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    if not args.json_only:
        print(render(figures))
        print()
    print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
