"""What people decided besides decisions on gaps, kept under the table's REVIEW partition: RMM
organizations that are not billable, rejected mapping suggestions, clients' terms (allowance and
tolerance) and exclusion rules. A snapshot reads them all, with the decisions, as the Review the
engine applies (trueup.domain.review).

Each item is versioned like a decision (trueup.services.versions) and each change is appended to the
audit log in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trueup.domain.models import ClientTerms, ExclusionRule, Review
from trueup.errors import Conflict, NotFound
from trueup.services.versions import check_version, lost_race
from trueup.store.table import TrueupTable

IGNORED, REJECTED, TERMS, RULE = "IGNORED", "REJECTED", "TERMS", "RULE"


def load_review(table: TrueupTable) -> Review:
    """Everything people decided, as the engine applies it (one query, and one for the decisions)."""
    from trueup.services.decisions import as_decision

    items = table.review_items()
    return Review(
        ignored_organizations={org: doc["reason"] for org, (doc, _) in items[IGNORED].items()},
        rules=[as_rule(doc) for _, (doc, _) in sorted(items[RULE].items())],
        terms={key: as_terms(doc) for key, (doc, _) in items[TERMS].items()},
        decisions={key: as_decision(doc) for key, (doc, _) in table.decisions().items()},
    )


def as_rule(doc: dict[str, Any]) -> ExclusionRule:
    return ExclusionRule.model_validate({k: v for k, v in doc.items() if k in ExclusionRule.model_fields})


def as_terms(doc: dict[str, Any]) -> ClientTerms:
    return ClientTerms.model_validate({k: v for k, v in doc.items() if k in ClientTerms.model_fields})


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Change:
    """One change of a REVIEW item, as the audit log tells it."""

    kind: str  # REVIEW kind
    key: str
    audit_kind: str  # trueup.store.table.AUDIT_KINDS
    what: str  # the item, for people: "the terms of Acme in Workstations"
    read_again: str  # where to read its version
    client: str | None = None  # the row key or organization id the entry is about
    coverage: str | None = None


def change(
    item: Change,
    doc: dict[str, Any] | None,
    by: dict[str, Any] | None,
    if_match: int | None,
    told: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, Any] | None, int]:
    """Write (doc) or remove (None) an item over the version read, with its audit entry (`told`: what
    happened, for the log). Answers (the document before, the new version). NotFound when removing
    nothing; 412/409 when another change came first (trueup.services.versions)."""
    from trueup.services.audit import audit_entry

    table = TrueupTable()
    before, version = table.get_review_item(item.kind, item.key)
    if doc is None and before is None:
        raise NotFound(f"no {item.what}")
    check_version(if_match, version, item.what, item.read_again)
    entry = audit_entry(
        now or datetime.now(UTC),
        by,
        item.audit_kind,
        told,
        _audited(before),
        _audited(doc),
        client=item.client,
        coverage=item.coverage,
        reason=reason,
    )
    try:
        written = table.write_review_item(item.kind, item.key, doc, version, entry)
    except Conflict as exc:
        raise lost_race(if_match, item.what) from exc
    return before, written


def _audited(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the audit log keeps of a value: the value, not who changed it when (the entry says)."""
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k not in ("updated_by", "updated_at", "reason")}
