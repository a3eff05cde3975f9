"""Two RMMs at once (TRUEUP_RMM=ninjaone,datto): a client split across NinjaOne and Datto RMM, with one
machine in both, counted once and shown so in the row's detail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.stack import LocalStack
from tests.stack_process import http_json

ACRONIS = "acronis-cyber-protect-cloud"


@pytest.fixture
def two_rmms(tmp_path: Path) -> Iterator[LocalStack]:
    running = LocalStack(tmp_path / "data", tmp_path / "stack.log", rmm="ninjaone,datto")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_a_machine_in_both_rmms_is_counted_once_and_the_rows_detail_says_so(
    page: Page, two_rmms: LocalStack
) -> None:
    stack = two_rmms
    current = stack.ok("GET", "/syncs/current")
    assert current["names"] == {"pax8": "Pax8", "ninjaone": "NinjaOne", "datto": "Datto RMM"}
    assert current["rmm"]["datto"]["records"] == 4  # its site and three desktops
    snapshot = stack.snapshot(stack.ok("POST", "/snapshots")["id"])
    assert snapshot["warnings"] == []
    [acronis] = [c for c in snapshot["coverages"] if c["id"] == ACRONIS]
    [valley] = [r for r in acronis["rows"] if r["client"] == "Valley Orthopedics"]
    # 12 workstations and 2 servers in NinjaOne, 3 desktops in Datto RMM, VO-PC-001 in both: 16.
    assert (valley["devices"], valley["licenses"], valley["status"]) == (16, 16, "matched")
    assert valley["excluded"]["duplicate"] == 1
    assert len(valley["rmm_organization_ids"]) == 2

    page.goto(f"{stack.url}/#coverage={ACRONIS}")
    expect(page.locator("#sync-status [data-source='datto']")).to_contain_text("Datto RMM synced")
    row = page.locator(
        "#rows tr.row", has=page.locator(".client-name", has_text=re.compile("^Valley Orthopedics$"))
    )
    expect(row).to_contain_text("Matched")
    toggle = row.get_by_role("button")
    toggle.click()
    detail = page.locator(f"#{toggle.get_attribute('aria-controls')} .detail-evidence")
    devices = detail.locator(".evidence-devices tbody tr")
    expect(detail.locator(".evidence-devices caption")).to_have_text("Devices (17: 16 counted, 1 left out)")
    twice = devices.filter(has_text="VO-PC-001")
    expect(twice).to_have_count(2)  # the machine, once from each RMM
    left_out = detail.locator(".evidence-devices tbody tr.left-out")
    expect(left_out.locator("td:first-child")).to_have_text(["VO-PC-001"])
    expect(left_out.locator("td.reason")).to_have_text(
        re.compile(r"^No: counted once: seen in Datto RMM and NinjaOne, serial 5CG\d{7}$")
    )
    expect(left_out).to_contain_text("Valley Orthopedics (NinjaOne)")
    expect(devices.filter(has_text="VO-FRONT-01")).to_contain_text("Valley Orthopedics (Datto RMM)")
    # Its Acronis subscription: 16 licences at 8.0 as Pax8 sends it, shown in cents.
    subscription = detail.locator(".evidence-subscriptions tbody tr")
    expect(subscription.locator("td:nth-child(2)")).to_have_text(["16"])
    expect(subscription.locator("td:nth-child(5)")).to_have_text(["$8.00"])
    # Every device fits one page: no "Show more", and nothing written in its place.
    expect(detail.get_by_role("button", name=re.compile("^Show .* more devices$"))).to_have_count(0)
    expect(detail).not_to_contain_text("null")

    # The same in the row's evidence over the API, as an auditor exports it.
    query = f"coverage={ACRONIS}&client={valley['pax8_company_id']}&sort=reason"
    status, evidence = http_json(f"{stack.url}/snapshots/{snapshot['id']}/evidence?{query}")
    assert status == 200
    [duplicate] = [d for d in evidence["devices"] if d["reason"] == "duplicate"]
    assert duplicate["id"].startswith("ninjaone:") and duplicate["rule"].startswith(
        "seen in Datto RMM and NinjaOne"
    )
