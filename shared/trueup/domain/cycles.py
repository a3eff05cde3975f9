"""The monthly cycle's sequencing: sync every source, then snapshot, then export, then tell someone.

Pure: a cycle is a JSON document (as the table stores it), each step a function from the document
and what just happened to the new document and what comes next. Events arrive at least once and in
any order, so every step is idempotent: an outcome already recorded changes nothing and starts
nothing (`Next.NOTHING`), and the step that follows is started by exactly one recorded change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from trueup.sources import display_name

Cycle = dict[str, Any]
StepState = Literal["queued", "running", "succeeded", "failed", "skipped", "held"]
SyncOutcome = Literal["succeeded", "failed", "held"]
FINISHED = ("succeeded", "failed", "skipped", "held")


class Next(StrEnum):
    NOTHING = "nothing"  # wait for another event (or this one was a repeat)
    SNAPSHOT = "snapshot"  # every sync succeeded: take the snapshot
    EXPORT = "export"  # the snapshot was taken: write the exports
    NOTIFY = "notify"  # the exports are written, or the cycle stopped: tell someone


def new_cycle(
    cycle_id: str,
    trigger: Literal["schedule", "api"],
    sources: list[str],
    now: str,
    started_by: dict[str, Any] | None = None,
) -> Cycle:
    """A cycle just started: every step queued. `started_by`: who asked (None for the schedule)."""
    return {
        "id": cycle_id,
        "trigger": trigger,
        "started_by": started_by,
        "started_at": now,
        "finished_at": None,
        "run_id": None,
        "syncs": {source: _step("queued") for source in sources},
        "snapshot": _step("queued"),
        "exports": _step("queued"),
        "notification": _step("queued"),
        "snapshot_id": None,
        "export_keys": [],
    }


def _step(state: StepState, reason: str | None = None, at: str | None = None) -> dict[str, Any]:
    return {"state": state, "reason": reason, "at": at}


def syncs_requested(cycle: Cycle, run_id: str, now: str) -> tuple[Cycle, Next]:
    """The sync run of the cycle was asked for: its syncs are running."""
    if cycle["run_id"] is not None:
        return cycle, Next.NOTHING
    syncs = {
        source: (_step("running", None, now) if step["state"] == "queued" else step)
        for source, step in cycle["syncs"].items()
    }
    return {**cycle, "run_id": run_id, "syncs": syncs}, Next.NOTHING


def snapshot_requested(cycle: Cycle, now: str) -> tuple[Cycle, Next]:
    """A cycle that syncs nothing (a snapshot of the current data too large to wait for over HTTP):
    its snapshot starts at once."""
    if cycle["syncs"] or cycle["snapshot"]["state"] != "queued":
        return cycle, Next.NOTHING
    return {**cycle, "snapshot": _step("running", None, now)}, Next.SNAPSHOT


def sync_finished(
    cycle: Cycle, source: str, outcome: SyncOutcome, reason: str | None, now: str
) -> tuple[Cycle, Next]:
    """Record one source's sync outcome. The last one decides: every sync succeeded, the snapshot;
    any failed or held, the snapshot and exports are skipped with the reason, and someone is told."""
    step = cycle["syncs"].get(source)
    if step is None:
        raise ValueError(f"cycle {cycle['id']} does not sync {source!r}")
    if step["state"] in FINISHED:
        return cycle, Next.NOTHING  # a repeated event
    updated = {**cycle, "syncs": {**cycle["syncs"], source: _step(outcome, reason, now)}}
    states = [s["state"] for s in updated["syncs"].values()]
    if any(state not in FINISHED for state in states):
        return updated, Next.NOTHING
    if all(state == "succeeded" for state in states):
        return {**updated, "snapshot": _step("running", None, now)}, Next.SNAPSHOT
    why = "; ".join(
        f"the {display_name(name)} sync {'was held' if s['state'] == 'held' else 'failed'}"
        + (f": {s['reason']}" if s["reason"] else "")
        for name, s in updated["syncs"].items()
        if s["state"] != "succeeded"
    )
    skipped = f"not taken from older data: {why}"
    return (
        {
            **updated,
            "snapshot": _step("skipped", skipped, now),
            "exports": _step("skipped", "no snapshot", now),
            "notification": _step("running", None, now),
        },
        Next.NOTIFY,
    )


def snapshot_taken(cycle: Cycle, snapshot_id: str, now: str) -> tuple[Cycle, Next]:
    if cycle["snapshot"]["state"] != "running":
        return cycle, Next.NOTHING  # a repeat, or a cycle that skipped its snapshot
    return (
        {
            **cycle,
            "snapshot": _step("succeeded", None, now),
            "snapshot_id": snapshot_id,
            "exports": _step("running", None, now),
        },
        Next.EXPORT,
    )


def snapshot_failed(cycle: Cycle, reason: str, now: str) -> tuple[Cycle, Next]:
    if cycle["snapshot"]["state"] != "running":
        return cycle, Next.NOTHING
    return (
        {
            **cycle,
            "snapshot": _step("failed", reason, now),
            "exports": _step("skipped", "no snapshot", now),
            "notification": _step("running", None, now),
        },
        Next.NOTIFY,
    )


def exports_written(cycle: Cycle, keys: list[str], now: str) -> tuple[Cycle, Next]:
    if cycle["exports"]["state"] != "running":
        return cycle, Next.NOTHING
    return (
        {
            **cycle,
            "exports": _step("succeeded", None, now),
            "export_keys": list(keys),
            "notification": _step("running", None, now),
        },
        Next.NOTIFY,
    )


def exports_failed(cycle: Cycle, reason: str, now: str) -> tuple[Cycle, Next]:
    if cycle["exports"]["state"] != "running":
        return cycle, Next.NOTHING
    return (
        {**cycle, "exports": _step("failed", reason, now), "notification": _step("running", None, now)},
        Next.NOTIFY,
    )


def give_up_waiting(cycle: Cycle, now: str, waited: timedelta) -> tuple[Cycle, Next]:
    """A step still waiting `waited` after it started will never hear its event (its function
    crashed or timed out after every retry): it fails, saying so, and the cycle stops and is told.
    A cycle whose steps are all within that time is unchanged."""
    moment = datetime.fromisoformat(now)

    def overdue(step: dict[str, Any], since: str) -> bool:
        return step["state"] in ("queued", "running") and moment - datetime.fromisoformat(since) >= waited

    hours = f"{waited.total_seconds() / 3600:g} hour{'s' if waited != timedelta(hours=1) else ''}"
    why = f"no outcome {hours} after it started: its function crashed or timed out (see FailedInvocations)"
    next_step = Next.NOTHING
    for source, step in cycle["syncs"].items():
        if overdue(step, step["at"] or cycle["started_at"]):
            cycle, next_step = sync_finished(cycle, source, "failed", why, now)
    if cycle["snapshot"]["state"] == "running" and overdue(cycle["snapshot"], cycle["snapshot"]["at"]):
        cycle, next_step = snapshot_failed(cycle, why, now)
    if cycle["exports"]["state"] == "running" and overdue(cycle["exports"], cycle["exports"]["at"]):
        cycle, next_step = exports_failed(cycle, why, now)
    return cycle, next_step


def notified(cycle: Cycle, now: str) -> tuple[Cycle, Next]:
    if cycle["notification"]["state"] != "running":
        return cycle, Next.NOTHING
    return {**cycle, "notification": _step("succeeded", None, now), "finished_at": now}, Next.NOTHING


def status(cycle: Cycle) -> Literal["running", "succeeded", "failed", "held"]:
    """running until someone was told; then succeeded when the snapshot and exports were; held when
    it stopped only because a sync's data was held (a person decides); else failed."""
    if cycle["notification"]["state"] != "succeeded":
        return "running"
    if cycle["snapshot"]["state"] == "succeeded" and cycle["exports"]["state"] == "succeeded":
        return "succeeded"
    steps = [*cycle["syncs"].values(), cycle["snapshot"], cycle["exports"]]
    if any(s["state"] == "held" for s in steps) and not any(s["state"] == "failed" for s in steps):
        return "held"
    return "failed"
