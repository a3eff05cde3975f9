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


def capture_rule_events(env: dict[str, str]) -> Callable[[], list[dict[str, Any]]]:
    """Route every EventBridgeRule of the template to one SQS queue; returns a reader of what arrived."""
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="captured-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for logical_id, resource in RESOURCES.items():
        for name, event in (resource.get("Properties", {}).get("Events") or {}).items():
            if event["Type"] != "EventBridgeRule":
                continue
            rule = f"{logical_id}-{name}"
            events.put_rule(
                Name=rule,
                EventBusName=env["TRUEUP_EVENT_BUS"],
                EventPattern=json.dumps(event["Properties"]["Pattern"]),
            )
            events.put_targets(
                Rule=rule,
                EventBusName=env["TRUEUP_EVENT_BUS"],
                Targets=[{"Id": logical_id, "Arn": queue_arn}],
            )

    # Every trueup event, whether a rule routes it or not, is held to its JSON Schema (shared/events/).
    every_url = sqs.create_queue(QueueName="every-trueup-event")["QueueUrl"]
    every_arn = sqs.get_queue_attributes(QueueUrl=every_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="every-trueup-event", EventBusName=env["TRUEUP_EVENT_BUS"], EventPattern='{"source": ["trueup"]}'
    )
    events.put_targets(
        Rule="every-trueup-event",
        EventBusName=env["TRUEUP_EVENT_BUS"],
        Targets=[{"Id": "all", "Arn": every_arn}],
    )

    def check_schemas() -> None:
        while messages := sqs.receive_message(QueueUrl=every_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                published = json.loads(message["Body"])
                assert_matches_its_schema(published["detail-type"], published["detail"])
                sqs.delete_message(QueueUrl=every_url, ReceiptHandle=message["ReceiptHandle"])

    def read() -> list[dict[str, Any]]:
        check_schemas()
        out: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return out
            for message in messages:
                event = json.loads(message["Body"])
                # moto leaves out two envelope fields EventBridge always sends to Lambda.
                event.setdefault("version", "0")
                event.setdefault("account", "123456789012")
                out.append(event)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    return read


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
