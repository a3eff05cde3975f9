"""A client's terms in one coverage: devices included in its contract (an allowance: they count as
licensed) and a tolerance of its own. Set on a mapped client's row of the latest snapshot; applied
from the next snapshot on (trueup.domain.review)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trueup.domain.review import review_key
from trueup.errors import Conflict
from trueup.services.review import TERMS, Change, change, iso
from trueup.store.table import TrueupTable


def list_terms() -> list[dict[str, Any]]:
    items = TrueupTable().review_items()[TERMS]
    return [{**_where(key), **doc, "version": version} for key, (doc, version) in sorted(items.items())]


def _where(stored_key: str) -> dict[str, str]:
    coverage, _, key = stored_key.partition("/")
    return {"coverage": coverage, "key": key}


def set_terms(
    coverage: str, key: str, request: dict[str, Any], by: dict[str, Any] | None, if_match: int | None
) -> dict[str, Any]:
    """Set a client's allowance and tolerance in a coverage (replacing any it had)."""
    from trueup.services.snapshots import latest_row

    allowance, tolerance = request.get("allowance") or 0, request.get("tolerance")
    snapshot_id, row = latest_row(coverage, key)
    if row["pax8_company_id"] is None:
        raise Conflict(
            f"{row['client']} is an unmapped organization in {coverage} (snapshot {snapshot_id}): "
            "terms are a mapped client's; map it first"
        )
    now = datetime.now(UTC)
    reason = (request.get("reason") or "").strip() or None
    doc = {
        "client": row["client"],
        "allowance": allowance,
        "tolerance": tolerance,
        "reason": reason,
        "updated_by": by,
        "updated_at": iso(now),
    }
    told = f"terms of {row['client']} in {coverage}: {_words(allowance, tolerance)}"
    _, version = change(_item(coverage, key, row["client"]), doc, by, if_match, told, reason, now)
    return {"coverage": coverage, "key": key, **doc, "version": version}


def remove_terms(coverage: str, key: str, by: dict[str, Any] | None, if_match: int | None) -> None:
    doc, _ = TrueupTable().get_review_item(TERMS, review_key(coverage, key))
    client = doc["client"] if doc else key
    told = f"terms of {client} in {coverage}: removed (no allowance, the settings' tolerance)"
    change(_item(coverage, key, client), None, by, if_match, told)


def _item(coverage: str, key: str, client: str) -> Change:
    return Change(
        TERMS,
        review_key(coverage, key),
        "terms",
        f"terms of {client} in {coverage}",
        "GET /terms",
        client=key,
        coverage=coverage,
    )


def _words(allowance: int, tolerance: int | None) -> str:
    said = [f"{allowance} device{'' if allowance == 1 else 's'} included"] if allowance else []
    if tolerance is not None:
        said.append(f"tolerance {tolerance}")
    return ", ".join(said) or "none (no devices included, the settings' tolerance)"
