"""The local stack as `make run` starts it (demo mode), driven over real HTTP.

One stack process serves the whole module (its first sync takes a few seconds); the last test
kills it with SIGKILL and starts it again on the same data directory.
"""

from __future__ import annotations

import signal
import time

from tests.snapshot_figures import figures
from tests.stack_process import http_json


def test_it_syncs_both_demo_sources_before_saying_it_is_ready(stack):
    assert any(line.startswith("demo upstreams: Pax8 on http://127.0.0.1:") for line in stack.lines)
    assert any(line.startswith("first sync: pax8 succeeded (") for line in stack.lines)
    assert any(line.startswith("first sync: ninjaone succeeded (") for line in stack.lines)
    assert stack.lines[-1] == f"trueup is ready on {stack.url}"
    described = stack.stack_file()
    assert described["url"] == stack.url and described["pid"] == stack.process.pid
    status, runs = stack.api("GET", "/syncs")
    assert status == 200
    [run] = runs["items"]
    assert {source: state["status"] for source, state in run["sources"].items()} == {
        "pax8": "succeeded",
        "ninjaone": "succeeded",
    }


def test_the_demo_upstreams_saw_every_list_span_at_least_two_pages(stack):
    stats = stack.demo_stats()
    pax8, ninjaone = stats["pax8"]["by_path"], stats["ninjaone"]["by_path"]
    for path in ("GET /v1/companies", "GET /v1/products", "GET /v1/subscriptions"):
        assert pax8.get(path, 0) >= 2, (path, pax8)
    for path in ("GET /v2/organizations", "GET /v2/devices"):
        assert ninjaone.get(path, 0) >= 2, (path, ninjaone)


def test_the_demo_upstreams_refuse_a_request_without_a_token(stack):
    demo = stack.stack_file()["demo"]
    assert http_json(demo["pax8_api_url"] + "/companies")[0] == 401
    assert http_json(demo["ninjaone_url"] + "/v2/organizations")[0] == 401
    stats = stack.demo_stats()
    assert stats["pax8"]["by_status"].get("401", 0) >= 1
    assert stats["ninjaone"]["by_status"].get("401", 0) >= 1


def test_a_429_from_pax8_is_retried_and_the_sync_succeeds(stack):
    control = stack.stack_file()["demo"]["control"]
    fault = {"server": "pax8", "path": "/v1/subscriptions", "status": 429, "retry_after": 0, "times": 1}
    assert http_json(control + "/faults", "POST", fault)[0] == 201
    before = stack.demo_stats()["pax8"]["by_status"].get("429", 0)

    status, run = stack.api("POST", "/syncs", {"sources": ["pax8"]})
    assert status == 202 and run["sources"]["pax8"]["status"] == "queued"
    finished = stack.wait_for_run(run["id"])

    assert finished["sources"]["pax8"]["status"] == "succeeded", finished
    assert stack.demo_stats()["pax8"]["by_status"].get("429", 0) == before + 1


def test_the_daily_sync_schedule_fires_on_request_and_syncs_every_source(stack):
    status, fired = stack.api("POST", "/_local/schedules/CycleFunction/DailySync")
    assert status == 200 and fired["started"] is True, fired
    finished = stack.wait_for_run(fired["run_id"])
    assert {s: v["status"] for s, v in finished["sources"].items()} == {
        "pax8": "succeeded",
        "ninjaone": "succeeded",
    }
    assert finished["requested_by"] is None  # the schedule


def test_post_snapshots_answers_201_with_every_status(stack):
    status, taken = stack.api("POST", "/snapshots")
    assert status == 201, taken
    assert {"under_licensed", "over_licensed", "matched", "unmapped"} <= set(taken["coverages"][0]["summary"])
    snapshot = stack.snapshot(taken["id"])
    statuses = {row["status"] for coverage in snapshot["coverages"] for row in coverage["rows"]}
    assert statuses == {"under_licensed", "over_licensed", "matched", "unmapped"}


def test_a_sync_failing_halfway_leaves_the_previous_data_current(stack):
    _, last = stack.api("POST", "/snapshots")
    control = stack.stack_file()["demo"]["control"]
    # Page 3 of the subscriptions (Pax8 counts pages from 0) fails for longer than the retries last.
    fault = {"server": "pax8", "path": "/v1/subscriptions", "page": 2, "status": 500}
    assert http_json(control + "/faults", "POST", fault)[0] == 201
    try:
        _, run = stack.api("POST", "/syncs", {"sources": ["pax8"]})
        finished = stack.wait_for_run(run["id"], deadline=100)
    finally:
        assert http_json(control + "/faults", "DELETE")[0] == 200
    failed = finished["sources"]["pax8"]
    assert failed["status"] == "failed" and failed["error"], finished
    # The failure is told on the notification topic, which the local stack prints and lists.
    end = time.monotonic() + 30
    while True:
        status, told = stack.api("GET", "/_local/notifications")
        assert status == 200
        mine = [n for n in told["notifications"] if run["id"] in n["text"]]
        if mine:
            break
        assert time.monotonic() < end, f"no notification of run {run['id']}: {told}"
        time.sleep(0.1)  # the notification function runs in the stack's background: poll it
    [notification] = mine
    assert notification["topic"] == "NotificationTopic"
    assert notification["subject"] == "trueup: the Pax8 sync failed"
    assert notification["text"].endswith(f"Open trueup: {stack.url}/")
    while "notification: trueup: the Pax8 sync failed" not in stack.lines:  # printed too
        assert time.monotonic() < end, "the notification was not printed"
        time.sleep(0.1)  # the stack's output is read on a thread of this test: wait for it
    _, runs = stack.api("GET", "/syncs")
    assert runs["items"][0]["id"] == run["id"]
    assert runs["items"][0]["sources"]["pax8"]["status"] == "failed"

    status, after = stack.api("POST", "/snapshots")
    assert status == 201
    assert after["id"] != last["id"]
    assert after["data_as_of"] == last["data_as_of"]
    assert figures(stack.snapshot(after["id"])["coverages"]) == figures(
        stack.snapshot(last["id"])["coverages"]
    )


def test_a_killed_stack_restarts_with_everything_it_acknowledged(stack):
    status, taken = stack.api("POST", "/snapshots")
    assert status == 201
    _, latest = stack.api("GET", "/snapshots/latest")
    _, runs = stack.api("GET", "/syncs")
    _, listing = stack.api("GET", "/snapshots")

    assert stack.stop(signal.SIGKILL) == -signal.SIGKILL
    stack.start()

    assert not any(line.startswith("first sync:") for line in stack.lines)  # nothing to sync again
    assert stack.api("GET", "/snapshots/latest") == (200, latest)
    assert latest["id"] == taken["id"]
    assert stack.api("GET", "/syncs") == (200, runs)
    assert stack.api("GET", "/snapshots") == (200, listing)
    status, again = stack.api("POST", "/snapshots")
    assert status == 201
    assert again["data_as_of"] == taken["data_as_of"]
    assert figures(stack.snapshot(again["id"])["coverages"]) == figures(
        stack.snapshot(taken["id"])["coverages"]
    )


def test_a_sync_cut_short_by_a_kill_shows_as_failed_after_the_restart(stack):
    control = stack.stack_file()["demo"]["control"]
    fault = {"server": "pax8", "path": "/v1/companies", "delay": 60, "times": 1}
    assert http_json(control + "/faults", "POST", fault)[0] == 201
    status, run = stack.api("POST", "/syncs", {"sources": ["pax8"]})
    assert status == 202
    deadline = time.monotonic() + 30
    while stack.api("GET", f"/syncs/{run['id']}")[1]["sources"]["pax8"]["status"] != "running":
        assert time.monotonic() < deadline, "the sync never started"
        time.sleep(0.05)  # the event reaches the sync function in the background: poll it

    stack.stop(signal.SIGKILL)
    stack.start()

    assert "marked 1 interrupted sync(s) as failed" in stack.lines
    status, after = stack.api("GET", f"/syncs/{run['id']}")
    assert status == 200
    assert after["sources"]["pax8"]["status"] == "failed"
    assert "interrupted" in after["sources"]["pax8"]["error"]


def test_a_sync_shown_as_succeeded_is_still_succeeded_after_a_kill_right_after(stack):
    # Nothing is shown before it is saved: the answer that first says "succeeded" waits for the save
    # of what the sync function wrote, even though the save after its event may not have run yet.
    status, run = stack.api("POST", "/syncs", {"sources": ["rmm"]})
    assert status == 202
    deadline = time.monotonic() + 60
    while True:
        status, seen = stack.api("GET", f"/syncs/{run['id']}")
        if seen["sources"]["ninjaone"]["status"] == "succeeded":
            break
        assert seen["sources"]["ninjaone"]["status"] in ("queued", "running"), seen
        assert time.monotonic() < deadline, "the sync never finished"

    stack.stop(signal.SIGKILL)
    stack.start()

    assert not any("interrupted sync" in line for line in stack.lines), stack.lines
    assert stack.api("GET", f"/syncs/{run['id']}") == (200, seen)
