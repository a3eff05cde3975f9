"""`make run` for now: sync Pax8 and the RMM, reconcile, and print the comparison tables.

Demo mode (no credentials set, or TRUEUP_DEMO=1) starts the demo upstreams on loopback and syncs
them through the real clients; with credentials set it reads the real vendors (read-only).
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import ExitStack
from datetime import UTC, datetime

from trueup.config import demo_requested, local_environment, vendor_credentials, vendor_endpoints
from trueup.domain.models import Reconciliation, Row, Settings, Status
from trueup.domain.reconcile import reconcile
from trueup.errors import TrueupError
from trueup.vendors import pax8 as pax8_api
from trueup.vendors.resilience import ClientCredentials
from trueup.vendors.rmm import RmmConnection, collect, create_adapter

STATUS_LABELS = {
    Status.UNDER_LICENSED: "Under-licensed",
    Status.OVER_LICENSED: "Over-licensed",
    Status.MATCHED: "Matched",
    Status.UNMAPPED: "Unmapped",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument(
        "--demo", action="store_true", help="use the demo upstreams even if credentials are set"
    )
    parser.add_argument("--verbose", action="store_true", help="log vendor requests and retries")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )

    env = local_environment()
    try:
        ninja_url: str | None
        credentials = None if (args.demo or demo_requested(env)) else vendor_credentials(env)
        with ExitStack() as stack:
            if credentials is None:
                from infra.demo.dataset import build_dataset
                from infra.demo.servers import (
                    DEFAULT_NINJAONE_CREDENTIALS,
                    DEFAULT_PAX8_CREDENTIALS,
                    DemoUpstreams,
                )

                # Small page caps so that the demo exercises paging like a large tenant would.
                demo = stack.enter_context(
                    DemoUpstreams(build_dataset(), pax8_max_page_size=25, ninjaone_page_cap=100)
                )
                print(f"Demo mode: fake Pax8 at {demo.pax8_url}, fake NinjaOne at {demo.ninjaone_url}\n")
                pax8_credentials = ClientCredentials(*DEFAULT_PAX8_CREDENTIALS)
                ninja_credentials = ClientCredentials(*DEFAULT_NINJAONE_CREDENTIALS)
                api_url, token_url, ninja_url = demo.pax8_api_url, demo.pax8_token_url, demo.ninjaone_url
            else:
                endpoints = vendor_endpoints(env)
                pax8_credentials, ninja_credentials = credentials.pax8, credentials.ninjaone
                api_url = endpoints.pax8_api_url or pax8_api.DEFAULT_API_URL
                token_url = endpoints.pax8_token_url or pax8_api.DEFAULT_TOKEN_URL
                ninja_url = endpoints.ninjaone_url
            pax8_client = stack.enter_context(
                pax8_api.Pax8Client(pax8_credentials, api_url=api_url, token_url=token_url)
            )
            pax8 = pax8_client.fetch_all(datetime.now(UTC))
            adapter = create_adapter("ninjaone", RmmConnection(ninja_credentials, ninja_url))
            rmm = collect(adapter, datetime.now(UTC))
    except TrueupError as exc:
        print(f"trueup: {exc}", file=sys.stderr)
        return 2
    print(
        f"Pax8: {len(pax8.companies)} companies, {len(pax8.subscriptions)} subscriptions "
        f"({len(pax8.skipped)} skipped); NinjaOne: {len(rmm.organizations)} organizations, "
        f"{len(rmm.devices)} devices ({len(rmm.skipped)} skipped)\n"
    )
    print(render(reconcile(pax8, rmm, Settings())))
    return 0


def render(result: Reconciliation) -> str:
    lines: list[str] = []
    for coverage in result.coverages:
        s = coverage.summary
        lines.append(
            f"== {coverage.name} ==  {s.under_licensed} under-licensed · {s.over_licensed} over-licensed · "
            f"{s.matched} properly licensed · {s.unmapped} unmapped"
        )
        width = max([len(r.client) for r in coverage.rows] + [6])
        lines.append(f"{'Client':<{width}}  {'Devices':>7}  {'Licenses':>8}  {'Variance':>8}  Status")
        lines.extend(_row(r, width) for r in coverage.rows)
        lines.append("")
    for warning in result.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def _row(row: Row, width: int) -> str:
    def cell(value: int | None) -> str:
        return "No data" if value is None else str(value)

    variance = "" if row.variance is None else f"{row.variance:+d}" if row.variance else "0"
    note = "  (!) " + "; ".join(row.warnings) if row.warnings else ""
    return (
        f"{row.client:<{width}}  {cell(row.devices):>7}  {cell(row.licenses):>8}  {variance:>8}  "
        f"{STATUS_LABELS[row.status]}{note}"
    )


if __name__ == "__main__":
    sys.exit(main())
