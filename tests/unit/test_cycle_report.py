"""What a cycle's notification says, worked out by hand from small cycles and snapshots."""

from __future__ import annotations

from typing import Any

from trueup.domain.cycles import exports_written, new_cycle, notified, snapshot_taken, sync_finished
from trueup.services.notifications import SUBJECT_LIMIT, cycle_report

T0 = "2026-12-01T06:00:00Z"


def row(client: str, devices: int | None, licenses: int | None, status: str) -> dict[str, Any]:
    variance = None if devices is None or licenses is None else devices - licenses
    return {
        "client": client,
        "devices": devices,
        "licenses": licenses,
        "variance": variance,
        "status": status,
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    statuses = ("under_licensed", "over_licensed", "matched", "unmapped")
    return {s: sum(r["status"] == s for r in rows) for s in statuses}


def finished_cycle() -> dict[str, Any]:
    cycle = new_cycle("20261201T060000Z-monthly", "schedule", ["pax8", "rmm"], T0)
    cycle, _ = sync_finished(cycle, "pax8", "succeeded", None, "2026-12-01T06:01:00Z")
    cycle, _ = sync_finished(cycle, "rmm", "succeeded", None, "2026-12-01T06:02:00Z")
    cycle, _ = snapshot_taken(cycle, "s1", "2026-12-01T06:03:00Z")
    cycle, _ = exports_written(
        cycle, ["exports/2026/12/s1/edr.csv", "exports/2026/12/s1/all_coverages.csv"], T0
    )
    return cycle


def test_a_finished_cycle_tells_the_counts_the_ten_largest_gaps_the_datas_age_and_where_to_look() -> None:
    # EDR: 11 under-licensed clients with gaps 1..11 (client "C01" has 1 ... "C11" has 11), a tie
    # with backup's "Acme" (gap 9, sorted before "C09" by name), one over, one matched, one unmapped.
    edr_rows = [row(f"C{n:02d}", 10 + n, 10, "under_licensed") for n in range(1, 12)]
    edr_rows += [row("Over Co", 3, 5, "over_licensed"), row("Even Co", 4, 4, "matched")]
    edr_rows += [row("Lost Co", None, 6, "unmapped")]
    backup_rows = [row("Acme", 19, 10, "under_licensed"), row("Even Co", 4, 4, "matched")]
    snapshot = {
        "id": "s1",
        "taken_at": "2026-12-01T06:03:30Z",
        "data_as_of": {"pax8": "2026-12-01T06:01:00Z", "rmm": "2026-11-29T05:00:00Z"},
        "warnings": ["The RMM data is 49 hours old (older than 26 hours)"],
        "coverages": [
            {"id": "edr", "name": "EDR", "summary": summary(edr_rows), "rows": edr_rows},
            {"id": "backup", "name": "Backup", "summary": summary(backup_rows), "rows": backup_rows},
        ],
    }
    notice = cycle_report(finished_cycle(), snapshot, "https://trueup.example/")
    assert notice.key == "cycle/20261201T060000Z-monthly"
    assert notice.subject == "trueup: 2026-12-01 reconciliation: 12 under-licensed, 1 over-licensed"
    assert notice.text == "\n".join(
        [
            "trueup's cycle 20261201T060000Z-monthly, started by the monthly schedule, took snapshot s1 "
            "at 2026-12-01 06:03 UTC.",
            "",
            "Per coverage (clients):",
            "- EDR: 11 under-licensed, 1 over-licensed, 1 matched, 1 unmapped",
            "- Backup: 1 under-licensed, 0 over-licensed, 1 matched, 0 unmapped",
            "",
            "The 10 largest under-licensed gaps (devices more than licences):",
            "1. C11 (EDR): 21 devices, 10 licences, 11 under",
            "2. C10 (EDR): 20 devices, 10 licences, 10 under",
            "3. Acme (Backup): 19 devices, 10 licences, 9 under",
            "4. C09 (EDR): 19 devices, 10 licences, 9 under",
            "5. C08 (EDR): 18 devices, 10 licences, 8 under",
            "6. C07 (EDR): 17 devices, 10 licences, 7 under",
            "7. C06 (EDR): 16 devices, 10 licences, 6 under",
            "8. C05 (EDR): 15 devices, 10 licences, 5 under",
            "9. C04 (EDR): 14 devices, 10 licences, 4 under",
            "10. C03 (EDR): 13 devices, 10 licences, 3 under",
            "",
            "How fresh the data was:",
            "- Pax8: synced 2026-12-01 06:01 UTC, 2 minutes before the snapshot",
            "- RMM: synced 2026-11-29 05:00 UTC, 2 days before the snapshot",
            "- Warning: The RMM data is 49 hours old (older than 26 hours)",
            "",
            "Syncs: Pax8 succeeded; RMM succeeded.",
            "",
            "Exports (CSV, in the data bucket):",
            "- exports/2026/12/s1/edr.csv",
            "- exports/2026/12/s1/all_coverages.csv",
            "",
            "Open trueup: https://trueup.example/",
        ]
    )


def test_a_cycle_without_under_licensed_clients_says_so() -> None:
    rows = [row("Even Co", 4, 4, "matched")]
    snapshot = {
        "id": "s1",
        "taken_at": "2026-12-01T09:03:00Z",
        "data_as_of": {"pax8": "2026-12-01T06:01:00Z", "rmm": "2026-12-01T09:02:40Z"},
        "coverages": [{"id": "edr", "name": "EDR", "summary": summary(rows), "rows": rows}],
    }
    text = cycle_report(finished_cycle(), snapshot, None).text
    assert "No client is under-licensed." in text and "largest" not in text
    assert "- Pax8: synced 2026-12-01 06:01 UTC, 3 hours before the snapshot" in text
    assert "- RMM: synced 2026-12-01 09:02 UTC, less than a minute before the snapshot" in text
    assert text.endswith("Open trueup's Reconciliation page.")


def test_a_stopped_cycle_says_why_and_what_to_do() -> None:
    cycle = new_cycle("c2", "api", ["pax8", "rmm"], T0, {"subject": "u1", "name": "Ada Admin"})
    cycle, _ = sync_finished(cycle, "rmm", "failed", "NinjaOne answered 500 after 5 attempts", T0)
    cycle, _ = sync_finished(cycle, "pax8", "held", "Pax8 returned 0 companies; the current data has 40", T0)
    cycle, _ = notified(cycle, T0)
    notice = cycle_report(cycle, None, "https://trueup.example/")
    why = (
        "not taken from older data: the Pax8 sync was held: Pax8 returned 0 companies; the current data "
        "has 40; the RMM sync failed: NinjaOne answered 500 after 5 attempts"
    )
    assert notice.subject == ("trueup: the cycle stopped: " + why)[: SUBJECT_LIMIT - 1] + "…"
    assert len(notice.subject) == SUBJECT_LIMIT
    assert notice.text.startswith("trueup's cycle c2, started by Ada Admin, stopped before its snapshot.")
    assert f"Why: {why}." in notice.text
    assert (
        "Syncs: Pax8 was held (Pax8 returned 0 companies; the current data has 40); "
        "RMM failed (NinjaOne answered 500 after 5 attempts)."
    ) in notice.text
    assert "the previous snapshot is still the latest" in notice.text


def test_the_report_tells_what_the_gaps_cost_a_month_per_currency() -> None:
    under = {
        **row("Acme", 20, 14, "under_licensed"),
        "amounts": {"currency": "USD", "monthly_price_gap": "39.00"},
    }
    over = row("Bolt", 3, 5, "over_licensed")
    money = {
        "USD": {
            "under_licensed_price_gap": "1240.50",
            "under_licensed_cost_gap": "900.00",
            "over_licensed_price_gap": "-13.00",
            "over_licensed_cost_gap": "-9.00",
        },
        "EUR": {
            "under_licensed_price_gap": "0.00",
            "under_licensed_cost_gap": "0.00",
            "over_licensed_price_gap": "-7.00",
            "over_licensed_cost_gap": "-5.00",
        },
    }
    snapshot = {
        "id": "s1",
        "taken_at": "2026-12-01T06:03:00Z",
        "data_as_of": {"pax8": "2026-12-01T06:01:00Z", "rmm": "2026-12-01T06:02:00Z"},
        "coverages": [
            {
                "id": "edr",
                "name": "EDR",
                "summary": {**summary([under, over]), "money": money},
                "rows": [under, over],
            }
        ],
    }
    text = cycle_report(finished_cycle(), snapshot, None).text
    # Under: USD only (EUR's is 0); over: both currencies, as amounts overpaid.
    assert (
        "- EDR: 1 under-licensed ($1,240.50 a month not billed), "
        "1 over-licensed ($13.00 a month overpaid; EUR 7.00 a month overpaid), 0 matched, 0 unmapped"
    ) in text
    assert "1. Acme (EDR): 20 devices, 14 licences, 6 under, $39.00 a month" in text
