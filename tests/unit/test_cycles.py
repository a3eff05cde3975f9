"""The monthly cycle's sequencing, step by step, with every order and repeat an event can arrive in."""

from __future__ import annotations

import itertools

import pytest

from trueup.domain.cycles import (
    Cycle,
    Next,
    exports_written,
    new_cycle,
    notified,
    snapshot_failed,
    snapshot_taken,
    status,
    sync_finished,
)

T0, T1, T2, T3, T4 = (f"2026-12-01T06:0{i}:00Z" for i in range(5))


def fresh() -> Cycle:
    return new_cycle("c1", "schedule", ["pax8", "rmm"], T0)


@pytest.mark.parametrize("order", list(itertools.permutations(["pax8", "rmm"])))
def test_the_last_successful_sync_starts_the_snapshot_once_in_either_order(order: tuple[str, str]) -> None:
    cycle, first = sync_finished(fresh(), order[0], "succeeded", None, T1)
    assert first is Next.NOTHING and cycle["snapshot"]["state"] == "queued"
    cycle, second = sync_finished(cycle, order[1], "succeeded", None, T2)
    assert second is Next.SNAPSHOT
    assert cycle["snapshot"] == {"state": "running", "reason": None, "at": T2}
    # Either event delivered again starts nothing more, and changes nothing.
    for source in order:
        again, next_step = sync_finished(cycle, source, "succeeded", None, T3)
        assert (again, next_step) == (cycle, Next.NOTHING)
    assert status(cycle) == "running"


def test_a_held_sync_skips_the_snapshot_and_the_exports_saying_why() -> None:
    cycle, _ = sync_finished(fresh(), "pax8", "succeeded", None, T1)
    cycle, next_step = sync_finished(
        cycle, "rmm", "held", "NinjaOne returned 240 devices; the current data has 628", T2
    )
    assert next_step is Next.NOTIFY
    assert cycle["snapshot"] == {
        "state": "skipped",
        "reason": "not taken from older data: the RMM sync was held: NinjaOne returned 240 devices; "
        "the current data has 628",
        "at": T2,
    }
    assert cycle["exports"] == {"state": "skipped", "reason": "no snapshot", "at": T2}
    assert cycle["notification"]["state"] == "running"
    # A snapshot event arriving anyway (it never should) takes nothing.
    assert snapshot_taken(cycle, "s1", T3) == (cycle, Next.NOTHING)
    # Told, it is held (a person decides), not failed; with a failed sync beside it, failed.
    assert status(notified(cycle, T3)[0]) == "held"
    both, _ = sync_finished(fresh(), "pax8", "failed", "boom", T1)
    both, _ = sync_finished(both, "rmm", "held", "short", T2)
    assert status(notified(both, T3)[0]) == "failed"


def test_every_failed_sync_is_named_in_source_order_whichever_finished_last() -> None:
    cycle, _ = sync_finished(fresh(), "rmm", "failed", "HTTP 503 after 5 attempts", T1)
    assert _ == Next.NOTHING  # the other sync still runs: wait for it
    cycle, next_step = sync_finished(cycle, "pax8", "failed", None, T2)
    assert next_step is Next.NOTIFY
    assert cycle["snapshot"]["reason"] == (
        "not taken from older data: the Pax8 sync failed; the RMM sync failed: HTTP 503 after 5 attempts"
    )
    cycle, _ = notified(cycle, T3)
    assert status(cycle) == "failed" and cycle["finished_at"] == T3


def test_a_repeated_event_with_another_outcome_does_not_change_a_recorded_one() -> None:
    cycle, _ = sync_finished(fresh(), "pax8", "failed", "boom", T1)
    again, next_step = sync_finished(cycle, "pax8", "succeeded", None, T2)
    assert (again, next_step) == (cycle, Next.NOTHING)
    with pytest.raises(ValueError, match="does not sync 'psa'"):
        sync_finished(cycle, "psa", "succeeded", None, T2)


def test_the_whole_cycle_when_all_goes_well() -> None:
    cycle, _ = sync_finished(fresh(), "pax8", "succeeded", None, T1)
    cycle, _ = sync_finished(cycle, "rmm", "succeeded", None, T1)
    cycle, next_step = snapshot_taken(cycle, "s1", T2)
    assert next_step is Next.EXPORT and cycle["snapshot_id"] == "s1"
    assert cycle["exports"]["state"] == "running"
    assert snapshot_taken(cycle, "s2", T2) == (cycle, Next.NOTHING)  # a repeat keeps the first
    keys = ["exports/2026/12/s1/huntress.csv", "exports/2026/12/s1/all-coverages.csv"]
    cycle, next_step = exports_written(cycle, keys, T3)
    assert next_step is Next.NOTIFY and cycle["export_keys"] == keys
    assert exports_written(cycle, [], T3) == (cycle, Next.NOTHING)
    assert status(cycle) == "running"
    cycle, next_step = notified(cycle, T4)
    assert next_step is Next.NOTHING and cycle["notification"]["state"] == "succeeded"
    assert notified(cycle, T4) == (cycle, Next.NOTHING)
    assert status(cycle) == "succeeded" and cycle["finished_at"] == T4


def test_a_snapshot_that_fails_skips_the_exports_and_is_told() -> None:
    cycle, _ = sync_finished(fresh(), "pax8", "succeeded", None, T1)
    cycle, _ = sync_finished(cycle, "rmm", "succeeded", None, T1)
    cycle, next_step = snapshot_failed(cycle, "timed out", T2)
    assert next_step is Next.NOTIFY
    assert (cycle["snapshot"]["state"], cycle["exports"]["state"]) == ("failed", "skipped")
    assert snapshot_failed(cycle, "again", T3) == (cycle, Next.NOTHING)
    assert snapshot_taken(cycle, "s1", T3) == (cycle, Next.NOTHING)  # too late: it failed
    cycle, _ = notified(cycle, T4)
    assert status(cycle) == "failed"


def test_a_step_that_never_hears_its_event_fails_after_the_wait_and_the_cycle_stops() -> None:
    from datetime import timedelta

    from trueup.domain.cycles import give_up_waiting, syncs_requested

    wait = timedelta(hours=2)
    cycle, _ = syncs_requested(fresh(), "r1", "2026-12-01T06:00:00Z")
    cycle, _ = sync_finished(cycle, "pax8", "succeeded", None, "2026-12-01T06:05:00Z")
    # Within the wait nothing changes; at two hours the RMM sync (running since 06:00) gives up.
    assert give_up_waiting(cycle, "2026-12-01T07:59:59Z", wait) == (cycle, Next.NOTHING)
    stopped, next_step = give_up_waiting(cycle, "2026-12-01T08:00:00Z", wait)
    assert next_step is Next.NOTIFY
    why = "no outcome 2 hours after it started: its function crashed or timed out (see FailedInvocations)"
    assert stopped["syncs"]["rmm"] == {"state": "failed", "reason": why, "at": "2026-12-01T08:00:00Z"}
    assert stopped["syncs"]["pax8"]["state"] == "succeeded"
    assert stopped["snapshot"]["reason"] == f"not taken from older data: the RMM sync failed: {why}"
    # The late event, should it come after all, changes nothing.
    assert sync_finished(stopped, "rmm", "succeeded", None, "2026-12-01T08:01:00Z") == (stopped, Next.NOTHING)


def test_a_snapshot_or_exports_step_that_never_finishes_fails_after_the_wait() -> None:
    from datetime import timedelta

    from trueup.domain.cycles import give_up_waiting

    cycle, _ = sync_finished(fresh(), "pax8", "succeeded", None, T1)
    cycle, _ = sync_finished(cycle, "rmm", "succeeded", None, "2026-12-01T06:10:00Z")  # snapshot running
    one_hour = timedelta(hours=1)
    assert give_up_waiting(cycle, "2026-12-01T07:09:00Z", one_hour) == (cycle, Next.NOTHING)
    failed, next_step = give_up_waiting(cycle, "2026-12-01T07:10:00Z", one_hour)
    assert next_step is Next.NOTIFY and failed["snapshot"]["state"] == "failed"
    assert failed["snapshot"]["reason"].startswith("no outcome 1 hour after it started")
    assert failed["exports"]["state"] == "skipped"
    # A snapshot taken, its exports never written: the exports fail, the snapshot stands.
    taken, _ = snapshot_taken(cycle, "s1", "2026-12-01T06:11:00Z")
    stuck, next_step = give_up_waiting(taken, "2026-12-01T07:11:00Z", one_hour)
    assert next_step is Next.NOTIFY
    assert (stuck["snapshot"]["state"], stuck["exports"]["state"]) == ("succeeded", "failed")
    stuck, _ = notified(stuck, "2026-12-01T07:12:00Z")
    assert status(stuck) == "failed"
    # A finished cycle is never touched.
    done, _ = exports_written(taken, ["k"], T3)
    done, _ = notified(done, T4)
    assert give_up_waiting(done, "2027-01-01T00:00:00Z", one_hour) == (done, Next.NOTHING)
