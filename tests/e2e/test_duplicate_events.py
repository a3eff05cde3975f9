"""EventBridge delivers at least once: with every event delivered twice (TRUEUP_DUPLICATE_EVENTS=1),
a sync still runs once and a failure is still told once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.stack_process import StackProcess, http_json


def test_every_event_delivered_twice_still_syncs_once_and_tells_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUEUP_DUPLICATE_EVENTS", "1")
    stack = StackProcess(tmp_path / "data", tmp_path / "stack.log")
    stack.start()
    try:
        # The first sync ran (each "Sync Requested" twice): one generation per source, not two.
        _, runs = stack.api("GET", "/syncs")
        [run] = runs["items"]
        assert {s: state["status"] for s, state in run["sources"].items()} == {
            "pax8": "succeeded",
            "ninjaone": "succeeded",
        }
        # What the stack saved (before answering): the bucket's keys.
        saved = json.loads((stack.data_dir / "state.json").read_text())
        generations = [key for key in saved["buckets"]["DataBucket"] if key.endswith(".jsonl.gz")]
        assert len(generations) == 2, generations

        control = stack.stack_file()["demo"]["control"]
        fault = {"server": "pax8", "path": "/v1/subscriptions", "page": 2, "status": 500}
        assert http_json(control + "/faults", "POST", fault)[0] == 201
        _, failing = stack.api("POST", "/syncs", {"sources": ["pax8"]})
        finished = stack.wait_for_run(failing["id"], deadline=100)
        assert finished["sources"]["pax8"]["status"] == "failed"
        # Both deliveries of "Sync Failed" reached the notification function (the log says so)...
        end = time.monotonic() + 60
        delivered = "event Sync Failed -> NotifyFunction (again): ok"
        while delivered not in stack.log():
            assert time.monotonic() < end, "the second delivery never came"
            time.sleep(0.1)  # deliveries run in the stack's background: poll its log
        # ...and one notification went out.
        _, told = stack.api("GET", "/_local/notifications")
        assert [n["subject"] for n in told["notifications"]] == ["trueup: the Pax8 sync failed"]
    finally:
        assert stack.stop() == 0, stack.log()
