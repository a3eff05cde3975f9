"""Monthly cycles in the table: started once per id, advanced one recorded step at a time.

The sequencing is trueup.domain.cycles; here each step is applied to the stored cycle with a
conditional write, so that when two functions record their step at the same moment (the two syncs
finishing together) both are kept and exactly one of them starts what comes next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from trueup.domain import cycles as steps
from trueup.domain.cycles import Cycle, Next, SyncOutcome, new_cycle, sync_finished, syncs_requested
from trueup.errors import NotFound, TrueupError
from trueup.ids import new_id
from trueup.services.scheduled import scheduled_time_of
from trueup.services.sync_runs import iso, request_sync, sync_sources
from trueup.store.table import TrueupTable

if TYPE_CHECKING:  # the events' models load only when an event is read or published
    from trueup.events import SyncCompleted, SyncFailed, SyncHeld

Step = Callable[[Cycle], tuple[Cycle, Next]]


def start_cycle(
    cycle_id: str,
    trigger: Literal["schedule", "api"],
    now: datetime,
    sources: Sequence[str] | None = None,
    started_by: dict[str, Any] | None = None,
) -> tuple[Cycle, bool]:
    """The cycle of this id, recorded now unless it exists: (it, whether this call created it)."""
    table = TrueupTable()
    chosen = sync_sources() if sources is None else list(sources)
    cycle = new_cycle(cycle_id, trigger, chosen, iso(now), started_by)
    if table.create_cycle(cycle):
        return cycle, True
    existing = table.get_cycle(cycle_id)
    if existing is None:  # created and gone between two reads: nothing removes cycles
        raise TrueupError(f"cycle {cycle_id} could not be read back")
    return existing, False


def advance(cycle_id: str, step: Step) -> tuple[Cycle, Next]:
    """Apply one step to the stored cycle (retried on a concurrent change): the cycle after it, and
    what to start next (NOTHING when the step was already recorded)."""
    table = TrueupTable()
    for _ in range(20):
        current = table.get_cycle(cycle_id)
        if current is None:
            raise NotFound(f"no cycle {cycle_id!r}")
        updated, next_step = step(current)
        if updated == current:
            return current, Next.NOTHING
        if table.replace_cycle(updated, current):
            return updated, next_step
    raise TrueupError(f"could not record a step of cycle {cycle_id}: too many concurrent changes")


def start_monthly_cycle(scheduled_time: str | None, now: datetime) -> dict[str, Any]:
    """The monthly cycle of this firing (its id is the scheduled time: a firing delivered twice is
    one cycle): recorded, and its syncs asked for, once."""
    when = scheduled_time_of(scheduled_time, now)
    cycle_id = datetime.fromisoformat(when).strftime("%Y%m%dT%H%M%SZ") + "-monthly"
    cycle, created = start_cycle(cycle_id, "schedule", now)
    if not created:
        return {"cycle_id": cycle_id, "started": False, "run_id": cycle["run_id"]}
    run_id = _sync_for(cycle, now)
    return {"cycle_id": cycle_id, "started": True, "run_id": run_id}


def start_cycle_now(now: datetime, by: dict[str, Any] | None) -> Cycle:
    """A cycle asked for over HTTP (POST /cycles, POST /snapshots {"sync": true}): a new one each
    time (an Idempotency-Key makes a retried request the same one). Answers it, its syncs asked for."""
    cycle, _ = start_cycle(new_id(now), "api", now, started_by=by)
    _sync_for(cycle, now)
    return get_cycle(cycle["id"])


def start_snapshot_cycle(now: datetime, by: dict[str, Any] | None) -> Cycle:
    """A snapshot of the current data too large to take within an HTTP request (POST /snapshots): a
    cycle that syncs nothing, so that the snapshot is taken on its own event, then exported and told,
    while the caller follows the cycle. Answers it, its snapshot asked for."""
    cycle, _ = start_cycle(new_id(now), "api", now, sources=(), started_by=by)
    record(cycle["id"], lambda c: steps.snapshot_requested(c, iso(now)))
    return get_cycle(cycle["id"])


def _sync_for(cycle: Cycle, now: datetime) -> str:
    """Ask for the cycle's syncs (one run, every source); a failure to ask fails its syncs."""
    try:
        run = request_sync(None, now, cycle_id=cycle["id"])
    except TrueupError as exc:
        why = f"could not ask for the sync: {exc}"
        for source in list(cycle["syncs"]):
            record(cycle["id"], _finished(source, "failed", why, iso(now)))
        raise
    advance(cycle["id"], lambda c: syncs_requested(c, run["id"], iso(now)))
    return str(run["id"])


def get_cycle(cycle_id: str) -> Cycle:
    cycle = TrueupTable().get_cycle(cycle_id)
    if cycle is None:
        raise NotFound(f"no cycle {cycle_id!r}")
    return {**cycle, "status": steps.status(cycle)}


def list_cycles(limit: int) -> list[Cycle]:
    return [{**c, "status": steps.status(c)} for c in TrueupTable().list_cycles(limit)]


def record_sync_outcome(event: SyncCompleted | SyncFailed | SyncHeld, now: datetime) -> list[str]:
    """Record a sync's outcome in every cycle waiting on it; answers what each cycle does next."""
    from trueup.events import SyncCompleted, SyncHeld

    outcome: SyncOutcome
    if isinstance(event, SyncCompleted):
        outcome, reason = "succeeded", None
    elif isinstance(event, SyncHeld):
        outcome, reason = "held", event.reason
    else:
        outcome, reason = "failed", event.error
    return [
        record(cycle_id, _finished(event.source, outcome, reason, iso(now))).value
        for cycle_id in event.cycle_ids or []
    ]


def _finished(source: str, outcome: SyncOutcome, reason: str | None, now: str) -> Step:
    def step(cycle: Cycle) -> tuple[Cycle, Next]:
        return sync_finished(cycle, source, outcome, reason, now)

    return step


def record(cycle_id: str, step: Step) -> Next:
    """Apply a step, then publish what it starts: the snapshot ("Cycle Synced") or the telling of a
    stopped cycle ("Cycle Stopped")."""
    from trueup import events

    cycle, next_step = advance(cycle_id, step)
    if next_step is Next.SNAPSHOT:
        events.publish([events.CycleSynced(cycle_id=cycle_id)])
    elif next_step is Next.NOTIFY and cycle["snapshot"]["state"] in ("skipped", "failed"):
        reason = cycle["snapshot"]["reason"] or "the snapshot was not taken"
        events.publish([events.CycleStopped(cycle_id=cycle_id, reason=reason)])
    elif next_step is Next.NOTIFY and cycle["exports"]["state"] == "failed":
        reason = f"the exports failed: {cycle['exports']['reason']}"
        events.publish([events.CycleStopped(cycle_id=cycle_id, reason=reason)])
    return next_step


STALLED_AFTER = timedelta(hours=2)  # a sync's longest run (15 min) plus an hour of redelivery, and more
STALLED_SEARCHED = 20  # the newest cycles: older ones were closed by earlier schedule firings


def close_stalled_cycles(now: datetime) -> list[str]:
    """Stop the recent cycles with a step that never heard its event (its function crashed or timed
    out after every retry), so that no cycle shows "running" for ever and someone is told. Answers
    the ids of the cycles stopped."""
    stopped = []
    for cycle in TrueupTable().list_cycles(STALLED_SEARCHED):
        if steps.status(cycle) != "running":
            continue
        if record(cycle["id"], lambda c: steps.give_up_waiting(c, iso(now), STALLED_AFTER)) is Next.NOTIFY:
            stopped.append(cycle["id"])
    return stopped


def take_cycle_snapshot(cycle_id: str, now: datetime) -> dict[str, Any]:
    """The cycle's snapshot step ("Cycle Synced"): the snapshot of the fresh data, recorded with the
    cycle's step in one conditional write, so a repeated event never takes a second one; then
    "Snapshot Created" (its exports are next). A snapshot that cannot be taken stops the cycle."""
    from trueup.services import snapshots

    table = TrueupTable()
    cycle = get_cycle(cycle_id)
    if cycle["snapshot"]["state"] != "running":
        if cycle["snapshot"]["state"] == "succeeded" and cycle["exports"]["state"] == "running":
            # Taken, but the event that starts the exports may not have gone out (the step failed
            # after its write): say it again; the exports are written once however often it is said.
            snapshots.announce(snapshots.snapshot_summary(cycle["snapshot_id"]), must_reach=True)
        return {"cycle_id": cycle_id, "snapshot_id": cycle["snapshot_id"], "taken": False}
    try:
        # Taken by whoever started the cycle (None: the schedule).
        by = cycle.get("started_by")
        snapshot, meta = snapshots.reconcile_current(cycle["trigger"], now, by, cycle_id=cycle_id)
    except TrueupError as exc:
        reason = str(exc)
        record(cycle_id, lambda c: steps.snapshot_failed(c, reason, iso(now)))
        return {"cycle_id": cycle_id, "snapshot_id": None, "taken": False, "failed": reason}
    except Exception as exc:
        why = f"internal error ({type(exc).__name__}); see SnapshotFunction's log"
        record(cycle_id, lambda c: steps.snapshot_failed(c, why, iso(now)))
        raise
    for _ in range(20):
        stored = table.get_cycle(cycle_id)
        if stored is None:
            raise NotFound(f"no cycle {cycle_id!r}")
        updated, next_step = steps.snapshot_taken(stored, snapshot["id"], iso(now))
        if next_step is Next.NOTHING:  # another delivery recorded its snapshot first: this one is unused
            return {"cycle_id": cycle_id, "snapshot_id": stored["snapshot_id"], "taken": False}
        if table.put_cycle_snapshot(meta, updated, stored):
            snapshots.announce(snapshot, must_reach=True)
            return {"cycle_id": cycle_id, "snapshot_id": snapshot["id"], "taken": True}
    raise TrueupError(f"could not record the snapshot of cycle {cycle_id}: too many concurrent changes")


def write_cycle_exports(cycle_id: str, snapshot_id: str, now: datetime) -> dict[str, Any]:
    """The cycle's exports step ("Snapshot Created" by a cycle): a CSV per coverage, one with every
    coverage and the audit log's since the snapshot before, each written once; then "Exports Ready"
    (someone is told next)."""
    from trueup import events
    from trueup.services.exports import export_every_coverage

    cycle = get_cycle(cycle_id)
    if cycle["exports"]["state"] != "running":
        if cycle["exports"]["state"] == "succeeded" and cycle["notification"]["state"] == "running":
            events.publish(
                [events.ExportsReady(cycle_id=cycle_id, snapshot_id=snapshot_id, keys=cycle["export_keys"])]
            )
        return {"cycle_id": cycle_id, "keys": cycle["export_keys"], "written": False}
    keys = export_every_coverage(snapshot_id)
    cycle, next_step = advance(cycle_id, lambda c: steps.exports_written(c, keys, iso(now)))
    if next_step is Next.NOTIFY:
        events.publish([events.ExportsReady(cycle_id=cycle_id, snapshot_id=snapshot_id, keys=keys)])
    return {"cycle_id": cycle_id, "keys": keys, "written": next_step is Next.NOTIFY}


def cycle_notified(cycle_id: str, now: datetime) -> Cycle:
    """The cycle's last step: someone was told. Answers the finished cycle."""
    cycle, _ = advance(cycle_id, lambda c: steps.notified(c, iso(now)))
    return {**cycle, "status": steps.status(cycle)}
