from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.credentials import VendorCredentials
from infra.local.stack import LocalStack, StackConfig, StackError
from tests.local.tiny_stack import write_stack
from trueup.errors import InvalidInput
from trueup.vendors.credentials import ClientCredentials

CREDENTIALS = VendorCredentials(
    pax8=ClientCredentials("pax8-id", "pax8-secret"),
    rmm={"ninjaone": ClientCredentials("ninja-id", "ninja-secret")},
)


def config_for(root: Path, **overrides: Any) -> StackConfig:
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "port": 0,
        "template_path": write_stack(root / "repo"),
        "demo": False,
        "credentials": CREDENTIALS,
        "first_sync": False,
        "retry_delays": (0.05, 0.05),
        "max_workers": 2,
    }
    values.update(overrides)
    return StackConfig(**values)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    stack = LocalStack(config_for(tmp_path), progress=lambda message: None)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def call(stack: LocalStack, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    assert stack.server is not None
    payload = None if body is None else json.dumps(body).encode()
    status, data = request(stack.server.port, method, path, payload, {"Content-Type": "application/json"})
    return status, json.loads(data) if data else None


def eventually(check: Callable[[], Any], deadline: float = 20.0) -> Any:
    """Poll a background effect (event delivery) until it shows, or fail at the deadline."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("the expected effect never showed")
        time.sleep(0.05)


def item(stack: LocalStack, pk: str, sk: str) -> dict[str, Any] | None:
    assert stack.standin is not None and stack.resources is not None
    answer = stack.standin.client("dynamodb").get_item(
        TableName=stack.resources.tables["Table"], Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    )
    found: dict[str, Any] | None = answer.get("Item")
    return found


def queues_drained(stack: LocalStack) -> bool:
    assert stack.standin is not None and stack.events is not None
    sqs = stack.standin.client("sqs")
    for subscription in stack.events.subscriptions:
        attributes = sqs.get_queue_attributes(
            QueueUrl=subscription.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if any(int(v) for v in attributes.values()):
            return False
    return True


def test_resources_are_created_from_the_templates_definitions(stack):
    assert stack.standin is not None and stack.resources is not None
    table = stack.standin.client("dynamodb").describe_table(TableName=stack.resources.tables["Table"])[
        "Table"
    ]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    s3 = stack.standin.client("s3")
    assert s3.get_bucket_versioning(Bucket=stack.resources.buckets["Bucket"])["Status"] == "Enabled"
    assert stack.resources.buses == {"Bus": "trueup-local-events"}
    rules = stack.standin.client("events").list_rules(EventBusName="trueup-local-events")["Rules"]
    assert [json.loads(r["EventPattern"]) for r in rules] == [{"source": ["test"], "detail-type": ["Ping"]}]
    env = stack.environments["WriterFunction"]
    assert env["TABLE"] == stack.resources.tables["Table"]
    assert env["BUS"] == "trueup-local-events"
    assert env["PAX8_SECRET_ID"] == stack.resources.secrets["Pax8Secret"]


def test_handlers_read_the_vendor_credentials_from_the_secrets(stack):
    assert call(stack, "GET", "/secrets/pax8") == (
        200,
        {"client_id": "pax8-id", "client_secret": "pax8-secret"},
    )
    assert call(stack, "GET", "/secrets/ninjaone") == (
        200,
        {"client_id": "ninja-id", "client_secret": "ninja-secret"},
    )
    for env in stack.environments.values():
        assert "pax8-secret" not in json.dumps(env)


def test_a_crashing_handler_answers_500_and_unknown_routes_404(stack):
    assert call(stack, "POST", "/crash") == (500, {"message": "Internal Server Error"})
    assert call(stack, "GET", "/items") == (404, {"message": "Not Found"})


def test_events_reach_the_function_whose_rule_matches_as_eventbridge_delivers_them(stack):
    entries = [
        {"Source": "elsewhere", "DetailType": "Ping", "Detail": {"id": "wrong-source"}},
        {"Source": "test", "DetailType": "Pong", "Detail": {"id": "wrong-type"}},
        {"Source": "test", "DetailType": "Ping", "Detail": {"id": "e1", "n": 1}},
    ]
    assert call(stack, "POST", "/events", entries) == (202, {"failed": 0})
    delivered = eventually(lambda: item(stack, "event", "e1"))
    event = json.loads(delivered["event"]["S"])
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert (event["source"], event["detail-type"], event["detail"]) == ("test", "Ping", {"id": "e1", "n": 1})
    assert (event["account"], event["region"], event["version"]) == ("123456789012", "us-east-1", "0")
    eventually(lambda: queues_drained(stack))
    assert item(stack, "attempts", "wrong-source") is None
    assert item(stack, "attempts", "wrong-type") is None


def test_a_failed_event_is_retried_twice_more_then_recorded_in_the_on_failure_destination(stack):
    entries = [
        {"Source": "test", "DetailType": "Ping", "Detail": {"id": "flaky", "fail_times": 2}},
        {"Source": "test", "DetailType": "Ping", "Detail": {"id": "broken", "fail_times": 99}},
    ]
    assert call(stack, "POST", "/events", entries)[0] == 202
    eventually(lambda: item(stack, "event", "flaky"))
    eventually(lambda: queues_drained(stack))
    assert (item(stack, "attempts", "flaky") or {})["n"] == {"N": "3"}
    assert (item(stack, "attempts", "broken") or {})["n"] == {"N": "3"}
    assert item(stack, "event", "broken") is None
    # As Lambda does: the event and the function's error, in its on-failure destination (a real queue).
    sqs = stack.standin.client("sqs")
    url = sqs.get_queue_url(QueueName="trueup-local-FailedInvocations")["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"]["detail"] == {"id": "broken", "fail_times": 99}
    assert record["responsePayload"]["errorMessage"] == "failing attempt 3 on purpose"


def test_one_data_dir_serves_one_stack_at_a_time(stack, tmp_path):
    second = LocalStack(config_for(tmp_path), progress=lambda message: None)
    with pytest.raises(StackError, match="another trueup stack"):
        second.start()
    assert stack.server is not None  # the first one is unharmed
    assert call(stack, "GET", "/secrets/pax8")[0] == 200


def test_stack_json_says_where_everything_listens_while_it_runs(stack, tmp_path):
    described = json.loads((tmp_path / "data" / "stack.json").read_text())
    assert described["url"] == stack.url
    assert described["port"] == stack.server.port
    assert described["aws_endpoint_url"].startswith("http://127.0.0.1:")
    assert described["demo"] is None
    stack.stop()
    assert not (tmp_path / "data" / "stack.json").exists()


def test_configuration_comes_from_the_environment(tmp_path):
    none = StackConfig.from_environment({"TRUEUP_DATA_DIR": str(tmp_path)})
    assert (none.demo, none.port, none.data_dir) == (True, 3000, tmp_path.resolve())
    full = {
        "PAX8_CLIENT_ID": "a",
        "PAX8_CLIENT_SECRET": "b",
        "NINJAONE_CLIENT_ID": "c",
        "NINJAONE_CLIENT_SECRET": "d",
        "NINJAONE_URL": "eu",
        "TRUEUP_PORT": "3100",
    }
    real = StackConfig.from_environment(full)
    assert (real.demo, real.port, dict(real.endpoint_overrides)) == (False, 3100, {"NINJAONE_URL": "eu"})
    assert real.credentials is not None and real.credentials.ninjaone.client_secret == "d"
    assert StackConfig.from_environment({**full, "TRUEUP_DEMO": "1"}).demo is True
    with pytest.raises(InvalidInput, match="NINJAONE_CLIENT_ID, NINJAONE_CLIENT_SECRET not set"):
        StackConfig.from_environment({"PAX8_CLIENT_ID": "a", "PAX8_CLIENT_SECRET": "b"})
    # Several RMMs: each one's credentials, as its vendor names them.
    assert none.rmm_sources == ("ninjaone",) and none.sync_sources == ("pax8", "ninjaone")
    both = StackConfig.from_environment(
        {**full, "TRUEUP_RMM": "ninjaone, datto", "DATTO_API_KEY": "e", "DATTO_API_SECRET": "f"}
    )
    assert both.rmm_sources == ("ninjaone", "datto") and both.sync_sources == ("pax8", "ninjaone", "datto")
    assert both.credentials is not None and both.credentials.rmm["datto"].client_secret == "f"
    with pytest.raises(InvalidInput, match="DATTO_API_KEY, DATTO_API_SECRET not set"):
        StackConfig.from_environment({**full, "TRUEUP_RMM": "ninjaone,datto"})
    with pytest.raises(InvalidInput, match="TRUEUP_RMM must name one or more of ninjaone, datto"):
        StackConfig.from_environment({"TRUEUP_RMM": "kaseya"})
    with pytest.raises(InvalidInput, match="TRUEUP_PORT must be a port number"):
        StackConfig.from_environment({"TRUEUP_PORT": "http"})
    assert (none.demo_clients, none.demo_devices_per_client) == (None, 10)
    large = StackConfig.from_environment({"TRUEUP_DEMO_CLIENTS": "2000", "TRUEUP_DEMO_DEVICES": "50"})
    assert (large.demo_clients, large.demo_devices_per_client) == (2000, 50)
    for name, value in (
        ("TRUEUP_DEMO_CLIENTS", "0"),
        ("TRUEUP_DEMO_CLIENTS", "lots"),
        ("TRUEUP_DEMO_DEVICES", "501"),
    ):
        with pytest.raises(InvalidInput, match=f"{name} must be a whole number"):
            StackConfig.from_environment({name: value})
    assert none.duplicate_events is False
    assert StackConfig.from_environment({"TRUEUP_DUPLICATE_EVENTS": "1"}).duplicate_events is True
    with pytest.raises(InvalidInput, match="TRUEUP_DUPLICATE_EVENTS must be 1"):
        StackConfig.from_environment({"TRUEUP_DUPLICATE_EVENTS": "twice"})


def test_demo_mode_refuses_a_template_that_cannot_point_handlers_at_the_demo_upstreams(tmp_path):
    stack = LocalStack(config_for(tmp_path, demo=True, credentials=None), progress=lambda message: None)
    with pytest.raises(StackError, match="no function declares NINJAONE_URL, PAX8_API_URL, PAX8_TOKEN_URL"):
        stack.start()
    assert stack.demo is None and stack.standin is None  # what had started was stopped
