"""AWS resources for handler tests, created under moto from template.yaml's own definitions."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
REGION = "us-east-1"


def create_resources(secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """Create the table, bucket, bus and secrets the template declares; returns the function environment."""
    table = RESOURCES["Table"]["Properties"]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="trueup-test",
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        BillingMode=table["BillingMode"],
    )
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="trueup-test-data")
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name="trueup-test-events")
    assert RESOURCES["NotificationTopic"]["Type"] == "AWS::SNS::Topic"
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="trueup-test-notifications")
    sm = boto3.client("secretsmanager", region_name=REGION)
    env = {
        "TRUEUP_TABLE": "trueup-test",
        "TRUEUP_BUCKET": "trueup-test-data",
        "TRUEUP_EVENT_BUS": "trueup-test-events",
        "TRUEUP_TOPIC_ARN": topic["TopicArn"],
    }
    for logical_id, env_var in (("Pax8Secret", "PAX8_SECRET_ID"), ("NinjaOneSecret", "NINJAONE_SECRET_ID")):
        assert RESOURCES[logical_id]["Type"] == "AWS::SecretsManager::Secret"
        arn = sm.create_secret(
            Name=f"trueup-test-{logical_id}", SecretString=json.dumps(secrets[logical_id])
        )["ARN"]
        env[env_var] = arn
    return env


class CapturedEvents:
    """Every EventBridgeRule of the template, each with an SQS queue of its own as its target, as
    EventBridge routes to functions: `routed()` answers (function folder, event) for each delivery a
    rule made, `__call__()` the events alone (each once). Both check every trueup event, whether a
    rule routes it or not, against its JSON Schema (shared/events/)."""

    def __init__(self, env: dict[str, str]) -> None:
        events = boto3.client("events", region_name=REGION)
        self._sqs = boto3.client("sqs", region_name=REGION)
        bus = env["TRUEUP_EVENT_BUS"]
        self._queues: dict[str, str] = {}  # queue URL -> the function folder its rule delivers to
        for logical_id, resource in RESOURCES.items():
            for name, event in (resource.get("Properties", {}).get("Events") or {}).items():
                if event["Type"] != "EventBridgeRule":
                    continue
                rule = f"{logical_id}-{name}"
                url, arn = self._queue(f"captured-{rule}"[:80])
                events.put_rule(
                    Name=rule, EventBusName=bus, EventPattern=json.dumps(event["Properties"]["Pattern"])
                )
                events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": logical_id, "Arn": arn}])
                self._queues[url] = resource["Properties"]["CodeUri"].strip("/").rsplit("/", 1)[-1]
        self._every, every_arn = self._queue("every-trueup-event")
        events.put_rule(Name="every-trueup-event", EventBusName=bus, EventPattern='{"source": ["trueup"]}')
        events.put_targets(
            Rule="every-trueup-event", EventBusName=bus, Targets=[{"Id": "all", "Arn": every_arn}]
        )

    def _queue(self, name: str) -> tuple[str, str]:
        url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return url, arn

    def _drain(self, url: str) -> list[dict[str, Any]]:
        out = []
        while messages := self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                event = json.loads(message["Body"])
                # moto leaves out two envelope fields EventBridge always sends to Lambda.
                event.setdefault("version", "0")
                event.setdefault("account", "123456789012")
                out.append(event)
                self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return out

    def routed(self) -> list[tuple[str, dict[str, Any]]]:
        for published in self._drain(self._every):
            assert_matches_its_schema(published["detail-type"], published["detail"])
        return [(function, event) for url, function in self._queues.items() for event in self._drain(url)]

    def __call__(self) -> list[dict[str, Any]]:
        unique: dict[str, dict[str, Any]] = {}
        for _, event in self.routed():
            unique.setdefault(event["id"], event)
        return list(unique.values())


EVENT_SCHEMAS = ROOT / "shared" / "events"


def assert_matches_its_schema(detail_type: str, detail: Any) -> None:
    """An event's detail is what its JSON Schema (shared/events/<detail-type>.json) says."""
    import jsonschema

    path = EVENT_SCHEMAS / (detail_type.lower().replace(" ", "-") + ".json")
    assert path.exists(), f"a {detail_type!r} event was published, but it has no schema in {EVENT_SCHEMAS}"
    schema = json.loads(path.read_text())
    jsonschema.validate(detail, schema, format_checker=jsonschema.FormatChecker())


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py the way Lambda does (its CodeUri is the code root)."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"function_{name}_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def capture_notifications(topic_arn: str) -> Callable[[], list[dict[str, Any]]]:
    """Subscribe a queue to the notification topic; returns a reader of what arrived since the last
    read: [{"subject", "text"}] in order."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="captured-notifications")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns", region_name=REGION).subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    def read() -> list[dict[str, Any]]:
        out = []
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                envelope = json.loads(message["Body"])
                out.append({"subject": envelope.get("Subject"), "text": envelope["Message"]})
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return out

    return read
