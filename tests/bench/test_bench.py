"""`make bench` at a tiny size: every figure is printed and the syncs ask the upstreams for no more
than the protocol needs. A functional check only: no timing is asserted here (the figures are for
reading, see the README)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.bench import cold_start
from infra.bench.__main__ import main
from infra.bench.figures import VendorList
from infra.demo.dataset import build_dataset
from tests.template.offline_sam import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]

CLIENTS, DEVICES_PER_CLIENT = 30, 5


def test_the_benchmark_prints_every_figure_and_the_syncs_make_the_minimum_upstream_requests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--clients", str(CLIENTS), "--devices-per-client", str(DEVICES_PER_CLIENT), "--latency", "0"]
    environment = dict(os.environ)
    code = main([*args, "--snapshot-devices", "1000"])
    assert dict(os.environ) == environment  # nothing of the stand-in left behind for later tests
    out = capsys.readouterr().out
    assert code == 0, out

    for heading in (
        "Upstream requests",
        "Sync wall time",
        "Peak memory (RSS of the process)",
        "Snapshot: CPU",
        "AWS requests",
        "Stored in S3",
        "Targets",
        "Monthly cycle:",
        "Snapshot with each row's evidence, and without",
        "10 clients, 1,000 devices (made up)",
        "Each RMM read whole",
    ):
        assert heading in out
    figures = json.loads(out.strip().splitlines()[-1])
    # With evidence and without, at the bench's size and at the made-up one.
    for measured in (figures["snapshot_evidence"], figures["snapshot_at_scale"]):
        for side in ("on", "off"):
            assert measured[side]["cpu_s"] > 0 and measured[side]["peak_mb"] > 0
    assert figures["snapshot_at_scale"]["devices"] == 1000
    # Evidence is written (one object and its index per coverage); without it, none.
    assert figures["snapshot_at_scale"]["on"]["s3_writes"] > figures["snapshot_at_scale"]["off"]["s3_writes"]

    # The minimum worked out here from the data set itself: 1 token, then Pax8's pages of 200 and
    # NinjaOne's pages of 1,000 (what trueup asks for) plus the empty page that ends each list.
    data = build_dataset(CLIENTS, DEVICES_PER_CLIENT)
    pax8_minimum = 1 + sum(
        math.ceil(len(records) / 200)
        for records in (data.pax8_companies, data.pax8_products, data.pax8_subscriptions)
    )
    ninjaone_pages = sum(
        math.ceil(len(records) / 1000) + 1 for records in (data.ninjaone_organizations, data.ninjaone_devices)
    )
    ninjaone_minimum = 1 + 1 + ninjaone_pages  # and NinjaOne's device roles, in one request
    requests = figures["upstream_requests"]
    assert (requests["pax8"]["minimum"], requests["ninjaone"]["minimum"]) == (pax8_minimum, ninjaone_minimum)
    assert (requests["pax8"]["actual"], requests["ninjaone"]["actual"]) == (pax8_minimum, ninjaone_minimum)
    assert figures["targets"]["requests_within_1_05x"] is True
    # Each RMM adapter read whole at the same size, worked out here: NinjaOne as above; Datto RMM a
    # token, then pages of 250 of its sites and of its devices (its last page says it is the last).
    rmms = figures["rmm_adapters"]
    assert rmms["ninjaone"]["devices"] == len(data.ninjaone_devices)
    assert rmms["datto"]["devices"] == CLIENTS * DEVICES_PER_CLIENT
    assert rmms["ninjaone"]["requests"] == rmms["ninjaone"]["minimum"] == ninjaone_minimum
    datto_minimum = 1 + math.ceil(CLIENTS / 250) + math.ceil(CLIENTS * DEVICES_PER_CLIENT / 250)
    assert rmms["datto"]["requests"] == rmms["datto"]["minimum"] == datto_minimum
    assert all(entry["wall_s"] >= 0 for entry in rmms.values())

    assert figures["size"]["devices"] == len(data.ninjaone_devices)
    assert figures["size"]["subscriptions"] == len(data.pax8_subscriptions)
    assert figures["suggestions"]["organizations"] > 0  # the story's unmapped organizations
    for step in ("pax8_sync", "rmm_sync", "suggestions", "snapshot"):
        assert figures["memory_mb"][step]["peak"] >= figures["memory_mb"][step]["after_import"] > 0
        # Each step reads or writes the table and the bucket; a count of 0 would mean nothing was counted.
        calls = figures["aws_requests"][step]["by_operation"]
        assert any(op.startswith("dynamodb:") for op in calls) and any(op.startswith("s3:") for op in calls)
    assert figures["aws_requests"]["pax8_sync"]["by_operation"]["s3:PutObject"] == 2  # and its parties
    assert figures["snapshot"]["rows"] > 0 and figures["snapshot"]["cpu_s"] > 0
    assert all(size > 0 for size in figures["stored_bytes"].values())
    assert figures["syncs"]["pax8"]["records"] > 0 and figures["syncs"]["rmm"]["records"] > 0
    # The monthly cycle ran from the schedule to the notification, every step by its own function.
    cycle = figures["cycle"]
    assert cycle["schedule_to_notification_s"] > 0 and "reconciliation" in cycle["subject"]
    assert cycle["steps"][0]["function"] == "CycleFunction"
    assert {s["function"] for s in cycle["steps"]} == {
        "CycleFunction",
        "Pax8SyncFunction",
        "RmmSyncFunction",
        "SnapshotFunction",
        "ExportFunction",
        "NotifyFunction",
    }
    assert cycle["steps"][-1]["function"] == "NotifyFunction"


@pytest.mark.parametrize(
    ("records", "page_size", "ends_with_empty_page", "pages"),
    [
        (0, 200, False, 1),  # Pax8 answers page 0 even for an empty list
        (400, 200, False, 2),
        (401, 200, False, 3),
        (0, 1000, True, 1),  # NinjaOne: the empty page is the whole list
        (999, 1000, True, 2),
        (2000, 1000, True, 3),  # an exact multiple still needs the empty page to know it is over
    ],
)
def test_the_minimum_pages_follow_each_vendors_paging_protocol(
    records: int, page_size: int, ends_with_empty_page: bool, pages: int
) -> None:
    assert VendorList("list", "/list", records, page_size, ends_with_empty_page).minimum_pages == pages


def test_the_cold_start_benchmark_prints_each_functions_ratio_to_boto3(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cold_start.main(["--runs", "1", "--build-dir", str(built), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    figures = {f["name"]: f for f in json.loads(out.strip().splitlines()[-1])}
    functions = {
        n for n, r in load_template()["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    }
    assert set(figures) == {cold_start.REFERENCE, *cold_start.FLOORS} | functions
    assert figures[cold_start.REFERENCE]["ratio"] == 1.0
    for name in functions:
        assert figures[name]["median_ms"] > 0, name
        # Each ratio is printed with its verdict against the target.
        assert any(line.startswith(name) and ("met" in line) for line in out.splitlines()), name


def test_the_page_benchmark_prints_every_figure_beside_its_target() -> None:
    # A small size, so that the test takes seconds: the figures are printed, never asserted. Run as
    # `make bench-page` runs it, in a process of its own: Playwright's sync API refuses to start in a
    # process where another test's browser is running (pytest-xdist mixes files in a worker).
    command = [sys.executable, "-m", "infra.bench.page", "--sizes", "60", "--rounds", "2", "--json"]
    answer = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert answer.returncode == 0, answer.stderr[-3000:]
    out = answer.stdout
    figures = json.loads(out.strip().splitlines()[-1])["60"]
    assert len(figures["first_rows_ms"]) == 2 and all(v > 0 for v in figures["first_rows_ms"])
    assert figures["rows"] >= 40
    assert set(figures["actions_ms"]) >= {"sort by variance", "a card filter", "opening Unmapped clients"}
    assert all(len(values) == 2 and min(values) > 0 for values in figures["actions_ms"].values())
    for name in ("first rows after navigation", "sort by variance", "longest task blocking the page"):
        assert any(line.lstrip().startswith(name) and "target" in line for line in out.splitlines()), name
