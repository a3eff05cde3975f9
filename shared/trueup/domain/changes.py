"""What changed since the previous snapshot, client by client, and each client's recent history.

Pure. A snapshot's rows are compared with the same clients' rows in the snapshot taken just before
it (whatever started it), coverage by coverage. A client is its row key: the Pax8 company id, or
the RMM organization id of an organization no company holds. Each coverage keeps a short history
per client (the last HISTORY_KEPT snapshots' figures), written with each snapshot and never changed
after, so that the previous row and a client's chart are read without reading earlier snapshots.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from trueup.domain.models import Change, CoverageResult, PreviousRow, Row, Status

HISTORY_KEPT = 12
History = dict[str, list[dict[str, Any]]]  # row key -> points, oldest first


def row_key(row: Row) -> str:
    return row.pax8_company_id or row.rmm_organization_ids[0]


def change_of(row: Row, previous: PreviousRow | None) -> Change:
    """first: no earlier row. new: a gap (anything but matched) where there was none. closed: matched
    now and not before. changed: still a gap, with other figures. same: otherwise."""
    if previous is None:
        return Change.FIRST
    gap_now, gap_before = row.status is not Status.MATCHED, previous.status is not Status.MATCHED
    if gap_now and not gap_before:
        return Change.NEW
    if gap_before and not gap_now:
        return Change.CLOSED
    figures_now = (row.devices, row.licenses, row.variance, row.status)
    figures_before = (previous.devices, previous.licenses, previous.variance, previous.status)
    return Change.CHANGED if gap_now and figures_now != figures_before else Change.SAME


def point(row: Row, snapshot_id: str, taken_at: str) -> dict[str, Any]:
    """One snapshot's figures of one client, as the history keeps them."""
    return {
        "snapshot_id": snapshot_id,
        "taken_at": taken_at,
        "devices": row.devices,
        "licenses": row.licenses,
        "variance": row.variance,
        "status": row.status.value,
    }


def with_changes(
    coverages: Sequence[CoverageResult],
    histories: Mapping[str, History],
    snapshot_id: str,
    taken_at: str,
    previous_snapshot_id: str | None,
) -> tuple[list[CoverageResult], dict[str, History]]:
    """Each row with its `previous` figures and its `change`, each summary with the changes counted;
    and each coverage's history with this snapshot's figures added (the oldest dropped beyond
    HISTORY_KEPT). `histories`: the previous snapshot's, per coverage id ({} for none)."""
    updated = []
    new_histories: dict[str, History] = {}
    for coverage in coverages:
        before = histories.get(coverage.id, {})
        history: History = {key: list(points) for key, points in before.items()}
        rows = []
        for row in coverage.rows:
            key = row_key(row)
            points = before.get(key)
            previous = _previous(points[-1], previous_snapshot_id) if points else None
            rows.append(row.model_copy(update={"previous": previous, "change": change_of(row, previous)}))
            history[key] = [*history.get(key, []), point(row, snapshot_id, taken_at)][-HISTORY_KEPT:]
        counted = Counter(r.change for r in rows if r.change is not None)
        summary = coverage.summary.model_copy(update={"changes": {c: counted.get(c, 0) for c in Change}})
        updated.append(coverage.model_copy(update={"rows": rows, "summary": summary}))
        new_histories[coverage.id] = history
    return updated, new_histories


def _previous(last: Mapping[str, Any], previous_snapshot_id: str | None) -> PreviousRow | None:
    # Only the snapshot just before counts: a client missing from it (its last point is older) had
    # no row there, so this row is its first since.
    if previous_snapshot_id is None or last["snapshot_id"] != previous_snapshot_id:
        return None
    return PreviousRow(
        snapshot_id=last["snapshot_id"],
        devices=last["devices"],
        licenses=last["licenses"],
        variance=last["variance"],
        status=Status(last["status"]),
    )


def history_from_rows(rows: Sequence[Mapping[str, Any]], snapshot_id: str, taken_at: str) -> History:
    """A history of one snapshot, from its stored rows (a snapshot taken before histories were kept)."""
    return {
        (r.get("pax8_company_id") or r["rmm_organization_ids"][0]): [
            {
                "snapshot_id": snapshot_id,
                "taken_at": taken_at,
                "devices": r["devices"],
                "licenses": r["licenses"],
                "variance": r["variance"],
                "status": r["status"],
            }
        ]
        for r in rows
    }
