"""The monthly cycle in the local stack, against the demo upstreams: the schedule fired over HTTP,
every step run by its own function as the template's rules route the events, and what a person sees
afterwards: the cycle's steps, the snapshot, the CSVs in the bucket and the notification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.demo.dataset import build_dataset
from tests.stack_process import StackProcess, http_json, running_stack

FIRE = "/_local/schedules/CycleFunction/Monthly"


def bucket_keys(stack: StackProcess, prefix: str) -> list[str]:
    """What the stack saved (before answering its last request): the data bucket's keys."""
    saved = json.loads((stack.data_dir / "state.json").read_text())
    return sorted(k for k in saved["buckets"]["DataBucket"] if k.startswith(prefix))


def notifications(stack: StackProcess) -> list[dict[str, Any]]:
    told: list[dict[str, Any]] = stack.ok("GET", "/_local/notifications")["notifications"]
    return told


def assert_one_of_each(stack: StackProcess, cycle: dict[str, Any], told_before: int) -> None:
    assert cycle["status"] == "succeeded", cycle
    # In order: both syncs, then the snapshot, the exports, the notification.
    syncs_done = max(s["at"] for s in cycle["syncs"].values())
    assert {s["state"] for s in cycle["syncs"].values()} == {"succeeded"}
    steps = [cycle[step] for step in ("snapshot", "exports", "notification")]
    assert [s["state"] for s in steps] == ["succeeded"] * 3
    assert syncs_done <= steps[0]["at"] <= steps[1]["at"] <= steps[2]["at"] == cycle["finished_at"]
    run = stack.ok("GET", f"/syncs/{cycle['run_id']}")
    assert {s: v["status"] for s, v in run["sources"].items()} == {
        "pax8": "succeeded",
        "ninjaone": "succeeded",
    }
    # One snapshot of the cycle, by the schedule.
    taken = [s for s in stack.ok("GET", "/snapshots?limit=100")["items"] if s.get("cycle_id") == cycle["id"]]
    assert [s["id"] for s in taken] == [cycle["snapshot_id"]]
    assert taken[0]["trigger"] == "schedule"
    # One CSV per coverage, one with every coverage and the audit log's entries since the snapshot
    # before, in the bucket, and nothing more.
    coverages = [c["id"] for c in taken[0]["coverages"]]
    expected = [f"{c}.csv" for c in coverages] + ["all_coverages.csv", "audit.csv"]
    assert [k.rsplit("/", 1)[1] for k in cycle["export_keys"]] == expected
    exports = bucket_keys(stack, "exports/")
    assert [k for k in exports if f"/{cycle['snapshot_id']}/" in k] == sorted(cycle["export_keys"])
    # One notification, the newest, with the per-coverage counts.
    told = notifications(stack)
    assert len(told) == told_before + 1
    assert told[0]["subject"].startswith("trueup: ") and "reconciliation" in told[0]["subject"]
    for coverage in taken[0]["coverages"]:
        assert (
            f"- {coverage['name']}: {coverage['summary']['under_licensed']} under-licensed" in told[0]["text"]
        )
    assert f"Open trueup: {stack.url}/" in told[0]["text"]


@pytest.mark.parametrize("duplicates", ["0", "1"], ids=["each event once", "TRUEUP_DUPLICATE_EVENTS=1"])
def test_the_monthly_schedule_syncs_snapshots_exports_and_tells_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, duplicates: str
) -> None:
    monkeypatch.setenv("TRUEUP_DUPLICATE_EVENTS", duplicates)
    with running_stack(tmp_path) as stack:
        told_before = len(notifications(stack))
        fired = stack.ok("POST", FIRE)
        assert fired["started"] is True and fired["cycle_id"].endswith("-monthly")
        # Scheduler delivers at least once: the same firing again is the same cycle.
        again = stack.ok("POST", "/_local/schedules/CycleFunction/Monthly")
        if again["cycle_id"] == fired["cycle_id"]:  # the same second: one scheduled time
            assert again["started"] is False
        cycle = stack.wait_for_cycle(fired["cycle_id"])
        if again["cycle_id"] != fired["cycle_id"]:  # a second later: another firing, another cycle
            stack.wait_for_cycle(again["cycle_id"])
            told_before += 1
        assert_one_of_each(stack, cycle, told_before)
        if duplicates == "1":
            assert "(again): ok" in stack.log()  # the events really were delivered twice


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    with running_stack(tmp_path_factory.mktemp("cycles")) as running:
        yield running


@pytest.fixture
def faults(stack: StackProcess) -> Iterator[str]:
    """The demo control's faults URL; every fault is cleared after the test."""
    url: str = stack.stack_file()["demo"]["control"] + "/faults"
    yield url
    assert http_json(url, "DELETE")[0] in (200, 204)


def start_cycle(stack: StackProcess) -> dict[str, Any]:
    status, cycle = stack.api("POST", "/cycles")
    assert status == 202, cycle
    assert cycle["status"] == "running" and cycle["trigger"] == "api"
    return dict(cycle)


def stored(stack: StackProcess) -> dict[str, Any]:
    """What must never be lost: the current data of each source and the latest snapshot."""
    current = stack.ok("GET", "/syncs/current")
    status, latest = stack.api("GET", "/snapshots/latest?limit=1")
    return {"pax8": current["pax8"], "rmm": current["rmm"], "latest": latest["id"] if status == 200 else None}


def assert_stopped(
    stack: StackProcess, cycle: dict[str, Any], before: dict[str, Any], told: int, status: str
) -> str:
    """A cycle that stopped before its snapshot: nothing stored changed, and it was told why."""
    assert cycle["status"] == status, cycle
    assert cycle["snapshot"]["state"] == "skipped" and cycle["exports"]["state"] == "skipped"
    assert cycle["snapshot_id"] is None and cycle["export_keys"] == []
    assert stored(stack) == before
    news = notifications(stack)
    assert len(news) == told + 1, news[:3]
    assert news[0]["subject"].startswith("trueup: the cycle stopped: not taken from older data")
    assert f"Why: {cycle['snapshot']['reason']}." in news[0]["text"]
    return str(news[0]["text"])


def test_pax8_failing_mid_paging_until_retries_are_spent_stops_the_cycle(
    stack: StackProcess, faults: str
) -> None:
    stack.ok("POST", "/snapshots")
    before, told = stored(stack), len(notifications(stack))
    fault = {"server": "pax8", "path": "/v1/subscriptions", "page": 2, "status": 500}
    assert http_json(faults, "POST", fault)[0] == 201
    cycle = stack.wait_for_cycle(start_cycle(stack)["id"])
    assert cycle["syncs"]["pax8"]["state"] == "failed" and cycle["syncs"]["ninjaone"]["state"] == "succeeded"
    assert "HTTP 500 after 5 attempts" in cycle["syncs"]["pax8"]["reason"]
    before["rmm"] = stack.ok("GET", "/syncs/current")["rmm"]  # the RMM's fresh data is current
    text = assert_stopped(stack, cycle, before, told, "failed")
    assert "the Pax8 sync failed" in cycle["snapshot"]["reason"] and "Pax8 failed (" in text


def test_ninjaone_answering_a_run_of_429s_that_ends_still_completes_the_cycle(
    stack: StackProcess, faults: str
) -> None:
    told = len(notifications(stack))
    fault = {"server": "ninjaone", "path": "/v2/devices", "status": 429, "retry_after": 1, "times": 3}
    assert http_json(faults, "POST", fault)[0] == 201
    cycle = stack.wait_for_cycle(start_cycle(stack)["id"])
    assert cycle["status"] == "succeeded", cycle
    devices = stack.ok("GET", "/syncs/current")["rmm"]["ninjaone"]["records"]
    assert devices == stack.ok("GET", f"/syncs/{cycle['run_id']}")["sources"]["ninjaone"]["records"]
    assert len(notifications(stack)) == told + 1


def test_ninjaone_ending_its_device_list_early_is_held_and_the_cycle_says_so(
    stack: StackProcess, faults: str
) -> None:
    before, told = stored(stack), len(notifications(stack))
    ids = sorted(d["id"] for d in build_dataset().ninjaone_devices)
    fault = {"server": "ninjaone", "path": "/v2/devices", "after": ids[199], "malformed": True, "body": []}
    assert http_json(faults, "POST", fault)[0] == 201
    cycle = stack.wait_for_cycle(start_cycle(stack)["id"])
    assert cycle["syncs"]["ninjaone"]["state"] == "held"
    assert cycle["syncs"]["ninjaone"]["reason"].startswith(
        "NinjaOne returned 200 devices; the current data has"
    )
    before["pax8"] = stack.ok("GET", "/syncs/current")["pax8"]
    text = assert_stopped(stack, cycle, before, told, "held")
    assert "NinjaOne was held (NinjaOne returned 200 devices" in text
    # The held data waits for an admin; discarding it keeps what was current.
    held = stack.ok("GET", "/syncs/current")["held"]
    assert [(h["run_id"], h["source"]) for h in held] == [(cycle["run_id"], "ninjaone")]
    stack.ok("POST", f"/syncs/{cycle['run_id']}/ninjaone/discard")


def test_pax8_answering_no_companies_is_held_and_the_cycle_says_so(stack: StackProcess, faults: str) -> None:
    before, told = stored(stack), len(notifications(stack))
    empty = {"content": [], "page": {"size": 200, "totalElements": 0, "totalPages": 0, "number": 0}}
    fault = {"server": "pax8", "path": "/v1/companies", "page": 0, "malformed": True, "body": empty}
    assert http_json(faults, "POST", fault)[0] == 201
    cycle = stack.wait_for_cycle(start_cycle(stack)["id"])
    assert cycle["syncs"]["pax8"]["state"] == "held"
    assert cycle["syncs"]["pax8"]["reason"].startswith("Pax8 returned 0 companies; the current data has 40")
    before["rmm"] = stack.ok("GET", "/syncs/current")["rmm"]
    text = assert_stopped(stack, cycle, before, told, "held")
    assert "Pax8 was held (Pax8 returned 0 companies" in text
    stack.ok("POST", f"/syncs/{cycle['run_id']}/pax8/discard")


def test_a_manual_sync_during_a_cycle_leaves_it_one_snapshot_and_one_notification(
    stack: StackProcess, faults: str
) -> None:
    told = len(notifications(stack))
    # Slow NinjaOne down so that the person's sync is asked for while the cycle's is running.
    assert (
        http_json(faults, "POST", {"server": "ninjaone", "path": "/v2/devices", "delay": 1, "times": 1})[0]
        == 201
    )
    cycle = start_cycle(stack)
    manual = stack.ok("POST", "/syncs", {"sources": ["rmm"]})
    cycle = stack.wait_for_cycle(cycle["id"])
    assert stack.wait_for_run(manual["id"])["sources"]["ninjaone"]["status"] == "succeeded"
    assert cycle["status"] == "succeeded", cycle
    taken = [s for s in stack.ok("GET", "/snapshots?limit=100")["items"] if s.get("cycle_id") == cycle["id"]]
    assert [s["id"] for s in taken] == [cycle["snapshot_id"]] and taken[0]["trigger"] == "api"
    assert len(notifications(stack)) == told + 1  # the person's sync succeeded: nothing to tell of it
