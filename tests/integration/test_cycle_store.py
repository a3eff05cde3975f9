"""Cycles in the table (moto): started once per id, and two steps recorded at the same moment both
kept, with exactly one of them starting what comes next."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from trueup.domain.cycles import Next, sync_finished
from trueup.services import cycles
from trueup.store.table import TrueupTable

NOW = datetime(2026, 12, 1, 6, tzinfo=UTC)


def test_a_cycle_is_started_once_per_id(table: TrueupTable) -> None:
    first, created = cycles.start_cycle("2026-12-01T06:00:00Z", "schedule", NOW)
    assert created is True and set(first["syncs"]) == {"pax8", "ninjaone"}
    again, created = cycles.start_cycle("2026-12-01T06:00:00Z", "schedule", NOW)
    assert created is False and again == first


def test_two_syncs_finishing_together_are_both_kept_and_start_the_snapshot_once(
    table: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cycles.start_cycle("c1", "api", NOW)
    outcomes: list[Any] = []
    original = TrueupTable.get_cycle
    raced = False

    def reading_before_the_other_writes(self: TrueupTable, cycle_id: str) -> Any:
        nonlocal raced
        read = original(self, cycle_id)
        if not raced:  # the RMM sync's function records its outcome between this read and write
            raced = True
            outcomes.append(
                cycles.advance("c1", lambda c: sync_finished(c, "ninjaone", "succeeded", None, "t1"))
            )
        return read

    monkeypatch.setattr(TrueupTable, "get_cycle", reading_before_the_other_writes)
    outcomes.append(cycles.advance("c1", lambda c: sync_finished(c, "pax8", "succeeded", None, "t2")))
    assert [next_step for _, next_step in outcomes] == [Next.NOTHING, Next.SNAPSHOT]
    stored = original(TrueupTable(), "c1")
    assert stored is not None
    assert {s: v["state"] for s, v in stored["syncs"].items()} == {
        "pax8": "succeeded",
        "ninjaone": "succeeded",
    }
    assert stored["snapshot"]["state"] == "running"
    # Delivered again, either outcome starts nothing.
    again = cycles.advance("c1", lambda c: sync_finished(c, "pax8", "succeeded", None, "t3"))
    assert again == (stored, Next.NOTHING)


def test_a_cycles_snapshot_is_recorded_with_its_step_or_not_at_all(table: TrueupTable) -> None:
    from trueup.domain.cycles import snapshot_taken

    store = TrueupTable()
    cycles.start_cycle("c1", "schedule", NOW)
    for source in ("pax8", "ninjaone"):

        def finished(cycle: dict[str, Any], source: str = source) -> tuple[dict[str, Any], Next]:
            return sync_finished(cycle, source, "succeeded", None, "2026-12-01T06:01:00Z")

        cycles.advance("c1", finished)
    running = store.get_cycle("c1")
    assert running is not None and running["snapshot"]["state"] == "running"
    # Two deliveries of "Cycle Synced" each reconciled; both try to record their snapshot.
    first, _ = snapshot_taken(running, "s1", "2026-12-01T06:02:00Z")
    second, _ = snapshot_taken(running, "s2", "2026-12-01T06:02:01Z")
    meta: dict[str, Any] = {"id": "s1", "taken_at": "2026-12-01T06:02:00Z", "coverages": []}
    assert store.put_cycle_snapshot(meta, first, running) is True
    assert store.put_cycle_snapshot({**meta, "id": "s2"}, second, running) is False
    # The one that lost wrote nothing: no second snapshot, and the cycle names the first.
    assert store.get_snapshot("s1") is not None and store.get_snapshot("s2") is None
    stored = store.get_cycle("c1")
    assert stored is not None and stored["snapshot_id"] == "s1"


def test_a_cycle_step_delivered_again_while_it_runs_is_left_to_the_first_delivery(table: TrueupTable) -> None:
    from tests.integration.test_handlers import LambdaContext
    from trueup.services.once import cycle_step_once

    ran: list[str] = []

    def first() -> dict[str, Any]:
        ran.append("first")
        # The same step's event delivered again while this delivery is still at it.
        again = cycle_step_once("c-1", "snapshot", LambdaContext(), second, not_done={"taken": False})
        assert again == {"cycle_id": "c-1", "taken": False, "in_progress": True}
        return {"cycle_id": "c-1", "taken": True}

    def second() -> dict[str, Any]:
        ran.append("second")
        return {"cycle_id": "c-1", "taken": True}

    done = cycle_step_once("c-1", "snapshot", LambdaContext(), first, not_done={"taken": False})
    assert done == {"cycle_id": "c-1", "taken": True} and ran == ["first"]
    # Once done, a later delivery gets the first answer without acting.
    assert cycle_step_once("c-1", "snapshot", LambdaContext(), second, not_done={}) == done
    assert ran == ["first"]
