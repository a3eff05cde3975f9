"""Monthly cycles in the table: started once per id, advanced one recorded step at a time.

The sequencing is trueup.domain.cycles; here each step is applied to the stored cycle with a
conditional write, so that when two functions record their step at the same moment (the two syncs
finishing together) both are kept and exactly one of them starts what comes next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from trueup.domain.cycles import Cycle, Next, SyncOutcome, new_cycle, sync_finished, syncs_requested
from trueup.errors import NotFound, TrueupError
from trueup.services.sync_runs import SOURCES, iso, request_sync
from trueup.store.table import TrueupTable

if TYPE_CHECKING:  # the events' models load only when an event is read or published
    from trueup.events import SyncCompleted, SyncFailed, SyncHeld

Step = Callable[[Cycle], tuple[Cycle, Next]]


def start_cycle(
    cycle_id: str, trigger: Literal["schedule", "api"], now: datetime, sources: Sequence[str] = SOURCES
) -> tuple[Cycle, bool]:
    """The cycle of this id, recorded now unless it exists: (it, whether this call created it)."""
    table = TrueupTable()
    cycle = new_cycle(cycle_id, trigger, list(sources), iso(now))
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
    from trueup.services.scheduled import scheduled_time_of

    when = scheduled_time_of(scheduled_time, now)
    cycle_id = datetime.fromisoformat(when).strftime("%Y%m%dT%H%M%SZ") + "-monthly"
    cycle, created = start_cycle(cycle_id, "schedule", now)
    if not created:
        return {"cycle_id": cycle_id, "started": False, "run_id": cycle["run_id"]}
    try:
        run = request_sync(None, now, cycle_id=cycle_id)
    except TrueupError as exc:
        why = f"could not ask for the sync: {exc}"
        for source in list(cycle["syncs"]):
            record(cycle_id, _finished(source, "failed", why, iso(now)))
        raise
    advance(cycle_id, lambda c: syncs_requested(c, run["id"], iso(now)))
    return {"cycle_id": cycle_id, "started": True, "run_id": run["id"]}


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
    return next_step
