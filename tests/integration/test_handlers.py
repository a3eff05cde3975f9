"""Every handler under moto, with resources built from template.yaml and the demo upstreams on loopback.

The handlers are invoked the way Lambda invokes them: API Gateway payload 2.0 for HTTP routes,
EventBridge events as delivered by the template's rules, the schedule's input for snapshots.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS  # type: ignore[attr-defined]
from moto import mock_aws

from infra.demo.dataset import build_dataset
from infra.demo.faults import Fault
from infra.demo.servers import DEFAULT_NINJAONE_CREDENTIALS, DEFAULT_PAX8_CREDENTIALS, DemoUpstreams
from infra.local.stack import REPO_ROOT
from infra.local.template import Router, StackTemplate
from tests.aws_fixtures import (
    REGION,
    TEMPLATE,
    CapturedEvents,
    capture_notifications,
    create_resources,
    load_function,
)
from tests.integration.test_demo_reconciliation import ACRONIS, HUNTRESS, SENTINELONE
from tests.snapshot_figures import figures
from trueup import aws
from trueup.api import openapi, wire
from trueup.config import config
from trueup.errors import InvalidInput
from trueup.store import export_files

FUNCTIONS = {
    name: load_function(name)
    for name in ("api", "snapshot", "export", "pax8_sync", "rmm_sync", "suggestions", "notify", "cycle")
}
ROUTER = Router(StackTemplate.load(REPO_ROOT / "template.yaml").routes)
# What API Gateway's JWT authorizer hands the function for a person with each role (arrays flattened).
PEOPLE: dict[str, dict[str, str]] = {
    "admin": {"sub": "u-admin", "name": "Ada Admin", "roles": "[admin viewer]"},
    "viewer": {"sub": "u-viewer", "email": "vic@example.com", "roles": "[viewer]"},
    "nobody": {"sub": "u-nobody", "name": "No Role"},
}


@dataclass
class LambdaContext:
    function_name: str = "trueup-test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:trueup-test"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def as_documented(route: str, answer: Answer) -> None:
    """Every JSON answer is what /openapi.json says it is, field for field: the document's wire model
    (trueup.api.wire, whose models forbid unknown fields) must read it, and an error has a message."""
    if answer.status >= 400:
        assert isinstance(answer.body, dict) and isinstance(answer.body.get("message"), str), answer.body
        return
    if route == "GET /openapi.json":  # the description itself (its own tests read it)
        return
    method, path = route.split(" ", 1)
    document = json.loads(openapi.openapi_json())
    described = document["paths"][path][method.lower()]["responses"][str(answer.status)]
    reference = described["content"]["application/json"]["schema"]["$ref"]
    model = getattr(wire, reference.rsplit("/", 1)[1].split("-")[0])
    model.model_validate(answer.body)  # raises, naming each field that is not as described


class Stack:
    """The handlers, with EventBridge delivery done by hand through the template's own rule patterns."""

    def __init__(self, demo: DemoUpstreams, env: dict[str, str]) -> None:
        self.demo = demo
        self.env = env
        self.captured = CapturedEvents(env)
        self.notifications = capture_notifications(env["TRUEUP_TOPIC_ARN"])
        self.on_delivery: Callable[[str], None] = lambda name: None  # told each function delivered to

    def http(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        as_: str | None = "admin",
        raw_body: bytes | None = None,
    ) -> Answer:
        """One HTTP call as API Gateway makes it: the template's route; `as_` gives the claims."""
        match = ROUTER.match(method, path)
        if match is None:  # API Gateway answers itself; no function runs
            return Answer(404, {}, {"message": "Not Found"})
        function = match.route.function.removesuffix("Function").lower()
        raw_query = urlencode(query or {})
        authorizer = {} if as_ is None else {"authorizer": {"jwt": {"claims": PEOPLE[as_], "scopes": None}}}
        event = {
            "version": "2.0",
            "routeKey": match.route.key,
            "rawPath": path,
            "rawQueryString": raw_query,
            "headers": {"host": "localhost", **(headers or {})},
            "queryStringParameters": query or None,
            "pathParameters": dict(match.path_parameters) or None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": "localhost",
                "requestId": "r",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "pytest",
                },
                "routeKey": match.route.key,
                "stage": "$default",
                **authorizer,
                "time": "",
                "timeEpoch": 0,
            },
            "body": None if body is None else json.dumps(body),
            "isBase64Encoded": False,
        }
        if raw_body is not None:  # as API Gateway passes bytes it cannot read as text: base64
            try:
                event["body"] = raw_body.decode("utf-8")
            except UnicodeDecodeError:
                event |= {"body": base64.b64encode(raw_body).decode(), "isBase64Encoded": True}
        result = FUNCTIONS[function].handler(event, LambdaContext())
        raw = result.get("body") or ""
        if result["statusCode"] == 303:
            return Answer(303, result.get("headers", {}), None)
        if result.get("isBase64Encoded"):
            raw = gzip.decompress(base64.b64decode(raw)).decode()
        headers = result.get("headers", {})
        if "json" not in headers.get("Content-Type", "application/json"):
            return Answer(int(result["statusCode"]), headers, raw)  # the page and its files: text
        if int(result["statusCode"]) == 204:
            return Answer(204, headers, raw or None)  # as sent: a 204 has no body at all
        answer = Answer(int(result["statusCode"]), headers, json.loads(raw) if raw else None)
        as_documented(match.route.key, answer)
        return answer

    def whole(self, snapshot_id: str, page: int = 7, **query: str) -> dict[str, Any]:
        """A snapshot with every row of every coverage, read a page at a time as a client must."""
        first = self.http("GET", f"/snapshots/{snapshot_id}", query={"limit": str(page), **query})
        assert first.status == 200, first.body
        coverages = []
        for listed in first.body["coverages"]:
            rows: list[dict[str, Any]] = []
            cursor = ""
            while True:
                asked = {"coverage": listed["id"], "limit": str(page), "cursor": cursor, **query}
                answer = self.http("GET", f"/snapshots/{snapshot_id}", query=asked).body
                (mine,) = [c for c in answer["coverages"] if "rows" in c]
                assert mine["id"] == listed["id"] and len(mine["rows"]) <= page
                rows += mine["rows"]
                assert mine["rows_total"] >= len(rows)
                if answer["next_cursor"] is None:
                    assert mine["rows_total"] == len(rows)
                    break
                cursor = answer["next_cursor"]
            coverages.append(
                {**{k: v for k, v in listed.items() if k not in ("rows", "rows_total")}, "rows": rows}
            )
        return {**{k: v for k, v in first.body.items() if k != "next_cursor"}, "coverages": coverages}

    def deliver_events(self, times: int = 1) -> list[str]:
        """Hand each captured event to the function whose rule matched it (a function folder's name,
        e.g. "pax8_sync"), as EventBridge does, until no more come; `times`: each that often (it
        delivers at least once)."""
        delivered = []
        while routed := self.captured.routed():
            for name, event in routed:
                for _ in range(times):
                    self.on_delivery(name)
                    FUNCTIONS[name].handler(event, LambdaContext())
                    delivered.append(name)
        return delivered

    def sync(self, sources: list[str] | None = None) -> dict[str, Any]:
        answer = self.http("POST", "/syncs", {"sources": sources} if sources else None)
        assert answer.status == 202, answer.body
        self.deliver_events()
        run: dict[str, Any] = self.http("GET", f"/syncs/{answer.body['id']}").body
        return run


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "RMM_SOURCES": "ninjaone",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    export_files.reset_signing_client()
    DEFAULT_PROVIDERS.clear()
    with mock_aws(), DemoUpstreams(build_dataset(), pax8_max_page_size=25, ninjaone_page_cap=100) as demo:
        secrets = {
            "Pax8Secret": dict(zip(("client_id", "client_secret"), DEFAULT_PAX8_CREDENTIALS, strict=True)),
            "NinjaOneSecret": dict(
                zip(("client_id", "client_secret"), DEFAULT_NINJAONE_CREDENTIALS, strict=True)
            ),
        }
        env = create_resources(secrets)
        env |= {
            "PAX8_API_URL": demo.pax8_api_url,
            "PAX8_TOKEN_URL": demo.pax8_token_url,
            "NINJAONE_URL": demo.ninjaone_url,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield Stack(demo, env)
    aws.reset_clients()
    DEFAULT_PROVIDERS.clear()


def table(coverage: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["client"], r["devices"], r["licenses"], r["variance"], r["status"]) for r in coverage["rows"]]


def test_a_sync_request_publishes_one_event_per_source_and_both_syncs_succeed(stack: Stack) -> None:
    answer = stack.http("POST", "/syncs")
    assert answer.status == 202
    run = answer.body
    assert {s: v["status"] for s, v in run["sources"].items()} == {"pax8": "queued", "ninjaone": "queued"}
    assert sorted(stack.deliver_events()) == ["pax8_sync", "rmm_sync", "suggestions", "suggestions"]
    run = stack.http("GET", f"/syncs/{run['id']}").body
    pax8, rmm = run["sources"]["pax8"], run["sources"]["ninjaone"]
    assert (pax8["status"], rmm["status"]) == ("succeeded", "succeeded")
    # 40 companies + 249 products + 73 readable subscriptions; 40 organizations + 588 readable devices
    assert (pax8["records"], pax8["skipped"], rmm["records"], rmm["skipped"]) == (362, 1, 628, 1)
    assert "quantity 'ten' is not a number" in pax8["skipped_records"][0]["reason"]
    assert pax8["started_at"] <= pax8["finished_at"] and pax8["error"] is None


def test_every_event_published_is_held_to_its_schema(stack: Stack) -> None:
    import jsonschema

    stack.sync()  # every event of a sync passed (captured() checks each one)
    boto3.client("events", region_name=REGION).put_events(
        Entries=[
            {
                "EventBusName": stack.env["TRUEUP_EVENT_BUS"],
                "Source": "trueup",
                "DetailType": "Sync Requested",
                "Detail": json.dumps({"version": 1, "run_id": "r1", "source": "psa"}),
            }
        ]
    )
    with pytest.raises(jsonschema.ValidationError, match="'psa' is not one of"):
        stack.captured()


def test_the_daily_schedule_syncs_every_source_once_per_firing(stack: Stack) -> None:
    firing = {"trigger": "daily-sync", "scheduled_time": "2026-12-02T05:00:00Z"}
    first = FUNCTIONS["cycle"].handler(firing, LambdaContext())
    assert first["started"] is True and first["scheduled_time"] == "2026-12-02T05:00:00Z"
    # Scheduler delivers at least once: the same firing again starts nothing.
    again = FUNCTIONS["cycle"].handler(firing, LambdaContext())
    assert again == {**first, "started": False}
    assert sorted(stack.deliver_events()) == ["pax8_sync", "rmm_sync", "suggestions", "suggestions"]
    [run] = stack.http("GET", "/syncs").body["items"]
    assert run["id"] == first["run_id"] and run["requested_by"] is None  # the schedule, not a person
    assert {s: v["status"] for s, v in run["sources"].items()} == {
        "pax8": "succeeded",
        "ninjaone": "succeeded",
    }
    # The next day's firing is another run.
    tomorrow = FUNCTIONS["cycle"].handler(
        {**firing, "scheduled_time": "2026-12-03T05:00:00Z"}, LambdaContext()
    )
    assert tomorrow["started"] is True and tomorrow["run_id"] != first["run_id"]
    with pytest.raises(InvalidInput, match="scheduled_time must be an ISO 8601 time"):
        FUNCTIONS["cycle"].handler({**firing, "scheduled_time": "tomorrow"}, LambdaContext())
    with pytest.raises(ValueError, match="unrecognised event"):
        FUNCTIONS["cycle"].handler({"trigger": "weekly"}, LambdaContext())


def test_a_sync_tells_the_cycles_waiting_on_it_including_those_of_runs_that_joined_it(stack: Stack) -> None:
    from trueup.services.sync_runs import request_sync
    from trueup.store.table import TrueupTable

    now = datetime.now(UTC)
    manual = request_sync(["rmm"], now)  # a person's sync, running when the cycle asks for its own
    cycle_run = request_sync(["rmm"], now, cycle_id="c1")
    assert stack.http("GET", f"/syncs/{cycle_run['id']}").body["cycle_id"] == "c1"
    requested = {e["detail"]["run_id"]: e for e in stack.captured() if e["detail-type"] == "Sync Requested"}
    table = TrueupTable()
    table.acquire_sync_lease(
        "ninjaone", manual["id"], now.isoformat(), (now + timedelta(minutes=5)).isoformat()
    )
    FUNCTIONS["rmm_sync"].handler(requested[cycle_run["id"]], LambdaContext())  # joins the manual one
    table.release_sync_lease("ninjaone", manual["id"])
    FUNCTIONS["rmm_sync"].handler(requested[manual["id"]], LambdaContext())
    (completed,) = [e["detail"] for e in stack.captured() if e["detail-type"] == "Sync Completed"]
    assert completed["run_id"] == manual["id"] and completed["cycle_ids"] == ["c1"]
    # A sync no cycle waits on says nothing of cycles (the field is absent, as rules match on it).
    stack.sync(["pax8"])
    plain = stack.http("GET", "/syncs").body["items"][0]
    assert plain["cycle_id"] is None


@pytest.mark.parametrize("times", [1, 2], ids=["delivered once", "every event delivered twice"])
def test_a_monthly_cycle_syncs_then_snapshots_exports_and_tells_once(stack: Stack, times: int) -> None:
    firing = {"trigger": "monthly", "scheduled_time": "2026-12-01T06:00:00Z"}
    started = FUNCTIONS["cycle"].handler(firing, LambdaContext())
    assert started["cycle_id"] == "20261201T060000Z-monthly" and started["started"] is True
    # The schedule firing twice is one cycle.
    assert FUNCTIONS["cycle"].handler(firing, LambdaContext()) == {**started, "started": False}
    running = stack.http("GET", f"/cycles/{started['cycle_id']}").body
    assert running["status"] == "running" and running["run_id"] == started["run_id"]
    assert {s: v["state"] for s, v in running["syncs"].items()} == {"pax8": "running", "ninjaone": "running"}
    assert running["snapshot"]["state"] == "queued"

    delivered = stack.deliver_events(times)
    assert sorted(set(delivered)) == [
        "cycle",
        "export",
        "notify",
        "pax8_sync",
        "rmm_sync",
        "snapshot",
        "suggestions",
    ]
    cycle = stack.http("GET", f"/cycles/{started['cycle_id']}").body
    assert cycle["status"] == "succeeded" and cycle["finished_at"] is not None
    assert {s: v["state"] for s, v in cycle["syncs"].items()} == {
        "pax8": "succeeded",
        "ninjaone": "succeeded",
    }
    assert [cycle[step]["state"] for step in ("snapshot", "exports", "notification")] == ["succeeded"] * 3
    # One snapshot, of the cycle, by the schedule.
    [snapshot] = stack.http("GET", "/snapshots").body["items"]
    assert snapshot["id"] == cycle["snapshot_id"]
    assert snapshot["trigger"] == "schedule" and snapshot["cycle_id"] == cycle["id"]
    # One CSV per coverage, one with every coverage and the audit log's entries, in the bucket.
    coverages = [c["id"] for c in snapshot["coverages"]]
    assert [k.rsplit("/", 1)[1] for k in cycle["export_keys"]] == [f"{c}.csv" for c in coverages] + [
        "all_coverages.csv",
        "audit.csv",
    ]
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=stack.env["TRUEUP_BUCKET"], Prefix="exports/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(cycle["export_keys"])
    every = s3.get_object(Bucket=stack.env["TRUEUP_BUCKET"], Key=cycle["export_keys"][-2])["Body"].read()
    lines = every.decode("utf-8-sig").splitlines()
    statuses = ("under_licensed", "over_licensed", "matched", "unmapped")
    assert len(lines) == 1 + sum(c["summary"][s] for c in snapshot["coverages"] for s in statuses)
    from trueup.reports.csv_report import HEADER

    where = HEADER.index("Coverage")
    assert {line.split(",")[where] for line in lines[1:]} >= {c["name"] for c in snapshot["coverages"]}
    # One notification, in plain words.
    [told] = stack.notifications()
    assert told["subject"].startswith("trueup: 2026-") and "under-licensed" in told["subject"]
    for coverage in snapshot["coverages"]:
        counts = coverage["summary"]
        assert f"- {coverage['name']}: {counts['under_licensed']} under-licensed" in told["text"]
        assert f"{counts['matched']} matched, {counts['unmapped']} unmapped" in told["text"]
    # What the gaps cost, as the demo's Huntress coverage adds them up (test_demo_reconciliation).
    assert (
        "- Huntress Managed EDR: 8 under-licensed ($131.46 a month not billed), "
        "7 over-licensed ($111.26 a month overpaid), 12 matched, 8 unmapped"
    ) in told["text"]
    assert (
        "largest under-licensed gaps" in told["text"]
        and "Syncs: Pax8 succeeded; NinjaOne succeeded." in told["text"]
    )
    assert told["text"].endswith("Open trueup's Reconciliation page.")  # where to look (the URL, deployed)


def test_a_monthly_cycle_whose_sync_is_held_skips_its_snapshot_and_says_why(stack: Stack) -> None:
    stack.sync()
    stack.notifications()
    ids = sorted(d["id"] for d in build_dataset().ninjaone_devices)
    stack.demo.faults.add(
        Fault(server="ninjaone", path="/v2/devices", after=ids[199], malformed=True, body=[])
    )
    started = FUNCTIONS["cycle"].handler(
        {"trigger": "monthly", "scheduled_time": "2027-01-01T06:00:00Z"}, LambdaContext()
    )
    delivered = stack.deliver_events()
    assert sorted(delivered) == ["cycle", "cycle", "notify", "pax8_sync", "rmm_sync", "suggestions"]
    cycle = stack.http("GET", f"/cycles/{started['cycle_id']}").body
    assert cycle["status"] == "held"
    assert cycle["syncs"]["ninjaone"]["state"] == "held" and cycle["syncs"]["pax8"]["state"] == "succeeded"
    why = (
        "not taken from older data: the NinjaOne sync was held: NinjaOne returned 200 devices; "
        "the current data has 588"
    )
    assert cycle["snapshot"]["state"] == "skipped" and cycle["snapshot"]["reason"] == why
    assert cycle["exports"]["state"] == "skipped" and cycle["notification"]["state"] == "succeeded"
    assert stack.http("GET", "/snapshots").body["items"] == []
    # Told once, by the cycle (not once more for the held sync).
    [told] = stack.notifications()
    assert told["subject"].startswith("trueup: the monthly cycle stopped: not taken from older data")
    assert (
        f"Why: {why}." in told["text"] and "NinjaOne was held (NinjaOne returned 200 devices" in told["text"]
    )


def test_cycles_over_http_start_with_202_and_list_newest_first(stack: Stack) -> None:
    first = stack.http("POST", "/cycles")
    assert first.status == 202 and first.body["trigger"] == "api" and first.body["status"] == "running"
    assert first.body["run_id"] and first.body["syncs"]["pax8"]["state"] == "running"
    second = stack.http("POST", "/snapshots", {"sync": True})
    assert second.status == 202 and second.body["id"] != first.body["id"]
    listed = stack.http("GET", "/cycles").body["items"]
    assert [c["id"] for c in listed] == [second.body["id"], first.body["id"]]
    assert stack.http("GET", "/cycles", query={"limit": "1"}).body["items"] == listed[:1]
    # An Idempotency-Key makes a retried request the same cycle.
    keyed = stack.http("POST", "/cycles", headers={"Idempotency-Key": "cycle-1"})
    assert (
        stack.http("POST", "/cycles", headers={"Idempotency-Key": "cycle-1"}).body["id"] == keyed.body["id"]
    )
    stack.deliver_events()
    done = stack.http("GET", f"/cycles/{first.body['id']}").body
    assert done["status"] == "succeeded"
    snapshot = stack.http("GET", f"/snapshots/{done['snapshot_id']}").body
    assert snapshot["trigger"] == "api" and snapshot["cycle_id"] == done["id"]
    # What is refused, and why.
    assert stack.http("POST", "/cycles", as_="viewer").status == 403
    assert stack.http("POST", "/snapshots", {"sync": True}, as_="viewer").status == 403
    missing = stack.http("GET", "/cycles/nope")
    assert missing.status == 404 and "no cycle 'nope'" in missing.body["message"]
    refusals: list[tuple[Any, int, str]] = [
        ({"sync": "yes"}, 422, "body.sync: Input should be a valid boolean"),
        ({"sync": True, "other": 1}, 422, "body.other: Extra inputs are not permitted"),
        ([1], 400, 'the body must be a JSON object such as {"sync": true}, or nothing'),
    ]
    for body, status, message in refusals:
        refused = stack.http("POST", "/snapshots", body)
        assert (refused.status, message in refused.body["message"]) == (status, True), refused.body
    assert stack.http("GET", "/cycles").body["items"][0]["id"] == keyed.body["id"]  # none started
    # No body, or {"sync": false}: the snapshot of the current data, now.
    assert stack.http("POST", "/snapshots", {"sync": False}).status == 201


def test_a_snapshot_too_large_to_wait_for_answers_202_and_is_taken_in_a_cycle_of_its_own(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.sync()
    stack.notifications()
    from trueup.store.table import TrueupTable

    rmm = TrueupTable().get_current("ninjaone")
    assert rmm is not None
    devices = rmm["counts"]["device"]
    monkeypatch.setenv("TRUEUP_SNAPSHOT_WAIT_DEVICES", str(devices - 1))
    config.cache_clear()
    answer = stack.http("POST", "/snapshots")
    assert answer.status == 202, answer.body
    cycle = answer.body
    assert cycle["syncs"] == {} and cycle["snapshot"]["state"] == "running" and cycle["status"] == "running"
    assert cycle["started_by"] == {"subject": "u-admin", "name": "Ada Admin"}
    assert stack.deliver_events() == ["snapshot", "export", "notify"]  # no sync: the snapshot at once
    done = stack.http("GET", f"/cycles/{cycle['id']}").body
    assert done["status"] == "succeeded" and done["snapshot_id"]
    snapshot = stack.http("GET", f"/snapshots/{done['snapshot_id']}").body
    assert snapshot["trigger"] == "api" and snapshot["taken_by"] == {
        "subject": "u-admin",
        "name": "Ada Admin",
    }
    first_row = snapshot["coverages"][0]["rows"][0]
    key = first_row["pax8_company_id"] or first_row["rmm_organization_ids"][0]
    evidence = stack.http("GET", f"/snapshots/{done['snapshot_id']}/evidence", query={"client": key})
    assert evidence.status == 200 and evidence.body["devices_counted"] == (first_row["devices"] or 0)
    [told] = stack.notifications()
    assert "Syncs: none (a snapshot of the data already current)." in told["text"]
    # At the limit, the snapshot is answered at once.
    monkeypatch.setenv("TRUEUP_SNAPSHOT_WAIT_DEVICES", str(devices))
    config.cache_clear()
    assert stack.http("POST", "/snapshots").status == 201


def test_a_cycle_whose_sync_never_reports_is_stopped_and_told_after_the_wait(stack: Stack) -> None:
    from trueup.services.cycles import STALLED_AFTER, close_stalled_cycles

    stack.sync()
    stack.notifications()
    started = FUNCTIONS["cycle"].handler(
        {"trigger": "monthly", "scheduled_time": "2027-01-01T06:00:00Z"}, LambdaContext()
    )
    # The sync functions crash before they report (their events are dropped here).
    assert {name for name, _ in stack.captured.routed()} == {"pax8_sync", "rmm_sync"}
    assert close_stalled_cycles(datetime.now(UTC)) == []  # within the wait: still running
    assert close_stalled_cycles(datetime.now(UTC) + STALLED_AFTER) == [started["cycle_id"]]
    assert stack.deliver_events() == ["notify"]
    cycle = stack.http("GET", f"/cycles/{started['cycle_id']}").body
    assert cycle["status"] == "failed"
    assert {s["state"] for s in cycle["syncs"].values()} == {"failed"}
    assert "crashed or timed out" in cycle["snapshot"]["reason"]
    [told] = stack.notifications()
    assert "crashed or timed out" in told["text"] and told["subject"].startswith(
        "trueup: the monthly cycle stopped"
    )


def test_a_cycles_run_joining_a_sync_as_it_finishes_still_hears_its_outcome(stack: Stack) -> None:
    from trueup.services.sync_runs import request_sync
    from trueup.store.table import TrueupTable

    now = datetime.now(UTC)
    manual = stack.sync(["rmm"])
    # The window between the sync's outcome and the release of its lease: a cycle's run joins it.
    table = TrueupTable()
    table.acquire_sync_lease(
        "ninjaone", manual["id"], now.isoformat(), (now + timedelta(minutes=5)).isoformat()
    )
    cycle_run = request_sync(["rmm"], now, cycle_id="c-late")
    [requested] = [e for e in stack.captured() if e["detail-type"] == "Sync Requested"]
    FUNCTIONS["rmm_sync"].handler(requested, LambdaContext())
    told = [e["detail"] for e in stack.captured() if e["detail-type"] == "Sync Completed"]
    assert told == [
        {
            **told[0],
            "run_id": manual["id"],
            "source": "ninjaone",
            "generation": manual["sources"]["ninjaone"]["generation"],
            "cycle_ids": ["c-late"],
        }
    ]
    assert stack.http("GET", f"/syncs/{cycle_run['id']}").body["sources"]["ninjaone"]["status"] == "succeeded"


def test_one_source_can_be_synced_alone_and_bad_sources_are_refused(stack: Stack) -> None:
    run = stack.sync(["rmm"])
    assert list(run["sources"]) == ["ninjaone"] and run["sources"]["ninjaone"]["status"] == "succeeded"
    bodies: list[dict[str, Any]] = [
        {"sources": ["pax8", "psa"]},
        {"sources": []},
        {"other": 1},
    ]
    for body in bodies:
        answer = stack.http("POST", "/syncs", body)
        assert answer.status in (400, 422), body
        assert "sources" in answer.body["message"] or "other" in answer.body["message"]
    assert stack.http("GET", "/syncs/nope").status == 404
    # A source named twice is synced once.
    twice = stack.http("POST", "/syncs", {"sources": ["rmm", "rmm"]})
    assert twice.status == 202 and list(twice.body["sources"]) == ["ninjaone"]


def test_current_data_says_when_each_source_was_last_synced(stack: Stack) -> None:
    names = {"pax8": "Pax8", "ninjaone": "NinjaOne"}
    assert stack.http("GET", "/syncs/current").body == {
        "pax8": None,
        "rmm": {"ninjaone": None},
        "names": names,
        "held": [],
    }
    run = stack.sync(["pax8"])
    current = stack.http("GET", "/syncs/current").body
    assert current["rmm"] == {"ninjaone": None}
    assert current["pax8"]["run_id"] == run["id"] and current["pax8"]["records"] == 362
    assert current["pax8"]["synced_at"] == run["sources"]["pax8"]["started_at"]


def test_runs_are_listed_newest_first(stack: Stack) -> None:
    first = stack.sync(["rmm"])
    second = stack.sync(["pax8"])
    listed = stack.http("GET", "/syncs", query={"limit": "5"}).body["items"]
    assert [r["id"] for r in listed] == [second["id"], first["id"]]


def test_a_snapshot_before_any_sync_is_refused_naming_the_missing_source(stack: Stack) -> None:
    answer = stack.http("POST", "/snapshots")
    assert answer.status == 409
    assert (
        answer.body["message"]
        == "no Pax8 and NinjaOne data yet: sync first (POST /syncs), then take the snapshot"
    )
    stack.sync(["pax8"])
    assert stack.http("POST", "/snapshots").body["message"].startswith("no NinjaOne data yet")
    assert stack.http("GET", "/snapshots/latest").status == 404


def test_a_snapshot_holds_the_hand_worked_rows_and_reads_back_unchanged(stack: Stack) -> None:
    stack.sync()
    answer = stack.http("POST", "/snapshots")
    assert answer.status == 201
    taken = answer.body
    assert taken["trigger"] == "api" and set(taken["data_as_of"]) == {"pax8", "rmm", "rmm_sources"}
    assert not any("rows" in c for c in taken["coverages"])  # the answer summarizes; rows are paged
    snap = stack.whole(taken["id"])
    assert snap["settings"]["stale_after_days"] == 30
    tables = [table(c) for c in snap["coverages"]]
    assert tables == [HUNTRESS, ACRONIS, SENTINELONE]
    assert snap["coverages"][0]["summary"] == {
        "under_licensed": 8,
        "over_licensed": 7,
        "matched": 12,
        "unmapped": 8,
        # Money as decimal text in the currency's minor unit (tests/integration/test_demo_reconciliation).
        "money": {
            "USD": {
                "under_licensed_price_gap": "131.46",
                "under_licensed_cost_gap": "90.93",
                "over_licensed_price_gap": "-111.26",
                "over_licensed_cost_gap": "-76.84",
            }
        },
        "changes": {"new": 0, "closed": 0, "changed": 0, "same": 0, "first": 35},  # the first snapshot
        "set_aside": {},  # no decision sets a row aside (tests/unit/test_review.py)
        "set_aside_money": {},
    }
    redwood = next(r for r in snap["coverages"][0]["rows"] if r["client"] == "Redwood Financial Advisors")
    assert redwood["amounts"] == {
        "currency": "USD",
        "unit_price": "6.50",
        "unit_cost": "4.50",
        "monthly_price_gap": "39.00",
        "monthly_cost_gap": "27.00",
    }
    assert [c["summary"] for c in snap["coverages"]] == [c["summary"] for c in taken["coverages"]]
    assert stack.whole("latest") == snap
    # Unpaged, the first coverage's rows come whole (fewer than the default 500).
    latest = stack.http("GET", "/snapshots/latest").body
    assert latest["next_cursor"] is None and table(latest["coverages"][0]) == HUNTRESS


def test_one_coverage_and_some_statuses_can_be_asked_for(stack: Stack) -> None:
    stack.sync()
    snap = stack.http("POST", "/snapshots").body
    one = stack.http(
        "GET",
        f"/snapshots/{snap['id']}",
        query={"coverage": "sentinelone-control", "status": "under_licensed,over_licensed"},
    ).body
    assert [c["id"] for c in one["coverages"]] == [
        "huntress-managed-edr",
        "acronis-cyber-protect-cloud",
        "sentinelone-control",
    ]  # every coverage with its summary; rows only in the one asked for
    assert [table(c) for c in one["coverages"] if "rows" in c] == [
        [
            ("Northwind Traders", 47, 40, 7, "under_licensed"),
            ("Fjord Analytics GmbH", 11, 12, -1, "over_licensed"),
        ]
    ]
    bad = stack.http("GET", "/snapshots/latest", query={"status": "green"})
    assert bad.status == 400 and "unknown status green" in bad.body["message"]
    missing = stack.http("GET", "/snapshots/latest", query={"coverage": "nope"})
    assert missing.status == 404 and "huntress-managed-edr" in missing.body["message"]
    assert stack.http("GET", "/snapshots/20200101T000000000Z-000000").status == 404


def test_large_responses_are_gzipped_when_the_client_accepts_it(stack: Stack) -> None:
    stack.sync()
    stack.http("POST", "/snapshots")
    answer = stack.http("GET", "/snapshots/latest", headers={"accept-encoding": "gzip"})
    assert answer.headers.get("Content-Encoding") == "gzip"
    assert table(answer.body["coverages"][0]) == HUNTRESS


def test_snapshots_are_listed_newest_first_with_a_cursor_and_without_rows(stack: Stack) -> None:
    stack.sync()
    ids = [stack.http("POST", "/snapshots").body["id"] for _ in range(3)]
    page = stack.http("GET", "/snapshots", query={"limit": "2"}).body
    assert [s["id"] for s in page["items"]] == [ids[2], ids[1]]
    assert all("rows" not in c for s in page["items"] for c in s["coverages"])
    rest = stack.http("GET", "/snapshots", query={"limit": "2", "cursor": page["next_cursor"]}).body
    assert [s["id"] for s in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert stack.http("GET", "/snapshots", query={"cursor": "%%%"}).status == 400  # not a snapshot id


def test_a_sync_failing_halfway_leaves_the_previous_data_current(stack: Stack) -> None:
    stack.sync()
    before = stack.http("POST", "/snapshots").body
    stack.demo.faults.add(Fault(server="pax8", path="/v1/subscriptions", page=2, status=500))
    run = stack.sync(["pax8"])
    state = run["sources"]["pax8"]
    assert state["status"] == "failed"
    assert "GET /subscriptions page 2: HTTP 500 after 5 attempts" in state["error"]
    assert state["finished_at"] and state["generation"] is None
    listed = stack.http("GET", "/syncs").body["items"][0]
    assert listed["id"] == run["id"] and listed["sources"]["pax8"]["status"] == "failed"
    after = stack.http("POST", "/snapshots").body
    assert figures(after["coverages"]) == figures(before["coverages"])
    assert after["data_as_of"] == before["data_as_of"]


def test_a_device_list_ended_early_is_held_not_made_current_until_an_admin_accepts_it(stack: Stack) -> None:
    stack.sync()
    before = stack.http("POST", "/snapshots").body
    current = stack.http("GET", "/syncs/current").body
    assert current["held"] == []
    # NinjaOne ends its device list after two pages of 100: its third page is empty, as a last one is.
    ids = sorted(d["id"] for d in build_dataset().ninjaone_devices)
    stack.demo.faults.add(
        Fault(server="ninjaone", path="/v2/devices", after=ids[199], malformed=True, body=[])
    )
    run = stack.sync(["rmm"])
    state = run["sources"]["ninjaone"]
    assert state["status"] == "held" and state["generation"] and state["records"] == 240
    assert state["held_reason"] == "NinjaOne returned 200 devices; the current data has 588"
    assert "held_pointer" not in state  # the table's business
    # Nothing changed: the current data and the next snapshot are as before.
    now = stack.http("GET", "/syncs/current").body
    assert now["rmm"] == current["rmm"]
    assert now["held"] == [
        {
            "run_id": run["id"],
            "source": "ninjaone",
            "finished_at": state["finished_at"],
            "records": 240,
            "reason": state["held_reason"],
        }
    ]
    again = stack.http("POST", "/snapshots").body
    assert figures(again["coverages"]) == figures(before["coverages"])
    assert again["data_as_of"] == before["data_as_of"]

    # Only an admin decides; a viewer is refused, and nothing else can be accepted.
    viewer = stack.http("POST", f"/syncs/{run['id']}/ninjaone/accept", as_="viewer")
    assert viewer.status == 403 and "Accepting a held sync" in viewer.body["message"]
    assert stack.http("POST", f"/syncs/{run['id']}/pax8/accept").status == 404  # not synced by this run
    accepted = stack.http("POST", f"/syncs/{run['id']}/ninjaone/accept")
    assert accepted.status == 200, accepted.body
    decided = accepted.body["sources"]["ninjaone"]
    assert decided["status"] == "succeeded" and decided["held_reason"] == state["held_reason"]
    assert decided["decided_by"] == {"subject": "u-admin", "name": "Ada Admin"} and decided["decided_at"]
    assert stack.http("GET", "/syncs/current").body["rmm"]["ninjaone"]["generation"] == state["generation"]
    assert stack.http("GET", "/syncs/current").body["held"] == []
    [entry] = stack.http("GET", "/audit", query={"kind": "sync"}).body["items"]
    assert (entry["what"], entry["by"]["name"]) == (
        f"held NinjaOne sync of run {run['id']}: accepted",
        "Ada Admin",
    )
    assert entry["before"]["held_because"] == state["held_reason"]
    assert entry["after"]["current_generation"] == state["generation"]
    twice = stack.http("POST", f"/syncs/{run['id']}/ninjaone/discard")
    assert twice.status == 409 and "succeeded, not held: nothing to discard" in twice.body["message"]
    assert stack.deliver_events() == ["suggestions"]  # accepted data is announced as synced


def test_a_failed_or_held_sync_is_told_once_on_the_notification_topic(stack: Stack) -> None:
    stack.sync()
    assert stack.notifications() == []  # nothing to tell when all goes well
    stack.demo.faults.add(Fault(server="pax8", path="/v1/subscriptions", page=2, status=500))
    failed = stack.sync(["pax8"])
    error = failed["sources"]["pax8"]["error"]
    assert stack.notifications() == [
        {
            "subject": "trueup: the Pax8 sync failed",
            "text": f"The Pax8 sync of run {failed['id']} failed: {error}\n\n"
            "The data synced before stays in use; snapshots use it until a sync succeeds.\n\n"
            "Open trueup's Reconciliation page.",
        }
    ]
    stack.demo.faults.clear()
    ids = sorted(d["id"] for d in build_dataset().ninjaone_devices)
    stack.demo.faults.add(
        Fault(server="ninjaone", path="/v2/devices", after=ids[199], malformed=True, body=[])
    )
    held = stack.sync(["rmm"])
    (told,) = stack.notifications()
    assert told["subject"] == "trueup: the NinjaOne sync was held"
    assert told["text"].startswith(
        f"The NinjaOne sync of run {held['id']} was held: "
        "NinjaOne returned 200 devices; the current data has 588."
    )
    assert "use the new data or discard it" in told["text"]
    # EventBridge delivers at least once: the same event again tells nobody twice.
    from trueup.events import SyncHeld

    again = {
        "version": "0",
        "id": "repeat",
        "detail-type": "Sync Held",
        "source": "trueup",
        "account": "123456789012",
        "time": "2026-12-01T06:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": SyncHeld(
            run_id=held["id"],
            source="ninjaone",
            generation=held["sources"]["ninjaone"]["generation"],
            reason=held["sources"]["ninjaone"]["held_reason"],
        ).model_dump(mode="json"),
    }
    FUNCTIONS["notify"].handler(again, LambdaContext())
    assert stack.notifications() == []


def test_companies_answered_empty_are_held_and_discarding_keeps_the_current_data(stack: Stack) -> None:
    stack.sync()
    current = stack.http("GET", "/syncs/current").body
    empty = {"content": [], "page": {"size": 25, "totalElements": 0, "totalPages": 0, "number": 0}}
    stack.demo.faults.add(Fault(server="pax8", path="/v1/companies", page=0, malformed=True, body=empty))
    run = stack.sync(["pax8"])
    state = run["sources"]["pax8"]
    assert state["status"] == "held"
    assert state["held_reason"].startswith("Pax8 returned 0 companies; the current data has 40")
    discarded = stack.http("POST", f"/syncs/{run['id']}/pax8/discard")
    assert discarded.status == 200 and discarded.body["sources"]["pax8"]["status"] == "discarded"
    [entry] = stack.http("GET", "/audit", query={"kind": "sync"}).body["items"]
    assert (
        entry["what"] == f"held Pax8 sync of run {run['id']}: discarded"
        and entry["by"]["name"] == "Ada Admin"
    )
    after = stack.http("GET", "/syncs/current").body
    assert after["pax8"] == current["pax8"] and after["held"] == []
    # The discarded data is tagged to expire; the current data is not.
    s3 = boto3.client("s3", region_name=REGION)
    from trueup.store.generations import generation_key

    key = generation_key("pax8", state["generation"])
    assert s3.get_object_tagging(Bucket=stack.env["TRUEUP_BUCKET"], Key=key)["TagSet"] == [
        {"Key": "trueup-superseded", "Value": "true"}
    ]
    assert stack.http("POST", f"/syncs/{run['id']}/pax8/accept").status == 409


def test_held_data_older_than_the_current_data_cannot_be_accepted(stack: Stack) -> None:
    stack.sync()
    ids = sorted(d["id"] for d in build_dataset().ninjaone_devices)
    stack.demo.faults.add(
        Fault(server="ninjaone", path="/v2/devices", after=ids[99], malformed=True, body=[], times=1)
    )
    held = stack.sync(["rmm"])
    assert held["sources"]["ninjaone"]["status"] == "held"
    assert (
        stack.sync(["ninjaone"])["sources"]["ninjaone"]["status"] == "succeeded"
    )  # the vendor is right again
    late = stack.http("POST", f"/syncs/{held['id']}/ninjaone/accept")
    assert late.status == 409 and "a newer NinjaOne sync has made its data current" in late.body["message"]
    # A setting decides how much may go: with 100 %, only an empty list is held.
    settings = stack.http("GET", "/settings").body
    assert stack.http("PUT", "/settings", {**settings, "hold_shrink_percent": 100}).status == 200
    stack.demo.faults.add(
        Fault(server="ninjaone", path="/v2/devices", after=ids[99], malformed=True, body=[], times=1)
    )
    assert stack.sync(["ninjaone"])["sources"]["ninjaone"]["status"] == "succeeded"


def test_a_snapshot_of_data_older_than_the_settings_allow_says_so(stack: Stack) -> None:
    from trueup.store.table import TrueupTable

    stack.sync()
    fresh = stack.http("POST", "/snapshots").body
    assert not any("data was" in w for w in fresh["warnings"])
    # The RMM data as if synced three days ago (the table's pointer, as a sync three days ago left it).
    table = TrueupTable()
    pointer = table.get_current("ninjaone")
    assert pointer is not None
    synced = datetime.now(UTC) - timedelta(days=3, minutes=5)
    pointer["synced_at"] = synced.isoformat().replace("+00:00", "Z")
    table._db.put_item(
        TableName=table.name,
        Item={
            "pk": {"S": "CURRENT"},
            "sk": {"S": "ninjaone"},
            "doc": {"S": json.dumps(pointer)},
            "started_at": {"S": pointer["started_at"]},
        },
    )
    old = stack.http("POST", "/snapshots").body
    (warning,) = [w for w in old["warnings"] if "data was" in w]
    assert warning == (
        f"The NinjaOne data was 3 days old when this snapshot was taken (synced {synced:%d %b %Y %H:%M} UTC, "
        "more than 26 hours before): sync, then take a snapshot before relying on it."
    )
    assert stack.http("GET", f"/snapshots/{old['id']}").body["warnings"] == old["warnings"]
    settings = stack.http("GET", "/settings").body
    assert stack.http("PUT", "/settings", {**settings, "stale_data_hours": 100}).status == 200
    assert not any("data was" in w for w in stack.http("POST", "/snapshots").body["warnings"])


def test_wrong_credentials_fail_the_sync_without_revealing_the_secret(stack: Stack) -> None:
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=stack.env["PAX8_SECRET_ID"],
        SecretString=json.dumps({"client_id": "demo-pax8-client", "client_secret": "hunter2-leaky"}),
    )
    run = stack.sync(["pax8"])
    assert run["sources"]["pax8"]["status"] == "failed"
    assert "HTTP 401" in run["sources"]["pax8"]["error"] and "hunter2" not in json.dumps(run)


def test_an_empty_secret_is_reported_as_not_configured(stack: Stack) -> None:
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=stack.env["NINJAONE_SECRET_ID"],
        SecretString=json.dumps({"client_id": "", "client_secret": "x"}),
    )
    run = stack.sync(["rmm"])
    assert run["sources"]["ninjaone"]["error"].startswith("NinjaOne credentials are not set in secret")


def test_each_row_says_what_changed_since_the_snapshot_before_and_a_clients_history_is_kept(
    stack: Stack,
) -> None:
    stack.sync()
    first = stack.whole(stack.http("POST", "/snapshots").body["id"])
    edr = first["coverages"][0]
    assert {r["change"] for r in edr["rows"]} == {"first"} and edr["summary"]["changes"]["first"] == 35
    # Contoso Ltd (18 devices, 22 licences: -4) takes in its Denver site (4 devices): matched.
    view = stack.http("GET", "/mappings").body
    contoso = next(m for m in view["mappings"] if m["client"] == "Contoso Ltd")
    denver = next(u["rmm_organization_id"] for u in view["unmapped_rmm"] if u["name"] == "Contoso - Denver")
    organizations = [o["id"] for o in contoso["rmm_organizations"]] + [denver]
    key = contoso["pax8_company_id"]
    assert stack.http("PUT", f"/mappings/{key}", {"rmm_organization_ids": organizations}).status == 200
    second = stack.whole(stack.http("POST", "/snapshots").body["id"])
    rows = {r["client"]: r for r in second["coverages"][0]["rows"]}
    assert (rows["Contoso Ltd"]["status"], rows["Contoso Ltd"]["change"]) == ("matched", "closed")
    assert rows["Contoso Ltd"]["previous"] == {
        "snapshot_id": first["id"],
        "devices": 18,
        "licenses": 22,
        "variance": -4,
        "status": "over_licensed",
    }
    assert "Contoso - Denver" not in rows  # its devices are Contoso's now
    assert rows["Redwood Financial Advisors"]["change"] == "same"  # still +6
    changes = second["coverages"][0]["summary"]["changes"]
    assert changes == {"new": 0, "closed": 1, "changed": 0, "same": 33, "first": 0}
    # ?change= keeps those rows only.
    closed = stack.http("GET", f"/snapshots/{second['id']}", query={"change": "closed"}).body
    assert [r["client"] for r in closed["coverages"][0]["rows"]] == ["Contoso Ltd"]
    bad = stack.http("GET", f"/snapshots/{second['id']}", query={"change": "better"})
    assert bad.status == 400 and "unknown change better" in bad.body["message"]
    # The client's history, oldest first, read from the latest snapshot alone.
    coverage = second["coverages"][0]["id"]
    history = stack.http("GET", f"/clients/{key}/history", query={"coverage": coverage}).body
    assert [(p["snapshot_id"], p["devices"], p["licenses"], p["status"]) for p in history["points"]] == [
        (first["id"], 18, 22, "over_licensed"),
        (second["id"], 22, 22, "matched"),
    ]
    assert history["snapshot_id"] == second["id"] and history["key"] == key
    up_to_first = stack.http(
        "GET", f"/clients/{key}/history", query={"coverage": coverage, "snapshot": first["id"]}
    ).body
    assert [p["snapshot_id"] for p in up_to_first["points"]] == [first["id"]]
    assert stack.http("GET", "/clients/nobody/history", query={"coverage": coverage}).status == 404
    assert stack.http("GET", f"/clients/{key}/history").body == history  # the first coverage
    assert stack.http("GET", f"/clients/{key}/history", query={"coverage": "nope"}).status == 404


def test_a_manual_mapping_rolls_a_site_up_and_the_next_snapshot_reflects_it(stack: Stack) -> None:
    stack.sync()
    view = stack.http("GET", "/mappings").body
    companies = {m["client"]: m["pax8_company_id"] for m in view["mappings"]}
    companies |= {u["client"]: u["pax8_company_id"] for u in view["unmapped_pax8"]}
    orgs = {u["name"]: u["rmm_organization_id"] for u in view["unmapped_rmm"]}
    orgs |= {o["name"]: o["id"] for m in view["mappings"] for o in m["rmm_organizations"]}
    assert {"Contoso - Denver", "Dunmore Vet Clinic", "Ironwood Legal"} <= set(orgs)
    suggestion = next(s for s in view["suggestions"] if s["rmm_organization_name"] == "Dunmore Vet Clinic")
    assert suggestion["client"] == "Dunmore Veterinary Clinic" and suggestion["score"] >= 80

    contoso = companies["Contoso Ltd"]
    put = stack.http(
        "PUT", f"/mappings/{contoso}", {"rmm_organization_ids": [orgs["Contoso"], orgs["Contoso - Denver"]]}
    )
    assert put.status == 200 and put.body["source"] == "manual"
    rows = {
        r["client"]: r
        for r in stack.whole(stack.http("POST", "/snapshots").body["id"])["coverages"][0]["rows"]
    }
    assert (
        rows["Contoso Ltd"]["devices"],
        rows["Contoso Ltd"]["licenses"],
        rows["Contoso Ltd"]["status"],
    ) == (22, 22, "matched")
    assert "Contoso - Denver" not in rows

    clash = stack.http(
        "PUT",
        f"/mappings/{companies['Keystone Accounting']}",
        {"rmm_organization_ids": [orgs["Contoso - Denver"]]},
    )
    assert clash.status == 409 and "Contoso Ltd" in clash.body["message"]
    assert stack.http("PUT", f"/mappings/{uuid.uuid4()}", {"rmm_organization_ids": []}).status == 404
    unknown = stack.http("PUT", f"/mappings/{contoso}", {"rmm_organization_ids": ["ninjaone:999999"]})
    assert unknown.status == 409 and "ninjaone:999999" in unknown.body["message"]  # not in the data
    assert stack.http("PUT", f"/mappings/{contoso}", {"orgs": []}).status == 422

    removed = stack.http("DELETE", f"/mappings/{contoso}")
    assert (removed.status, removed.body) == (204, None)  # no content, not `null`
    assert stack.http("DELETE", f"/mappings/{contoso}").status == 404
    rows = {
        r["client"]: r
        for r in stack.whole(stack.http("POST", "/snapshots").body["id"])["coverages"][0]["rows"]
    }
    assert rows["Contoso Ltd"]["devices"] == 18 and rows["Contoso - Denver"]["status"] == "unmapped"


def test_settings_are_validated_whole_and_later_snapshots_use_them(stack: Stack) -> None:
    stack.sync()
    first = stack.whole(stack.http("POST", "/snapshots").body["id"])
    defaults = stack.http("GET", "/settings").body
    assert defaults == {
        "coverages": None,
        "counted_statuses": ["Active", "Activated", "PendingCancel"],
        "stale_after_days": 30,
        "tolerance": 0,
        "hold_shrink_percent": 20,
        "hold_shrink_records": 10,
        "stale_data_hours": 26,
        "months_per_term": {"Monthly": 1, "Annual": 12, "2-Year": 24, "3-Year": 36},
        "updated_at": None,
        "updated_by": None,
    }
    rejected = stack.http("PUT", "/settings", {**defaults, "tolerance": -1, "stale_after_days": "soon"})
    assert rejected.status == 400
    assert "tolerance" in rejected.body["message"] and "stale_after_days" in rejected.body["message"]
    duplicate = {"id": "edr", "name": "EDR", "vendor_names": ["Huntress"]}
    assert stack.http("PUT", "/settings", {**defaults, "coverages": [duplicate, duplicate]}).status == 400
    assert stack.http("GET", "/settings").body == defaults  # nothing half-written

    saved = stack.http("PUT", "/settings", {**defaults, "tolerance": 1})
    assert saved.status == 200 and saved.body["tolerance"] == 1
    assert saved.body["updated_by"] == {"subject": "u-admin", "name": "Ada Admin"}
    assert stack.http("GET", "/settings").body == saved.body
    second = stack.whole(stack.http("POST", "/snapshots").body["id"])
    rows = {r["client"]: r["status"] for r in second["coverages"][0]["rows"]}
    assert (
        rows["Hillcrest Senior Living"] == "matched" and rows["Maple Street Bakery"] == "matched"
    )  # +1 / -1
    # The earlier snapshot never changes.
    assert stack.whole(first["id"]) == first


def test_the_api_description_covers_every_route_of_every_function(stack: Stack) -> None:
    document = stack.http("GET", "/openapi.json").body
    assert {
        "/syncs",
        "/syncs/{run_id}",
        "/syncs/current",
        "/syncs/{run_id}/{source}/accept",
        "/syncs/{run_id}/{source}/discard",
        "/cycles",
        "/cycles/{cycle_id}",
        "/clients/{key}/history",
        "/snapshots",
        "/snapshots/latest",
        "/snapshots/{snapshot_id}",
        "/snapshots/{snapshot_id}/export",
        "/snapshots/{snapshot_id}/export.csv",
        "/snapshots/{snapshot_id}/evidence",
        "/snapshots/{snapshot_id}/evidence/export",
        "/snapshots/{snapshot_id}/evidence.csv",
        "/snapshots/{snapshot_id}/audit/export",
        "/snapshots/{snapshot_id}/audit.csv",
        "/decisions",
        "/decisions/{coverage}/{key}",
        "/audit",
        "/terms",
        "/terms/{coverage}/{key}",
        "/rules",
        "/rules/{name}",
        "/ignored-organizations",
        "/ignored-organizations/{rmm_organization_id}",
        "/rejected-suggestions",
        "/rejected-suggestions/{pax8_company_id}/{rmm_organization_id}",
        "/mappings",
        "/mappings/{pax8_company_id}",
        "/settings",
        "/openapi.json",
        "/",
        "/static/{asset}",
        "/auth/config",
        "/me",
    } == set(document["paths"])
    # Every operation needs a bearer token but the page, its files and how to sign in.
    assert document["security"] == [{"signIn": []}]
    assert document["components"]["securitySchemes"]["signIn"]["scheme"] == "bearer"
    public = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") == []
    }
    assert public == {"GET /", "GET /static/{asset}", "GET /auth/config"}
    assert stack.http("GET", "/nothing-here").status == 404


def test_an_export_is_written_once_and_handed_out_as_a_presigned_sigv4_link(stack: Stack) -> None:
    stack.sync()
    snap = stack.http("POST", "/snapshots").body
    answer = stack.http("POST", f"/snapshots/{snap['id']}/export")
    assert answer.status == 200
    link = answer.body
    taken = snap["taken_at"]
    assert link["key"] == f"exports/{taken[:4]}/{taken[5:7]}/{snap['id']}/huntress-managed-edr.csv"
    assert link["file_name"] == f"trueup-reconciliation-{taken[:10]}-huntress-managed-edr.csv"
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in link["url"] and "X-Amz-Expires=900" in link["url"]
    # virtual-hosted style on the bucket's regional endpoint
    assert link["url"].startswith(f"https://{stack.env['TRUEUP_BUCKET']}.s3.us-east-1.amazonaws.com/exports/")
    s3 = boto3.client("s3", region_name=REGION)
    stored = s3.get_object(Bucket=stack.env["TRUEUP_BUCKET"], Key=link["key"])
    assert stored["ContentType"] == "text/csv; charset=utf-8"
    assert stored["ContentDisposition"] == f'attachment; filename="{link["file_name"]}"'
    lines = stored["Body"].read().decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Client,Devices,Licenses,Variance,Status,")
    assert [line.split(",")[:5] for line in lines[1:3]] == [
        ["Redwood Financial Advisors", "20", "14", "6", "Under-licensed"],
        ["Kingfisher Marine", "13", "10", "3", "Under-licensed"],
    ]
    assert len(lines) - 1 == len(HUNTRESS)
    modified = stored["LastModified"]
    again = stack.http("POST", f"/snapshots/{snap['id']}/export").body
    assert again["key"] == link["key"]
    assert s3.head_object(Bucket=stack.env["TRUEUP_BUCKET"], Key=link["key"])["LastModified"] == modified


def test_every_rows_evidence_agrees_with_its_counts_and_is_frozen_with_the_snapshot(stack: Stack) -> None:
    stack.sync()
    snap = stack.http("POST", "/snapshots").body
    whole = stack.whole(snap["id"])
    for coverage in whole["coverages"]:
        for row in coverage["rows"]:
            key = row["pax8_company_id"] or row["rmm_organization_ids"][0]
            answer = stack.http(
                "GET", f"/snapshots/{snap['id']}/evidence", query={"coverage": coverage["id"], "client": key}
            )
            assert answer.status == 200, answer.body
            evidence = answer.body
            assert evidence["client"] == row["client"]
            assert evidence["devices_counted"] == (row["devices"] or 0)
            assert evidence["devices_left_out"] == {r: n for r, n in row["excluded"].items() if n}
            counted = sum(s["quantity"] for s in evidence["subscriptions"] if s["counted"])
            assert counted == (row["licenses"] or 0)
    # Granite Peak's phones and network devices are left out of the EDR count, each named.
    granite = next(
        r for r in whole["coverages"][0]["rows"] if r["client"] == "Granite Peak Construction Inc."
    )
    first = stack.http(
        "GET",
        f"/snapshots/{snap['id']}/evidence",
        query={"client": granite["pax8_company_id"], "limit": "5", "sort": "-device_class"},
    ).body
    assert [d["device_class"] for d in first["devices"]] == ["workstation"] * 5  # descending: w, s, n, m
    assert first["devices_total"] == 38 and first["next_cursor"] == "5"
    rest = stack.http(
        "GET",
        f"/snapshots/{snap['id']}/evidence",
        query={"client": granite["pax8_company_id"], "cursor": "5", "limit": "100", "sort": "-device_class"},
    ).body
    left_out = [d for d in first["devices"] + rest["devices"] if d["reason"]]
    assert {d["device_class"] for d in left_out} == {"mobile", "network"} and len(left_out) == 11
    # Later settings and snapshots change nothing in it: phones count from now on, not back then.
    settings = {k: v for k, v in stack.http("GET", "/settings").body.items() if not k.startswith("updated")}
    edr = {
        "id": "edr",
        "name": "EDR",
        "vendor_names": ["Huntress"],
        "device_classes": ["workstation", "mobile"],
    }
    assert stack.http("PUT", "/settings", {**settings, "coverages": [edr]}).status == 200
    later = stack.http("POST", "/snapshots").body
    query = {"client": granite["pax8_company_id"], "sort": "name"}
    now = stack.http("GET", f"/snapshots/{later['id']}/evidence", query=query).body
    then = stack.http("GET", f"/snapshots/{snap['id']}/evidence", query=query).body
    assert {d["reason"] for d in now["devices"] if d["device_class"] == "mobile"} == {None}
    assert {d["reason"] for d in then["devices"] if d["device_class"] == "mobile"} == {"class_not_covered"}


def test_evidence_is_refused_clearly_for_a_bad_request_or_a_snapshot_without_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.sync()
    monkeypatch.setenv("TRUEUP_SNAPSHOT_EVIDENCE", "off")
    config.cache_clear()
    without = stack.http("POST", "/snapshots").body
    answer = stack.http("GET", f"/snapshots/{without['id']}/evidence", query={"client": "x"})
    assert answer.status == 404 and answer.body["message"].startswith(
        f"snapshot {without['id']} has no evidence: it was taken before trueup kept"
    )
    monkeypatch.setenv("TRUEUP_SNAPSHOT_EVIDENCE", "on")
    config.cache_clear()
    snap = stack.http("POST", "/snapshots").body
    missing = stack.http("GET", f"/snapshots/{snap['id']}/evidence")
    assert missing.status == 400 and missing.body["message"].startswith(
        "the query parameter client is required"
    )
    bad_sort = stack.http("GET", f"/snapshots/{snap['id']}/evidence", query={"client": "x", "sort": "colour"})
    assert bad_sort.status == 400 and "unknown sort 'colour'" in bad_sort.body["message"]
    unknown = stack.http("GET", f"/snapshots/{snap['id']}/evidence", query={"client": "nobody"})
    assert unknown.status == 404 and "client 'nobody' has no row in coverage" in unknown.body["message"]


def test_the_evidence_of_a_row_or_a_coverage_exports_as_csv_once(stack: Stack) -> None:
    stack.sync()
    snap = stack.http("POST", "/snapshots").body
    whole = stack.whole(snap["id"])
    redwood = next(r for r in whole["coverages"][0]["rows"] if r["client"] == "Redwood Financial Advisors")
    s3 = boto3.client("s3", region_name=REGION)

    def lines(key: str) -> list[dict[str, str]]:
        text = s3.get_object(Bucket=stack.env["TRUEUP_BUCKET"], Key=key)["Body"].read().decode("utf-8-sig")
        return list(csv.DictReader(io.StringIO(text)))

    one = stack.http(
        "POST", f"/snapshots/{snap['id']}/evidence/export", query={"client": redwood["pax8_company_id"]}
    )
    assert one.status == 200, one.body
    taken = snap["taken_at"]
    assert one.body["file_name"] == (
        f"trueup-evidence-{taken[:10]}-huntress-managed-edr-{redwood['pax8_company_id']}.csv"
    )
    rows = lines(one.body["key"])
    assert len(rows) == one.body["rows"] and {r["Client"] for r in rows} == {"Redwood Financial Advisors"}
    devices = [r for r in rows if r["Item"] == "Device"]
    assert sum(r["Counted"] == "Yes" for r in devices) == redwood["devices"] == 20
    assert (
        sum(int(r["Quantity"]) for r in rows if r["Item"] == "Subscription" and r["Counted"] == "Yes") == 14
    )
    coverage = stack.http("POST", f"/snapshots/{snap['id']}/evidence/export").body
    everything = lines(coverage["key"])
    assert len({r["Client key"] for r in everything}) == len(whole["coverages"][0]["rows"])
    clients = list(dict.fromkeys(r["Client"] for r in everything))
    assert clients == sorted(clients, key=str.casefold)  # the clients' order
    again = stack.http("GET", f"/snapshots/{snap['id']}/evidence.csv")
    assert again.status == 303 and "/evidence/huntress-managed-edr.csv" in again.headers["Location"]


EDR = "huntress-managed-edr"


def test_a_dismissed_gap_leaves_the_red_card_on_the_next_snapshot_and_is_in_the_audit_log(
    stack: Stack,
) -> None:
    stack.sync()
    first = stack.whole(stack.http("POST", "/snapshots").body["id"])
    redwood = next(r for r in first["coverages"][0]["rows"] if r["client"] == "Redwood Financial Advisors")
    path = f"/decisions/{EDR}/{redwood['pax8_company_id']}"
    answer = stack.http("PUT", path, {"kind": "dismissed", "reason": "flat-fee contract"})
    assert answer.status == 200, answer.body
    assert answer.headers["ETag"] == '"1"'
    assert answer.body["decided_by"] == {"subject": "u-admin", "name": "Ada Admin"}
    assert (answer.body["devices"], answer.body["licenses"], answer.body["client"]) == (
        20,
        14,
        "Redwood Financial Advisors",
    )
    second = stack.whole(stack.http("POST", "/snapshots").body["id"])
    row = next(r for r in second["coverages"][0]["rows"] if r["client"] == "Redwood Financial Advisors")
    assert row["status"] == "under_licensed"  # the gap is what it is; the decision sets it aside
    assert row["decision"]["kind"] == "dismissed" and row["decision"]["lapsed"] is False
    # The rows can be filtered by decision: the dismissed one, and the undecided others.
    path_of = f"/snapshots/{second['id']}"
    dismissed = stack.http("GET", path_of, query={"coverage": EDR, "decision": "dismissed"}).body
    assert [r["client"] for c in dismissed["coverages"] for r in c.get("rows") or []] == [
        "Redwood Financial Advisors"
    ]
    undecided = stack.http("GET", path_of, query={"coverage": EDR, "decision": "undecided", "limit": "500"})
    listed = [r["client"] for c in undecided.body["coverages"] for r in c.get("rows") or []]
    assert (
        "Redwood Financial Advisors" not in listed and len(listed) == len(second["coverages"][0]["rows"]) - 1
    )
    refused = stack.http("GET", path_of, query={"decision": "maybe"})
    assert refused.status == 400 and "decision" in refused.body["message"]
    before, after = first["coverages"][0]["summary"], second["coverages"][0]["summary"]
    assert after["under_licensed"] == before["under_licensed"] - 1 == 7
    assert after["set_aside"] == {"dismissed": 1}
    # Its $39.00 a month not billed (and $27.00 to buy) leave the card's total for the set-aside one.
    assert after["money"]["USD"]["under_licensed_price_gap"] == "92.46"  # 131.46 - 39.00
    assert after["set_aside_money"]["USD"]["under_licensed_price_gap"] == "39.00"
    assert after["set_aside_money"]["USD"]["under_licensed_cost_gap"] == "27.00"
    # The audit log says who decided what and why; filtered by kind and by client, newest first.
    log = stack.http("GET", "/audit").body["items"]
    assert [(e["kind"], e["what"], e["reason"]) for e in log] == [
        ("decision", f"decision on Redwood Financial Advisors in {EDR}: dismissed", "flat-fee contract")
    ]
    assert log[0]["by"] == {"subject": "u-admin", "name": "Ada Admin"} and log[0]["before"] is None
    assert log[0]["after"]["kind"] == "dismissed"
    by_client = stack.http("GET", "/audit", query={"client": redwood["pax8_company_id"]}).body["items"]
    assert [e["id"] for e in by_client] == [log[0]["id"]]
    assert stack.http("GET", "/audit", query={"kind": "mapping"}).body["items"] == []
    assert stack.http("GET", "/audit", query={"client": "nobody"}).body["items"] == []
    # Removed: the next snapshot has the gap back on the card, and the log has both entries.
    assert stack.http("DELETE", path).status == 204
    third = stack.http("POST", "/snapshots").body
    assert third["coverages"][0]["summary"]["under_licensed"] == 8
    assert [e["what"].rsplit(": ", 1)[1] for e in stack.http("GET", "/audit").body["items"]] == [
        "removed",
        "dismissed",
    ]


def test_decisions_are_refused_clearly_and_never_half_written(stack: Stack) -> None:
    stack.sync()
    snap = stack.whole(stack.http("POST", "/snapshots").body["id"])
    rows = snap["coverages"][0]["rows"]
    matched = next(r for r in rows if r["status"] == "matched")
    gap = next(r for r in rows if r["status"] == "over_licensed")
    path = f"/decisions/{EDR}/{gap['pax8_company_id']}"
    refusals: list[tuple[str, Any, str, int, str]] = [
        ("viewer", {"kind": "dismissed", "reason": "x"}, path, 403, "needs the admin role"),
        (
            "admin",
            {"kind": "dismissed", "reason": "x"},
            f"/decisions/{EDR}/{matched['pax8_company_id']}",
            409,
            "is matched",
        ),
        ("admin", {"kind": "dismissed", "reason": "x"}, f"/decisions/{EDR}/nobody", 404, "has no row"),
        (
            "admin",
            {"kind": "dismissed", "reason": "x"},
            f"/decisions/nothing/{gap['pax8_company_id']}",
            404,
            "no coverage",
        ),
        ("admin", {"kind": "muted", "reason": "later"}, path, 400, "needs `until`"),
        ("admin", {"kind": "muted", "reason": "later", "until": "2020-01-01"}, path, 400, "has passed"),
        (
            "admin",
            {"kind": "dismissed", "reason": "x", "until": "2030-01-01"},
            path,
            400,
            "muted decision only",
        ),
        ("admin", {"kind": "dismissed", "reason": "   "}, path, 422, "body.reason"),
        ("admin", {"kind": "maybe", "reason": "x"}, path, 422, "body.kind"),
    ]
    for who, body, target, status, message in refusals:
        refused = stack.http("PUT", target, body, as_=who)
        assert (refused.status, message in refused.body["message"]) == (status, True), (body, refused.body)
    assert stack.http("GET", "/decisions").body["items"] == []  # nothing written
    assert stack.http("GET", "/audit").body["items"] == []


def test_two_writers_never_lose_a_decision_silently(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from trueup.store.table import TrueupTable

    stack.sync()
    snap = stack.whole(stack.http("POST", "/snapshots").body["id"])
    gap = next(r for r in snap["coverages"][0]["rows"] if r["status"] == "under_licensed")
    path = f"/decisions/{EDR}/{gap['pax8_company_id']}"
    bill = {"kind": "will_bill", "reason": "raise on the 1st", "effective": "2027-01-01"}
    assert stack.http("PUT", path, bill).headers["ETag"] == '"1"'
    read = stack.http("GET", path)
    assert read.headers["ETag"] == '"1"' and read.body["effective"] == "2027-01-01"
    # Two people read version 1; the first writes with If-Match, the second's If-Match is stale: 412.
    first = stack.http("PUT", path, {"kind": "dismissed", "reason": "flat fee"}, headers={"If-Match": '"1"'})
    assert first.status == 200 and first.headers["ETag"] == '"2"'
    stale = stack.http(
        "PUT", path, {"kind": "muted", "reason": "later", "until": "2030-01-01"}, headers={"If-Match": '"1"'}
    )
    assert stale.status == 412 and "is at version 2, not 1" in stale.body["message"]
    assert stack.http("DELETE", path, headers={"If-Match": '"1"'}).status == 412
    assert stack.http("GET", path).body["kind"] == "dismissed"  # unchanged
    # Without If-Match, the write that loses a race (another wrote between its read and its write): 409.
    original = TrueupTable.get_decision

    def read_before_the_other_writes(self: TrueupTable, key: str) -> tuple[Any, int]:
        found = original(self, key)
        monkeypatch.setattr(TrueupTable, "get_decision", original)
        assert stack.http("PUT", path, {"kind": "will_adjust", "reason": "the other writer"}).status == 200
        return found

    monkeypatch.setattr(TrueupTable, "get_decision", read_before_the_other_writes)
    lost = stack.http("PUT", path, {"kind": "will_bill", "reason": "the loser"})
    assert lost.status == 409 and "changed by someone else" in lost.body["message"]
    kept = stack.http("GET", path)
    assert (kept.body["reason"], kept.headers["ETag"]) == ("the other writer", '"3"')
    whats = [e["reason"] for e in stack.http("GET", "/audit", query={"kind": "decision"}).body["items"]]
    assert whats == ["the other writer", "flat fee", "raise on the 1st"]  # the loser left no entry


def test_settings_and_mappings_carry_a_version_and_a_stale_if_match_changes_nothing(stack: Stack) -> None:
    stack.sync()
    read = stack.http("GET", "/settings")
    assert read.headers["ETag"] == '"0"'  # never saved: the defaults
    settings = {k: v for k, v in read.body.items() if not k.startswith("updated")}
    saved = stack.http("PUT", "/settings", {**settings, "tolerance": 1}, headers={"If-Match": '"0"'})
    assert saved.status == 200 and saved.headers["ETag"] == '"1"'
    stale = stack.http("PUT", "/settings", {**settings, "tolerance": 5}, headers={"If-Match": '"0"'})
    assert stale.status == 412 and "the settings is at version 1, not 0" in stale.body["message"]
    after = stack.http("GET", "/settings")
    assert after.body["tolerance"] == 1 and after.headers["ETag"] == '"1"'

    view = stack.http("GET", "/mappings").body
    company = view["mappings"][0]["pax8_company_id"]
    organizations = view["mappings"][0]["rmm_organization_ids"]
    assert "version" not in view["mappings"][0] or view["mappings"][0]["version"] is None  # automatic
    path = f"/mappings/{company}"
    first = stack.http("PUT", path, {"rmm_organization_ids": organizations}, headers={"If-Match": '"0"'})
    assert first.status == 200 and first.headers["ETag"] == '"1"' and first.body["version"] == 1
    listed = stack.http("GET", "/mappings", query={"company": company}).body["mappings"][0]
    assert listed["version"] == 1
    again = stack.http("PUT", path, {"rmm_organization_ids": []}, headers={"If-Match": '"0"'})
    assert again.status == 412 and "the mapping of" in again.body["message"]
    assert stack.http("DELETE", path, headers={"If-Match": '"7"'}).status == 412
    kept = stack.http("GET", "/mappings", query={"company": company}).body["mappings"][0]
    assert kept["rmm_organization_ids"] == organizations and kept["source"] == "manual"
    assert stack.http("DELETE", path, headers={"If-Match": '"1"'}).status == 204
    assert [e["kind"] for e in stack.http("GET", "/audit").body["items"]] == [
        "mapping",
        "mapping",
        "settings",
    ]


def test_an_export_can_pick_a_coverage_and_statuses_and_latest(stack: Stack) -> None:
    stack.sync()
    stack.http("POST", "/snapshots")
    link = stack.http(
        "POST",
        "/snapshots/latest/export",
        query={"coverage": "sentinelone-control", "status": "under_licensed"},
    ).body
    assert link["key"].endswith("/sentinelone-control--under_licensed.csv") and link["rows"] == 1
    body = boto3.client("s3", region_name=REGION).get_object(
        Bucket=stack.env["TRUEUP_BUCKET"], Key=link["key"]
    )
    lines = body["Body"].read().decode("utf-8-sig").splitlines()
    assert [line.split(",")[:5] for line in lines[1:]] == [
        ["Northwind Traders", "47", "40", "7", "Under-licensed"]
    ]


def test_the_csv_link_redirects_with_a_fresh_url_and_unknown_snapshots_are_404(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.sync()
    stack.http("POST", "/snapshots")
    monkeypatch.setenv("EXPORT_LINK_SECONDS", "3600")
    config.cache_clear()  # a function's environment changes only with a new deployment (a cold start)
    answer = stack.http("GET", "/snapshots/latest/export.csv")
    assert answer.status == 303 and "X-Amz-Expires=3600" in answer.headers["Location"]
    missing = stack.http("POST", "/snapshots/20200101T000000000Z-000000/export")
    assert missing.status == 404 and "no snapshot" in missing.body["message"]
    assert stack.http("GET", "/snapshots/latest/export.csv", query={"status": "bogus"}).status == 400
    monkeypatch.setenv("EXPORT_LINK_SECONDS", str(8 * 24 * 3600))
    config.cache_clear()
    too_long = stack.http("POST", "/snapshots/latest/export")
    # A deployment mistake (template.yaml caps the parameter at 7 days), named for whoever reads it.
    assert too_long.status == 500
    assert too_long.body["message"].startswith("trueup is not configured: EXPORT_LINK_SECONDS")
    assert "604800" in too_long.body["message"]


def test_a_json_body_sent_as_curl_sends_it_by_default_is_still_read_as_json(stack: Stack) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    answer = stack.http("POST", "/syncs", {"sources": ["bogus"]}, headers=form)
    assert answer.status == 422 and "body.sources.0" in answer.body["message"]
    assert (
        stack.http("PUT", "/settings", {"tolerance": -1}, headers=form)
        .body["message"]
        .startswith("invalid settings: tolerance:")
    )


def emf_lines(output: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded-metric-format documents a function printed."""
    found = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            found.append(json.loads(line))
    return found


def test_syncs_snapshots_and_exports_send_metrics_someone_can_chart(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    capsys.readouterr()
    stack.sync()
    assert stack.http("POST", "/snapshots").status == 201
    assert stack.http("POST", "/snapshots/latest/export").status == 200
    documents = emf_lines(capsys.readouterr().out)

    def values(metric: str, **dimensions: str) -> list[float]:
        return [
            value
            for d in documents
            if metric in d and all(d.get(k) == v for k, v in dimensions.items())
            for value in (d[metric] if isinstance(d[metric], list) else [d[metric]])
        ]

    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "trueup"
    # The demo story: 362 Pax8 records and 628 RMM records, one unreadable record each.
    assert values("RecordsSynced", source="pax8") == [362] and values("RecordsSynced", source="ninjaone") == [
        628
    ]
    assert values("RecordsSkipped", source="pax8") == [1] and values("RecordsSkipped", source="ninjaone") == [
        1
    ]
    assert all(seconds >= 0 for seconds in values("SyncDuration"))
    assert values("SnapshotsTaken", trigger="api") == [1]
    # Rows per status over the three coverages of the hand-worked story (8+4+1 under-licensed, ...).
    assert values("SnapshotRows", status="under_licensed") == [13]
    assert values("SnapshotRows", status="unmapped") == [19]
    assert values("SnapshotRows", status="over_licensed") == [11]
    assert values("SnapshotRows", status="matched") == [19]
    assert values("ExportsWritten") == [1] and values("ExportRows") == [35]


# -- sign-in and roles: what API Gateway's JWT authorizer passed decides who may do what ---------------


def test_a_viewer_reads_and_exports_but_every_change_is_refused_naming_the_admin_role(stack: Stack) -> None:
    run = stack.sync()
    snapshot = stack.http("GET", f"/snapshots/{stack.http('POST', '/snapshots').body['id']}").body
    company = snapshot["coverages"][0]["rows"][0]["pax8_company_id"]
    for method, path, body in (
        ("POST", "/syncs", None),
        ("POST", "/snapshots", None),
        ("PUT", "/settings", {"tolerance": "not even valid"}),  # 403 before any validation
        ("PUT", f"/mappings/{company}", {"rmm_organization_ids": []}),
        ("DELETE", f"/mappings/{company}", None),
    ):
        answer = stack.http(method, path, body, as_="viewer")
        assert answer.status == 403, (method, path, answer.body)
        assert "needs the admin role" in answer.body["message"]
        assert "vic@example.com (viewer)" in answer.body["message"]
        assert answer.body["required_role"] == "admin"
    assert stack.http("GET", "/snapshots", as_="viewer").status == 200
    assert stack.http("GET", f"/syncs/{run['id']}", as_="viewer").status == 200
    assert stack.http("GET", "/mappings", as_="viewer").status == 200
    assert stack.http("POST", f"/snapshots/{snapshot['id']}/export", as_="viewer").status == 200
    # Nothing a viewer tried was written.
    assert stack.http("GET", "/settings").body["updated_by"] is None
    assert [s["id"] for s in stack.http("GET", "/snapshots").body["items"]] == [snapshot["id"]]


def test_a_token_without_a_trueup_role_reads_nothing_and_no_token_is_401(stack: Stack) -> None:
    answer = stack.http("GET", "/snapshots", as_="nobody")
    assert answer.status == 403
    assert "needs the viewer or admin role" in answer.body["message"]
    unsigned = stack.http("GET", "/snapshots", as_=None)
    assert unsigned.status == 401 and unsigned.headers["WWW-Authenticate"] == "Bearer"
    # The page, its files and how to sign in stay public.
    assert stack.http("GET", "/", as_=None).status == 200
    assert stack.http("GET", "/auth/config", as_=None).status == 500  # no issuer configured: says so


def test_changes_record_who_made_them_and_the_api_returns_it(stack: Stack) -> None:
    run = stack.sync()
    assert run["requested_by"] == {"subject": "u-admin", "name": "Ada Admin"}
    snapshot = stack.http("POST", "/snapshots").body
    assert snapshot["taken_by"] == {"subject": "u-admin", "name": "Ada Admin"}
    listed = stack.http("GET", "/snapshots", as_="viewer").body["items"][0]
    assert listed["taken_by"] == {"subject": "u-admin", "name": "Ada Admin"}
    view = stack.http("GET", "/mappings").body
    company = view["mappings"][0]["pax8_company_id"]
    organizations = view["mappings"][0]["rmm_organization_ids"]
    put = stack.http("PUT", f"/mappings/{company}", {"rmm_organization_ids": organizations})
    assert put.status == 200 and put.body["updated_by"] == {"subject": "u-admin", "name": "Ada Admin"}
    manual = next(
        m for m in stack.http("GET", "/mappings").body["mappings"] if m["pax8_company_id"] == company
    )
    assert manual["source"] == "manual" and manual["updated_by"]["subject"] == "u-admin"
    # Each change is in the audit log, newest first, with who made it and the value before and after.
    settings = {k: v for k, v in stack.http("GET", "/settings").body.items() if not k.startswith("updated")}
    assert stack.http("PUT", "/settings", {**settings, "tolerance": 2}).status == 200
    assert stack.http("DELETE", f"/mappings/{company}").status == 204
    log = stack.http("GET", "/audit", as_="viewer").body["items"]
    assert [(e["kind"], e["what"]) for e in log] == [
        ("mapping", f"mapping of {company}: back to automatic"),
        ("settings", "settings: tolerance"),
        ("mapping", f"mapping of {manual['client']}: {', '.join(organizations)}"),
    ]
    assert all(e["by"] == {"subject": "u-admin", "name": "Ada Admin"} for e in log)
    assert (log[1]["before"]["tolerance"], log[1]["after"]["tolerance"]) == (0, 2)
    assert log[0]["before"] == {"rmm_organization_ids": organizations} and log[0]["after"] is None
    mapping_log = stack.http("GET", "/audit", query={"kind": "mapping", "client": company}).body["items"]
    assert [e["id"] for e in mapping_log] == [log[0]["id"], log[2]["id"]]
    first_page = stack.http("GET", "/audit", query={"limit": "2"}).body
    assert [e["id"] for e in first_page["items"]] == [log[0]["id"], log[1]["id"]]
    rest = stack.http("GET", "/audit", query={"limit": "2", "cursor": first_page["next_cursor"]}).body
    assert [e["id"] for e in rest["items"]] == [log[2]["id"]]
    # The monthly schedule has no person behind it; a cycle started over HTTP names who started it.
    FUNCTIONS["cycle"].handler(
        {"trigger": "monthly", "scheduled_time": "2026-12-01T06:00:00Z"}, LambdaContext()
    )
    stack.deliver_events()
    scheduled = stack.http("GET", "/snapshots/latest").body
    assert scheduled["trigger"] == "schedule" and scheduled["taken_by"] is None
    started = stack.http("POST", "/cycles").body
    assert (
        started["started_by"] == {"subject": "u-admin", "name": "Ada Admin"} and started["trigger"] == "api"
    )


def test_me_names_the_caller_and_their_roles(stack: Stack) -> None:
    assert stack.http("GET", "/me", as_="viewer").body == {
        "subject": "u-viewer",
        "name": "vic@example.com",
        "roles": ["viewer"],
        "sign_in": "oidc",
    }
    assert stack.http("GET", "/me").body["roles"] == ["admin", "viewer"]


def test_sign_in_config_tells_the_page_where_to_sign_in(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUEUP_SIGN_IN_ISSUER", "https://login.microsoftonline.com/tenant-1/v2.0")
    monkeypatch.setenv("TRUEUP_SIGN_IN_CLIENT_ID", "app-1")
    monkeypatch.setenv("TRUEUP_SIGN_IN_SCOPE", "openid profile api://app-1/access_as_user")
    config.cache_clear()
    answer = stack.http("GET", "/auth/config", as_=None, headers={"x-forwarded-proto": "https"})
    assert answer.status == 200
    assert answer.body == {
        "sign_in": "oidc",
        "issuer": "https://login.microsoftonline.com/tenant-1/v2.0",
        "client_id": "app-1",
        "scope": "openid profile api://app-1/access_as_user",
        "redirect_uri": "https://localhost/",
    }


def test_with_sign_in_off_everyone_is_the_local_user(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUEUP_SIGN_IN", "off")
    config.cache_clear()
    assert stack.http("GET", "/auth/config", as_=None).body["sign_in"] == "off"
    run = stack.sync()
    assert run["requested_by"] == {"subject": "local", "name": "Local user (sign-in off)"}
    assert stack.http("GET", "/me", as_=None).body["roles"] == ["admin", "viewer"]


# -- hardening: bad requests are refused before any work, and nothing is written -----------------------

MALFORMED = {
    "not UTF-8": (b"\xa3", {}, "the body is not UTF-8 text"),
    "multipart without a boundary": (b"a=1", {"content-type": "multipart/form-data"}, "the body is not JSON"),
    "100,000 nested lists": (b"[" * 100_000, {}, "nested too deeply"),
    "an integer of 5,000 digits": (b"1" * 5000, {}, "a number with too many digits"),
    "unfinished JSON": (b'{"tolerance": ', {}, "the body is not JSON"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_body_gets_400_naming_the_problem_and_nothing_is_written(stack: Stack, case: str) -> None:
    stack.sync()
    view = stack.http("GET", "/mappings").body
    company = view["mappings"][0]["pax8_company_id"]
    runs_before = stack.http("GET", "/syncs").body["items"]
    raw, headers, message = MALFORMED[case]
    for method, path in (("POST", "/syncs"), ("PUT", "/settings"), ("PUT", f"/mappings/{company}")):
        answer = stack.http(method, path, raw_body=raw, headers=headers)
        assert answer.status == 400, (case, method, path, answer.body)
        assert message in answer.body["message"], (case, answer.body)
    assert stack.http("GET", "/syncs").body["items"] == runs_before
    assert stack.http("GET", "/settings").body["updated_by"] is None
    assert stack.http("GET", "/mappings").body == view


def test_a_body_over_the_limit_gets_413_and_long_parameters_400_with_a_short_answer(stack: Stack) -> None:
    big = json.dumps({"counted_statuses": ["Active"], "padding": "x" * 300_000}).encode()
    answer = stack.http("PUT", "/settings", raw_body=big)
    assert answer.status == 413 and answer.body["message"] == "the body is larger than 256 KB"
    long_id = "s" * 60_000
    answer = stack.http("GET", f"/snapshots/{long_id}")
    assert answer.status == 400
    assert "longer than 200 characters" in answer.body["message"]
    assert len(json.dumps(answer.body)) < 200  # the id is not echoed back
    answer = stack.http("GET", "/snapshots/latest", query={"coverage": "c" * 5000})
    assert answer.status == 400 and "coverage" in answer.body["message"]


@pytest.mark.parametrize(
    ("document", "field", "allowed"),
    [
        ({"tolerance": 10**40}, "tolerance", "from 0 to 1000"),
        ({"tolerance": True}, "tolerance", "a whole number of devices"),
        ({"stale_after_days": "30"}, "stale_after_days", "a whole number of days from 1 to 3650"),
        (
            {"coverages": [{"id": "x", "name": "\u0000", "vendor_names": ["A"]}]},
            "coverages.0.name",
            "printable",
        ),
        (
            {"coverages": [{"id": "x", "name": "X", "vendor_names": ["A"], "required": 1}]},
            "required",
            "true or false",
        ),
        ({"counted_statuses": ["Active"] * 21}, "counted_statuses", "1 to 20 Pax8 statuses"),
        (
            {"coverages": [{"id": f"c{i}", "name": "C", "vendor_names": ["V"]} for i in range(51)]},
            "coverages",
            "at most 50 coverages",
        ),
    ],
)
def test_a_setting_out_of_its_range_or_type_is_refused_naming_the_field_and_what_is_allowed(
    stack: Stack, document: dict[str, Any], field: str, allowed: str
) -> None:
    answer = stack.http("PUT", "/settings", document)
    assert answer.status == 400, answer.body
    assert field in answer.body["message"] and allowed in answer.body["message"]
    assert stack.http("GET", "/settings").body["updated_by"] is None  # nothing written


def test_a_sync_request_that_is_not_the_documented_object_starts_nothing(stack: Stack) -> None:
    for body in ([None, None], ["pax8"], "pax8", 1):
        answer = stack.http("POST", "/syncs", raw_body=json.dumps(body).encode())
        assert answer.status in (400, 422), (body, answer.body)
    assert stack.http("GET", "/syncs").body["items"] == []
    assert stack.http("POST", "/syncs", {"sources": None}).status == 202  # null: both, as documented


# -- least privilege: what each handler really does with the table is what its policy allows ------------

OPERATIONS = {"GetItem", "PutItem", "DeleteItem", "UpdateItem", "Query"}


def record_table_use(used: dict[str, set[tuple[str, str]]], current: list[str]) -> None:
    """Note (IAM action, partition key) of every DynamoDB call, under the function now running."""

    def note(params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        calls: list[tuple[str, dict[str, Any]]] = []
        if name == "TransactWriteItems":
            for item in params["TransactItems"]:
                ((kind, spec),) = item.items()
                calls.append(({"Put": "PutItem", "Delete": "DeleteItem", "Update": "UpdateItem"}[kind], spec))
        elif name in OPERATIONS:
            calls.append((name, params))
        else:
            calls.append((name, {}))
        for action, spec in calls:
            key = spec.get("Key") or spec.get("Item") or {}
            pk = key.get("pk", {}).get("S") or spec.get("ExpressionAttributeValues", {}).get(":pk", {}).get(
                "S"
            )
            used.setdefault(current[0], set()).add((f"dynamodb:{action}", pk or "?"))

    aws.client("dynamodb").meta.events.register("provide-client-params.dynamodb.*", note)


def test_every_handler_touches_only_the_kinds_of_items_its_policy_allows(stack: Stack) -> None:
    from tests.template.test_template import table_access

    used: dict[str, set[tuple[str, str]]] = {}
    current = ["?"]
    record_table_use(used, current)
    original_http = stack.http

    def http(method: str, path: str, *args: Any, **kwargs: Any) -> Answer:
        match = ROUTER.match(method, path)
        current[0] = match.route.function if match else "?"
        return original_http(method, path, *args, **kwargs)

    def delivering(name: str) -> None:
        current[0] = (
            "SyncFunctions" if name.endswith("_sync") else name.capitalize() + "Function"
        )  # functions/<name>: snapshot -> SnapshotFunction

    stack.http = http  # type: ignore[method-assign]
    stack.on_delivery = delivering
    run = stack.sync()
    stack.http("GET", f"/syncs/{run['id']}")
    stack.http("GET", "/syncs/current")
    snapshot = stack.http("POST", "/snapshots").body
    stack.http("POST", "/snapshots", headers={"Idempotency-Key": "policy-check-1"})
    stack.http("POST", "/syncs", {"sources": ["pax8"]}, headers={"Idempotency-Key": "policy-check-2"})
    stack.http("GET", "/snapshots")
    stack.http("GET", "/snapshots/latest")
    stack.http("POST", f"/snapshots/{snapshot['id']}/export")
    view = stack.http("GET", "/mappings").body
    company, organizations = (
        view["mappings"][0]["pax8_company_id"],
        view["mappings"][0]["rmm_organization_ids"],
    )
    stack.http("PUT", f"/mappings/{company}", {"rmm_organization_ids": organizations})
    stack.http("DELETE", f"/mappings/{company}")
    stack.http("PUT", "/settings", {"tolerance": 1})
    stack.http("GET", "/settings")
    current[0] = "CycleFunction"
    FUNCTIONS["cycle"].handler(
        {"trigger": "daily-sync", "scheduled_time": "2026-12-02T05:00:00Z"}, LambdaContext()
    )
    # Every step of a monthly cycle, and the cycles over HTTP.
    FUNCTIONS["cycle"].handler(
        {"trigger": "monthly", "scheduled_time": "2026-12-01T06:00:00Z"}, LambdaContext()
    )
    stack.http("POST", "/cycles")
    stack.http("POST", "/snapshots", {"sync": True})
    stack.deliver_events()
    stack.http("GET", "/cycles")
    stack.http("GET", "/cycles/20261201T060000Z-monthly")

    template = yaml_template()
    allowed = {
        f: table_access(template, f)
        for f in (
            "ApiFunction",
            "SnapshotFunction",
            "ExportFunction",
            "SuggestionsFunction",
            "CycleFunction",
            "NotifyFunction",
        )
    }
    sync_allowed = table_access(template, "Pax8SyncFunction")
    assert sync_allowed == table_access(template, "RmmSyncFunction")
    allowed["SyncFunctions"] = sync_allowed
    for function, calls in used.items():
        refused = sorted((a, pk) for a, pk in calls if pk not in allowed[function].get(a, set()))
        assert not refused, f"{function} does what its policy refuses: {refused}"
    assert ("dynamodb:PutItem", "CLAIM") in used["ApiFunction"]  # the check saw the transactions
    assert ("dynamodb:UpdateItem", "IDEMPOTENCY") in used["SnapshotFunction"]  # and the idempotency records
    assert ("dynamodb:PutItem", "SUGGESTIONS") in used["SuggestionsFunction"]  # and the suggestions
    assert ("dynamodb:PutItem", "CYCLE") in used["SnapshotFunction"]  # and the cycle's steps
    assert ("dynamodb:PutItem", "CYCLE") in used["ExportFunction"]
    assert ("dynamodb:PutItem", "CYCLE") in used["NotifyFunction"]


def yaml_template() -> dict[str, Any]:
    return TEMPLATE  # type: ignore[no-any-return]


def test_a_sync_tags_the_generation_it_replaces_for_expiry_and_never_the_current_one(stack: Stack) -> None:
    from trueup.store.generations import generation_key

    s3 = boto3.client("s3", region_name=REGION)

    def tags(source: str, generation: str) -> list[dict[str, str]]:
        key = generation_key(source, generation)
        answer: list[dict[str, str]] = s3.get_object_tagging(Bucket=stack.env["TRUEUP_BUCKET"], Key=key)[
            "TagSet"
        ]
        return answer

    first = stack.sync()
    second = stack.sync(["pax8"])
    old, new = first["sources"]["pax8"]["generation"], second["sources"]["pax8"]["generation"]
    assert tags("pax8", old) == [{"Key": "trueup-superseded", "Value": "true"}]
    assert tags("pax8", new) == []
    assert tags("ninjaone", first["sources"]["ninjaone"]["generation"]) == []  # still current


# -- double submits: an Idempotency-Key returns the first answer -----------------------------------------


def test_a_repeated_idempotency_key_answers_the_first_snapshot_and_run_instead_of_new_ones(
    stack: Stack,
) -> None:
    key = {"Idempotency-Key": "6f1c2a0e-5b3d-4f7e-9a8b-1c2d3e4f5a6b"}
    first_run = stack.http("POST", "/syncs", {"sources": ["pax8"]}, headers=key)
    again = stack.http("POST", "/syncs", {"sources": ["pax8"]}, headers=key)
    assert (first_run.status, again.status) == (202, 202)
    assert again.body["id"] == first_run.body["id"]
    assert len(stack.http("GET", "/syncs").body["items"]) == 1
    other_body = stack.http("POST", "/syncs", {"sources": ["rmm"]}, headers=key)
    assert other_body.status == 422 and "another body" in other_body.body["message"]
    stack.deliver_events()
    stack.sync(["rmm"])

    first = stack.http("POST", "/snapshots", headers=key)
    for _ in range(3):  # a double click, then two retries
        repeat = stack.http("POST", "/snapshots", headers=key)
        assert repeat.status == 201 and repeat.body["id"] == first.body["id"]
    assert len(stack.http("GET", "/snapshots").body["items"]) == 1
    # The key belongs to its caller: another person's same key is their own request.
    theirs = stack.http("POST", "/snapshots", headers=key, as_="viewer")
    assert theirs.status == 403  # (a viewer may not take snapshots at all)
    assert stack.http("POST", "/snapshots").body["id"] != first.body["id"]  # no key: a new one
    bad = stack.http("POST", "/snapshots", headers={"Idempotency-Key": "has spaces"})
    assert bad.status == 400 and "Idempotency-Key" in bad.body["message"]


def test_a_sync_requested_while_one_of_the_same_source_runs_joins_it_instead_of_running_twice(
    stack: Stack,
) -> None:
    from trueup.store.table import TrueupTable

    first = stack.http("POST", "/syncs", {"sources": ["pax8"]}).body
    second = stack.http("POST", "/syncs", {"sources": ["pax8"]}).body
    queued = {e["detail"]["run_id"]: e for e in stack.captured() if e["detail-type"] == "Sync Requested"}
    # The first run's sync has begun: it holds the source's lease, as run_sync takes it first.
    assert (
        TrueupTable().acquire_sync_lease("pax8", first["id"], "2026-01-01T00:00:00Z", "2999-01-01T00:00:00Z")
        is None
    )
    FUNCTIONS["pax8_sync"].handler(queued[second["id"]], LambdaContext())  # arrives while it runs
    joined = stack.http("GET", f"/syncs/{second['id']}").body["sources"]["pax8"]
    assert joined["joined"] == first["id"] and joined["status"] == "queued"  # it follows the first

    FUNCTIONS["pax8_sync"].handler(queued[first["id"]], LambdaContext())
    done = stack.http("GET", f"/syncs/{first['id']}").body["sources"]["pax8"]
    followed = stack.http("GET", f"/syncs/{second['id']}").body["sources"]["pax8"]
    assert done["status"] == "succeeded"
    assert {k: v for k, v in followed.items() if k != "joined"} == {
        k: v for k, v in done.items() if k != "joined"
    }
    assert followed["joined"] == first["id"]
    # The lease is free again: the next sync runs on its own.
    third = stack.sync(["pax8"])
    assert (
        third["sources"]["pax8"]["status"] == "succeeded" and third["sources"]["pax8"].get("joined") is None
    )


# -- rows a page at a time, sorted and searched on the server (SentinelOne: 10 rows, worked by hand) --


def clients(answer: Answer) -> list[str]:
    (mine,) = [c for c in answer.body["coverages"] if "rows" in c]
    return [r["client"] for r in mine["rows"]]


def test_rows_are_paged_in_a_sorted_order_with_no_data_last(stack: Stack) -> None:
    stack.sync()
    snap = stack.http("POST", "/snapshots").body["id"]
    base = {"coverage": "sentinelone-control", "sort": "-devices", "limit": "4"}
    pages, cursor = [], ""
    while True:
        answer = stack.http("GET", f"/snapshots/{snap}", query={**base, "cursor": cursor})
        assert answer.status == 200 and answer.body["coverages"][2]["rows_total"] == 10
        pages.append(clients(answer))
        cursor = answer.body["next_cursor"]
        if cursor is None:
            break
        assert cursor == str(4 * len(pages))
    # devices 47, 25, 11, 9, then 8 twice (the snapshot's own order breaks the tie), 7, 6, 5, 4.
    assert pages == [
        ["Northwind Traders", "Tidewater Engineering", "Fjord Analytics GmbH", "Ironwood Legal"],
        ["Dunmore Vet Clinic", "Jasper Creek Winery", "Greenleaf Accounting", "Zenith Media"],
        ["Internal IT - Lab", "Contoso - Denver"],
    ]
    unmapped = [
        "Contoso - Denver",
        "Dunmore Vet Clinic",
        "Greenleaf Accounting",
        "Internal IT - Lab",
        "Ironwood Legal",
    ]
    by = {
        # licences 6, 8, 12, 25, 40; the unmapped have none and stay last, in the snapshot's order
        "licenses": [
            "Zenith Media",
            "Jasper Creek Winery",
            "Fjord Analytics GmbH",
            "Tidewater Engineering",
            "Northwind Traders",
            *unmapped,
        ],
        "-licenses": [
            "Northwind Traders",
            "Tidewater Engineering",
            "Fjord Analytics GmbH",
            "Jasper Creek Winery",
            "Zenith Media",
            *unmapped,
        ],
        "variance": [
            "Fjord Analytics GmbH",
            "Jasper Creek Winery",
            "Tidewater Engineering",
            "Zenith Media",
            "Northwind Traders",
            *unmapped,
        ],
        "client": sorted(
            [
                "Northwind Traders",
                "Fjord Analytics GmbH",
                "Jasper Creek Winery",
                "Tidewater Engineering",
                "Zenith Media",
                *unmapped,
            ]
        ),
        "status": [
            "Northwind Traders",
            *unmapped,
            "Fjord Analytics GmbH",
            "Jasper Creek Winery",
            "Tidewater Engineering",
            "Zenith Media",
        ],
    }
    for sort, expected in by.items():
        answer = stack.http(
            "GET", f"/snapshots/{snap}", query={"coverage": "sentinelone-control", "sort": sort}
        )
        assert clients(answer) == expected, sort


def test_rows_are_searched_by_part_of_a_name_within_a_status(stack: Stack) -> None:
    stack.sync()
    snap = stack.http("POST", "/snapshots").body["id"]
    query = {"coverage": "sentinelone-control", "q": "IN"}
    found = stack.http("GET", f"/snapshots/{snap}", query=query)
    # "in" in nortHWINd, clINic, accountINg, INternal, wINery, engINeerINg; any case.
    assert clients(found) == [
        "Northwind Traders",
        "Dunmore Vet Clinic",
        "Greenleaf Accounting",
        "Internal IT - Lab",
        "Jasper Creek Winery",
        "Tidewater Engineering",
    ]
    narrowed = stack.http("GET", f"/snapshots/{snap}", query={**query, "status": "unmapped"})
    assert clients(narrowed) == ["Dunmore Vet Clinic", "Greenleaf Accounting", "Internal IT - Lab"]
    (sentinel,) = [c for c in narrowed.body["coverages"] if "rows" in c]
    assert sentinel["rows_total"] == 3 and sentinel["summary"]["unmapped"] == 5  # the summary is the whole
    none = stack.http("GET", f"/snapshots/{snap}", query={**query, "q": "zzz"})
    assert clients(none) == [] and none.body["next_cursor"] is None


def test_a_malformed_page_request_is_refused_naming_the_parameter(stack: Stack) -> None:
    stack.sync()
    snap = stack.http("POST", "/snapshots").body["id"]
    for query, status, words in (
        ({"sort": "price"}, 400, "unknown sort 'price'"),
        ({"cursor": "abc"}, 400, "malformed cursor"),
        ({"limit": "2001"}, 422, "query.limit: must be at most 2000"),
        ({"limit": "0"}, 422, "query.limit: must be at least 1"),
    ):
        answer = stack.http("GET", f"/snapshots/{snap}", query=query)
        assert answer.status == status and words in answer.body["message"], (query, answer.body)


# -- the mapping view's lists, each paged and searched -------------------------------------------------


def test_every_mapping_list_is_counted_whole_and_read_a_page_at_a_time(stack: Stack) -> None:
    stack.sync()
    whole = stack.http("GET", "/mappings", query={"limit": "1000"}).body
    names = ("mappings", "manual", "suggestions", "unmapped_pax8", "unmapped_rmm", "companies")
    assert {name: len(whole[name]) for name in names} == whole["summary"]
    assert whole["summary"]["companies"] == 40 and whole["next"] == dict.fromkeys(names)
    assert whole["summary"]["manual"] == 0
    for name in names:
        read: list[dict[str, Any]] = []
        cursor = ""
        while True:
            page = stack.http("GET", "/mappings", query={"list": name, "limit": "3", "cursor": cursor}).body
            assert set(page) == {"summary", "next", name}  # only the list asked for
            read += page[name]
            cursor = page["next"][name]
            if cursor is None:
                break
        assert read == whole[name], name
    # Counting what is unmapped does not need the (costly) suggestions: they are left out.
    counted = stack.http("GET", "/mappings", query={"list": "unmapped_pax8", "limit": "1"}).body
    assert counted["summary"]["suggestions"] is None
    assert counted["summary"]["unmapped_pax8"] == whole["summary"]["unmapped_pax8"]


def test_the_mapping_lists_are_searched_by_name_and_suggestions_narrowed_to_one_side(stack: Stack) -> None:
    stack.sync()
    found = stack.http("GET", "/mappings", query={"q": "DUNMORE"}).body
    assert [o["name"] for o in found["unmapped_rmm"]] == ["Dunmore Vet Clinic"]
    assert [c["client"] for c in found["unmapped_pax8"]] == ["Dunmore Veterinary Clinic"]
    assert [c["client"] for c in found["companies"]] == ["Dunmore Veterinary Clinic"]
    assert found["mappings"] == []
    assert {(s["client"], s["rmm_organization_name"]) for s in found["suggestions"]} == {
        ("Dunmore Veterinary Clinic", "Dunmore Vet Clinic")
    }
    company = found["unmapped_pax8"][0]["pax8_company_id"]
    organization = found["unmapped_rmm"][0]["rmm_organization_id"]
    for query in ({"company": company}, {"organization": organization}):
        mine = stack.http("GET", "/mappings", query={"list": "suggestions", **query}).body["suggestions"]
        assert mine and all(
            s["pax8_company_id"] == company or s["rmm_organization_id"] == organization for s in mine
        )
    bad = stack.http("GET", "/mappings", query={"list": "everything"})
    assert bad.status == 400 and "unknown list 'everything'" in bad.body["message"]


def test_suggestions_are_worked_out_after_the_sync_and_the_view_only_reads_them(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trueup.domain import mapping
    from trueup.services import mappings

    stack.sync()  # each "Sync Completed" reached the suggestions function
    before = stack.http("GET", "/mappings", query={"limit": "1000"}).body
    assert any(s["rmm_organization_name"] == "Dunmore Vet Clinic" for s in before["suggestions"])

    asked: list[list[str]] = []

    def recording(companies: Any, organizations: Any) -> Any:
        asked.append([o.name for o in organizations])
        return mapping.suggest(companies, organizations)

    monkeypatch.setattr(mappings, "suggest", recording)
    monkeypatch.setattr(mappings, "_parties", None)  # a function that has read nothing yet
    after = stack.http("GET", "/mappings", query={"limit": "1000"}).body
    assert after == before and asked == []  # read, not worked out while a person waits

    # An organization placed by name becomes unmapped when its company is mapped by hand to another:
    # nobody foresaw it, so its suggestions (and only its) are worked out then.
    companies = {m["client"]: m for m in before["mappings"]}
    contoso = companies["Contoso Ltd"]
    denver = next(o for o in before["unmapped_rmm"] if o["name"] == "Contoso - Denver")
    put = stack.http(
        "PUT",
        f"/mappings/{contoso['pax8_company_id']}",
        {"rmm_organization_ids": [denver["rmm_organization_id"]]},
    )
    assert put.status == 200
    view = stack.http("GET", "/mappings", query={"limit": "1000"}).body
    assert asked == [["Contoso"]]
    assert ("Contoso Ltd", "Contoso") in {
        (s["client"], s["rmm_organization_name"]) for s in view["suggestions"]
    }


def test_suggestions_too_long_to_work_out_at_once_are_asked_for_and_shown_when_ready(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trueup.services import mappings
    from trueup.store.table import TrueupTable

    answer = stack.http("POST", "/syncs")
    for event in stack.captured():  # the syncs alone: their "Sync Completed" events are lost
        if event["detail-type"] == "Sync Requested":
            FUNCTIONS["pax8_sync" if event["detail"]["source"] == "pax8" else "rmm_sync"].handler(
                event, LambdaContext()
            )
    stack.captured()
    run = stack.http("GET", f"/syncs/{answer.body['id']}").body
    assert {source["status"] for source in run["sources"].values()} == {"succeeded"}
    # As at a large MSP: more comparisons than an answer makes itself.
    monkeypatch.setattr(mappings, "LIVE_COMPARISONS", 0)
    monkeypatch.setattr(mappings, "_parties", None)
    pending = stack.http("GET", "/mappings").body
    assert pending["suggestions_pending"] is True
    assert pending["suggestions"] == [] and pending["summary"]["suggestions"] is None
    assert pending["unmapped_rmm"] and pending["summary"]["unmapped_rmm"] > 0  # the rest is all there
    # The suggestions function was asked, once however often the page asks again.
    stack.http("GET", "/mappings")
    assert stack.deliver_events() == ["suggestions"]
    ready = stack.http("GET", "/mappings").body
    assert "suggestions_pending" not in ready
    assert any(s["rmm_organization_name"] == "Dunmore Vet Clinic" for s in ready["suggestions"])
    assert ready["summary"]["suggestions"] == len(ready["suggestions"])
    # One organization's own suggestions (a picker) are always worked out at once.
    TrueupTable()._db.delete_item(  # as if they had expired
        TableName=TrueupTable().name,
        Key={"pk": {"S": "SUGGESTIONS"}, "sk": {"S": "/".join(mappings._parties.generations)}},  # type: ignore[union-attr]
    )
    monkeypatch.setattr(mappings, "_parties", None)
    dunmore = next(o for o in ready["unmapped_rmm"] if o["name"] == "Dunmore Vet Clinic")
    own = stack.http(
        "GET", "/mappings", query={"list": "suggestions", "organization": dunmore["rmm_organization_id"]}
    ).body
    assert [s["client"] for s in own["suggestions"]][:1] == ["Dunmore Veterinary Clinic"]


def test_a_snapshot_stored_whole_before_coverages_were_stored_apart_still_reads_and_exports(
    stack: Stack,
) -> None:
    from trueup.services.snapshots import summary_of
    from trueup.store.snapshot_files import put_snapshot_document
    from trueup.store.table import TrueupTable

    stack.sync()
    current = stack.whole(stack.http("POST", "/snapshots").body["id"])
    old_id = "20261101T060000000Z-0a0b0c"
    old = {**current, "id": old_id, "taken_at": "2026-11-01T06:00:00Z"}
    key = f"snapshots/2026/11/{old_id}.json.gz"  # the layout of a snapshot taken before
    put_snapshot_document(key, old)
    TrueupTable().put_snapshot({**summary_of(old), "rows_key": key})

    assert stack.whole(old_id) == old
    page = stack.http(
        "GET", f"/snapshots/{old_id}", query={"coverage": "sentinelone-control", "sort": "client"}
    )
    assert page.status == 200 and "rows_key" not in page.body
    assert clients(page) == sorted(r["client"] for r in old["coverages"][2]["rows"])
    link = stack.http(
        "POST", f"/snapshots/{old_id}/export", query={"coverage": "acronis-cyber-protect-cloud"}
    )
    assert link.status == 200 and link.body["rows"] == len(old["coverages"][1]["rows"])


LAB = "ninjaone:30"  # "Internal IT - Lab": the MSP's own organization, unmapped in every coverage


def _rows_of(snapshot: dict[str, Any], client: str) -> dict[str, dict[str, Any]]:
    """The client's row in each coverage that has one, by coverage id."""
    return {c["id"]: row for c in snapshot["coverages"] for row in c["rows"] if row["client"] == client}


def test_an_ignored_organization_leaves_every_coverage_is_listed_and_can_be_restored(stack: Stack) -> None:
    stack.sync()
    first = stack.whole(stack.http("POST", "/snapshots").body["id"])
    assert set(_rows_of(first, "Internal IT - Lab")) == {c["id"] for c in first["coverages"]}
    path = f"/ignored-organizations/{LAB}"
    assert stack.http("PUT", path, {"reason": "our own lab"}, as_="viewer").status == 403
    assert stack.http("PUT", path, {}).status == 422  # a reason is required
    assert stack.http("PUT", "/ignored-organizations/ninjaone:999", {"reason": "x"}).status == 404
    # Sent encoded, as a browser does (encodeURIComponent): the handler gets the id itself.
    ignored = stack.http("PUT", "/ignored-organizations/ninjaone%3A30", {"reason": "our own lab"})
    assert ignored.status == 200 and ignored.headers["ETag"] == '"1"'
    assert ignored.body["rmm_organization_id"] == LAB
    assert (ignored.body["name"], ignored.body["reason"]) == ("Internal IT - Lab", "our own lab")
    assert ignored.body["updated_by"] == {"subject": "u-admin", "name": "Ada Admin"}
    listed = stack.http("GET", "/ignored-organizations").body["items"]
    assert [(o["rmm_organization_id"], o["name"], o["version"]) for o in listed] == [
        (LAB, "Internal IT - Lab", 1)
    ]
    # Gone from the unmapped lists at once, and from every coverage from the next snapshot on.
    view = stack.http("GET", "/mappings").body
    assert "Internal IT - Lab" not in [o["name"] for o in view["unmapped_rmm"]]
    assert view["summary"]["unmapped_rmm"] == 4
    second = stack.whole(stack.http("POST", "/snapshots").body["id"])
    assert _rows_of(second, "Internal IT - Lab") == {}
    for before, after in zip(first["coverages"], second["coverages"], strict=True):
        assert after["summary"]["unmapped"] == before["summary"]["unmapped"] - 1
    # It cannot be mapped while ignored; restored, it is back on the next snapshot.
    company = view["unmapped_pax8"][0]["pax8_company_id"]
    refused = stack.http("PUT", f"/mappings/{company}", {"rmm_organization_ids": [LAB]})
    assert refused.status == 409 and "is ignored (not billable): restore it first" in refused.body["message"]
    assert stack.http("DELETE", path, headers={"If-Match": '"7"'}).status == 412
    assert stack.http("DELETE", path).status == 204
    assert stack.http("DELETE", path).status == 404
    third = stack.whole(stack.http("POST", "/snapshots").body["id"])
    assert set(_rows_of(third, "Internal IT - Lab")) == {c["id"] for c in third["coverages"]}
    log = stack.http("GET", "/audit", query={"kind": "organization"}).body["items"]
    assert [(e["what"], e["reason"], e["by"]["name"]) for e in log] == [
        ("Internal IT - Lab restored: billable again", None, "Ada Admin"),
        ("Internal IT - Lab ignored: not billable", "our own lab", "Ada Admin"),
    ]
    assert [e["id"] for e in stack.http("GET", "/audit", query={"client": LAB}).body["items"]] == [
        e["id"] for e in log
    ]


def test_a_rejected_suggestion_is_never_suggested_again(stack: Stack) -> None:
    stack.sync()

    def suggested() -> list[tuple[str, str]]:
        items = stack.http("GET", "/mappings", query={"list": "suggestions"}).body["suggestions"]
        return [(s["client"], s["rmm_organization_name"]) for s in items]

    pair = ("Greenleaf Accounting Pty Ltd", "Greenleaf Accounting")  # a cancelled company's namesake
    assert pair in suggested() and ("Greenleaf Accounting", "Greenleaf Accounting") in suggested()
    view = stack.http("GET", "/mappings", query={"list": "suggestions"}).body["suggestions"]
    chosen = next(s for s in view if (s["client"], s["rmm_organization_name"]) == pair)
    path = f"/rejected-suggestions/{chosen['pax8_company_id']}/{chosen['rmm_organization_id']}"
    assert stack.http("PUT", path, {"reason": "x"}, as_="viewer").status == 403
    rejected = stack.http("PUT", path, {"reason": "a cancelled entity, not this site"})
    assert rejected.status == 200 and rejected.headers["ETag"] == '"1"'
    assert pair not in suggested() and ("Greenleaf Accounting", "Greenleaf Accounting") in suggested()
    listed = stack.http("GET", "/rejected-suggestions").body["items"]
    assert [(s["client"], s["rmm_organization_name"], s["reason"]) for s in listed] == [
        (*pair, "a cancelled entity, not this site")
    ]
    # Still not suggested after the next sync; suggested again once no longer rejected.
    stack.sync()
    assert pair not in suggested()
    assert stack.http("DELETE", path).status == 204
    assert pair in suggested()
    whats = [e["what"] for e in stack.http("GET", "/audit", query={"kind": "suggestion"}).body["items"]]
    assert whats == [
        "suggestion no longer rejected: Greenleaf Accounting for Greenleaf Accounting Pty Ltd",
        "suggestion rejected: Greenleaf Accounting is not Greenleaf Accounting Pty Ltd",
    ]


def test_an_allowance_and_a_tag_rule_turn_gaps_matched_from_the_next_snapshot(stack: Stack) -> None:
    stack.sync()
    first = stack.whole(stack.http("POST", "/snapshots").body["id"])
    redwood = _rows_of(first, "Redwood Financial Advisors")[EDR]
    assert (redwood["devices"], redwood["licenses"], redwood["status"]) == (20, 14, "under_licensed")
    terms = f"/terms/{EDR}/{redwood['pax8_company_id']}"
    refusals: list[tuple[str, Any, int, str]] = [
        (terms, {"allowance": -1}, 422, "body.allowance"),
        (f"/terms/{EDR}/{LAB}", {"allowance": 5}, 409, "terms are a mapped client's"),
        (f"/terms/nothing/{redwood['pax8_company_id']}", {"allowance": 5}, 404, "no coverage"),
    ]
    for target, body, status, message in refusals:
        refused = stack.http("PUT", target, body)
        assert (refused.status, message in refused.body["message"]) == (status, True), (body, refused.body)
    assert stack.http("PUT", terms, {"allowance": 6}, as_="viewer").status == 403
    # Six devices included in Redwood's contract: 20 devices, 14 licences is matched.
    set_terms = stack.http("PUT", terms, {"allowance": 6, "reason": "6 devices included"})
    assert set_terms.status == 200 and set_terms.body["client"] == "Redwood Financial Advisors"
    # Granite Peak's two loaners are tagged not-billable in NinjaOne: a rule leaves them out of EDR.
    rule = "/rules/Not billable"
    nothing = stack.http("PUT", rule, {"coverage_ids": [EDR], "tags": []})
    assert nothing.status == 422 and "a rule needs at least one" in nothing.body["message"]
    unknown = stack.http("PUT", rule, {"tags": ["x"], "coverage_ids": ["nothing"]})
    assert unknown.status == 409 and "unknown coverage(s) nothing" in unknown.body["message"]
    assert stack.http("PUT", "/rules/ Not billable", {"tags": ["x"]}).status == 400
    made = stack.http("PUT", rule, {"tags": ["Not-Billable"], "coverage_ids": [EDR], "reason": "loaners"})
    assert made.status == 200 and made.body["tags"] == ["Not-Billable"]
    assert [r["name"] for r in stack.http("GET", "/rules").body["items"]] == ["Not billable"]
    second = stack.whole(stack.http("POST", "/snapshots").body["id"])
    redwood = _rows_of(second, "Redwood Financial Advisors")[EDR]
    assert (redwood["devices"], redwood["licenses"], redwood["variance"], redwood["status"]) == (
        20,
        14,
        0,
        "matched",
    )
    assert redwood["allowance"] == 6
    granite = _rows_of(second, "Granite Peak Construction Inc.")
    assert (granite[EDR]["devices"], granite[EDR]["licenses"], granite[EDR]["status"]) == (25, 25, "matched")
    assert granite[EDR]["excluded"]["excluded_by_rule"] == 2
    assert granite[EDR]["excluded_rules"] == {"Not billable": 2}
    # Another coverage still counts the loaners.
    assert _rows_of(second, "Granite Peak Construction Inc.")["acronis-cyber-protect-cloud"]["devices"] == 27
    summary = next(c for c in second["coverages"] if c["id"] == EDR)["summary"]
    assert summary["under_licensed"] == 8 - 2
    log = stack.http("GET", "/audit").body["items"]
    assert [(e["kind"], e["what"]) for e in log] == [
        ("rule", f"exclusion rule Not billable: leaves out devices with tags Not-Billable, in {EDR}"),
        ("terms", f"terms of Redwood Financial Advisors in {EDR}: 6 devices included"),
    ]
    # Removed, both gaps are back on the next snapshot.
    assert stack.http("DELETE", terms).status == 204 and stack.http("DELETE", rule).status == 204
    third = stack.whole(stack.http("POST", "/snapshots").body["id"])
    assert next(c for c in third["coverages"] if c["id"] == EDR)["summary"]["under_licensed"] == 8


def test_each_snapshot_exports_the_audit_entries_since_the_snapshot_before(stack: Stack) -> None:
    stack.sync()
    first = stack.http("POST", "/snapshots").body
    assert stack.http("PUT", f"/ignored-organizations/{LAB}", {"reason": "our own lab"}).status == 200
    whole = stack.whole(first["id"])
    redwood = _rows_of(whole, "Redwood Financial Advisors")[EDR]
    decided = {"kind": "dismissed", "reason": "=flat-fee contract"}  # a formula-looking reason
    assert stack.http("PUT", f"/decisions/{EDR}/{redwood['pax8_company_id']}", decided).status == 200
    second = stack.http("POST", "/snapshots").body
    assert stack.http("DELETE", f"/ignored-organizations/{LAB}").status == 204  # after: not in it

    s3 = boto3.client("s3", region_name=REGION)

    def lines(snapshot_id: str) -> list[dict[str, str]]:
        link = stack.http("POST", f"/snapshots/{snapshot_id}/audit/export").body
        assert link["key"].endswith(f"/{snapshot_id}/audit.csv")
        assert link["file_name"].startswith("trueup-audit-")
        text = s3.get_object(Bucket=stack.env["TRUEUP_BUCKET"], Key=link["key"])["Body"].read()
        rows = list(csv.DictReader(io.StringIO(text.decode("utf-8-sig"))))
        assert link["rows"] == len(rows)
        return rows

    assert lines(first["id"]) == []  # nothing changed before the first snapshot
    entries = lines(second["id"])
    assert [(e["Who"], e["Kind"], e["What"], e["Reason"]) for e in entries] == [
        ("Ada Admin", "organization", "Internal IT - Lab ignored: not billable", "our own lab"),
        (
            "Ada Admin",
            "decision",
            f"decision on Redwood Financial Advisors in {EDR}: dismissed",
            "'=flat-fee contract",
        ),
    ]
    assert json.loads(entries[1]["After"])["kind"] == "dismissed" and entries[1]["Before"] == ""
    download = stack.http("GET", f"/snapshots/{second['id']}/audit.csv")
    assert download.status == 303 and "/audit.csv" in download.headers["Location"]
    assert stack.http("POST", "/snapshots/20200101T000000000Z-000000/audit/export").status == 404
