"""Evidence: why a row's counts are what they are, frozen with its snapshot.

Pure. Per row of a coverage: every device of its RMM organizations, counted or left out with the
reason, and every subscription of the coverage's products its Pax8 company holds, counted or not
with the reason (and, when counted, why it is left out of the price if it is). Pax8 keeps no history
of subscriptions and the RMM none of devices, so this is the only record of what a past month's
counts were made of.

Devices are many (a million in a large RMM), so a device travels as a JSON array text that is
built once and only completed per coverage with its reason (`device_fragment`, `device_entry`);
subscriptions are few and travel as dicts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from trueup.domain.models import Device, ExclusionReason, Subscription
from trueup.domain.money import price_left_out

encode_basestring: Callable[[str], str] = json.encoder.encode_basestring

FORMAT = 1
# A stored device entry is an array of these, in this order (what the API turns into objects).
DEVICE_FIELDS = ("id", "name", "organization", "device_class", "last_seen", "state", "reason", "rule")
SUBSCRIPTION_FIELDS = (
    "id",
    "product",
    "quantity",
    "status",
    "billing_term",
    "price",
    "partner_cost",
    "currency",
    "commitment_end",
    "counted",
    "reason",
    "price_left_out",
)
# What each reason means, in the words the page and the CSV use.
DEVICE_REASONS = {
    ExclusionReason.DUPLICATE: "the same machine seen by another RMM, counted once there",
    ExclusionReason.PENDING: "waiting for approval in the RMM",
    ExclusionReason.INACTIVE: "deleted or suspended in the RMM",
    ExclusionReason.EXCLUDED_BY_RULE: "left out by an exclusion rule",
    ExclusionReason.CLASS_NOT_COVERED: "a device class this coverage does not cover",
    ExclusionReason.NEVER_SEEN: "never seen by the RMM",
    ExclusionReason.STALE: "not seen within the stale-after days",
}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def quoted(text: str) -> str:
    """A JSON string (json's own C encoder: millions of devices pass here)."""
    return encode_basestring(text)


def device_fragment(device: Device, organization_quoted: str) -> bytes:
    """The device's entry without its reason: `["id","name","org","class","last seen","state"` (an
    unclosed JSON array), completed per coverage by `device_entry`. `organization_quoted`: the
    organization's name as `quoted` gives it (one per organization, not per device)."""
    seen = device.last_seen
    last_seen = "null" if seen is None else f'"{_iso(seen)}"'
    return (
        f"[{quoted(device.id)},{quoted(device.name)},{organization_quoted},"
        f'"{device.device_class}",{last_seen},"{device.state}"'
    ).encode()


_REASON_TAILS: dict[ExclusionReason | None, bytes] = {
    None: b",null,null]",
    **{r: f',"{r.value}",null]'.encode() for r in ExclusionReason},
}


def device_entry(fragment: bytes, reason: ExclusionReason | None, rule: str | None = None) -> bytes:
    """The stored entry of a device in one coverage: its fragment, why it is left out (null:
    counted) and the exclusion rule that left it out, if one did."""
    if rule is None:
        return fragment + _REASON_TAILS[reason]
    return fragment + f',"{reason}",{quoted(rule)}]'.encode()


def subscription_entries(
    subscriptions: Iterable[Subscription],
    product_names: Mapping[str, str],
    counted_statuses: Iterable[str],
    months_per_term: Mapping[str, int],
) -> list[dict[str, Any]]:
    """A row's subscriptions (every status) with whether each is counted and why not; counted first,
    then by product and id."""
    counted = {s.casefold() for s in counted_statuses}
    entries: list[dict[str, Any]] = []
    for sub in subscriptions:
        is_counted = sub.status.casefold() in counted
        entries.append(
            {
                "id": sub.id,
                "product": product_names.get(sub.product_id) or sub.product_name or sub.product_id,
                "quantity": sub.quantity,
                "status": sub.status,
                "billing_term": sub.billing_term,
                "price": None if sub.price is None else str(sub.price),
                "partner_cost": None if sub.partner_cost is None else str(sub.partner_cost),
                "currency": sub.currency,
                "commitment_end": None
                if sub.commitment_end is None
                else sub.commitment_end.date().isoformat(),
                "counted": is_counted,
                "reason": None if is_counted else f"status {sub.status} is not counted",
                "price_left_out": price_left_out(sub, months_per_term) if is_counted else None,
            }
        )
    entries.sort(key=lambda e: (not e["counted"], e["product"].casefold(), e["id"]))
    return entries


def row_document(
    coverage_id: str,
    key: str,
    client: str,
    device_entries: Sequence[bytes],
    subscriptions: Sequence[dict[str, Any]],
) -> bytes:
    """One row's evidence as one JSON line (devices as arrays of DEVICE_FIELDS)."""
    head = json.dumps(
        {
            "format": FORMAT,
            "coverage": coverage_id,
            "key": key,
            "client": client,
            "subscriptions": subscriptions,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    return head[:-1] + b',"devices":[' + b",".join(device_entries) + b"]}\n"


def devices_as_objects(entries: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Stored device entries as objects (an entry stored before rules were kept has no `rule`)."""
    return [{"rule": None, **dict(zip(DEVICE_FIELDS, entry, strict=False))} for entry in entries]
