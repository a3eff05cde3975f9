from __future__ import annotations

import base64
import gzip
import http.client
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.http_gateway import (
    Gateway,
    GatewayRequest,
    GatewayServer,
    MalformedResponse,
    build_event,
    map_response,
    response_for,
)
from infra.local.runtime import Outcome
from infra.local.template import Route, RouteMatch, Router, Schedule

NOW = datetime(2026, 11, 25, 13, 4, 5, 678000, tzinfo=UTC)
ROUTE = Route("GET", "/snapshots/{snapshot_id}", "SnapshotFunction", "GetSnapshot")


def request(**overrides: Any) -> GatewayRequest:
    values: dict[str, Any] = {
        "method": "GET",
        "target": "/snapshots/s%201?status=matched&status=unmapped&coverage=edr&empty=",
        "headers": [
            ("Host", "127.0.0.1:3000"),
            ("User-Agent", "curl/8.5"),
            ("Accept", "application/json"),
            ("X-Multi", "a"),
            ("x-multi", "b"),
            ("Cookie", "session=abc; theme=dark"),
        ],
        "body": b"",
        "source_ip": "127.0.0.1",
    }
    values.update(overrides)
    return GatewayRequest(**values)


def test_event_is_payload_format_2_0():
    match = RouteMatch(ROUTE, {"snapshot_id": "s 1"})
    event = build_event(request(), match, request_id="REQ1", now=NOW)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /snapshots/{snapshot_id}"
    assert event["rawPath"] == "/snapshots/s%201"
    assert event["rawQueryString"] == "status=matched&status=unmapped&coverage=edr&empty="
    assert event["queryStringParameters"] == {"status": "matched,unmapped", "coverage": "edr", "empty": ""}
    assert event["pathParameters"] == {"snapshot_id": "s 1"}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    headers = event["headers"]
    assert headers["x-multi"] == "a,b"
    assert headers["host"] == "127.0.0.1:3000"
    assert "cookie" not in headers
    assert all(name == name.lower() for name in headers)
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    assert event["requestContext"] == {
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": "127.0.0.1:3000",
        "domainPrefix": "127",
        "http": {
            "method": "GET",
            "path": "/snapshots/s 1",
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "curl/8.5",
        },
        "requestId": "REQ1",
        "routeKey": "GET /snapshots/{snapshot_id}",
        "stage": "$default",
        "time": "25/Nov/2026:13:04:05 +0000",
        "timeEpoch": 1795611845678,
    }


def test_event_without_query_or_parameters_leaves_them_out():
    match = RouteMatch(Route("POST", "/syncs", "ApiFunction", "StartSync"), {})
    event = build_event(
        request(method="POST", target="/syncs", headers=[("Host", "h")]), match, request_id="R", now=NOW
    )
    assert "queryStringParameters" not in event
    assert "pathParameters" not in event
    assert "cookies" not in event
    assert event["rawQueryString"] == ""


def test_text_bodies_stay_text_and_binary_bodies_are_base64():
    match = RouteMatch(Route("PUT", "/settings", "ApiFunction", "PutSettings"), {})
    text = build_event(
        request(
            method="PUT",
            body='{"tolerance": 1, "name": "café"}'.encode(),
            headers=[("Content-Type", "application/json; charset=utf-8")],
        ),
        match,
        request_id="R",
        now=NOW,
    )
    assert text["isBase64Encoded"] is False
    assert json.loads(text["body"]) == {"tolerance": 1, "name": "café"}

    payload = gzip.compress(b'{"tolerance": 1}')
    binary = build_event(
        request(
            method="PUT",
            body=payload,
            headers=[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
        ),
        match,
        request_id="R",
        now=NOW,
    )
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == payload

    octets = build_event(
        request(method="PUT", body=b"\x00\xff", headers=[("Content-Type", "application/octet-stream")]),
        match,
        request_id="R",
        now=NOW,
    )
    assert octets["isBase64Encoded"] is True and base64.b64decode(octets["body"]) == b"\x00\xff"


def test_response_mapping_takes_status_headers_cookies_and_base64_bodies():
    body = gzip.compress(b'{"rows": []}')
    response = map_response(
        {
            "statusCode": 201,
            "headers": {
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Content-Length": "1",
            },
            "cookies": ["a=1; Path=/", "b=2"],
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
    )
    assert response.status == 201
    assert response.body == body
    assert ("Content-Encoding", "gzip") in response.headers
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["a=1; Path=/", "b=2"]
    assert not any(k.lower() == "content-length" for k, _ in response.headers)


def test_an_answer_without_status_code_is_a_json_200():
    response = map_response({"id": "r1", "sources": {}})
    assert response.status == 200
    assert ("Content-Type", "application/json") in response.headers
    assert json.loads(response.body) == {"id": "r1", "sources": {}}


@pytest.mark.parametrize(
    "answer",
    [
        {"statusCode": "teapot"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "!!", "isBase64Encoded": True},
        {"statusCode": 200, "headers": {"X": "a\r\nInjected: 1"}},
    ],
)
def test_malformed_answers_are_rejected(answer):
    with pytest.raises(MalformedResponse):
        map_response(answer)


def test_function_failures_map_to_api_gateway_answers():
    crash = Outcome("error", "r", 1.0, error={"errorType": "ValueError", "errorMessage": "boom"})
    timeout = Outcome("timeout", "r", 1.0, error={"errorType": "Sandbox.Timedout", "errorMessage": "late"})
    malformed = Outcome("ok", "r", 1.0, result={"statusCode": 99})
    for outcome, status, message in (
        (crash, 500, "Internal Server Error"),
        (timeout, 504, "Gateway Timeout"),
        (malformed, 500, "Internal Server Error"),
    ):
        response = response_for(outcome)
        assert response.status == status
        assert json.loads(response.body) == {"message": message}


class Recorder:
    """Stands in for the runtime: records the events and answers what the test says."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], bool]] = []
        self.answer: Any = {"statusCode": 200, "body": "ok"}

    def __call__(self, function: str, event: dict[str, Any], may_write: bool) -> Outcome:
        self.calls.append((function, event, may_write))
        return Outcome("ok", "req", 1.0, result=self.answer)


@pytest.fixture
def served() -> Iterator[tuple[GatewayServer, Recorder]]:
    recorder = Recorder()
    routes = [
        Route("GET", "/syncs", "ApiFunction", "ListSyncs"),
        Route("POST", "/syncs", "ApiFunction", "StartSync"),
        Route("GET", "/snapshots/latest", "SnapshotFunction", "LatestSnapshot"),
    ]
    schedules = [Schedule("SnapshotFunction", "Monthly", "cron(0 6 1 * ? *)", {"trigger": "schedule"})]
    server = GatewayServer(Gateway(Router(routes), recorder, schedules), port=0)
    server.start()
    try:
        yield server, recorder
    finally:
        server.stop()


def test_requests_reach_the_routes_function_over_keep_alive_http(served):
    server, recorder = served
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    recorder.answer = {
        "statusCode": 202,
        "headers": {"content-type": "application/json"},
        "body": '{"id":"r1"}',
        "cookies": ["a=1", "b=2"],
    }
    connection.request(
        "POST", "/syncs", body=b'{"sources":["pax8"]}', headers={"Content-Type": "application/json"}
    )
    first = connection.getresponse()
    assert first.status == 202
    assert first.getheader("Content-Length") == str(len(b'{"id":"r1"}'))
    assert first.read() == b'{"id":"r1"}'
    assert first.msg.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert first.getheader("Apigw-Requestid")

    recorder.answer = {"statusCode": 200, "body": "[]"}
    connection.request("GET", "/syncs?limit=5")  # the same connection: keep-alive
    second = connection.getresponse()
    assert (second.status, second.read()) == (200, b"[]")
    connection.close()

    (f1, e1, w1), (f2, e2, w2) = recorder.calls
    assert (f1, w1, e1["routeKey"], json.loads(e1["body"])) == (
        "ApiFunction",
        True,
        "POST /syncs",
        {"sources": ["pax8"]},
    )
    assert (f2, w2, e2["queryStringParameters"]) == ("ApiFunction", False, {"limit": "5"})


def test_a_204_carries_no_body_and_the_next_response_on_the_connection_is_intact(served):
    server, recorder = served
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    recorder.answer = {"statusCode": 204, "headers": {"content-type": "application/json"}, "body": "null"}
    connection.request("POST", "/syncs")
    empty = connection.getresponse()
    assert (empty.status, empty.getheader("Content-Length"), empty.read()) == (204, None, b"")
    recorder.answer = {"statusCode": 200, "body": "[]"}
    connection.request("GET", "/syncs")  # keep-alive: a stray "null" would corrupt this status line
    after = connection.getresponse()
    assert (after.status, after.read()) == (200, b"[]")
    connection.close()


def test_a_chunked_request_body_arrives_whole(served):
    server, recorder = served
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request(
        "POST",
        "/syncs",
        body=iter([b'{"sources":', b' ["rmm"]}']),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    assert connection.getresponse().status == 200
    assert json.loads(recorder.calls[0][1]["body"]) == {"sources": ["rmm"]}


def test_a_route_only_in_code_answers_404(served):
    server, recorder = served
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for method, path in (("GET", "/openapi.json"), ("DELETE", "/syncs"), ("GET", "/_local/nothing")):
        connection.request(method, path)
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (404, {"message": "Not Found"})
    assert recorder.calls == []


def test_schedules_fire_on_request(served):
    server, recorder = served
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/_local/schedules")
    listing = json.loads(connection.getresponse().read())
    assert listing["schedules"][0]["fire"] == "POST /_local/schedules/SnapshotFunction/Monthly"

    recorder.answer = {"id": "snap-1", "trigger": "schedule"}
    connection.request("POST", "/_local/schedules/SnapshotFunction/Monthly")
    fired = connection.getresponse()
    assert (fired.status, json.loads(fired.read())) == (200, {"id": "snap-1", "trigger": "schedule"})
    assert recorder.calls == [("SnapshotFunction", {"trigger": "schedule"}, True)]

    connection.request("POST", "/_local/schedules/SnapshotFunction/Weekly")
    missing = connection.getresponse()
    assert missing.status == 404
    assert "SnapshotFunction/Monthly" in json.loads(missing.read())["message"]


def test_a_schedule_input_gets_the_scheduler_context_attributes_filled_in():
    from datetime import UTC, datetime

    from infra.local.http_gateway import scheduler_input
    from infra.local.template import Schedule

    daily = Schedule(
        "CycleFunction",
        "DailySync",
        "cron(0 5 * * ? *)",
        {
            "trigger": "daily-sync",
            "scheduled_time": "<aws.scheduler.scheduled-time>",
            "attempt": "<aws.scheduler.attempt-number>",
            "nested": ["<aws.scheduler.scheduled-time>"],
        },
    )
    event = scheduler_input(daily, datetime(2026, 12, 2, 5, 0, 7, 123, tzinfo=UTC))
    assert event == {
        "trigger": "daily-sync",
        "scheduled_time": "2026-12-02T05:00:07Z",
        "attempt": "1",
        "nested": ["2026-12-02T05:00:07Z"],
    }
    assert daily.input["scheduled_time"] == "<aws.scheduler.scheduled-time>"  # the template's, untouched
