"""Sync runs: request them, run one source, record the outcome.

The vendor side is passed in (`Fetch`): each sync function hands over its own source's fetcher
(`trueup.services.pax8_source`, `trueup.services.rmm_source`), so the API function, which only
requests syncs, never loads a vendor client, and the RMM sync never loads the Pax8 one.

A run records, per source, whether its sync is queued, running, succeeded or failed, with times,
record counts, skipped records and the error. A sync writes a complete new generation to S3 and
only then makes it current; one that fails at any point leaves the previous generation current.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trueup import events
from trueup.errors import InvalidInput, NotFound, TrueupError, UpstreamError
from trueup.observability import MetricUnit, emit_metrics, logger
from trueup.store.generations import (
    GenerationSource,
    GenerationWriter,
    StoredGeneration,
    mark_superseded,
    new_generation_id,
)
from trueup.store.table import TrueupTable

SOURCES: tuple[GenerationSource, ...] = ("pax8", "rmm")
UNFINISHED = ("queued", "running")
SKIPPED_KEPT = 50  # skipped records listed on a run; the count is always complete
# A run still unfinished this long after it was requested outlived any Lambda invocation (15 min).
ABANDONED_AFTER = timedelta(minutes=20)
# A sync's lease on its source outlives the longest invocation, so a crashed sync frees it by itself.
LEASE_FOR = timedelta(minutes=16)

Run = dict[str, Any]


@dataclass(frozen=True)
class Fetch:
    """A source's vendor side: what it writes into a generation, and the RMM it reads (None for Pax8)."""

    write: Callable[[GenerationWriter], None]
    rmm_source: str | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_run_id(now: datetime) -> str:
    return new_generation_id(now)


def request_sync(sources: Sequence[str] | None, now: datetime, by: dict[str, Any] | None = None) -> Run:
    """Record a run (and who asked for it) and publish one "sync requested" event per source."""
    chosen = (
        list(dict.fromkeys(sources)) if sources is not None else list(SOURCES)
    )  # a source named twice: once
    unknown = [s for s in chosen if s not in SOURCES]
    if unknown or not chosen:
        raise InvalidInput(f"sources must be a non-empty list of values from {list(SOURCES)}, got {chosen}")
    run: Run = {
        "id": new_run_id(now),
        "requested_at": _iso(now),
        "requested_by": by,
        "sources": {s: _source_state("queued") for s in chosen},
    }
    table = TrueupTable()
    table.create_run(run)
    try:
        events.publish([events.SyncRequested(run_id=run["id"], source=s) for s in chosen])
    except TrueupError as exc:
        for source in chosen:
            _update_source(
                table,
                run["id"],
                source,
                status="failed",
                finished_at=_iso(now),
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


def _update_source(
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
            if state["status"] in UNFINISHED and _update_source(
                table,
                run["id"],
                source,
                only_if=state["status"],
                status="failed",
                finished_at=_iso(now),
                error="interrupted: trueup stopped before this sync finished; sync again",
            ):
                count += 1
            if state["status"] in UNFINISHED:
                table.release_sync_lease(source, run["id"])  # or the next sync would wait for it to expire
    return count


def run_sync(
    run_id: str,
    source: GenerationSource,
    fetch: Fetch,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Run one source's sync for a run: fetch, write a generation, make it current, record the outcome."""
    table = TrueupTable()
    started = clock()
    timer = time.monotonic()
    # One sync of a source at a time (Pax8 allows about 1,000 requests a minute): a run whose source is
    # already being synced by another run joins that sync and shows its outcome.
    holder = table.acquire_sync_lease(source, run_id, _iso(started), _iso(started + LEASE_FOR))
    if holder is not None and holder != run_id:
        if _update_source(table, run_id, source, only_if="queued", status="running", joined=holder):
            logger.info(
                "joined the running sync", extra={"run_id": run_id, "source": source, "joined": holder}
            )
        return
    try:
        _run_leased_sync(table, run_id, source, fetch, clock, started, timer)
    finally:
        table.release_sync_lease(source, run_id)


def _run_leased_sync(
    table: TrueupTable,
    run_id: str,
    source: GenerationSource,
    fetch: Fetch,
    clock: Callable[[], datetime],
    started: datetime,
    timer: float,
) -> None:
    if not _update_source(
        table, run_id, source, only_if="queued", status="running", started_at=_iso(started)
    ):
        logger.warning(
            "sync not queued (a repeated event?); nothing to do", extra={"run_id": run_id, "source": source}
        )
        return
    generation = new_generation_id(started)
    writer = GenerationWriter(source, generation, started, rmm_source=fetch.rmm_source)
    try:
        fetch.write(writer)
        stored = writer.upload()
        _make_current(table, stored, run_id, started, fetch.rmm_source)
    except Exception as exc:
        writer.discard()
        if isinstance(exc, TrueupError):
            message = str(exc)
        elif isinstance(exc, ImportError):  # a module name, never data: safe to show, and what to fix
            message = f"trueup is not deployed whole ({exc}): the layer lacks a runtime dependency"
        else:
            message = f"internal error ({type(exc).__name__}); see the logs"
        if not isinstance(exc, TrueupError | UpstreamError):
            logger.exception("sync failed", extra={"run_id": run_id, "source": source})
        else:
            logger.warning("sync failed", extra={"run_id": run_id, "source": source, "error": message})
        _update_source(table, run_id, source, status="failed", finished_at=_iso(clock()), error=message)
        emit_metrics({"SyncsFailed": (MetricUnit.Count, 1)}, source=source)
        _announce(events.SyncFailed(run_id=run_id, source=source, error=message))
        return
    records = sum(n for kind, n in stored.counts.items() if kind != "skipped")
    skipped = stored.counts.get("skipped", 0)
    emit_metrics(
        {
            "RecordsSynced": (MetricUnit.Count, records),
            "RecordsSkipped": (MetricUnit.Count, skipped),
            "SyncDuration": (MetricUnit.Seconds, round(time.monotonic() - timer, 3)),
        },
        source=source,
    )
    _update_source(
        table,
        run_id,
        source,
        status="succeeded",
        finished_at=_iso(clock()),
        records=records,
        skipped=skipped,
        skipped_records=writer.skipped[:SKIPPED_KEPT],
        generation=generation,
    )
    _announce(
        events.SyncCompleted(
            run_id=run_id,
            source=source,
            generation=generation,
            synced_at=started,
            records=records,
            skipped=skipped,
        )
    )


def _announce(event: events.Event) -> None:
    try:
        events.publish([event])
    except TrueupError:
        logger.exception("could not publish %s", event.detail_type)


def _make_current(
    table: TrueupTable, stored: StoredGeneration, run_id: str, started: datetime, rmm_source: str | None
) -> None:
    pointer = {
        "generation": stored.generation,
        "key": stored.key,
        "synced_at": _iso(stored.synced_at),
        "started_at": _iso(started),
        "run_id": run_id,
        "counts": stored.counts,
        "rmm_source": rmm_source if stored.source == "rmm" else None,
    }
    done, replaced = table.set_current(stored.source, pointer)
    if not done:
        _mark_superseded(stored.key)  # never current: nothing will ever read it
        raise TrueupError(
            f"a newer {stored.source} sync already finished; this run's data was not made current"
        )
    if replaced and replaced["key"] != stored.key:
        _mark_superseded(replaced["key"])


def _mark_superseded(key: str) -> None:
    """Tag a generation for deletion after the retention; a failure only delays that, so it is logged."""
    try:
        mark_superseded(key)
    except Exception:
        logger.warning("could not tag superseded generation %s for expiry", key, exc_info=True)


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
