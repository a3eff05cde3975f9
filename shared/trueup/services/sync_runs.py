"""Sync runs: requested, read, recovered and decided (the API function); running one is
trueup.services.syncs.

A run records, per source, whether its sync is queued, running, succeeded, failed or held (data too
short to replace the current data: kept until a person accepts or discards it), with times, record
counts, skipped records, the error or the reason it was held, and who decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from trueup.config import config
from trueup.errors import Conflict, InvalidInput, NotFound, TrueupError
from trueup.ids import new_id
from trueup.observability import logger
from trueup.services.current_generations import current_pointer
from trueup.sources import chosen_sources, display_name, is_rmm
from trueup.store.table import TrueupTable

# "pax8" or an RMM source in use ("ninjaone", "datto": trueup.sources)
Source = str
UNFINISHED = ("queued", "running")
# A run still unfinished this long after it was requested outlived any Lambda invocation (15 min).
ABANDONED_AFTER = timedelta(minutes=20)

Run = dict[str, Any]


def sync_sources() -> list[Source]:
    """Every source a sync of everything syncs: Pax8, then each RMM in use."""
    return chosen_sources(None, config().rmm_sources)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def request_sync(
    sources: Sequence[str] | None,
    now: datetime,
    by: dict[str, Any] | None = None,
    *,
    run_id: str | None = None,
    cycle_id: str | None = None,
) -> Run:
    """Record a run (and who asked for it: None for a schedule) and publish one "sync requested"
    event per source. `run_id`: the run's id when the caller made it (a schedule's claim names it);
    `cycle_id`: the monthly cycle it syncs for."""
    try:
        chosen = chosen_sources(sources, config().rmm_sources)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    run: Run = {
        "id": run_id or new_id(now),
        "requested_at": iso(now),
        "requested_by": by,
        "cycle_id": cycle_id,
        "sources": {s: _source_state("queued") for s in chosen},
    }
    from trueup import events  # its pydantic models load only when a sync is requested

    table = TrueupTable()
    table.create_run(run)
    try:
        events.publish([events.SyncRequested(run_id=run["id"], source=s) for s in chosen])
    except TrueupError as exc:
        for source in chosen:
            update_source(
                table,
                run["id"],
                source,
                status="failed",
                finished_at=iso(now),
                error=f"could not queue the sync: {exc}",
            )
        raise
    return run


def _source_state(status: str) -> dict[str, Any]:
    return {
        "status": status,
        "started_at": None,
        "finished_at": None,
        "records": None,
        "skipped": None,
        "skipped_records": [],
        "error": None,
        "generation": None,
    }


def get_run(run_id: str, now: datetime) -> Run:
    run = TrueupTable().get_run(run_id)
    if run is None:
        raise NotFound(f"no sync run {run_id!r}")
    return _presented(run, now)


def list_runs(limit: int, now: datetime) -> list[Run]:
    return [_presented(run, now) for run in TrueupTable().list_runs(limit)]


def _presented(run: Run, now: datetime, table: TrueupTable | None = None) -> Run:
    """A run as the API shows it: a source that joined another run's sync shows that sync's state;
    a source that never finished long after any function could still run shows as failed. What a
    held sync would make current is the table's business, not the answer's."""
    for state in run["sources"].values():
        state.pop("held_pointer", None)
    for source, state in run["sources"].items():
        joined = state.get("joined")
        if joined:
            other = (table or TrueupTable()).get_run(joined)
            followed = (other or {}).get("sources", {}).get(source)
            if followed is not None and not followed.get("joined"):
                followed.pop("held_pointer", None)
                run["sources"][source] = {**followed, "joined": joined}
    requested = datetime.fromisoformat(run["requested_at"])
    if now - requested > ABANDONED_AFTER:
        for state in run["sources"].values():
            if state["status"] in UNFINISHED:
                state["status"] = "failed"
                state["error"] = (
                    state["error"] or "no result: the sync stopped without reporting (timed out?)"
                )
    return run


def update_source(
    table: TrueupTable, run_id: str, source: str, *, only_if: str | None = None, **changes: Any
) -> bool:
    """Change one source's state in a run (optimistic, retried: both sync functions update one run)."""
    for _ in range(20):
        current = table.get_run(run_id)
        if current is None:
            raise NotFound(f"no sync run {run_id!r}")
        state = current["sources"].get(source)
        if state is None or (only_if is not None and state["status"] != only_if):
            return False
        updated = {**current, "sources": {**current["sources"], source: {**state, **changes}}}
        if table.replace_run(updated, current):
            return True
    raise TrueupError(f"could not update run {run_id}: too many concurrent changes")


def cycles_waiting(table: TrueupTable, run_id: str, source: str) -> list[str] | None:
    """The monthly cycles waiting on this run's sync of `source`: its own run's, and those of the
    recent runs that joined it (a cycle's sync asked for while another of that source ran)."""
    found = []
    own = table.get_run(run_id)
    if own is not None and own.get("cycle_id"):
        found.append(own["cycle_id"])
    for run in table.list_runs(HELD_SEARCHED):
        if run.get("cycle_id") and run["sources"].get(source, {}).get("joined") == run_id:
            found.append(run["cycle_id"])
    return list(dict.fromkeys(found)) or None


def held_syncs(table: TrueupTable) -> list[dict[str, Any]]:
    """The held syncs of the recent runs, newest first, each with why it was held."""
    held = []
    for run in table.list_runs(HELD_SEARCHED):
        for source, state in run["sources"].items():
            if state["status"] == "held" and not state.get("joined"):
                held.append(
                    {
                        "run_id": run["id"],
                        "source": source,
                        "finished_at": state["finished_at"],
                        "records": state["records"],
                        "reason": state["held_reason"],
                    }
                )
    return held


def accept_held(run_id: str, source: str, by: dict[str, Any] | None, now: datetime) -> Run:
    """Make a held sync's data current after all (`by` decided): a person has checked that the
    vendor's answer was right. Refused if a newer sync's data is current by now."""
    table = TrueupTable()
    state = _held_state(table, run_id, source, "accept")
    pointer = state["held_pointer"]
    # Decided first (a discard at the same moment cannot both win), then made current.
    if not update_source(
        table, run_id, source, only_if="held", status="succeeded", decided_by=by, decided_at=iso(now)
    ):
        raise Conflict(f"the {display_name(source)} sync of run {run_id} was decided meanwhile; reload")
    done, replaced = table.set_current(source, pointer)
    if not done and (table.get_current(source) or {}).get("key") != pointer["key"]:  # not a repeat
        update_source(table, run_id, source, status="held", decided_by=None, decided_at=None)
        raise Conflict(
            f"a newer {display_name(source)} sync has made its data current since run {run_id} was held: "
            "discard this one, or sync again"
        )
    if replaced and replaced["key"] != pointer["key"]:
        _tag_superseded(replaced["key"], replaced.get("parties_key"))
    _audit(table, now, by, run_id, source, state, "accepted", pointer["generation"])
    from trueup import events

    try:
        events.publish(
            [
                events.SyncCompleted(
                    run_id=run_id,
                    source=source,
                    generation=pointer["generation"],
                    synced_at=datetime.fromisoformat(pointer["synced_at"]),
                    records=state["records"],
                    skipped=state["skipped"],
                )
            ]
        )
    except TrueupError:  # the data is current; only what follows a sync (the suggestions) waits
        logger.exception("could not announce the accepted sync")
    return get_run(run_id, now)


def discard_held(run_id: str, source: str, by: dict[str, Any] | None, now: datetime) -> Run:
    """Drop a held sync's data (`by` decided): the current data stays; the held data expires."""
    table = TrueupTable()
    state = _held_state(table, run_id, source, "discard")
    if not update_source(
        table, run_id, source, only_if="held", status="discarded", decided_by=by, decided_at=iso(now)
    ):
        raise Conflict(f"the {display_name(source)} sync of run {run_id} was decided meanwhile; reload")
    pointer = state["held_pointer"]
    _audit(
        table,
        now,
        by,
        run_id,
        source,
        state,
        "discarded",
        (table.get_current(source) or {}).get("generation"),
    )
    _tag_superseded(pointer["key"], pointer.get("parties_key"))
    return get_run(run_id, now)


def _audit(
    table: TrueupTable,
    now: datetime,
    by: dict[str, Any] | None,
    run_id: str,
    source: str,
    state: dict[str, Any],
    decided: str,
    current: str | None,
) -> None:
    """The audit entry of a held sync accepted or discarded, appended once the decision is stored
    (the run's conditional update decided it: two people cannot both decide)."""
    from trueup.services.audit import audit_entry

    held = state["held_pointer"]["generation"]
    entry = audit_entry(
        now,
        by,
        "sync",
        f"held {display_name(source)} sync of run {run_id}: {decided}",
        {"held": held, "held_because": state.get("held_reason")},
        {"decided": decided, "current_generation": current},
    )
    table.append_audit(entry)


def _held_state(table: TrueupTable, run_id: str, source: str, action: str) -> dict[str, Any]:
    run = table.get_run(run_id)
    if run is None:
        raise NotFound(f"no sync run {run_id!r}")
    state = run["sources"].get(source)
    if state is None:
        raise NotFound(f"run {run_id} did not sync {source!r} (it synced {', '.join(run['sources'])})")
    if state["status"] != "held":
        raise Conflict(
            f"the {display_name(source)} sync of run {run_id} is {state['status']}, "
            f"not held: nothing to {action}"
        )
    held: dict[str, Any] = state
    return held


def _tag_superseded(key: str, parties: str | None) -> None:
    """Tag data no longer needed for expiry; a failure only delays that, so it is logged."""
    from trueup.store.generations import mark_superseded

    try:
        mark_superseded(key, parties)
    except Exception:
        logger.warning("could not tag generation %s for expiry", key, exc_info=True)


def recover_interrupted_runs(now: datetime | None = None) -> int:
    """Mark runs left queued or running by a stopped local stack as failed. Returns how many sources."""
    now = now or datetime.now(UTC)
    table = TrueupTable()
    count = 0
    for run in table.iter_runs():
        for source, state in run["sources"].items():
            if state["status"] in UNFINISHED and update_source(
                table,
                run["id"],
                source,
                only_if=state["status"],
                status="failed",
                finished_at=iso(now),
                error="interrupted: trueup stopped before this sync finished; sync again",
            ):
                count += 1
            if state["status"] in UNFINISHED:
                table.release_sync_lease(source, run["id"])  # or the next sync would wait for it to expire
    return count


# How many recent runs are searched for syncs still held (a held sync older than that is not offered).
HELD_SEARCHED = 50


def current_data() -> dict[str, Any]:
    """Per source, the generation snapshots are taken from now: when it was synced and how big it is;
    and under `held` the syncs waiting for a person to accept or discard their data, newest first."""
    table = TrueupTable()
    sources = sync_sources()
    out: dict[str, Any] = {
        "held": held_syncs(table),
        "rmm": {},
        "names": {s: display_name(s) for s in sources},
    }
    for source in sources:
        pointer = current_pointer(table, source)
        data = (
            None
            if pointer is None
            else {
                "synced_at": pointer["synced_at"],
                "generation": pointer["generation"],
                "run_id": pointer["run_id"],
                "records": sum(n for kind, n in pointer["counts"].items() if kind != "skipped"),
                "skipped": pointer["counts"].get("skipped", 0),
            }
        )
        if is_rmm(source):
            out["rmm"][source] = data
        else:
            out[source] = data
    return out
