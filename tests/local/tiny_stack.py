"""Helpers for the local stack's tests: tiny templates and handler modules in a temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_template(root: Path, body: str) -> Path:
    path = root / "template.yaml"
    path.write_text(
        'AWSTemplateFormatVersion: "2010-09-09"\nTransform: AWS::Serverless-2016-10-31\n'
        + textwrap.dedent(body),
        encoding="utf-8",
    )
    return path


def write_handler(root: Path, folder: str, source: str, module: str = "app") -> Path:
    code = root / "functions" / folder
    code.mkdir(parents=True, exist_ok=True)
    (code / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return code


# A small stack for the mechanics: a table, a versioned bucket, a bus, two secrets, a function
# serving HTTP that writes and publishes, and one that events reach.
STACK_TEMPLATE = """
Globals:
  Function:
    Timeout: 20
    # A function imports only its code and its layers, as in Lambda: boto3 comes from this one.
    Layers:
      - !Ref Deps
    Environment:
      Variables:
        TABLE: !Ref Table
        BUCKET: !Ref Bucket
        BUS: !Ref Bus
Resources:
  Deps:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
      CompatibleRuntimes: [python3.12]
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      VersioningConfiguration: {Status: Enabled}
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub ${AWS::StackName}-events
  Pax8Secret:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString:
        SecretStringTemplate: '{"client_id": ""}'
        GenerateStringKey: client_secret
  NinjaOneSecret:
    Type: AWS::SecretsManager::Secret
  WriterFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/writer/
      Handler: app.handler
      Environment:
        Variables:
          PAX8_SECRET_ID: !Ref Pax8Secret
          NINJAONE_SECRET_ID: !Ref NinjaOneSecret
      Events:
        PutItem: {Type: HttpApi, Properties: {Method: POST, Path: /items}}
        PutObject: {Type: HttpApi, Properties: {Method: PUT, Path: "/objects/{key}"}}
        Publish: {Type: HttpApi, Properties: {Method: POST, Path: /events}}
        Secret: {Type: HttpApi, Properties: {Method: GET, Path: "/secrets/{name}"}}
        Crash: {Type: HttpApi, Properties: {Method: POST, Path: /crash}}
  FailedInvocations:
    Type: AWS::SQS::Queue
  ListenerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/listener/
      Handler: app.handler
      EventInvokeConfig:
        MaximumRetryAttempts: 2
        DestinationConfig:
          OnFailure:
            Type: SQS
            Destination: !GetAtt FailedInvocations.Arn
      Events:
        Ping:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [test]
              detail-type: [Ping]
"""

WRITER = """
import base64
import json
import os

import boto3

_clients = {}


def client(name):
    if name not in _clients:
        _clients[name] = boto3.client(name)
    return _clients[name]


def binaries(value):
    # Binary attributes travel as base64 in the request.
    if isinstance(value, dict):
        out = {}
        for kind, inner in value.items():
            if kind == "B":
                out[kind] = base64.b64decode(inner)
            elif kind == "BS":
                out[kind] = [base64.b64decode(b) for b in inner]
            else:
                out[kind] = binaries(inner)
        return out
    if isinstance(value, list):
        return [binaries(v) for v in value]
    return value


def handler(event, context):
    route = event["routeKey"]
    if route == "POST /items":
        item = binaries(json.loads(event["body"])["item"])
        client("dynamodb").put_item(TableName=os.environ["TABLE"], Item=item)
        return {"statusCode": 201, "body": "{}"}
    if route == "PUT /objects/{key}":
        headers = event["headers"]
        client("s3").put_object(
            Bucket=os.environ["BUCKET"],
            Key="data/" + event["pathParameters"]["key"],
            Body=base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode(),
            ContentType=headers.get("content-type", "application/octet-stream"),
            Metadata={"origin": headers.get("x-origin", "test")},
        )
        return {"statusCode": 201, "body": "{}"}
    if route == "POST /events":
        entries = json.loads(event["body"])
        for entry in entries:
            entry["EventBusName"] = os.environ["BUS"]
            entry["Detail"] = json.dumps(entry["Detail"])
        answer = client("events").put_events(Entries=entries)
        return {"statusCode": 202, "body": json.dumps({"failed": answer["FailedEntryCount"]})}
    if route == "GET /secrets/{name}":
        variable = event["pathParameters"]["name"].upper() + "_SECRET_ID"
        value = client("secretsmanager").get_secret_value(SecretId=os.environ[variable])["SecretString"]
        return {"statusCode": 200, "body": value}
    if route == "POST /crash":
        raise RuntimeError("crashed on purpose")
    return {"statusCode": 500, "body": "unexpected route"}
"""

LISTENER = """
import json
import os

import boto3


def handler(event, context):
    # Records the event as delivered; the detail may ask for failures first (retry tests).
    table = boto3.client("dynamodb")
    detail = event["detail"]
    attempt = table.update_item(
        TableName=os.environ["TABLE"],
        Key={"pk": {"S": "attempts"}, "sk": {"S": detail["id"]}},
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]["n"]["N"]
    if int(attempt) <= detail.get("fail_times", 0):
        raise RuntimeError(f"failing attempt {attempt} on purpose")
    table.put_item(
        TableName=os.environ["TABLE"],
        Item={"pk": {"S": "event"}, "sk": {"S": detail["id"]}, "event": {"S": json.dumps(event)}},
    )
"""


def write_stack(root: Path) -> Path:
    # The project's own layer requirements: the local stack installs them once for both.
    (root / "layer").mkdir(parents=True, exist_ok=True)
    (root / "layer" / "requirements.txt").write_bytes(
        (REPO_ROOT / "shared" / "requirements.txt").read_bytes()
    )
    write_handler(root, "writer", WRITER)
    write_handler(root, "listener", LISTENER)
    return write_template(root, STACK_TEMPLATE)
