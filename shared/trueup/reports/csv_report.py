"""The reconciliation as CSV: one coverage of one snapshot, in the snapshot's order.

RFC 4180 quoting, UTF-8 with a byte-order mark (so Excel shows accented names), the columns a person
reads first (Client, Devices, Licenses, Variance, Status) and then the ones an audit needs. Text that
comes from outside systems is neutralised so a spreadsheet never runs it as a formula.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping
from typing import IO, Any

BOM = "\ufeff"
HEADER = [
    "Client",
    "Devices",
    "Licenses",
    "Variance",
    "Status",
    # What the gap costs a month (trueup.domain.money): empty when the row has no amounts.
    "Currency",
    "Unit price",
    "Unit cost",
    "Monthly price gap",
    "Monthly cost gap",
    "Commitment ends",
    # Since the snapshot taken just before (trueup.domain.changes).
    "Previous variance",
    "Change",
    # What a person decided about the gap (trueup.domain.review), and the client's own terms.
    "Decision",
    "Decision reason",
    "Decided by",
    "Devices included",
    "Coverage",
    "Pax8 company id",
    "RMM organization ids",
    "Excluded devices",
    "Warnings",
    "Snapshot taken at",
    "Pax8 data as of",
    "RMM data as of",
]
STATUS_LABELS = {
    "under_licensed": "Under-licensed",
    "over_licensed": "Over-licensed",
    "matched": "Matched",
    "unmapped": "Unmapped",
}
CHANGE_LABELS = {
    "new": "New gap",
    "closed": "Closed",
    "changed": "Changed",
    "same": "Same",
    "first": "First",
}
EXCLUSION_LABELS = {
    "duplicate": "counted once (also in another RMM)",
    "pending": "pending approval",
    "inactive": "inactive",
    "excluded_by_rule": "excluded by a rule",
    "class_not_covered": "class not covered",
    "never_seen": "never seen",
    "stale": "stale",
}
_FORMULA_STARTS = frozenset("=+-@")
# Minus signs that NFKC leaves alone but some spreadsheets read as "-".
_MINUS_LIKE = frozenset("\u2212\u2012\u2013\u2014\ufe63")
# What a spreadsheet import may skip before it looks for a formula: controls (NUL, LF, VT, FF...),
# format characters (zero-width space, byte-order mark) and every kind of space (no-break space too).
_SKIPPED = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def _reads_as_formula(value: str) -> bool:
    for char in value:
        if unicodedata.category(char) in _SKIPPED:
            continue
        # NFKC folds the full-width and small forms (＝ ＋ － ＠ ﹦) to their ASCII characters.
        return unicodedata.normalize("NFKC", char)[:1] in _FORMULA_STARTS or char in _MINUS_LIKE
    return False


def safe_text(value: str) -> str:
    """Neutralise, with a leading quote, any text a spreadsheet could run as a formula (CSV injection):
    a formula character first, or after anything an import may skip; a leading tab or CR as well."""
    return "'" + value if value[:1] in ("\t", "\r") or _reads_as_formula(value) else value


def _number(value: int | None) -> str:
    # A plain signed integer ("-3", "4"): never "+4", and never quoted or neutralised, so it stays a number.
    return "" if value is None else str(int(value))


def _money(amounts: Mapping[str, Any] | None) -> list[str]:
    # Decimal text as the snapshot stores it ("13.50", "-4.05"): a plain number in any spreadsheet.
    if not amounts:
        return ["", "", "", "", ""]
    figures = ("unit_price", "unit_cost", "monthly_price_gap", "monthly_cost_gap")
    return [
        safe_text(str(amounts["currency"])),
        *("" if amounts[f] is None else str(amounts[f]) for f in figures),
    ]


DECISION_LABELS = {
    "will_bill": "Will bill",
    "will_adjust": "Will adjust",
    "dismissed": "Dismissed",
    "muted": "Muted",
}


def _decision(decision: Mapping[str, Any] | None) -> list[str]:
    """Decision (its kind, "until" a date, or "lapsed"), its reason, who decided it."""
    if not decision:
        return ["", "", ""]
    label = DECISION_LABELS.get(decision["kind"], decision["kind"])
    if decision.get("until"):
        label += f" until {decision['until']}"
    if decision.get("lapsed"):
        label += " (lapsed)"
    by = decision.get("decided_by") or {}
    return [
        label,
        safe_text(decision.get("reason") or ""),
        safe_text(str(by.get("name") or by.get("subject") or "")),
    ]


def csv_row(row: Mapping[str, Any], coverage_name: str, snapshot: Mapping[str, Any]) -> list[str]:
    excluded = "; ".join(
        f"{n} {EXCLUSION_LABELS.get(reason, reason)}"
        for reason, n in (row.get("excluded") or {}).items()
        if n
    )
    return [
        safe_text(row["client"]),
        _number(row["devices"]),
        _number(row["licenses"]),
        _number(row["variance"]),
        STATUS_LABELS[row["status"]],
        *_money(row.get("amounts")),
        row.get("commitment_ends") or "",
        _number((row.get("previous") or {}).get("variance")),
        CHANGE_LABELS.get(row.get("change") or "", ""),
        *_decision(row.get("decision")),
        _number(row.get("allowance")),
        safe_text(coverage_name),
        safe_text(row["pax8_company_id"] or ""),
        safe_text(" ".join(row["rmm_organization_ids"])),
        excluded,
        safe_text(" | ".join([*(row.get("warnings") or []), *filter(None, [row.get("amounts_warning")])])),
        snapshot["taken_at"],
        snapshot["data_as_of"]["pax8"],
        snapshot["data_as_of"]["rmm"],
    ]


def write_csv(
    out: IO[bytes],
    snapshot: Mapping[str, Any],
    coverage: Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
) -> int:
    """Write the CSV of `rows` (of `coverage` in `snapshot`) to a binary stream; returns the rows written."""
    return write_csv_parts(out, snapshot, [(coverage, rows)])


def write_csv_parts(
    out: IO[bytes],
    snapshot: Mapping[str, Any],
    parts: Iterable[tuple[Mapping[str, Any], Iterable[Mapping[str, Any]]]],
) -> int:
    """One CSV of several coverages' rows, one after the other under one header (the Coverage column
    tells them apart); returns the rows written."""
    lines = (csv_row(row, coverage["name"], snapshot) for coverage, rows in parts for row in rows)
    return write_lines(out, HEADER, lines)


def write_lines(out: IO[bytes], header: list[str], lines: Iterable[list[str]]) -> int:
    """A CSV as trueup writes every one (UTF-8 with a byte-order mark, RFC 4180 quoting, CRLF) to a
    binary stream, left open for the caller; returns the lines written under the header."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    count = 0
    try:
        text.write(BOM)
        writer = csv.writer(text, dialect="excel", lineterminator="\r\n")
        writer.writerow(header)
        for line in lines:
            writer.writerow(line)
            count += 1
        text.flush()
    finally:
        text.detach()  # leave `out` open for the caller
    return count
