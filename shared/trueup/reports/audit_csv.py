"""The audit log's entries as CSV, exported beside a snapshot's report: what changed since the snapshot
before it (who, when, what, the value before and after, and why). Same conventions as the report
(trueup.reports.csv_report): UTF-8 with a byte-order mark, RFC 4180 quoting, no text a spreadsheet
would run as a formula."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import IO, Any

from trueup.reports.csv_report import safe_text, write_lines

HEADER = ["When", "Who", "Kind", "What", "Reason", "Client", "Coverage", "Before", "After", "Entry"]


def _who(by: Mapping[str, Any] | None) -> str:
    if not by:
        return ""
    return safe_text(str(by.get("name") or by.get("subject") or ""))


def _value(value: Any) -> str:
    return "" if value is None else safe_text(json.dumps(value, sort_keys=True, ensure_ascii=False))


def audit_line(entry: Mapping[str, Any]) -> list[str]:
    return [
        entry["at"],
        _who(entry.get("by")),
        entry["kind"],
        safe_text(entry["what"]),
        safe_text(entry.get("reason") or ""),
        safe_text(entry.get("client") or ""),
        safe_text(entry.get("coverage") or ""),
        _value(entry.get("before")),
        _value(entry.get("after")),
        entry["id"],
    ]


def write_audit_csv(out: IO[bytes], entries: Iterable[Mapping[str, Any]]) -> int:
    """Write the entries (oldest first) to a binary stream; returns how many."""
    return write_lines(out, HEADER, (audit_line(entry) for entry in entries))
