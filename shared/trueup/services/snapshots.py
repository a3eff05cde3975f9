"""Snapshots: the reconciliation of the current generations, frozen at the moment it was taken.

Rows go to S3 (a 10,000-client snapshot does not fit a DynamoDB item); metadata and summaries go to
DynamoDB so that listing snapshots reads only those. A snapshot never changes once written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from trueup.domain.status import Status
from trueup.errors import Conflict, InvalidInput, NotFound
from trueup.ids import new_id
from trueup.store.snapshot_files import put_snapshot_document, read_snapshot_document, rows_key
from trueup.store.table import TrueupTable

Trigger = Literal["api", "schedule"]
Snapshot = dict[str, Any]


class NoCurrentData(Conflict):
    """A snapshot needs a current generation of every source."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def take_snapshot(trigger: Trigger, now: datetime, by: dict[str, Any] | None = None) -> Snapshot:
    """Reconcile the current Pax8 and RMM generations under the current settings and store the result.

    `by`: who took it (None for the schedule)."""
    # Only taking a snapshot runs the engine and reads generations; reading snapshots (the export
    # function, GET /snapshots) never loads either.
    from trueup.domain.reconcile import reconcile, tally_rmm
    from trueup.observability import MetricUnit, emit_metrics
    from trueup.services.reconciliation_settings import load_settings
    from trueup.store.generations import iter_rmm, read_pax8

    table = TrueupTable()
    pointers = {source: table.get_current(source) for source in ("pax8", "rmm")}
    missing = [source for source, pointer in pointers.items() if pointer is None]
    if missing:
        names = " and ".join("Pax8" if m == "pax8" else "RMM" for m in missing)
        raise NoCurrentData(f"no {names} data yet: sync first (POST /syncs), then take the snapshot")
    pax8_ptr, rmm_ptr = pointers["pax8"], pointers["rmm"]
    assert pax8_ptr is not None and rmm_ptr is not None
    settings, _ = load_settings(table)
    manual = table.manual_mappings()

    pax8 = read_pax8(pax8_ptr["key"], datetime.fromisoformat(pax8_ptr["synced_at"]))
    rmm_synced = datetime.fromisoformat(rmm_ptr["synced_at"])
    rmm = tally_rmm(
        rmm_ptr.get("rmm_source") or "rmm", iter_rmm(rmm_ptr["key"]), rmm_synced, settings.stale_after_days
    )
    result = reconcile(pax8, rmm, settings, manual)

    snapshot_id = new_id(now)
    snapshot: Snapshot = {
        "id": snapshot_id,
        "taken_at": _iso(now),
        "trigger": trigger,
        "taken_by": by,
        "data_as_of": {"pax8": pax8_ptr["synced_at"], "rmm": rmm_ptr["synced_at"]},
        "generations": {"pax8": pax8_ptr["generation"], "rmm": rmm_ptr["generation"]},
        "settings": settings.model_dump(mode="json"),  # coverages null: the proposal was used
        "coverages": [c.model_dump(mode="json") for c in result.coverages],
        "warnings": result.warnings,
    }
    key = rows_key(snapshot_id, now)
    put_snapshot_document(key, snapshot)
    table.put_snapshot({**_summary(snapshot), "rows_key": key})
    emit_metrics({"SnapshotsTaken": (MetricUnit.Count, 1)}, trigger=trigger)
    for status in Status:  # one series per status: the gaps month after month, in one chart
        rows = sum(getattr(c.summary, status.value) for c in result.coverages)
        emit_metrics({"SnapshotRows": (MetricUnit.Count, rows)}, status=status.value)
    return snapshot


def _summary(snapshot: Snapshot) -> Snapshot:
    """The snapshot without rows: what lists and the DynamoDB item hold."""
    return {
        **{k: v for k, v in snapshot.items() if k != "coverages"},
        "coverages": [{k: v for k, v in c.items() if k != "rows"} for c in snapshot["coverages"]],
    }


def list_snapshots(limit: int, cursor: str | None) -> tuple[list[Snapshot], str | None]:
    items, next_cursor = TrueupTable().list_snapshots(limit, cursor)
    return [{k: v for k, v in item.items() if k != "rows_key"} for item in items], next_cursor


_ONE = "(under_licensed|unmapped|over_licensed|matched)"
# What ?status= accepts (the API's description says so): statuses, comma-separated; empty for all.
STATUS_LIST_PATTERN = rf"^( *{_ONE} *(, *{_ONE} *)*)?$"


def parse_statuses(value: str | None) -> set[Status] | None:
    if value is None or not value.strip():
        return None
    known = {s.value: s for s in Status}
    wanted = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise InvalidInput(f"unknown status {', '.join(unknown)}; use {', '.join(known)} (comma-separated)")
    return {known[w] for w in wanted}


def get_snapshot(
    snapshot_id: str, coverage: str | None = None, statuses: set[Status] | None = None
) -> Snapshot:
    """A whole snapshot ("latest" for the newest), optionally one coverage and some statuses only."""
    table = TrueupTable()
    if snapshot_id == "latest":
        meta = table.latest_snapshot()
        if meta is None:
            raise NotFound("no snapshot yet: take one with POST /snapshots")
    else:
        meta = table.get_snapshot(snapshot_id)
        if meta is None:
            raise NotFound(f"no snapshot {snapshot_id!r}")
    snapshot: Snapshot = read_snapshot_document(meta["rows_key"])
    coverages = snapshot["coverages"]
    if coverage is not None:
        coverages = [c for c in coverages if c["id"] == coverage]
        if not coverages:
            known = ", ".join(c["id"] for c in snapshot["coverages"]) or "none"
            raise NotFound(f"snapshot {snapshot['id']} has no coverage {coverage!r}; it has: {known}")
    if statuses is not None:
        wanted = {s.value for s in statuses}
        coverages = [{**c, "rows": [r for r in c["rows"] if r["status"] in wanted]} for c in coverages]
    return {**snapshot, "coverages": coverages}
