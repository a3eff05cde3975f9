"""Decisions on gaps: recorded by an admin with a reason, versioned, and audited.

A decision belongs to a client and coverage (trueup.domain.review); it is made on a gap of the latest
snapshot, whose figures it keeps, so that a `will_bill` or `will_adjust` lapses when they change.
Every write is over the version read: with If-Match, a stale version is 412 and changes nothing;
without, the loser of two writes racing is 409. Each change is appended to the audit log in the
same transaction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from trueup.domain.models import Decision, DecisionKind
from trueup.domain.review import review_key
from trueup.errors import Conflict, InvalidInput, NotFound
from trueup.services.versions import check_version, lost_race
from trueup.store.table import TrueupTable

DECIDABLE = ("under_licensed", "over_licensed", "unmapped")
KIND_WORDS = {
    DecisionKind.WILL_BILL: "will bill",
    DecisionKind.WILL_ADJUST: "will adjust",
    DecisionKind.DISMISSED: "dismissed",
    DecisionKind.MUTED: "muted",
}


def as_decision(doc: dict[str, Any]) -> Decision:
    """A stored decision as the engine takes it (the stored one also names its client, for people)."""
    return Decision.model_validate({k: v for k, v in doc.items() if k in Decision.model_fields})


def list_decisions() -> list[dict[str, Any]]:
    """Every decision, with where it applies and its version."""
    return [
        {**_where(key), **doc, "version": version}
        for key, (doc, version) in sorted(TrueupTable().decisions().items())
    ]


def get_decision(coverage: str, key: str) -> dict[str, Any]:
    doc, version = TrueupTable().get_decision(review_key(coverage, key))
    if doc is None:
        raise NotFound(f"no decision on client {key!r} in coverage {coverage!r}")
    return {"coverage": coverage, "key": key, **doc, "version": version}


def _where(stored_key: str) -> dict[str, str]:
    coverage, _, key = stored_key.partition("/")
    return {"coverage": coverage, "key": key}


def record_decision(
    coverage: str,
    key: str,
    request: dict[str, Any],
    by: dict[str, Any],
    if_match: int | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record a decision on a gap of the latest snapshot (replacing any earlier one for that client
    and coverage); answers it with its version."""
    from trueup.services.snapshots import latest_row

    now = now or datetime.now(UTC)
    snapshot_id, row = latest_row(coverage, key)
    if row["status"] not in DECIDABLE:
        raise Conflict(
            f"{row['client']} is matched in {coverage} (snapshot {snapshot_id}): only an under-licensed, "
            "over-licensed or unmapped row takes a decision"
        )
    kind = DecisionKind(request["kind"])
    until: date | None = request.get("until")
    effective: date | None = request.get("effective")
    if kind is DecisionKind.MUTED:
        if until is None:
            raise InvalidInput("a muted decision needs `until`: the last day it is muted")
        if until < now.date():
            raise InvalidInput(f"until {until.isoformat()} has passed: mute until today or later")
    elif until is not None:
        raise InvalidInput("`until` is for a muted decision only")
    if effective is not None and kind not in (DecisionKind.WILL_BILL, DecisionKind.WILL_ADJUST):
        raise InvalidInput("`effective` is for will_bill and will_adjust only")
    decision = Decision(
        kind=kind,
        reason=request["reason"].strip(),
        decided_by=by,
        decided_at=now,
        effective=effective,
        until=until,
        devices=row["devices"],
        licenses=row["licenses"],
    )
    doc = {**decision.model_dump(mode="json"), "client": row["client"]}
    table = TrueupTable()
    stored_key = review_key(coverage, key)
    before, version = table.get_decision(stored_key)
    check_version(if_match, version, f"the decision on {key} in {coverage}", "GET /decisions")
    audit = _entry(now, by, coverage, key, row["client"], kind.value, before, doc, decision.reason)
    try:
        written = table.write_decision(stored_key, doc, version, audit)
    except Conflict as exc:
        raise _lost(if_match, coverage, key) from exc
    return {"coverage": coverage, "key": key, **doc, "version": written}


def remove_decision(
    coverage: str, key: str, by: dict[str, Any], if_match: int | None, reason: str | None = None
) -> None:
    """Remove a decision (the row shows as undecided from the next snapshot on), audited."""
    now = datetime.now(UTC)
    table = TrueupTable()
    stored_key = review_key(coverage, key)
    before, version = table.get_decision(stored_key)
    if before is None:
        raise NotFound(f"no decision on client {key!r} in coverage {coverage!r}")
    check_version(if_match, version, f"the decision on {key} in {coverage}", "GET /decisions")
    client = before.get("client") or key
    audit = _entry(now, by, coverage, key, client, "removed", before, None, reason)
    try:
        table.write_decision(stored_key, None, version, audit)
    except Conflict as exc:
        raise _lost(if_match, coverage, key) from exc


def _lost(if_match: int | None, coverage: str, key: str) -> Conflict:
    return lost_race(if_match, f"the decision on {key} in {coverage}")


def _entry(
    now: datetime,
    by: dict[str, Any],
    coverage: str,
    key: str,
    client: str,
    what: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str | None,
) -> dict[str, Any]:
    from trueup.services.audit import audit_entry

    words = KIND_WORDS.get(DecisionKind(what), what) if what in DecisionKind._value2member_map_ else what
    return audit_entry(
        now,
        by,
        "decision",
        f"decision on {client} in {coverage}: {words}",
        before,
        after,
        client=key,
        coverage=coverage,
        reason=reason,
    )
