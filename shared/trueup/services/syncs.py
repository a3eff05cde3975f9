"""Running one source's sync for a run: fetch, write a generation, make it current, record the outcome.

The vendor side is passed in (`Fetch`): each sync function hands over its own source's fetcher
(`trueup.services.pax8_source`, `trueup.services.rmm_source`), so the RMM sync never loads the Pax8
client. Requesting and reading runs is trueup.services.sync_runs (all the API function needs).

A sync writes a complete new generation to S3 and only then makes it current; one that fails at any
point leaves the previous generation current.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trueup import events
from trueup.domain.holds import shrinkage
from trueup.errors import TrueupError, UpstreamError
from trueup.ids import new_id
from trueup.observability import MetricUnit, emit_metrics, logger
from trueup.services.sync_runs import Source, cycles_waiting, iso, update_source
from trueup.store.generations import GenerationWriter, StoredGeneration, mark_superseded
from trueup.store.table import TrueupTable

SKIPPED_KEPT = 50  # skipped records listed on a run; the count is always complete
# A sync's lease on its source outlives the longest invocation, so a crashed sync frees it by itself.
LEASE_FOR = timedelta(minutes=16)


@dataclass(frozen=True)
class Fetch:
    """A source's vendor side: what it writes into a generation, and the RMM it reads (None for Pax8)."""

    write: Callable[[GenerationWriter], None]
    vendor: str  # its name as people write it: "Pax8", "NinjaOne"
    rmm_source: str | None = None


def run_sync(
    run_id: str,
    source: Source,
    fetch: Fetch,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Run one source's sync for a run: fetch, write a generation, make it current, record the outcome."""
    table = TrueupTable()
    started = clock()
    timer = time.monotonic()
    # One sync of a source at a time (Pax8 allows about 1,000 requests a minute): a run whose source is
    # already being synced by another run joins that sync and shows its outcome.
    holder = table.acquire_sync_lease(source, run_id, iso(started), iso(started + LEASE_FOR))
    if holder is not None and holder != run_id:
        if update_source(table, run_id, source, only_if="queued", status="running", joined=holder):
            logger.info(
                "joined the running sync", extra={"run_id": run_id, "source": source, "joined": holder}
            )
            _tell_a_late_joiner(table, run_id, source, holder)
        return
    try:
        _run_leased_sync(table, run_id, source, fetch, clock, started, timer)
    finally:
        table.release_sync_lease(source, run_id)


def _run_leased_sync(
    table: TrueupTable,
    run_id: str,
    source: Source,
    fetch: Fetch,
    clock: Callable[[], datetime],
    started: datetime,
    timer: float,
) -> None:
    if not update_source(table, run_id, source, only_if="queued", status="running", started_at=iso(started)):
        logger.warning(
            "sync not queued (a repeated event?); nothing to do", extra={"run_id": run_id, "source": source}
        )
        return
    generation = new_id(started)
    writer = GenerationWriter(source, generation, started, rmm_source=fetch.rmm_source)
    try:
        fetch.write(writer)
        stored = writer.upload()
        pointer = _pointer(stored, run_id, started, fetch.rmm_source)
        if writer.matched_against is not None:
            pointer["matched_against"] = writer.matched_against
        held = _too_short(table, stored, fetch.vendor)
        if held is None:
            _make_current(table, stored, pointer)
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
        update_source(table, run_id, source, status="failed", finished_at=iso(clock()), error=message)
        emit_metrics({"SyncsFailed": (MetricUnit.Count, 1)}, source=source)
        waiting = cycles_waiting(table, run_id, source)
        _announce(events.SyncFailed(run_id=run_id, source=source, error=message, cycle_ids=waiting))
        return
    records = sum(n for kind, n in stored.counts.items() if kind != "skipped")
    skipped = stored.counts.get("skipped", 0)
    outcome: dict[str, Any] = {
        "finished_at": iso(clock()),
        "records": records,
        "skipped": skipped,
        "skipped_records": writer.skipped[:SKIPPED_KEPT],
        "generation": generation,
    }
    if held is not None:
        # Kept, not made current: a person decides (POST /syncs/{run}/{source}/accept or /discard).
        logger.warning("sync held", extra={"run_id": run_id, "source": source, "reason": held})
        update_source(table, run_id, source, status="held", held_reason=held, held_pointer=pointer, **outcome)
        emit_metrics({"SyncsHeld": (MetricUnit.Count, 1)}, source=source)
        _announce(
            events.SyncHeld(
                run_id=run_id,
                source=source,
                generation=generation,
                reason=held,
                cycle_ids=cycles_waiting(table, run_id, source),
            )
        )
        return
    emit_metrics(
        {
            "RecordsSynced": (MetricUnit.Count, records),
            "RecordsSkipped": (MetricUnit.Count, skipped),
            "SyncDuration": (MetricUnit.Seconds, round(time.monotonic() - timer, 3)),
        },
        source=source,
    )
    update_source(table, run_id, source, status="succeeded", **outcome)
    _announce(
        events.SyncCompleted(
            run_id=run_id,
            source=source,
            generation=generation,
            synced_at=started,
            records=records,
            skipped=skipped,
            cycle_ids=cycles_waiting(table, run_id, source),
        )
    )


def _tell_a_late_joiner(table: TrueupTable, run_id: str, source: Source, holder: str) -> None:
    """A cycle's run that joined a sync as it was finishing may have missed its outcome event (which
    names the cycles waiting at the moment it is published): if the sync has finished, this run's
    cycle is told its outcome now. A cycle records a sync's outcome once, so hearing it twice is
    harmless; never hearing it would leave the cycle waiting."""
    own = table.get_run(run_id)
    followed = table.get_run(holder)
    if own is None or not own.get("cycle_id") or followed is None:
        return
    state = followed["sources"].get(source) or {}
    cycle_ids = [own["cycle_id"]]
    if state.get("status") == "succeeded":
        _announce(
            events.SyncCompleted(
                run_id=holder,
                source=source,
                generation=state["generation"],
                synced_at=state["started_at"],
                records=state["records"],
                skipped=state["skipped"],
                cycle_ids=cycle_ids,
            )
        )
    elif state.get("status") == "held":
        reason = state.get("held_reason") or "held"
        _announce(
            events.SyncHeld(
                run_id=holder,
                source=source,
                generation=state["generation"],
                reason=reason,
                cycle_ids=cycle_ids,
            )
        )
    elif state.get("status") == "failed":
        error = state.get("error") or "failed"
        _announce(events.SyncFailed(run_id=holder, source=source, error=error, cycle_ids=cycle_ids))


def _announce(event: events.Event) -> None:
    try:
        events.publish([event])
    except TrueupError:
        logger.exception("could not publish %s", event.detail_type)


def _pointer(
    stored: StoredGeneration, run_id: str, started: datetime, rmm_source: str | None
) -> dict[str, Any]:
    """What the table keeps of a current generation (and a held run, of the one it holds)."""
    return {
        "generation": stored.generation,
        "key": stored.key,
        "synced_at": iso(stored.synced_at),
        "started_at": iso(started),
        "run_id": run_id,
        "counts": stored.counts,
        "parties_key": stored.parties_key,
        "rmm_source": rmm_source,
    }


def _too_short(table: TrueupTable, stored: StoredGeneration, vendor: str) -> str | None:
    """Why the new generation may not replace the current one (trueup.domain.holds); None: it may."""
    current = table.get_current(stored.source)
    if current is None:
        return None  # a first sync replaces nothing
    from trueup.services.reconciliation_settings import load_settings

    settings, _ = load_settings(table)
    return shrinkage(
        vendor,
        current["counts"],
        stored.counts,
        percent=settings.hold_shrink_percent,
        records=settings.hold_shrink_records,
    )


def _make_current(table: TrueupTable, stored: StoredGeneration, pointer: dict[str, Any]) -> None:
    done, replaced = table.set_current(stored.source, pointer)
    if not done:
        _mark_superseded(stored.key, stored.parties_key)  # never current: nothing will ever read it
        raise TrueupError(
            f"a newer {stored.source} sync already finished; this run's data was not made current"
        )
    if replaced and replaced["key"] != stored.key:
        _mark_superseded(replaced["key"], replaced.get("parties_key"))


def _mark_superseded(key: str, parties: str | None) -> None:
    """Tag a generation for deletion after the retention; a failure only delays that, so it is logged."""
    try:
        mark_superseded(key, parties)
    except Exception:
        logger.warning("could not tag superseded generation %s for expiry", key, exc_info=True)
