"""The Reconciliation page in real headless Chromium, against a fresh local stack in demo mode per test.

Each test does what a person would (click, type, press Enter, download) and checks what they would
see, against what the API says.
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from infra.demo.dataset import build_dataset
from tests.browser.browser import PHONE
from tests.browser.stack import LocalStack
from tests.stack_process import http_json

STATUS_LABELS = {
    "under_licensed": "Under-licensed",
    "over_licensed": "Over-licensed",
    "matched": "Matched",
    "unmapped": "Unmapped",
}
READ_TABLE = """() => [...document.querySelectorAll('#rows tr.row')].map(tr => ({
    client: tr.querySelector('.client-name').textContent,
    devices: tr.querySelector('.devices-cell').textContent,
    licenses: tr.querySelector('.licenses-cell').textContent,
    variance: tr.querySelector('.variance-cell').textContent,
    status: tr.querySelector('.status-cell').textContent,
}))"""


def as_shown(row: dict[str, Any]) -> dict[str, str]:
    """How the page shows one of the API's rows: 'No data' for a missing side, a signed variance."""

    def count(value: int | None) -> str:
        return "No data" if value is None else str(value)

    variance = row["variance"]
    return {
        "client": row["client"],
        "devices": count(row["devices"]),
        "licenses": count(row["licenses"]),
        "variance": "—" if variance is None else (f"+{variance}" if variance > 0 else str(variance)),
        "status": STATUS_LABELS[row["status"]],
    }


def table(page: Page) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.evaluate(READ_TABLE)
    return rows


def expect_table(page: Page, rows: list[dict[str, Any]]) -> None:
    """The table shows exactly these API rows, in this order (waiting for the page to get there)."""
    expect(page.locator("#rows tr.row .client-name")).to_have_text([r["client"] for r in rows])
    assert table(page) == [as_shown(r) for r in rows]


def open_page(page: Page, stack: LocalStack, address: str = "/") -> None:
    page.goto(stack.url + address)


def notice(page: Page) -> Locator:
    """The page's notice: the status that is not the table's "Loading the snapshot…" (both are
    statuses, and a test must not depend on whether the table is still loading)."""
    return page.get_by_role("status").filter(has_not_text=re.compile(r"^Loading"))


def latest(stack: LocalStack) -> dict[str, Any]:
    found: dict[str, Any] = stack.snapshot("latest")
    return found


def no_horizontal_scroll(page: Page) -> None:
    root = "document.documentElement"
    widths = page.evaluate(f"() => [{root}.scrollWidth, {root}.clientWidth, window.innerWidth]")
    assert widths[2] == PHONE["width"] and widths[0] <= widths[1], (
        f"scrollWidth, clientWidth, innerWidth: {widths}"
    )


# ---------------------------------------------------------------------------------------------------


def test_the_empty_state_shows_before_any_snapshot_and_take_snapshot_adds_one_to_the_table(
    page: Page, stack: LocalStack
) -> None:
    assert stack.api("GET", "/snapshots/latest")[0] == 404
    open_page(page, stack)

    empty = page.locator("#empty-state")
    expect(empty).to_be_visible()
    expect(empty.get_by_role("heading")).to_have_text("No snapshot yet")
    expect(empty).to_contain_text(
        "Your Pax8 and RMM data are synced: click Take Snapshot to take the first one."
    )
    expect(page.locator("#snapshot-view")).to_be_hidden()
    expect(page.get_by_role("alert")).to_be_hidden()

    page.locator(".topbar").get_by_role("button", name="Take Snapshot").click()
    expect(page.get_by_role("status").filter(has_text="Snapshot taken")).to_be_visible()
    first = latest(stack)
    expect(empty).to_be_hidden()
    expect_table(page, first["coverages"][0]["rows"])
    expect(page.locator("#snapshot-picker option")).to_have_count(1)
    expect(page.get_by_label("Snapshot", exact=True)).to_have_value(first["id"])
    expect(page.locator("#snapshot-tag")).to_have_text("Latest")

    # A second snapshot joins the list and is the one on screen.
    page.locator(".topbar").get_by_role("button", name="Take Snapshot").click()
    expect(page.locator("#snapshot-picker option")).to_have_count(2)
    second = latest(stack)
    assert second["id"] != first["id"]
    assert [s["id"] for s in stack.ok("GET", "/snapshots")["items"]] == [second["id"], first["id"]]
    expect(page.get_by_label("Snapshot", exact=True)).to_have_value(second["id"])
    expect_table(page, second["coverages"][0]["rows"])


def test_a_snapshot_too_large_to_wait_for_is_followed_until_it_is_taken_and_then_shown(
    page: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's few hundred devices stand in for an inventory beyond the limit.
    monkeypatch.setenv("TRUEUP_SNAPSHOT_WAIT_DEVICES", "0")
    stack = LocalStack(tmp_path / "data", tmp_path / "stack.log")
    stack.start()
    try:
        open_page(page, stack)
        expect(page.locator("#empty-state")).to_be_visible()
        page.locator(".topbar").get_by_role("button", name="Take Snapshot").click()
        expect(notice(page)).to_contain_text("Taking a snapshot of a large inventory")
        expect(page.get_by_role("status").filter(has_text="Snapshot taken")).to_be_visible()
        taken = latest(stack)
        [cycle] = stack.ok("GET", "/cycles")["items"]
        assert cycle["syncs"] == {} and cycle["snapshot_id"] == taken["id"]
        expect_table(page, taken["coverages"][0]["rows"])
        expect(page.get_by_label("Snapshot", exact=True)).to_have_value(taken["id"])
    finally:
        stack.stop()


def test_the_card_counts_equal_the_apis_summary_for_every_coverage(
    page: Page, demo_stack: LocalStack, demo_snapshot: dict[str, Any]
) -> None:
    stack, snapshot = demo_stack, demo_snapshot  # read only: a stack shared by the module
    open_page(page, stack)
    coverages = snapshot["coverages"]
    assert len(coverages) >= 2  # the demo sells several per-device products
    tabs = page.get_by_role("tab")
    expect(tabs).to_have_text([c["name"] for c in coverages])
    expect(tabs.first).to_have_attribute("aria-selected", "true")
    for index, coverage in enumerate(coverages):
        tabs.nth(index).click()
        expect(tabs.nth(index)).to_have_attribute("aria-selected", "true")
        summary = coverage["summary"]
        expect(page.locator(".card.under [data-count]")).to_have_text(str(summary["under_licensed"]))
        expect(page.locator(".card.over [data-count]")).to_have_text(str(summary["over_licensed"]))
        expect(page.locator(".card.matched [data-count]")).to_have_text(str(summary["matched"]))
        # Unmapped clients never hide inside a card: they have a warning of their own.
        expect(page.locator("#unmapped-warning")).to_contain_text(f"{summary['unmapped']} unmapped client")
        expect_table(page, coverage["rows"])
        expect(page.locator("#row-count")).to_have_text(f"{len(coverage['rows'])} clients")


def test_the_cards_show_what_the_gaps_cost_a_month_and_a_year_as_the_api_sums_them(
    page: Page, demo_stack: LocalStack, demo_snapshot: dict[str, Any]
) -> None:
    stack, snapshot = demo_stack, demo_snapshot  # read only: a stack shared by the module
    open_page(page, stack)
    tabs = page.get_by_role("tab")
    for index, coverage in enumerate(snapshot["coverages"]):
        tabs.nth(index).click()
        expect(tabs.nth(index)).to_have_attribute("aria-selected", "true")
        money = coverage["summary"]["money"]
        for card, field, words in (
            ("under", "under_licensed_price_gap", "a month not billed"),
            ("over", "over_licensed_price_gap", "a month overpaid"),
        ):
            shown = [(c, t[field]) for c, t in money.items() if Decimal(t[field]) != 0]
            lines = page.locator(f".card.{card} .card-money")
            expect(lines).to_have_count(len(shown))
            for line, (currency, amount) in zip(lines.all(), shown, strict=True):
                expect(line).to_have_attribute("data-currency", currency)
                expect(line).to_have_attribute("data-monthly", amount)
                monthly, yearly = abs(Decimal(amount)), abs(Decimal(amount)) * 12
                symbol = {"USD": "$", "EUR": "€"}[currency]
                expect(line).to_have_text(f"{symbol}{monthly:,.2f} {words} · {symbol}{yearly:,.2f} a year")
        expect(page.locator(".card.matched .card-money")).to_have_count(0)
    # The demo's Huntress coverage, worked out by hand (tests/integration/test_demo_reconciliation.py).
    tabs.first.click()
    expect(page.locator(".card.under .card-money")).to_have_text(
        "$131.46 a month not billed · $1,577.52 a year"
    )
    expect(page.locator(".card.over .card-money")).to_have_text("$111.26 a month overpaid · $1,335.12 a year")


def test_the_monthly_column_sorts_by_the_gap_and_says_when_committed_licences_can_be_reduced(
    page: Page, demo_stack: LocalStack, demo_snapshot: dict[str, Any]
) -> None:
    stack, snapshot = demo_stack, demo_snapshot  # read only: a stack shared by the module
    rows = snapshot["coverages"][0]["rows"]
    open_page(page, stack)
    expect_table(page, rows)
    priced = [r for r in rows if r["amounts"] is not None]
    unpriced = [r for r in rows if r["amounts"] is None]  # unmapped: always last
    header = page.get_by_role("columnheader", name="Monthly")
    page.get_by_role("button", name="Monthly").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect_table(page, sorted(priced, key=lambda r: Decimal(r["amounts"]["monthly_price_gap"])) + unpriced)
    page.get_by_role("button", name="Monthly").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    ordered = sorted(priced, key=lambda r: -Decimal(r["amounts"]["monthly_price_gap"])) + unpriced
    expect_table(page, ordered)
    expect(page.locator("#rows tr.row .monthly-cell").first).to_have_text("+$39.00")
    # Cedar & Pine's licences are an annual commitment: over-licensed, reducible only at renewal.
    cedar = next(r for r in rows if r["client"] == "Cedar & Pine Architects")
    assert cedar["status"] == "over_licensed" and cedar["commitment_ends"]
    cell = page.locator('#rows tr.row[data-status="over_licensed"]', has_text="Cedar & Pine").locator(
        ".monthly-cell"
    )
    expect(cell).to_contain_text("-$23.40")
    expect(cell.locator(".renewal")).to_contain_text(
        f"reducible at renewal on {cedar['commitment_ends']}, in "
    )
    # A row without a price says so, and why, rather than showing $0.
    page.get_by_role("tab", name="SentinelOne Control").click()
    zenith = page.locator("#rows tr.row", has_text="Zenith Media").locator(".monthly-cell .no-data")
    expect(zenith).to_have_text("—")
    expect(zenith).to_have_attribute("title", re.compile("no counted subscription has a price"))


def two_snapshots_with_new_gaps(stack: LocalStack) -> dict[str, Any]:
    """Snapshots taken with a tolerance of 1, then of 0: every client 1 off is a new gap in the second."""
    settings = stack.ok("GET", "/settings")
    stack.ok("PUT", "/settings", {**settings, "tolerance": 1})
    stack.ok("POST", "/snapshots")
    stack.ok("PUT", "/settings", {**stack.ok("GET", "/settings"), "tolerance": 0})
    second: dict[str, Any] = stack.snapshot(stack.ok("POST", "/snapshots")["id"])
    return second


def test_the_change_filter_keeps_only_the_gaps_new_since_the_snapshot_before(
    page: Page, stack: LocalStack
) -> None:
    second = two_snapshots_with_new_gaps(stack)
    rows = second["coverages"][0]["rows"]
    new = [r for r in rows if r["change"] == "new"]
    # Hillcrest and Yellowstone (+1), Juniper and Maple Street (-1) were matched within the tolerance.
    assert sorted(r["client"] for r in new) == [
        "Hillcrest Senior Living",
        "Juniper Health Co.",
        "Maple Street Bakery",
        "Yellowstone Outfitters",
    ]
    open_page(page, stack)
    expect_table(page, rows)
    expect(
        page.locator("#rows tr.row", has_text="Hillcrest Senior Living").locator(".change-cell")
    ).to_have_text("New gap")
    expect(
        page.locator("#rows tr.row", has_text="Redwood Financial Advisors").locator(".change-cell")
    ).to_have_text("Same")
    choice = page.get_by_label("Since the snapshot before")
    expect(choice.locator("option[value=new]")).to_have_text(
        re.compile(r"^New gaps since the snapshot of [A-Z][a-z]{2} \d{1,2}$")
    )
    choice.select_option("new")
    expect_table(page, new)
    expect(page.locator("#row-count")).to_have_text(f"Showing {len(new)} of {len(rows)} clients")
    choice.select_option("")
    expect_table(page, rows)


def test_a_rows_detail_draws_the_clients_devices_and_licences_over_the_snapshots(
    page: Page, stack: LocalStack
) -> None:
    two_snapshots_with_new_gaps(stack)
    open_page(page, stack)
    row = page.locator("#rows tr.row", has_text="Hillcrest Senior Living")
    row.get_by_role("button").first.click()
    chart = page.locator("tr.detail .history-chart svg")
    expect(chart).to_have_attribute("data-points", "2")
    expect(chart.locator("polyline.devices")).to_have_count(1)
    expect(chart.locator("polyline.licenses")).to_have_count(1)
    expect(chart.locator("circle.devices")).to_have_count(2)
    # What the chart shows, in words (its accessible name): 46 devices and 45 licences both times.
    label = chart.get_attribute("aria-label") or ""
    assert label.count("46 devices, 45 licences") == 2, label
    expect(page.locator("tr.detail .history-chart figcaption")).to_contain_text("over the last 2 snapshots")


def test_clicking_a_card_filters_the_table_and_enter_on_a_focused_card_does_too(
    page: Page, demo_stack: LocalStack, demo_snapshot: dict[str, Any]
) -> None:
    stack, snapshot = demo_stack, demo_snapshot  # read only: a stack shared by the module
    rows = snapshot["coverages"][0]["rows"]
    open_page(page, stack)
    expect_table(page, rows)

    under = page.locator(".card.under")
    under.click()
    expect(under).to_have_attribute("aria-pressed", "true")
    expect_table(page, [r for r in rows if r["status"] == "under_licensed"])
    expect(page.get_by_role("button", name="Export Under-licensed only")).to_be_visible()
    under.click()
    expect(under).to_have_attribute("aria-pressed", "false")
    expect_table(page, rows)
    expect(page.get_by_role("button", name="Export Report")).to_be_visible()

    over = page.locator(".card.over")
    over.focus()
    page.keyboard.press("Enter")
    expect(over).to_have_attribute("aria-pressed", "true")
    expect_table(page, [r for r in rows if r["status"] == "over_licensed"])
    page.keyboard.press("Enter")
    expect_table(page, rows)

    page.locator(".card.matched").focus()
    page.keyboard.press("Enter")
    expect_table(page, [r for r in rows if r["status"] == "matched"])
    expect(page.locator("#row-count")).to_have_text(
        f"Showing {snapshot['coverages'][0]['summary']['matched']} of {len(rows)} clients"
    )


def test_sorting_by_variance_and_searching_by_name_change_the_rows(
    page: Page, demo_stack: LocalStack, demo_snapshot: dict[str, Any]
) -> None:
    stack, snapshot = demo_stack, demo_snapshot  # read only: a stack shared by the module
    rows = snapshot["coverages"][0]["rows"]
    open_page(page, stack)
    expect_table(page, rows)
    variance_header = page.get_by_role("columnheader", name="Variance")

    with_variance = [r for r in rows if r["variance"] is not None]
    without = [r for r in rows if r["variance"] is None]  # unmapped: always last
    page.get_by_role("button", name="Variance").click()
    expect(variance_header).to_have_attribute("aria-sort", "ascending")
    expect_table(page, sorted(with_variance, key=lambda r: r["variance"]) + without)
    assert [r["variance"] for r in table(page)][:2] == ["-4", "-4"]

    page.get_by_role("button", name="Variance").click()
    expect(variance_header).to_have_attribute("aria-sort", "descending")
    expect_table(page, sorted(with_variance, key=lambda r: -r["variance"]) + without)
    assert table(page)[0]["variance"] == "+6"

    page.get_by_role("button", name="Variance").click()  # a third click: back to the API's order
    expect(variance_header).to_have_attribute("aria-sort", "none")
    expect_table(page, rows)

    search = page.get_by_label("Search clients")
    search.fill("dental")
    dental = [r for r in rows if "dental" in r["client"].lower()]
    assert len(dental) >= 2
    expect_table(page, dental)
    expect(page.locator("#row-count")).to_have_text(f"Showing {len(dental)} of {len(rows)} clients")
    search.fill("no such client")
    expect(page.locator("#rows")).to_have_text("No client matches “no such client”.")
    search.fill("")
    expect_table(page, rows)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def csv_as_shown(record: list[str]) -> dict[str, str]:
    client, devices, licenses, variance, status = record[:5]
    return {
        "client": client,
        "devices": devices or "No data",
        "licenses": licenses or "No data",
        "variance": "—" if variance == "" else (f"+{variance}" if int(variance) > 0 else variance),
        "status": status,
    }


def test_export_report_with_no_filter_downloads_a_csv_of_the_tables_rows_in_its_default_order(
    page: Page, demo_stack: LocalStack, demo_snapshot: dict[str, Any]
) -> None:
    stack, snapshot = demo_stack, demo_snapshot  # read only: a stack shared by the module
    coverage = snapshot["coverages"][0]
    open_page(page, stack)
    expect_table(page, coverage["rows"])
    shown = table(page)

    with page.expect_download() as downloading:
        page.get_by_role("button", name="Export Report").click()
    download = downloading.value
    assert (
        download.suggested_filename
        == f"trueup-reconciliation-{snapshot['taken_at'][:10]}-{coverage['id']}.csv"
    )
    records = read_csv(Path(download.path()))
    assert records[0][:5] == ["Client", "Devices", "Licenses", "Variance", "Status"]
    assert [csv_as_shown(r) for r in records[1:]] == shown
    expect(notice(page)).to_contain_text(f"({len(shown)} rows)")
    assert page.url.startswith(stack.url)  # the download left the page where it was

    # With a card filter the export holds only those rows, and the button says so.
    page.locator(".card.over").click()
    expect_table(page, [r for r in coverage["rows"] if r["status"] == "over_licensed"])
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Export Over-licensed only").click()
    records = read_csv(Path(downloading.value.path()))
    assert [csv_as_shown(r) for r in records[1:]] == table(page)


def test_switching_to_an_earlier_snapshot_shows_its_rows(page: Page, stack: LocalStack) -> None:
    earlier = stack.snapshot(stack.ok("POST", "/snapshots")["id"])
    mappings = stack.ok("GET", "/mappings")
    [company] = [c for c in mappings["unmapped_pax8"] if c["client"] == "Dunmore Veterinary Clinic"]
    [organization] = [o for o in mappings["unmapped_rmm"] if o["name"] == "Dunmore Vet Clinic"]
    stack.ok(
        "PUT",
        f"/mappings/{company['pax8_company_id']}",
        {"rmm_organization_ids": [organization["rmm_organization_id"]]},
    )
    later = stack.snapshot(stack.ok("POST", "/snapshots")["id"])
    earlier_rows, later_rows = earlier["coverages"][0]["rows"], later["coverages"][0]["rows"]
    assert earlier_rows != later_rows

    open_page(page, stack)
    expect_table(page, later_rows)
    expect(page.locator("#snapshot-tag")).to_have_text("Latest")
    picker = page.get_by_label("Snapshot", exact=True)
    expect(picker.locator("option")).to_have_count(2)
    month = page.evaluate(
        "iso => new Intl.DateTimeFormat('en', {month: 'long', year: 'numeric'}).format(new Date(iso))",
        earlier["taken_at"],
    )
    expect(picker.locator("optgroup")).to_have_attribute("label", month)

    picker.select_option(earlier["id"])
    expect(page.locator("#snapshot-tag")).to_have_text("Earlier snapshot")
    expect_table(page, earlier_rows)
    dunmore = page.locator("#rows tr.row", has_text="Dunmore Vet Clinic")
    expect(dunmore.locator(".status-cell")).to_have_text("Unmapped")
    assert f"snapshot={earlier['id']}" in page.url

    # The address names the snapshot on screen: a reload shows the same one.
    page.reload()
    expect(page.locator("#snapshot-tag")).to_have_text("Earlier snapshot")
    expect_table(page, earlier_rows)

    # Back goes to the snapshot seen before; "Show the latest" from an earlier one.
    page.go_back()
    expect(page.locator("#snapshot-tag")).to_have_text("Latest")
    expect_table(page, later_rows)
    picker.select_option(earlier["id"])
    expect_table(page, earlier_rows)
    page.get_by_role("button", name="Show the latest").click()
    expect(page.locator("#snapshot-tag")).to_have_text("Latest")
    expect_table(page, later_rows)
    assert "snapshot=" not in page.url


def test_a_rows_detail_shows_its_organizations_and_excluded_devices_by_reason(
    page: Page, demo_stack: LocalStack, demo_snapshot: dict[str, Any]
) -> None:
    stack, snapshot = demo_stack, demo_snapshot  # read only: a stack shared by the module
    rows = snapshot["coverages"][0]["rows"]
    open_page(page, stack)
    expect_table(page, rows)
    with_exclusions = [r for r in rows if any(r["excluded"].values())]
    reasons = {reason for r in with_exclusions for reason, n in r["excluded"].items() if n}
    assert {"pending", "class_not_covered", "never_seen", "stale"} <= reasons  # the demo has each of them

    for row in with_exclusions:
        toggle = page.locator(
            "#rows tr.row",
            has=page.locator(".client-name", has_text=re.compile(f"^{re.escape(row['client'])}$")),
        ).get_by_role("button")
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        detail = page.locator(f"#{toggle.get_attribute('aria-controls')}")
        expect(detail.locator(".detail-organizations li")).to_have_text(
            [
                f"{name} ({oid})"
                for name, oid in zip(row["rmm_organization_names"], row["rmm_organization_ids"], strict=True)
            ]
        )
        for reason, count in row["excluded"].items():
            expect(detail.locator(f'dd[data-reason="{reason}"]')).to_have_text(str(count))
        total = sum(row["excluded"].values())
        expect(detail).to_contain_text(
            f"{total} device{'s' if total != 1 else ''} left out in all; {row['devices']} counted."
        )
        toggle.click()
        expect(detail).to_have_count(0)

    granite = page.locator("#rows tr.row", has_text="Granite Peak Construction Inc.").get_by_role("button")
    granite.click()
    detail = page.locator("tr.detail")
    expect(detail.locator("dt", has_text="Device class not covered")).to_be_visible()

    # A Pax8 company with no RMM organization says why it has no device count.
    unmapped = page.locator("#rows tr.row", has_text="Evergreen Family Practice").get_by_role("button")
    unmapped.focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"#{unmapped.get_attribute('aria-controls')}")).to_contain_text(
        "None: this company has no RMM organization, so none of its devices are counted."
    )

    # A row whose source had unreadable records carries the warning.
    [warned] = [
        r for r in rows if r["warnings"] and r["status"] == "matched" and r["client"] == "Westbrook Realty"
    ]
    westbrook = page.locator("#rows tr.row", has_text="Westbrook Realty").get_by_role("button")
    westbrook.click()
    expect(page.locator(f"#{westbrook.get_attribute('aria-controls')} .warnings li")).to_have_text(
        warned["warnings"]
    )


REASON_TEXT = {
    "pending": "No: Pending approval",
    "inactive": "No: Inactive (deleted or suspended)",
    "class_not_covered": "No: Device class not covered",
    "never_seen": "No: Never seen",
    "stale": "No: Stale",
}


def test_a_rows_detail_lists_its_devices_left_out_with_the_reason_and_its_subscriptions(
    page: Page, demo_stack: LocalStack, demo_snapshot: dict[str, Any]
) -> None:
    stack, snapshot = demo_stack, demo_snapshot  # read only: a stack shared by the module
    coverage = snapshot["coverages"][0]

    def evidence(row: dict[str, Any], sort: str) -> dict[str, Any]:
        key = row["pax8_company_id"] or row["rmm_organization_ids"][0]
        query = f"coverage={coverage['id']}&client={key}&sort={sort}&limit=5000"
        status, body = http_json(f"{stack.url}/snapshots/{snapshot['id']}/evidence?{query}")
        assert status == 200, body
        found: dict[str, Any] = body
        return found

    # The row with the most kinds of devices left out, then the most of them.
    row = max(
        coverage["rows"],
        key=lambda r: (sum(1 for n in r["excluded"].values() if n), sum(r["excluded"].values()), r["client"]),
    )
    assert sum(row["excluded"].values()) > 0
    expected = evidence(row, "reason")
    open_page(page, stack)
    expect_table(page, coverage["rows"])
    toggle = page.locator(
        "#rows tr.row", has=page.locator(".client-name", has_text=re.compile(f"^{re.escape(row['client'])}$"))
    ).get_by_role("button")
    toggle.click()
    detail = page.locator(f"#{toggle.get_attribute('aria-controls')} .detail-evidence")

    devices = detail.locator(".evidence-devices tbody tr")
    expect(devices).to_have_count(min(200, expected["devices_total"]))
    left_out = [d for d in expected["devices"] if d["reason"]]
    assert len(left_out) == sum(row["excluded"].values())
    shown_left_out = detail.locator(".evidence-devices tbody tr.left-out")
    expect(shown_left_out.locator("td:first-child")).to_have_text([d["name"] for d in left_out])
    expect(shown_left_out.locator("td.reason")).to_have_text([REASON_TEXT[d["reason"]] for d in left_out])
    expect(detail.locator(".evidence-devices caption")).to_have_text(
        f"Devices ({expected['devices_total']}: {row['devices']} counted, {len(left_out)} left out)"
    )
    subscriptions = detail.locator(".evidence-subscriptions tbody tr")
    expect(subscriptions.locator("td:first-child")).to_have_text(
        [s["product"] for s in expected["subscriptions"]]
    )
    expect(subscriptions.locator("td:nth-child(2)")).to_have_text(
        [str(s["quantity"]) for s in expected["subscriptions"]]
    )
    counted = sum(s["quantity"] for s in expected["subscriptions"] if s["counted"])
    assert counted == row["licenses"]

    # Sorted by name, as the API sorts them; again for descending.
    by_device = detail.locator('.evidence-devices th button[data-sort="name"]')
    expect(by_device).to_have_text("Device")
    by_device.click()
    by_name = [d["name"] for d in evidence(row, "name")["devices"]][:200]
    expect(devices.locator("td:first-child")).to_have_text(by_name)
    expect(detail.locator('th[aria-sort="ascending"]')).to_have_text(re.compile("^Device"))
    by_device.click()
    expect(devices.locator("td:first-child")).to_have_text(
        [d["name"] for d in evidence(row, "-name")["devices"]][:200]
    )

    # The row's evidence downloads as CSV: one line per subscription and per device.
    with page.expect_download() as downloading:
        detail.get_by_role("button", name="Download as CSV").click()
    records = read_csv(Path(downloading.value.path()))
    assert records[0][:4] == ["Client", "Item", "Counted", "Reason"]
    assert len(records) - 1 == expected["devices_total"] + len(expected["subscriptions"])
    assert {r[0] for r in records[1:]} == {row["client"]}


def test_dismissing_a_gap_with_a_reason_sets_it_aside_from_the_red_card_on_the_next_snapshots(
    page: Page, stack: LocalStack, snapshot: dict[str, Any]
) -> None:
    first = snapshot["coverages"][0]
    under = first["summary"]["under_licensed"]
    [redwood] = [r for r in first["rows"] if r["client"] == "Redwood Financial Advisors"]
    assert redwood["status"] == "under_licensed"
    open_page(page, stack)
    expect(page.locator(".card.under [data-count]")).to_have_text(str(under))
    toggle = page.locator("#rows tr.row", has_text="Redwood Financial Advisors").get_by_role("button")
    toggle.click()
    decision = page.locator(f"#{toggle.get_attribute('aria-controls')} .detail-decision")
    expect(decision).to_contain_text("Undecided.")
    decision.get_by_label("Decision").select_option("dismissed")
    decision.get_by_label("Reason").fill("flat-fee contract")
    decision.get_by_role("button", name="Record decision").click()
    expect(notice(page)).to_contain_text("Decision recorded for Redwood Financial Advisors: Dismissed")

    # The next snapshot sets it aside: out of the red card, counted in the note with its money.
    page.locator(".topbar").get_by_role("button", name="Take Snapshot").click()
    expect(page.get_by_role("status").filter(has_text="Snapshot taken")).to_be_visible()
    expect(page.locator(".card.under [data-count]")).to_have_text(str(under - 1))
    note = page.locator("#set-aside")
    expect(note).to_contain_text("1 client set aside by a decision (1 dismissed): $39.00 a month not billed")
    note.get_by_role("button", name="Show them").click()
    expect(page.locator("#rows tr.row .client-name")).to_have_text(["Redwood Financial Advisors"])
    expect(page.locator("#rows tr.row .decision")).to_have_text("Dismissed")
    # The red card lists only the gaps it counts.
    page.locator(".card.under").click()
    expect(page.locator("#rows tr.row")).to_have_count(under - 1)

    # Another snapshot with the same figures: the decision is kept, with who made it and why.
    page.locator(".topbar").get_by_role("button", name="Take Snapshot").click()
    expect(page.locator("#snapshot-picker option")).to_have_count(3)
    expect(page.locator(".card.under [data-count]")).to_have_text(str(under - 1))
    latest_rows = latest(stack)["coverages"][0]["rows"]
    [kept] = [r for r in latest_rows if r["client"] == "Redwood Financial Advisors"]
    assert kept["decision"]["kind"] == "dismissed" and kept["decision"]["lapsed"] is False
    page.locator("#set-aside").get_by_role("button", name="Show them").click()
    page.locator("#rows tr.row", has_text="Redwood Financial Advisors").get_by_role("button").click()
    expect(page.locator("tr.detail .decision-now")).to_contain_text("Dismissed: “flat-fee contract”, by")


def test_accepting_a_suggestion_moves_a_client_out_of_unmapped_on_the_next_snapshot(
    page: Page, stack: LocalStack, snapshot: dict[str, Any]
) -> None:
    before = snapshot["coverages"][0]
    open_page(page, stack)
    client = page.locator(
        "#rows tr.row", has=page.locator(".client-name", has_text=re.compile("^Dunmore Veterinary Clinic$"))
    )
    expect(client.locator(".status-cell")).to_have_text("Unmapped")
    expect(page.locator("#rows tr.row", has_text="Dunmore Vet Clinic")).to_have_count(1)
    expect(page.locator("#unmapped-warning")).to_contain_text(
        f"{before['summary']['unmapped']} unmapped clients"
    )

    page.get_by_role("navigation", name="Views").get_by_role("link", name="Unmapped clients").click()
    expect(page.get_by_role("heading", name="Unmapped clients")).to_be_visible()
    suggestion = page.locator("#suggestions li", has_text="Dunmore Veterinary Clinic")
    expect(suggestion).to_contain_text("Dunmore Vet Clinic")
    suggestion.get_by_role("button", name="Accept").click()
    expect(notice(page)).to_contain_text(
        "Saved: Dunmore Vet Clinic now counts for Dunmore Veterinary Clinic."
    )
    expect(page.locator("#suggestions li", has_text="Dunmore Veterinary Clinic")).to_have_count(0)
    expect(page.locator("#manual-mappings li", has_text="Dunmore Veterinary Clinic")).to_contain_text(
        "Dunmore Vet Clinic"
    )
    [mapping] = [
        m for m in stack.ok("GET", "/mappings")["mappings"] if m["client"] == "Dunmore Veterinary Clinic"
    ]
    assert (mapping["source"], [o["name"] for o in mapping["rmm_organizations"]]) == (
        "manual",
        ["Dunmore Vet Clinic"],
    )

    page.locator(".topbar").get_by_role("button", name="Take Snapshot").click()
    expect(page.get_by_role("heading", name="Reconciliation")).to_be_visible()
    expect(page.locator("#snapshot-picker option")).to_have_count(2)
    after = latest(stack)["coverages"][0]
    expect_table(page, after["rows"])
    expect(client.locator(".status-cell")).to_have_text("Matched")
    expect(client.locator(".devices-cell")).to_have_text("8")
    expect(client.locator(".licenses-cell")).to_have_text("8")
    expect(page.locator("#rows tr.row", has_text="Dunmore Vet Clinic")).to_have_count(0)
    # Two half-rows (licences only, devices only) became one matched client.
    assert after["summary"]["unmapped"] == before["summary"]["unmapped"] - 2
    expect(page.locator("#unmapped-warning")).to_contain_text(
        f"{after['summary']['unmapped']} unmapped clients"
    )
    expect(page.locator(".card.matched [data-count]")).to_have_text(str(before["summary"]["matched"] + 1))


def test_ignoring_the_msps_own_lab_takes_it_out_of_every_coverage_and_lists_it_under_ignored(
    page: Page, stack: LocalStack, snapshot: dict[str, Any], tmp_path: Path
) -> None:
    coverages = [c["name"] for c in snapshot["coverages"]]
    assert all(
        any(r["client"] == "Internal IT - Lab" for r in c["rows"]) for c in snapshot["coverages"]
    )  # unmapped in every coverage before
    open_page(page, stack, "/#view=unmapped")
    entry = page.locator("#unmapped-rmm li", has_text="Internal IT - Lab")
    entry.get_by_role("button", name="Ignore Internal IT - Lab: not billable").click()
    entry.get_by_label("Why Internal IT - Lab is not billable").fill("our own lab")
    entry.get_by_role("button", name="Ignore", exact=True).click()
    expect(notice(page)).to_contain_text("Internal IT - Lab is ignored")
    expect(page.locator("#unmapped-rmm li", has_text="Internal IT - Lab")).to_have_count(0)
    ignored = page.locator("#ignored li", has_text="Internal IT - Lab")
    expect(ignored).to_contain_text("“our own lab”, by")

    page.locator(".topbar").get_by_role("button", name="Take Snapshot").click()
    expect(page.get_by_role("heading", name="Reconciliation")).to_be_visible()
    expect(page.locator("#snapshot-picker option")).to_have_count(2)
    search = page.get_by_label("Search clients")
    for name in coverages:
        page.get_by_role("tab", name=name).click()
        search.fill("Internal IT")
        expect(page.locator("#row-count")).to_contain_text("Showing 0 of")
        expect(page.locator("#rows tr.row")).to_have_count(0)
    assert all(r["client"] != "Internal IT - Lab" for c in latest(stack)["coverages"] for r in c["rows"])
    # The snapshot's audit export holds the change, with why.
    with page.expect_download() as download:
        page.get_by_role("button", name="Export Audit").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("trueup-audit-")
    [change] = list(csv.DictReader(saved.read_text(encoding="utf-8-sig").splitlines()))
    assert (change["Kind"], change["What"], change["Reason"]) == (
        "organization",
        "Internal IT - Lab ignored: not billable",
        "our own lab",
    )

    # Restored, it is an unmapped organization again.
    page.get_by_role("navigation", name="Views").get_by_role("link", name="Unmapped clients").click()
    page.locator("#ignored li", has_text="Internal IT - Lab").get_by_role(
        "button", name="Restore Internal IT - Lab"
    ).click()
    expect(notice(page)).to_contain_text("Internal IT - Lab counts again")
    expect(page.locator("#unmapped-rmm li", has_text="Internal IT - Lab")).to_have_count(1)
    expect(page.locator("#ignored")).to_contain_text("None: every RMM organization counts.")


def test_a_rejected_suggestion_is_never_offered_again(page: Page, stack: LocalStack) -> None:
    open_page(page, stack, "/#view=unmapped")
    wrong = page.locator("#suggestions li", has_text="Greenleaf Accounting Pty Ltd")
    expect(wrong).to_contain_text("Greenleaf Accounting")
    wrong.get_by_role(
        "button", name="Reject: Greenleaf Accounting is not Greenleaf Accounting Pty Ltd"
    ).click()
    expect(notice(page)).to_contain_text(
        "Rejected: Greenleaf Accounting will not be suggested for Greenleaf Accounting Pty Ltd again."
    )
    expect(page.locator("#suggestions li", has_text="Greenleaf Accounting Pty Ltd")).to_have_count(0)
    # The right one is still offered, and the wrong one stays gone after a reload.
    page.reload()
    expect(page.locator("#suggestions li", has_text="Greenleaf Accounting")).to_have_count(1)
    expect(page.locator("#suggestions li", has_text="Greenleaf Accounting Pty Ltd")).to_have_count(0)
    [rejected] = stack.ok("GET", "/rejected-suggestions")["items"]
    assert (rejected["client"], rejected["rmm_organization_name"]) == (
        "Greenleaf Accounting Pty Ltd",
        "Greenleaf Accounting",
    )


def test_sync_now_shows_progress_and_updates_when_the_data_was_synced(page: Page, stack: LocalStack) -> None:
    first = stack.ok("GET", "/syncs/current")
    open_page(page, stack)
    pax8 = page.locator('#sync-status [data-source="pax8"]')
    rmm = page.locator('#sync-status [data-source="ninjaone"]')
    expect(pax8).to_contain_text("Pax8 synced")
    expect(pax8.locator("time")).to_have_attribute("datetime", first["pax8"]["synced_at"])
    expect(rmm.locator("time")).to_have_attribute("datetime", first["rmm"]["ninjaone"]["synced_at"])
    titles = [pax8.locator("time").get_attribute("title"), rmm.locator("time").get_attribute("title")]

    page.get_by_role("button", name="Sync now").click()
    expect(page.locator("#sync-progress")).to_contain_text("Syncing:")
    expect(page.get_by_role("status").filter(has_text="Sync finished")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Sync now")).to_be_enabled()
    expect(page.locator("#sync-progress")).to_be_hidden()

    current = stack.ok("GET", "/syncs/current")
    assert current["pax8"]["synced_at"] > first["pax8"]["synced_at"]
    assert current["rmm"]["ninjaone"]["synced_at"] > first["rmm"]["ninjaone"]["synced_at"]
    expect(pax8.locator("time")).to_have_attribute("datetime", current["pax8"]["synced_at"])
    expect(rmm.locator("time")).to_have_attribute("datetime", current["rmm"]["ninjaone"]["synced_at"])
    expect(pax8).to_have_text("Pax8 synced just now")
    expect(rmm).to_have_text("NinjaOne synced just now")
    # The exact time (the tooltip) moved on to the new sync.
    assert [pax8.locator("time").get_attribute("title"), rmm.locator("time").get_attribute("title")] != titles
    run = stack.ok("GET", "/syncs?limit=1")["items"][0]
    expect(notice(page)).to_have_text(
        f"Sync finished (Pax8 {run['sources']['pax8']['records']} records, "
        f"NinjaOne {run['sources']['ninjaone']['records']} records)."
    )


def fail_with_500(route: Route) -> None:
    route.fulfill(status=500, content_type="application/json", body='{"message": "Internal Server Error"}')


def test_an_api_failure_shows_an_error_message_not_a_blank_page(
    page: Page, demo_stack: LocalStack, demo_snapshot: dict[str, Any]
) -> None:
    stack, snapshot = demo_stack, demo_snapshot  # read only: a stack shared by the module
    page.route("**/snapshots/latest?*", fail_with_500)
    open_page(page, stack)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Could not load the snapshot: Internal Server Error (HTTP 500)")
    expect(page.get_by_role("heading", name="Reconciliation")).to_be_visible()
    expect(page.locator("#loading")).to_have_text("The snapshot could not be loaded.")
    expect(page.locator(".topbar").get_by_role("button", name="Take Snapshot")).to_be_visible()

    page.unroute("**/snapshots/latest?*")
    alert.get_by_role("button", name="Try again").click()
    expect(alert).to_be_hidden()
    expect_table(page, snapshot["coverages"][0]["rows"])

    # A failed action keeps what is on screen and says what went wrong.
    page.route(
        "**/snapshots",
        lambda route: fail_with_500(route) if route.request.method == "POST" else route.continue_(),
    )
    page.locator(".topbar").get_by_role("button", name="Take Snapshot").click()
    expect(alert).to_contain_text("Could not take a snapshot: Internal Server Error (HTTP 500)")
    expect_table(page, snapshot["coverages"][0]["rows"])
    expect(page.locator(".topbar").get_by_role("button", name="Take Snapshot")).to_be_enabled()


def test_at_390_px_wide_the_page_has_no_horizontal_scroll(
    page: Page, demo_stack: LocalStack, demo_snapshot: dict[str, Any]
) -> None:
    stack, snapshot = demo_stack, demo_snapshot  # read only: a stack shared by the module
    page.set_viewport_size(PHONE)
    open_page(page, stack)
    rows = snapshot["coverages"][0]["rows"]
    expect_table(page, rows)
    no_horizontal_scroll(page)
    # The table turned into one card per client, each within the screen.
    first = page.locator("#rows tr.row").first.bounding_box()
    assert first is not None and first["x"] >= 0 and first["x"] + first["width"] <= PHONE["width"]

    page.locator("#rows tr.row", has_text="Granite Peak Construction Inc.").get_by_role("button").click()
    expect(page.locator("tr.detail")).to_be_visible()
    no_horizontal_scroll(page)

    page.get_by_role("link", name="Unmapped clients").click()
    expect(page.locator("#suggestions li").first).to_be_visible()
    no_horizontal_scroll(page)


def test_a_held_sync_is_shown_with_its_reason_and_an_admin_uses_its_data(
    page: Page, stack: LocalStack
) -> None:
    before = stack.ok("GET", "/syncs/current")
    # NinjaOne ends its device list after two pages of 100 (its third page is empty, as a last one is).
    ids = sorted(d["id"] for d in build_dataset().ninjaone_devices)
    fault = {"server": "ninjaone", "path": "/v2/devices", "after": ids[199], "malformed": True, "body": []}
    assert http_json(stack.stack_file()["demo"]["control"] + "/faults", "POST", fault)[0] == 201
    open_page(page, stack)
    page.get_by_role("button", name="Sync now").click()
    reason = "NinjaOne returned 200 devices; the current data has 588"
    expect(page.get_by_role("status").filter(has_text="Sync held")).to_have_text(
        f"Sync held: NinjaOne: {reason}. The current data stays in use.", timeout=60_000
    )
    held = page.get_by_role("region", name="Sync held: its data looks too short to use")
    expect(held).to_contain_text(f"{reason}.")
    assert stack.ok("GET", "/syncs/current")["rmm"] == before["rmm"]

    held.get_by_role("button", name=re.compile("^Use the new data: the NinjaOne sync of")).click()
    expect(notice(page)).to_have_text(
        "The new NinjaOne data is now current. Take a snapshot to reconcile it."
    )
    expect(held).to_be_hidden()
    assert stack.ok("GET", "/syncs/current")["rmm"]["ninjaone"]["records"] == 240


def test_sync_and_snapshot_syncs_then_shows_the_snapshot_of_the_fresh_data(
    page: Page, stack: LocalStack, snapshot: dict[str, Any]
) -> None:
    before = stack.ok("GET", "/syncs/current")
    # NinjaOne answers its first page of devices slowly, so the sync lasts long enough to be seen
    # in progress (a fast one may finish between two of the page's polls).
    slow = {"server": "ninjaone", "path": "/v2/devices", "delay": 5, "times": 1}
    assert http_json(stack.stack_file()["demo"]["control"] + "/faults", "POST", slow)[0] == 201
    open_page(page, stack)
    expect(page.locator("#snapshot-meta")).to_contain_text("Taken")
    page.get_by_role("button", name="Sync & Snapshot").click()
    expect(page.locator("#sync-progress")).to_contain_text("Syncing:")
    notice = page.get_by_role("status").filter(has_text="Synced, and snapshot taken")
    expect(notice).to_be_visible(timeout=60_000)
    [cycle] = stack.ok("GET", "/cycles")["items"]
    taken = latest(stack)
    assert taken["id"] == cycle["snapshot_id"] != snapshot["id"] and taken["cycle_id"] == cycle["id"]
    # The snapshot is of the data the cycle just synced, and says so.
    current = stack.ok("GET", "/syncs/current")
    ninjaone = current["rmm"]["ninjaone"]["synced_at"]
    assert ninjaone > before["rmm"]["ninjaone"]["synced_at"]
    assert taken["data_as_of"] == {
        "pax8": current["pax8"]["synced_at"],
        "rmm": ninjaone,
        "rmm_sources": {"ninjaone": ninjaone},
    }
    expect(page.locator("#snapshot-meta")).to_contain_text("right after a sync")
    first = taken["coverages"][0]
    expect(notice).to_contain_text(f"{len(first['rows'])} clients in {first['name']}.")
    expect_table(page, first["rows"])
    expect(page.get_by_role("button", name="Sync & Snapshot")).to_be_enabled()


def test_sync_and_snapshot_on_a_held_sync_takes_no_snapshot_and_says_why(
    page: Page, stack: LocalStack, snapshot: dict[str, Any]
) -> None:
    ids = sorted(d["id"] for d in build_dataset().ninjaone_devices)
    fault = {"server": "ninjaone", "path": "/v2/devices", "after": ids[199], "malformed": True, "body": []}
    assert http_json(stack.stack_file()["demo"]["control"] + "/faults", "POST", fault)[0] == 201
    open_page(page, stack)
    page.get_by_role("button", name="Sync & Snapshot").click()
    reason = "NinjaOne returned 200 devices; the current data has 588"
    expect(page.get_by_role("status").filter(has_text="Sync held")).to_have_text(
        f"Sync held: NinjaOne: {reason}. The current data stays in use, and no snapshot was taken.",
        timeout=60_000,
    )
    assert [s["id"] for s in stack.ok("GET", "/snapshots")["items"]] == [snapshot["id"]]
    expect(page.get_by_role("region", name="Sync held: its data looks too short to use")).to_be_visible()


def test_a_snapshot_of_old_data_says_so_under_its_date(
    page: Page, demo_stack: LocalStack, demo_snapshot: dict[str, Any]
) -> None:
    stack = demo_stack  # read only: a stack shared by the module (its snapshot taken)
    warning = (
        "The RMM data was 3 days old when this snapshot was taken (synced 28 Nov 2026 06:00 UTC, "
        "more than 26 hours before): sync, then take a snapshot before relying on it."
    )

    def old(route: Route) -> None:
        answer = route.fetch()
        route.fulfill(response=answer, json={**answer.json(), "warnings": [warning]})

    page.route(re.compile(r".*/snapshots/latest(\?.*)?$"), old)
    open_page(page, stack)
    expect(page.get_by_role("list", name="About this snapshot")).to_have_text(warning)


def test_each_click_on_take_snapshot_and_sync_now_sends_its_own_idempotency_key(
    page: Page, stack: LocalStack
) -> None:
    keys: dict[str, list[str]] = {"snapshots": [], "syncs": []}

    def note(route: Route) -> None:
        request = route.request
        if request.method == "POST":
            name = request.url.rstrip("/").rsplit("/", 1)[-1]
            if name in keys:
                keys[name].append(request.headers.get("idempotency-key", ""))
        route.continue_()

    page.route("**/*", note)
    page.goto(stack.url + "/")
    take = page.locator("#take-snapshot")
    for _ in range(2):
        take.click()  # busy until the API answered, then enabled again
        expect(take).to_be_enabled()
    expect(page.locator("#notice")).to_contain_text("Snapshot taken")
    assert len(stack.ok("GET", "/snapshots")["items"]) == 2
    page.locator("#sync-now").click()
    expect(page.locator("#notice")).to_contain_text("Sync finished")
    assert len(keys["snapshots"]) == 2 and len(set(keys["snapshots"])) == 2
    assert all(re.fullmatch(r"[0-9a-f-]{36}", key) for key in keys["snapshots"] + keys["syncs"])
    assert len(keys["syncs"]) == 1


def test_the_table_shows_a_page_of_clients_at_a_time_and_pages_through_them(
    page: Page, stack: LocalStack, snapshot: dict[str, Any]
) -> None:
    # The page asks for 100 rows at a time; asked for 10 instead, the demo's 35 clients take 4 pages.
    def ten_at_a_time(route: Route) -> None:
        route.continue_(url=route.request.url.replace("limit=100", "limit=10"))

    page.route(re.compile(r".*/snapshots/[^/?]+\?.*limit=100.*"), ten_at_a_time)
    rows = snapshot["coverages"][0]["rows"]
    assert len(rows) == 35
    open_page(page, stack)
    expect_table(page, rows[:10])
    expect(page.locator("#pager-position")).to_have_text("Clients 1–10 of 35")
    expect(page.locator("#pager-previous")).to_be_disabled()
    page.locator("#pager-next").click()
    expect_table(page, rows[10:20])
    expect(page.locator("#pager-position")).to_have_text("Clients 11–20 of 35")
    for _ in range(2):
        page.locator("#pager-next").click()
    expect_table(page, rows[30:])
    expect(page.locator("#pager-next")).to_be_disabled()
    page.locator("#pager-previous").click()
    expect_table(page, rows[20:30])

    # A sort starts again from the first page, sorted on the server over every client.
    page.locator("#clients th[data-key=devices] button").click()
    by_devices = sorted((r for r in rows if r["devices"] is not None), key=lambda r: r["devices"])
    expect_table(page, (by_devices + [r for r in rows if r["devices"] is None])[:10])
    expect(page.locator("#pager-position")).to_have_text("Clients 1–10 of 35")


def test_an_unmapped_company_is_mapped_with_the_one_picker_searched_on_the_server(
    page: Page, stack: LocalStack, snapshot: dict[str, Any]
) -> None:
    open_page(page, stack, "/#view=unmapped")
    expect(page.get_by_role("heading", name="Unmapped clients")).to_be_visible()
    # Nothing to choose from is built until asked for: no list of options per entry.
    expect(page.locator("#unmapped-pax8 li").first).to_be_visible()
    assert page.locator("#unmapped-view select, #unmapped-view .choices").count() == 0

    page.get_by_label("Find a company or organization").fill("dunmore")
    company = page.locator("#unmapped-pax8 li", has_text="Dunmore Veterinary Clinic")
    expect(page.locator("#unmapped-pax8 li")).to_have_count(1)
    company.get_by_role("button", name="Choose the RMM organization for Dunmore Veterinary Clinic").click()
    choices = company.get_by_role("list", name="RMM organization for Dunmore Veterinary Clinic")
    # Its own suggestion first, then the other unmapped organizations.
    expect(choices.locator("li").first).to_contain_text("Dunmore Vet Clinic")
    expect(choices.locator("li").first).to_contain_text("suggested")
    # By keyboard: the arrows go from the search to the choices and back, Escape closes it.
    search = company.get_by_label("Search: RMM organization for Dunmore Veterinary Clinic")
    expect(search).to_be_focused()
    expect(company.locator(".picker-count")).to_contain_text("choices; the down arrow moves to them")
    search.press("ArrowDown")
    expect(choices.get_by_role("button").first).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(choices.get_by_role("button").nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(search).to_be_focused()
    page.keyboard.press("Escape")
    expect(company.locator(".choices")).to_have_count(0)
    choose = company.get_by_role("button", name="Choose the RMM organization for Dunmore Veterinary Clinic")
    expect(choose).to_be_focused()
    choose.press("Enter")
    company.get_by_label("Search: RMM organization for Dunmore Veterinary Clinic").fill("ironwood")
    expect(choices.locator("li")).to_have_text(["Ironwood Legal"])
    company.get_by_label("Search: RMM organization for Dunmore Veterinary Clinic").fill("")
    choices.get_by_role("button", name=re.compile("^Dunmore Vet Clinic")).click()
    expect(notice(page)).to_contain_text(
        "Saved: Dunmore Vet Clinic now counts for Dunmore Veterinary Clinic."
    )
    expect(page.locator("#manual-mappings li", has_text="Dunmore Veterinary Clinic")).to_contain_text(
        "Dunmore Vet Clinic"
    )
    [mapping] = stack.ok("GET", "/mappings?list=manual")["manual"]
    assert (mapping["client"], [o["name"] for o in mapping["rmm_organizations"]]) == (
        "Dunmore Veterinary Clinic",
        ["Dunmore Vet Clinic"],
    )


def test_suggestions_still_being_worked_out_are_said_so_and_appear_when_ready(
    page: Page, stack: LocalStack, snapshot: dict[str, Any]
) -> None:
    # As right after a large MSP's sync: the view's first answer has no suggestions yet.
    def not_yet(route: Route) -> None:
        if "list=suggestions" in route.request.url:
            route.continue_()
            return
        answer = route.fetch()
        view = answer.json()
        view |= {"suggestions": [], "suggestions_pending": True}
        view["summary"]["suggestions"] = None
        route.fulfill(response=answer, json=view)

    page.route(re.compile(r".*/mappings\?.*limit=50.*"), not_yet)
    open_page(page, stack, "/#view=unmapped")
    expect(page.locator("#suggestions")).to_contain_text("Working out suggestions for the latest data")
    expect(page.locator("#unmapped-rmm")).to_contain_text("Dunmore Vet Clinic")  # the rest is all there
    # The page asks again by itself, and shows them once they are ready.
    suggestion = page.locator("#suggestions li", has_text="Dunmore Veterinary Clinic")
    expect(suggestion).to_contain_text("Dunmore Vet Clinic", timeout=15_000)
    expect(page.locator("#suggestions")).not_to_contain_text("Working out suggestions")


def test_the_unmapped_lists_come_a_page_at_a_time(
    page: Page, stack: LocalStack, snapshot: dict[str, Any]
) -> None:
    # The view asks for 50 entries of each list; asked for 2, the demo's lists need "Show more".
    def two_at_a_time(route: Route) -> None:
        route.continue_(url=route.request.url.replace("limit=50", "limit=2"))

    page.route(re.compile(r".*/mappings\?.*limit=50.*"), two_at_a_time)
    organizations = stack.ok("GET", "/mappings?list=unmapped_rmm&limit=1000")["unmapped_rmm"]
    assert len(organizations) > 4
    open_page(page, stack, "/#view=unmapped")
    listed = page.locator("#unmapped-rmm li[data-kind=rmm] .mapping-names strong")
    expect(listed).to_have_text([o["name"] for o in organizations[:2]])
    page.locator("#unmapped-rmm").get_by_role("button", name="Show more (2 shown so far)").click()
    expect(listed).to_have_text([o["name"] for o in organizations[:4]])


def test_an_exclusion_rule_by_tag_leaves_devices_out_from_the_next_snapshot(
    page: Page, stack: LocalStack, snapshot: dict[str, Any]
) -> None:
    [granite] = [
        r for r in snapshot["coverages"][0]["rows"] if r["client"] == "Granite Peak Construction Inc."
    ]
    assert (granite["devices"], granite["licenses"], granite["status"]) == (27, 25, "under_licensed")
    open_page(page, stack, "/#view=rules")
    expect(page.get_by_role("heading", name="Exclusion rules")).to_be_visible()
    expect(page.locator("#rules")).to_contain_text("None: every device of a covered class counts.")
    form = page.locator("#rule-form")
    form.get_by_label("Name", exact=True).fill("Loaners")
    form.get_by_label("Tags or groups").fill("not-billable")
    form.get_by_label("Coverage").select_option(label="Huntress Managed EDR")
    form.get_by_label("Why").fill("loaners are not billed")
    form.get_by_role("button", name="Save rule").click()
    expect(notice(page)).to_contain_text("Rule “Loaners” saved")
    expect(page.locator("#rules li", has_text="Loaners")).to_contain_text(
        "Leaves out devices with tags not-billable, in Huntress Managed EDR."
    )

    # The next snapshot leaves Granite Peak's two loaners out: 25 devices, 25 licences, matched.
    page.locator(".topbar").get_by_role("button", name="Take Snapshot").click()
    expect(page.get_by_role("heading", name="Reconciliation")).to_be_visible()
    expect(page.locator("#snapshot-picker option")).to_have_count(2)
    row = page.locator(
        "#rows tr.row",
        has=page.locator(".client-name", has_text=re.compile("^Granite Peak Construction Inc.$")),
    )
    expect(row.locator(".status-cell")).to_have_text("Matched")
    expect(row.locator(".devices-cell")).to_have_text("25")
    row.get_by_role("button").first.click()
    expect(page.locator("tr.detail .by-rule")).to_have_text("By rule: Loaners (2).")
    [after] = [r for r in latest(stack)["coverages"][0]["rows"] if r["client"] == granite["client"]]
    assert after["excluded_rules"] == {"Loaners": 2} and after["excluded"]["excluded_by_rule"] == 2
