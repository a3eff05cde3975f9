"""A snapshot's evidence as CSV: one row's, or a whole coverage's, devices and subscriptions.

One line per device and per subscription, under the client it belongs to: what was counted, what was
left out and why, as the snapshot froze it. Same conventions as the report (trueup.reports.csv_report):
UTF-8 with a byte-order mark, RFC 4180 quoting, outside text neutralised against formulas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import IO, Any

from trueup.domain.evidence import DEVICE_REASONS, devices_as_objects
from trueup.domain.models import ExclusionReason
from trueup.domain.names import natural
from trueup.reports.csv_report import safe_text, write_lines

HEADER = [
    "Client",
    "Item",  # Device or Subscription
    "Counted",  # Yes / No
    "Reason",  # why not counted (empty when counted)
    "Name or product",
    "RMM organization",
    "Device class",
    "Last seen",
    "State",
    "Quantity",
    "Subscription status",
    "Billing term",
    "Price",
    "Partner cost",
    "Currency",
    "Commitment ends",
    "Left out of the price",
    "Id",
    "Coverage",
    "Client key",
    "Snapshot taken at",
]
REASON_LABELS = {
    reason.value: f"{reason.value.replace('_', ' ')}: {DEVICE_REASONS[reason]}" for reason in ExclusionReason
}


def _text(value: Any) -> str:
    return "" if value is None else safe_text(str(value))


def _reason(device: Mapping[str, Any]) -> str:
    if not device["reason"]:
        return ""
    label = REASON_LABELS.get(device["reason"], device["reason"])
    return f"{label} ({device['rule']})" if device.get("rule") else label


def evidence_lines(document: Mapping[str, Any], coverage_name: str, taken_at: str) -> Iterable[list[str]]:
    """One row's evidence as CSV lines: its subscriptions (counted first), then its devices (left out
    first, by reason, then by name)."""
    client, key = document["client"], document["key"]
    tail = [safe_text(coverage_name), safe_text(key), taken_at]
    for sub in document["subscriptions"]:
        yield [
            safe_text(client),
            "Subscription",
            "Yes" if sub["counted"] else "No",
            _text(sub["reason"]),
            _text(sub["product"]),
            "",
            "",
            "",
            "",
            str(int(sub["quantity"])),
            _text(sub["status"]),
            _text(sub["billing_term"]),
            sub["price"] or "",
            sub["partner_cost"] or "",
            _text(sub["currency"]),
            sub["commitment_end"] or "",
            _text(sub["price_left_out"]),
            safe_text(sub["id"]),
            *tail,
        ]
    rank = {reason.value: i for i, reason in enumerate(ExclusionReason)}
    devices = devices_as_objects(document["devices"])
    devices.sort(key=lambda d: (rank.get(d["reason"], len(rank)), natural(d["name"]), d["id"]))
    for device in devices:
        yield [
            safe_text(client),
            "Device",
            "No" if device["reason"] else "Yes",
            _reason(device),
            _text(device["name"]),
            _text(device["organization"]),
            _text(device["device_class"]),
            device["last_seen"] or "",
            _text(device["state"]),
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            safe_text(device["id"]),
            *tail,
        ]


def write_evidence_csv(
    out: IO[bytes], documents: Iterable[Mapping[str, Any]], coverage_name: str, taken_at: str
) -> int:
    """Write the CSV of these rows' evidence to a binary stream; returns the lines written."""
    lines = (line for document in documents for line in evidence_lines(document, coverage_name, taken_at))
    return write_lines(out, HEADER, lines)
