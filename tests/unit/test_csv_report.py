"""The CSV a finance team opens in a spreadsheet."""

from __future__ import annotations

import csv
import io
from typing import Any

from trueup.reports.csv_report import HEADER, safe_text, write_csv

SNAPSHOT = {
    "taken_at": "2026-11-01T06:00:00Z",
    "data_as_of": {"pax8": "2026-11-01T05:00:00Z", "rmm": "2026-11-01T05:01:00Z"},
}
COVERAGE = {"id": "edr", "name": "Huntress Managed EDR"}


def row(client: str, devices: int | None, licenses: int | None, status: str, **extra: Any) -> dict[str, Any]:
    variance = None if devices is None or licenses is None else devices - licenses
    return {
        "client": client,
        "devices": devices,
        "licenses": licenses,
        "variance": variance,
        "status": status,
        "pax8_company_id": extra.get("company", "c-1"),
        "rmm_organization_ids": extra.get("orgs", ["ninjaone:1"]),
        "excluded": extra.get("excluded", {}),
        "warnings": extra.get("warnings", []),
    }


def render(rows: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    assert write_csv(out, SNAPSHOT, COVERAGE, rows) == len(rows)
    return out.getvalue()


def parse(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def test_header_starts_with_the_seed_columns_and_rows_keep_their_order() -> None:
    lines = parse(
        render(
            [
                row("Zeta", 7, 4, "under_licensed"),
                row("Alpha", 3, 5, "over_licensed"),
                row("Mid", 2, 2, "matched"),
            ]
        )
    )
    assert lines[0][:5] == ["Client", "Devices", "Licenses", "Variance", "Status"]
    assert lines[0] == HEADER
    assert [line[:5] for line in lines[1:]] == [
        ["Zeta", "7", "4", "3", "Under-licensed"],
        ["Alpha", "3", "5", "-2", "Over-licensed"],
        ["Mid", "2", "2", "0", "Matched"],
    ]
    assert lines[1][5:] == [
        "",  # no amounts: currency, unit price, unit cost, both gaps
        "",
        "",
        "",
        "",
        "",  # no commitment
        "",  # no previous row
        "",  # no change recorded
        "",  # no decision: kind, reason, by whom
        "",
        "",
        "",  # no devices included
        "Huntress Managed EDR",
        "c-1",
        "ninjaone:1",
        "",
        "",
        "2026-11-01T06:00:00Z",
        "2026-11-01T05:00:00Z",
        "2026-11-01T05:01:00Z",
    ]


def test_the_missing_side_of_an_unmapped_row_is_an_empty_cell_not_zero() -> None:
    lines = parse(
        render(
            [
                row("No Org Co", None, 4, "unmapped", orgs=[]),
                row("Lost Site", 6, None, "unmapped", company=None),
            ]
        )
    )
    assert [line[:5] for line in lines[1:]] == [
        ["No Org Co", "", "4", "", "Unmapped"],
        ["Lost Site", "6", "", "", "Unmapped"],
    ]


def test_quotes_commas_and_newlines_are_quoted_per_rfc_4180_with_crlf_line_ends() -> None:
    data = render([row('Smith, "Jones" & Co', 1, 1, "matched"), row("Line\nBreak", 1, 1, "matched")])
    assert b'"Smith, ""Jones"" & Co",1,1,0,Matched' in data
    assert data.count(b"\r\n") == 3  # header + 2 rows; the embedded newline stays inside its quotes
    assert parse(data)[2][0] == "Line\nBreak"


def test_accented_names_survive_in_utf8_with_a_byte_order_mark() -> None:
    data = render([row("Müller Zahnärzte GmbH", 2, 2, "matched"), row("Société Générale", 1, 1, "matched")])
    assert data[:3] == b"\xef\xbb\xbf" and "Müller Zahnärzte GmbH".encode() in data
    assert parse(data)[2][0] == "Société Générale"


def test_formulas_in_names_are_neutralised_but_negative_variances_stay_numbers() -> None:
    hostile = ['=HYPERLINK("http://x","y")', "+SUM(1)", "-2+3", "@cmd", "\tTab", "\rCR"]
    lines = parse(render([row(name, 1, 4, "over_licensed") for name in hostile]))
    assert [line[0] for line in lines[1:]] == ["'" + name for name in hostile]
    assert all(line[3] == "-3" for line in lines[1:])  # the variance is not touched
    assert safe_text("Acme") == "Acme" and safe_text("A=B") == "A=B"


HIDDEN_FORMULAS = [
    " =1+1",  # leading spaces
    "   @SUM(A1)",
    "\u00a0=1+1",  # no-break space
    "\n=1+1",  # LF
    "\x0b=1+1",  # vertical tab
    "\x0c=1+1",  # form feed
    "\uff1d1+1",  # full-width =
    "\uff0b1",  # full-width +
    "\uff0d1",  # full-width -
    "\uff20cmd",  # full-width @
    "\u22121+2",  # minus sign
    "\u200b=1+1",  # zero-width space
    "\ufeff=1+1",  # byte-order mark
    "\x00=1+1",  # NUL
    "\u3000\u2003=1",  # ideographic and em spaces
]


def test_formulas_behind_what_an_import_skips_or_in_other_forms_are_neutralised_too() -> None:
    lines = parse(render([row(name, 2, 2, "matched") for name in HIDDEN_FORMULAS]))
    assert [line[0] for line in lines[1:]] == ["'" + name for name in HIDDEN_FORMULAS]
    assert all(line[3] == "0" for line in lines[1:])
    # Ordinary names stay as they are, leading spaces and all, and numbers stay numbers.
    for name in ("Acme", " Acme", "\u00a0Acme", "A-1 Plumbing", "Smith & Sons", "Ölwerk", "3M", "(ABC)"):
        assert safe_text(name) == name


def test_exclusions_and_warnings_are_readable() -> None:
    lines = parse(
        render(
            [
                row(
                    "Acme",
                    3,
                    3,
                    "matched",
                    excluded={"pending": 2, "stale": 1, "inactive": 0},
                    warnings=["Pax8: 1 subscription record skipped"],
                )
            ]
        )
    )
    assert lines[1][HEADER.index("Excluded devices")] == "2 pending approval; 1 stale"
    assert lines[1][HEADER.index("Warnings")] == "Pax8: 1 subscription record skipped"


def test_amounts_follow_the_seed_columns_as_plain_numbers() -> None:
    priced = row("Acme", 18, 15, "under_licensed")
    priced["amounts"] = {
        "currency": "USD",
        "unit_price": "4.33",
        "unit_cost": None,
        "monthly_price_gap": "13.00",
        "monthly_cost_gap": None,
    }
    over = row("Bolt", 15, 20, "over_licensed")
    over["amounts"] = {
        "currency": "EUR",
        "unit_price": "10.00",
        "unit_cost": "8.00",
        "monthly_price_gap": "-50.00",
        "monthly_cost_gap": "-40.00",
    }
    over["commitment_ends"] = "2027-03-01"
    over["previous"] = {
        "snapshot_id": "s1",
        "devices": 15,
        "licenses": 18,
        "variance": -3,
        "status": "over_licensed",
    }
    over["change"] = "changed"
    priced["change"] = "new"
    lines = parse(render([priced, over]))
    assert lines[0][5:13] == [
        "Currency",
        "Unit price",
        "Unit cost",
        "Monthly price gap",
        "Monthly cost gap",
        "Commitment ends",
        "Previous variance",
        "Change",
    ]
    assert lines[1][5:13] == ["USD", "4.33", "", "13.00", "", "", "", "New gap"]
    # A negative amount stays a number (never neutralised like a formula).
    assert lines[2][5:13] == ["EUR", "10.00", "8.00", "-50.00", "-40.00", "2027-03-01", "-3", "Changed"]


def test_an_empty_coverage_still_has_its_header() -> None:
    assert parse(render([])) == [HEADER]


def test_a_decision_and_a_clients_terms_are_in_their_columns() -> None:
    decided = {
        **row("Redwood", 20, 14, "under_licensed"),
        "decision": {
            "kind": "muted",
            "reason": "=review in March",
            "decided_by": {"subject": "u-1", "name": "Ada Admin"},
            "decided_at": "2026-11-01T06:00:00Z",
            "until": "2027-03-31",
            "lapsed": False,
        },
        "allowance": 6,
    }
    lapsed = {
        **row("Kingfisher", 13, 10, "under_licensed"),
        "decision": {
            "kind": "will_bill",
            "reason": "raise on the 1st",
            "decided_by": {"subject": "u-2", "name": None},
            "decided_at": "2026-10-01T06:00:00Z",
            "lapsed": True,
        },
    }
    header, first, second = parse(render([decided, lapsed]))
    at = header.index("Decision")
    assert header[at : at + 4] == ["Decision", "Decision reason", "Decided by", "Devices included"]
    assert first[at : at + 4] == ["Muted until 2027-03-31", "'=review in March", "Ada Admin", "6"]
    assert second[at : at + 4] == ["Will bill (lapsed)", "raise on the 1st", "u-2", ""]
