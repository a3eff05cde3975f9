"""Sync runs: requested, read and recovered (the API function); running one is trueup.services.syncs.

A run records, per source, whether its sync is queued, running, succeeded or failed, with times,
record counts, skipped records and the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from trueup.errors import InvalidInput, NotFound, TrueupError
from trueup.ids import new_id
from trueup.store.table import TrueupTable

Source = Literal["pax8", "rmm"]
SOURCES: tuple[Source, ...] = ("pax8", "rmm")
UNFINISHED = ("queued", "running")
# A run still unfinished this long after it was requested outlived any Lambda invocation (15 min).
ABANDONED_AFTER = timedelta(minutes=20)

Run = dict[str, Any]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def request_sync(sources: Sequence[str] | None, now: datetime, by: dict[str, Any] | None = None) -> Run:
    """Record a run (and who asked for it) and publish one "sync requested" event per source."""
    chosen = (
        list(dict.fromkeys(sources)) if sources is not None else list(SOURCES)
    )  # a source named twice: once
    unknown = [s for s in chosen if s not in SOURCES]
    if unknown or not chosen:
        raise InvalidInput(f"sources must be a non-empty list of values from {list(SOURCES)}, got {chosen}")
    run: Run = {
        "id": new_id(now),
        "requested_at": iso(now),
        "requested_by": by,
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
    a source that never finished long after any function could still run shows as failed."""
    for source, state in run["sources"].items():
        joined = state.get("joined")
        if joined:
            other = (table or TrueupTable()).get_run(joined)
            followed = (other or {}).get("sources", {}).get(source)
            if followed is not None and not followed.get("joined"):
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


def current_data() -> dict[str, Any]:
    """Per source, the generation snapshots are taken from now: when it was synced and how big it is."""
    table = TrueupTable()
    out: dict[str, Any] = {}
    for source in SOURCES:
        pointer = table.get_current(source)
        out[source] = (
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
    return out
