"""template.yaml is deployable as written: cfn-lint passes before and after the SAM transform, `sam build`
puts the layer where Lambda looks, and what a reviewer would check by hand holds (storage kept and
private, the API behind IAM, one scoped policy per function, credentials only in Secrets Manager)."""

from __future__ import annotations

import ast
import copy
import json
import re
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.template.offline_sam import (
    AWS_MANAGED_POLICIES,
    LAMBDA_PYTHON,
    REGION,
    ROOT,
    TEMPLATE_PATH,
    Template,
    lint,
    load_template,
    transform_offline,
)
from trueup.api.routes import PUBLIC_ROUTES
from trueup.events import (
    ALL_EVENTS,
    EVENT_SOURCE,
    CycleStopped,
    CycleSynced,
    Event,
    ExportsReady,
    SnapshotCreated,
    SuggestionsRequested,
    SyncCompleted,
    SyncFailed,
    SyncHeld,
    SyncRequested,
)
from trueup.sources import RMM_NAMES
from trueup.store.generations import GenerationSource, generation_key
from trueup.store.snapshot_files import coverage_key

Resource = dict[str, Any]

LAMBDA_RUNTIME = f"python{LAMBDA_PYTHON}"
BUCKET_ARN = "${DataBucket.Arn}"
# What each function may do with the bucket. A new function must say here what it reads and writes.
S3_READS = {
    # mappings read the current generations, and the suggestions worked out for them
    "ApiFunction": {f"{BUCKET_ARN}/generations/*", f"{BUCKET_ARN}/suggestions/*"},
    "SnapshotFunction": {f"{BUCKET_ARN}/generations/*", f"{BUCKET_ARN}/snapshots/*"},
    "ExportFunction": {f"{BUCKET_ARN}/snapshots/*", f"{BUCKET_ARN}/exports/*"},
    "Pax8SyncFunction": set(),
    # the other RMMs' current data: which machines two RMMs may both see (whose serials to read)
    "RmmSyncFunction": {f"{BUCKET_ARN}/generations/rmm/*"},
    "PageSignInFunction": set(),
    "SuggestionsFunction": {f"{BUCKET_ARN}/generations/*"},
    "NotifyFunction": {f"{BUCKET_ARN}/snapshots/*"},  # the largest gaps it tells
    "CycleFunction": set(),
}
S3_WRITES = {
    "ApiFunction": set(),
    "SnapshotFunction": {f"{BUCKET_ARN}/snapshots/*"},
    "ExportFunction": {f"{BUCKET_ARN}/exports/*"},
    "Pax8SyncFunction": {f"{BUCKET_ARN}/generations/pax8/*"},
    "RmmSyncFunction": {f"{BUCKET_ARN}/generations/rmm/*"},
    "PageSignInFunction": set(),
    "SuggestionsFunction": {f"{BUCKET_ARN}/suggestions/*"},
    "NotifyFunction": set(),
    "CycleFunction": set(),
}
S3_TAGGING = {
    "Pax8SyncFunction": S3_WRITES["Pax8SyncFunction"],
    "RmmSyncFunction": S3_WRITES["RmmSyncFunction"],
    "ApiFunction": {f"{BUCKET_ARN}/generations/*"},
}
SECRET_READS = {
    "ApiFunction": set(),
    "SnapshotFunction": set(),
    "ExportFunction": set(),
    "Pax8SyncFunction": {"${Pax8Secret}"},
    "RmmSyncFunction": {"${NinjaOneSecret}", "${DattoSecret}"},
    "PageSignInFunction": set(),
    "SuggestionsFunction": set(),
    "NotifyFunction": set(),
    "CycleFunction": set(),
}
# Item-level calls only: no Scan (snapshots read a few items, never the table), no table administration.
DYNAMODB_ITEM_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
}
S3_OBJECT_ACTIONS = {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectTagging"}
CREDENTIAL_NAME = re.compile(r"(CLIENT_ID|CLIENT_SECRET|SECRET|PASSWORD|API_KEY|ACCESS_KEY|TOKEN)$")
# Named like a credential, and public: the page's OAuth client id (a public client, no secret), which
# GET /auth/config hands every browser.
PUBLIC_IDENTIFIERS = {"TRUEUP_SIGN_IN_CLIENT_ID"}


# -------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


@pytest.fixture(scope="module")
def transformed(template: Template) -> Template:
    return transform_offline(template)


def of_type(template: Template, resource_type: str) -> dict[str, Resource]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def rendered(value: Any) -> str:
    """A resource reference as one comparable string: {"Ref": "X"} -> "${X}", GetAtt X.Arn -> "${X.Arn}"."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return f"${{{argument}}}"
        if function == "Fn::GetAtt":
            return "${" + (argument if isinstance(argument, str) else ".".join(argument)) + "}"
        if function == "Fn::Sub" and isinstance(argument, str):
            return argument
        if function == "Fn::Sub":
            text, variables = argument
            for name, variable in variables.items():
                text = text.replace(f"${{{name}}}", rendered(variable))
            return str(text)
    return json.dumps(value, sort_keys=True)


def referenced_ids(value: Any) -> set[str]:
    """Logical ids a value refers to through Ref, GetAtt or Sub (pseudo parameters left out)."""
    found = {m.group(1) for m in re.finditer(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z.]+)?\}", rendered(value))}
    return {name for name in found if not name.startswith("AWS")}


def allow_statements(transformed: Template, function_id: str) -> list[Resource]:
    """Every Allow statement of the inline policies on a function's execution role."""
    role_id = transformed["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = transformed["Resources"][role_id]["Properties"]
    return [
        statement
        for policy in role.get("Policies", [])
        for statement in as_list(policy["PolicyDocument"]["Statement"])
        if statement["Effect"] == "Allow"
    ]


def grants(transformed: Template, function_id: str, service: str) -> dict[str, set[str]]:
    """action -> the resources a function may apply it to, for one service ("s3", "dynamodb", ...)."""
    granted: dict[str, set[str]] = {}
    for statement in allow_statements(transformed, function_id):
        for action in as_list(statement["Action"]):
            if action.startswith(f"{service}:"):
                granted.setdefault(action, set()).update(rendered(r) for r in as_list(statement["Resource"]))
    return granted


def function_environment(template: Template, function_id: str) -> dict[str, Any]:
    """A function's environment as Lambda gets it: Globals merged under the function's own."""
    common = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = template["Resources"][function_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {**common, **own}


def requirement_names(lines: list[str]) -> set[str]:
    """Normalised distribution names: "aws_lambda_powertools>=3" -> "aws-lambda-powertools"."""
    names = set()
    for line in lines:
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name = re.split(r"[<>=!~\[;@ ]", requirement, maxsplit=1)[0]
            names.add(re.sub(r"[-_.]+", "-", name).lower())
    return names


def events_of(template: Template, event_type: str) -> Iterator[tuple[str, str, Resource]]:
    """(function id, event name, event properties) for every event of a type on every function."""
    for function_id, function in of_type(template, "AWS::Serverless::Function").items():
        for name, event in (function["Properties"].get("Events") or {}).items():
            if event["Type"] == event_type:
                yield function_id, name, event["Properties"]


# ------------------------------------------------------------------------------ lint and transform


def test_template_passes_cfn_lint() -> None:
    findings = lint(TEMPLATE_PATH.read_text())
    assert not findings, "cfn-lint on template.yaml:\n" + "\n".join(findings)


def test_template_passes_cfn_lint_after_the_sam_transform(transformed: Template) -> None:
    findings = lint(json.dumps(transformed, indent=1))
    assert not findings, "cfn-lint on the SAM-transformed template:\n" + "\n".join(findings)


def test_linting_after_the_transform_sees_inside_serverless_functions(template: Template) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["Pax8SyncFunction"]["Properties"]["Timeout"] = 1000  # Lambda's limit is 900 s
    findings = lint(json.dumps(transform_offline(broken)))
    assert any("1000" in finding for finding in findings), findings


# ------------------------------------------------------------------------------------------ storage


def test_tables_keep_point_in_time_recovery_and_encryption(template: Template) -> None:
    tables = of_type(template, "AWS::DynamoDB::Table")
    assert tables
    for table_id, table in tables.items():
        properties = table["Properties"]
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, (
            table_id
        )
        assert properties["SSESpecification"]["SSEEnabled"] is True, table_id
        # Runs, mappings and snapshots outlive a deleted or replaced stack.
        assert (table.get("DeletionPolicy"), table.get("UpdateReplacePolicy")) == ("Retain", "Retain"), (
            table_id
        )


def test_bucket_is_private_encrypted_and_refuses_plain_http(template: Template) -> None:
    buckets = of_type(template, "AWS::S3::Bucket")
    assert buckets
    policies = of_type(template, "AWS::S3::BucketPolicy").values()
    for bucket_id, bucket in buckets.items():
        properties = bucket["Properties"]
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, bucket_id
        (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms", "aws:kms:dsse"}
        assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        statements = [
            statement
            for policy in policies
            if policy["Properties"]["Bucket"] == {"Ref": bucket_id}
            for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"])
        ]
        tls_only = [
            s
            for s in statements
            if s["Effect"] == "Deny"
            and s["Principal"] in ("*", {"AWS": "*"})
            and as_list(s["Action"]) == ["s3:*"]
            and {rendered(r) for r in as_list(s["Resource"])}
            == {f"${{{bucket_id}.Arn}}", f"${{{bucket_id}.Arn}}/*"}
            and str(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
        ]
        assert tls_only, f"{bucket_id} has no policy denying every request made without TLS"


# ----------------------------------------------------------------------------------------- HTTP API


def test_every_route_needs_a_token_but_the_pages_shell_files_and_sign_in_config(
    template: Template, transformed: Template
) -> None:
    apis = of_type(template, "AWS::Serverless::HttpApi")
    assert apis
    for api_id, api in apis.items():
        auth = api["Properties"].get("Auth", {})
        assert auth.get("DefaultAuthorizer") == "SignIn", f"{api_id}: routes are open by default"
        jwt = auth["Authorizers"]["SignIn"]["JwtConfiguration"]
        assert set(jwt) == {"issuer", "audience"}, "the authorizer checks issuer and audience"
        assert auth["Authorizers"]["SignIn"]["IdentitySource"] == "$request.header.Authorization"
        assert not auth.get("EnableIamAuthorizer"), api_id
    routes = list(events_of(template, "HttpApi"))
    declared_public = set()
    for function_id, name, properties in routes:
        # Without ApiId SAM puts the route on an implicit API that has no authorizer at all.
        assert rendered(properties.get("ApiId")) in {f"${{{a}}}" for a in apis}, f"{function_id}.{name}"
        authorizer = properties.get("Auth", {}).get("Authorizer")
        assert authorizer in (None, "NONE"), f"{function_id}.{name}: {authorizer}"
        # No scope on any route: Entra ID app-only tokens carry none.
        assert "AuthorizationScopes" not in properties.get("Auth", {}), f"{function_id}.{name}"
        if authorizer == "NONE":
            declared_public.add(f"{properties['Method'].upper()} {properties['Path']}")
    assert declared_public == PUBLIC_ROUTES

    deployed = of_type(transformed, "AWS::ApiGatewayV2::Api")
    assert set(deployed) == set(apis), "the transform made an API the template does not declare"
    operations = {
        f"{method.upper()} {path}": operation
        for api in deployed.values()
        for path, methods in api["Properties"]["Body"]["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) == {f"{p['Method'].upper()} {p['Path']}" for _, _, p in routes}
    public = {route for route, op in operations.items() if op.get("security") != [{"SignIn": []}]}
    assert public == PUBLIC_ROUTES == {"GET /", "GET /static/{asset}", "GET /auth/config"}
    assert all(operations[route]["security"] == [{"NONE": []}] for route in public)
    assert not of_type(transformed, "AWS::ApiGatewayV2::Route"), "every route is in the API's body"


def test_cognito_is_created_only_without_an_issuer_and_lists_every_client_as_an_audience(
    template: Template, transformed: Template
) -> None:
    cognito = {k: r for k, r in template["Resources"].items() if r["Type"].startswith("AWS::Cognito::")}
    assert {r["Type"] for r in cognito.values()} >= {
        "AWS::Cognito::UserPool",
        "AWS::Cognito::UserPoolClient",
        "AWS::Cognito::UserPoolDomain",
        "AWS::Cognito::UserPoolGroup",
        "AWS::Cognito::UserPoolResourceServer",
    }
    assert all(r.get("Condition") == "UseCognito" for r in cognito.values())
    assert template["Conditions"]["UseCognito"] == {"Fn::Equals": [{"Ref": "SignInIssuer"}, ""]}
    groups = {r["Properties"]["GroupName"] for r in cognito.values() if r["Type"].endswith("UserPoolGroup")}
    assert groups == {"admin", "viewer"}
    clients = {k for k, r in cognito.items() if r["Type"] == "AWS::Cognito::UserPoolClient"}
    jwt = template["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"]["SignIn"]["JwtConfiguration"]
    condition, cognito_audience, own_audience = jwt["audience"]["Fn::If"]
    assert condition == "UseCognito" and own_audience == {"Ref": "SignInAudiences"}
    # Cognito access tokens carry client_id, not aud: every client that may call the API is listed.
    assert {a["Ref"] for a in cognito_audience} == clients
    page = cognito["PageClient"]["Properties"]
    assert page["GenerateSecret"] is False
    oauth = template["Resources"]["PageSignIn"]["Properties"]
    assert oauth["AllowedOAuthFlows"] == ["code"] and oauth["ClientId"] == {"Ref": "PageClient"}
    for script in clients - {"PageClient"}:
        props = cognito[script]["Properties"]
        assert props["AllowedOAuthFlows"] == ["client_credentials"] and props["GenerateSecret"] is True
        assert props["AllowedOAuthScopes"] in (["trueup/admin"], ["trueup/viewer"])
    # The page client and the API do not name each other (a circular dependency CloudFormation
    # refuses): the callback URL is set by the PageSignIn custom resource, after both exist.
    assert "CallbackURLs" not in page
    assert "PageSignIn" in transformed["Resources"]


# ------------------------------------------------------------------------------------ logs and IAM


def test_every_log_group_has_retention_and_every_function_has_one(template: Template) -> None:
    log_groups = of_type(template, "AWS::Logs::LogGroup")
    for group_id, group in log_groups.items():
        assert "RetentionInDays" in group["Properties"], f"{group_id} keeps its logs forever"
    names = {rendered(group["Properties"].get("LogGroupName")) for group in log_groups.values()}
    for function_id in of_type(template, "AWS::Serverless::Function"):
        # Lambda would otherwise create /aws/lambda/<name> itself, with no retention.
        assert f"/aws/lambda/${{{function_id}}}" in names, f"{function_id} has no log group"
    for api_id, api in of_type(template, "AWS::Serverless::HttpApi").items():
        destination = api["Properties"]["AccessLogSettings"]["DestinationArn"]
        assert referenced_ids(destination) <= set(log_groups), f"{api_id} logs to {rendered(destination)}"


def test_each_function_has_one_policy_scoped_to_this_stack(template: Template, transformed: Template) -> None:
    functions = of_type(template, "AWS::Serverless::Function")
    for function_id in functions:
        role_id = transformed["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        role = transformed["Resources"][role_id]["Properties"]
        policies = {p["PolicyName"]: p["PolicyDocument"] for p in role.get("Policies", [])}
        # Its own, and for a function invoked asynchronously SAM's for its on-failure destination:
        # sending to FailedInvocations and nothing else.
        on_failure = policies.pop(f"{function_id}EventInvokeConfigOnFailureSQSPolicy", None)
        assert len(policies) == 1, f"{function_id}: {sorted(policies)}"
        if on_failure is not None:
            (statement,) = as_list(on_failure["Statement"])
            assert as_list(statement["Action"]) == ["sqs:SendMessage"]
            assert referenced_ids(statement["Resource"]) == {"FailedInvocations"}, function_id
        managed = set(role.get("ManagedPolicyArns", []))
        assert managed <= {
            AWS_MANAGED_POLICIES["AWSLambdaBasicExecutionRole"],
            AWS_MANAGED_POLICIES["AWSXrayWriteOnlyAccess"],
        }, f"{function_id} has managed policies beyond logging and tracing: {managed}"
    declared = set(template["Resources"])
    for role_id, role in of_type(transformed, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                if statement["Effect"] != "Allow":
                    continue
                wildcards = [a for a in as_list(statement["Action"]) if "*" in a]
                assert not wildcards, f"{role_id} allows {wildcards}"
                for resource in as_list(statement["Resource"]):
                    ids = referenced_ids(resource)
                    assert ids and ids <= declared, f"{role_id} allows on {rendered(resource)}"


def test_each_function_reads_and_writes_only_its_own_part_of_the_bucket(
    template: Template, transformed: Template
) -> None:
    functions = set(of_type(template, "AWS::Serverless::Function"))
    assert functions == set(S3_READS) == set(S3_WRITES), "S3_READS and S3_WRITES must name every function"
    for function_id in functions:
        s3 = grants(transformed, function_id, "s3")
        assert set(s3) <= S3_OBJECT_ACTIONS, f"{function_id} may {sorted(set(s3) - S3_OBJECT_ACTIONS)}"
        assert s3.get("s3:GetObject", set()) == S3_READS[function_id], function_id
        assert s3.get("s3:PutObject", set()) == S3_WRITES[function_id], function_id
        assert s3.get("s3:AbortMultipartUpload", set()) <= S3_WRITES[function_id], function_id
        # Tagging marks a superseded generation for expiry: a sync its own generations, and the API
        # function those an admin's decision on a held sync leaves behind.
        assert s3.get("s3:PutObjectTagging", set()) == S3_TAGGING.get(function_id, set()), function_id
    # The keys the code writes fall under the prefixes the policies grant.
    sources: dict[GenerationSource, str] = {
        "pax8": "Pax8SyncFunction",
        **{source: "RmmSyncFunction" for source in RMM_NAMES},
    }
    for source, function_id in sources.items():
        (granted,) = S3_WRITES[function_id]
        assert fnmatch(f"{BUCKET_ARN}/{generation_key(source, 'g1')}", granted), source
    (snapshots,) = S3_WRITES["SnapshotFunction"]
    key = coverage_key("s1", datetime(2026, 11, 1, tzinfo=UTC), "huntress-managed-edr")
    assert fnmatch(f"{BUCKET_ARN}/{key}", snapshots)


def test_table_access_is_item_level(template: Template, transformed: Template) -> None:
    for function_id in of_type(template, "AWS::Serverless::Function"):
        dynamodb = grants(transformed, function_id, "dynamodb")
        assert set(dynamodb) <= DYNAMODB_ITEM_ACTIONS, (
            f"{function_id} may {set(dynamodb) - DYNAMODB_ITEM_ACTIONS}"
        )
        assert all(resources == {"${Table.Arn}"} for resources in dynamodb.values()), function_id
        # What may be deleted, by whom, is in TABLE_ACCESS (mappings, idempotency records, sync leases).


def test_each_sync_reads_only_its_own_integrations_secret(template: Template, transformed: Template) -> None:
    secrets = {"Pax8Secret", "NinjaOneSecret", "DattoSecret"}
    assert set(of_type(template, "AWS::SecretsManager::Secret")) == secrets
    assert set(of_type(template, "AWS::Serverless::Function")) == set(SECRET_READS)
    for function_id, expected in SECRET_READS.items():
        granted = grants(transformed, function_id, "secretsmanager")
        assert set(granted) <= {"secretsmanager:GetSecretValue"}, function_id
        assert granted.get("secretsmanager:GetSecretValue", set()) == expected, function_id
    assert function_environment(template, "Pax8SyncFunction")["PAX8_SECRET_ID"] == {"Ref": "Pax8Secret"}
    rmm = function_environment(template, "RmmSyncFunction")
    # trueup.config reads each RMM's secret id from <SOURCE>_SECRET_ID, for every RMM it knows.
    for source, secret in (("ninjaone", "NinjaOneSecret"), ("datto", "DattoSecret")):
        assert rmm[f"{source.upper()}_SECRET_ID"] == {"Ref": secret}
    assert set(RMM_NAMES) == {"ninjaone", "datto"}


def test_credentials_never_reach_a_functions_environment(template: Template) -> None:
    secrets = set(of_type(template, "AWS::SecretsManager::Secret"))
    hidden_parameters = {name for name, p in template.get("Parameters", {}).items() if p.get("NoEcho")}
    for function_id in of_type(template, "AWS::Serverless::Function"):
        for name, value in function_environment(template, function_id).items():
            where = f"{function_id} {name}"
            if name not in PUBLIC_IDENTIFIERS:
                assert not CREDENTIAL_NAME.search(name), f"{where}: credentials belong in Secrets Manager"
            assert "{{resolve:" not in json.dumps(value), f"{where} resolves a secret into the environment"
            assert not referenced_ids(value) & hidden_parameters, f"{where} passes a NoEcho parameter"
            if referenced_ids(value) & secrets:
                # The secret's ARN, never its value: the function reads the value at run time.
                assert name.endswith("_SECRET_ID") and set(value) == {"Ref"}, where


# ------------------------------------------------------------------------- events and the schedule


def test_schedules_start_the_monthly_cycle_and_the_daily_sync(
    template: Template, transformed: Template
) -> None:
    scheduled = {f"{f}.{name}": p for f, name, p in events_of(template, "ScheduleV2")}
    assert set(scheduled) == {"CycleFunction.Monthly", "CycleFunction.DailySync"}
    monthly, daily = scheduled["CycleFunction.Monthly"], scheduled["CycleFunction.DailySync"]
    # Each firing is named by its scheduled time, which Scheduler fills in: a repeat is the same.
    assert json.loads(monthly["Input"]) == {
        "trigger": "monthly",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    assert json.loads(daily["Input"]) == {
        "trigger": "daily-sync",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    for properties, pattern in (
        (monthly, r"cron\(0 6 1 \* \? \*\)"),  # 06:00 on the 1st
        (daily, r"cron\(\d+ [0-5] \* \* \? \*\)"),  # early each morning
    ):
        assert properties["ScheduleExpressionTimezone"] == {"Ref": "ScheduleTimezone"}
        expression = template["Parameters"][properties["ScheduleExpression"]["Ref"]]["Default"]
        assert re.fullmatch(pattern, expression), expression
    assert template["Parameters"]["ScheduleTimezone"]["Default"] == "UTC"
    # The daily sync is on unless the DailySync parameter turns it off.
    assert template["Parameters"]["DailySync"]["Default"] == "Enabled"
    assert daily["State"] == {"Fn::If": ["SyncsDaily", "ENABLED", "DISABLED"]}

    targets = {
        rendered(s["Properties"]["Name"]): s["Properties"]["Target"]
        for s in of_type(transformed, "AWS::Scheduler::Schedule").values()
    }
    assert {name: t["Arn"]["Fn::GetAtt"][0] for name, t in targets.items()} == {
        "${AWS::StackName}-monthly-cycle": "CycleFunction",
        "${AWS::StackName}-daily-sync": "CycleFunction",
    }
    # Schedule names are unique per account and region: a fixed one stops a second stack deploying.


@mock_aws
def test_sync_requests_reach_only_their_own_sync_function(template: Template) -> None:
    """The rules of template.yaml, on a real EventBridge bus (moto), against the events trueup publishes."""
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    bus = events.create_event_bus(Name="trueup-template-test")["EventBusArn"].rsplit("/", 1)[1]
    inboxes: dict[str, str] = {}  # queue URL -> the function its rule targets
    for function_id, name, properties in events_of(template, "EventBridgeRule"):
        assert properties["EventBusName"] == {"Ref": "EventBus"}, (
            f"{function_id}.{name} is not on trueup's bus"
        )
        url = sqs.create_queue(QueueName=f"{function_id}-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(
            Name=f"{function_id}-{name}", EventBusName=bus, EventPattern=json.dumps(properties["Pattern"])
        )
        events.put_targets(
            Rule=f"{function_id}-{name}", EventBusName=bus, Targets=[{"Id": "inbox", "Arn": arn}]
        )
        inboxes[url] = function_id  # a function may have several rules: each its own inbox

    def delivered_to(event: Event) -> set[str]:
        entry = {
            "EventBusName": bus,
            "Source": EVENT_SOURCE,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.model_dump(mode="json", exclude_none=True)),
        }
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
        return {
            function_id
            for url, function_id in inboxes.items()
            if sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages")
        }

    assert delivered_to(SyncRequested(run_id="r1", source="pax8")) == {"Pax8SyncFunction"}
    assert delivered_to(SyncRequested(run_id="r1", source="ninjaone")) == {"RmmSyncFunction"}
    assert delivered_to(SyncRequested(run_id="r1", source="datto")) == {"RmmSyncFunction"}
    # A sync's own announcements never start another sync; one that succeeded brings the suggestions.
    finished = datetime(2026, 11, 1, tzinfo=UTC)
    completed = SyncCompleted(
        run_id="r1", source="pax8", generation="g", synced_at=finished, records=1, skipped=0
    )
    assert delivered_to(completed) == {"SuggestionsFunction"}
    asked = SuggestionsRequested(pax8_generation="g1", rmm_generation="g2")
    assert delivered_to(asked) == {"SuggestionsFunction"}
    # A failed or held sync is told; held data is not current, so nothing else follows it until an
    # admin accepts it (then "Sync Completed").
    assert delivered_to(SyncFailed(run_id="r1", source="ninjaone", error="boom")) == {"NotifyFunction"}
    held = SyncHeld(run_id="r1", source="ninjaone", generation="g", reason="short")
    assert delivered_to(held) == {"NotifyFunction"}
    # A sync a monthly cycle waits on reaches the cycle's bookkeeping; its failure is told by the
    # cycle's notification, not a second time on its own.
    waited = SyncCompleted(
        run_id="r1",
        source="ninjaone",
        generation="g",
        synced_at=finished,
        records=1,
        skipped=0,
        cycle_ids=["c1"],
    )
    assert delivered_to(waited) == {"SuggestionsFunction", "CycleFunction"}
    held_for_cycle = SyncHeld(
        run_id="r1", source="ninjaone", generation="g", reason="short", cycle_ids=["c1"]
    )
    assert delivered_to(held_for_cycle) == {"CycleFunction"}
    assert delivered_to(SyncFailed(run_id="r1", source="ninjaone", error="boom", cycle_ids=["c1"])) == {
        "CycleFunction"
    }
    # The cycle's steps, one function each: snapshot, exports, notification.
    assert delivered_to(CycleSynced(cycle_id="c1")) == {"SnapshotFunction"}
    taken = datetime(2026, 12, 1, 6, 4, tzinfo=UTC)
    by_cycle = SnapshotCreated(snapshot_id="s1", taken_at=taken, trigger="schedule", cycle_id="c1")
    assert delivered_to(by_cycle) == {"ExportFunction"}
    # A person's snapshot is exported when someone asks, not by a rule.
    assert delivered_to(SnapshotCreated(snapshot_id="s2", taken_at=taken, trigger="api")) == set()
    assert delivered_to(ExportsReady(cycle_id="c1", snapshot_id="s1", keys=["k"])) == {"NotifyFunction"}
    assert delivered_to(CycleStopped(cycle_id="c1", reason="held")) == {"NotifyFunction"}
    # Every event trueup publishes was checked above.
    checked = {
        SyncRequested,
        SyncCompleted,
        SuggestionsRequested,
        SyncFailed,
        SyncHeld,
        CycleSynced,
        CycleStopped,
        SnapshotCreated,
        ExportsReady,
    }
    assert checked == set(ALL_EVENTS), f"add the rules' check of {set(ALL_EVENTS) - checked}"


# ----------------------------------------------------------------------------- code, layer, build


def test_functions_run_python312_on_the_architecture_the_tests_run_on_with_the_trueup_layer(
    template: Template, transformed: Template
) -> None:
    # x86_64, like every machine that tests trueup: the built layer's compiled packages (pydantic-core,
    # rapidfuzz) are then the very files tests/template/test_built_functions.py loads and runs.
    (layer_id,) = of_type(template, "AWS::Serverless::LayerVersion")
    layer = template["Resources"][layer_id]
    assert layer["Properties"]["ContentUri"] == "shared/"
    # shared/Makefile: the python3.12 build (Linux x86_64 wheels for CPython 3.12) plus bytecode.
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "x86_64"}
    makefile = (ROOT / "shared" / "Makefile").read_text()
    assert f"build-{layer_id}:" in makefile
    assert "--python-version 3.12" in makefile and "--platform manylinux2014_x86_64" in makefile
    assert LAMBDA_RUNTIME in layer["Properties"]["CompatibleRuntimes"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    (layer_version_id,) = of_type(transformed, "AWS::Lambda::LayerVersion")
    functions = of_type(transformed, "AWS::Lambda::Function")
    assert set(functions) == set(of_type(template, "AWS::Serverless::Function"))
    for function_id, function in functions.items():
        properties = function["Properties"]
        assert properties["Runtime"] == LAMBDA_RUNTIME, function_id
        assert properties["Architectures"] == ["x86_64"], function_id
        assert {"Ref": layer_version_id} in properties["Layers"], function_id


def test_layer_requirements_are_the_projects_runtime_dependencies() -> None:
    layer = requirement_names((ROOT / "shared" / "requirements.txt").read_text().splitlines())
    project = requirement_names(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    assert layer == project, "shared/requirements.txt (the layer) and pyproject.toml's dependencies differ"


def test_every_handler_is_where_its_function_points(template: Template) -> None:
    for function_id, function in of_type(template, "AWS::Serverless::Function").items():
        code_uri, handler = function["Properties"]["CodeUri"], function["Properties"]["Handler"]
        module, attribute = handler.rsplit(".", 1)
        source = ROOT / code_uri / f"{module.replace('.', '/')}.py"
        assert source.is_file(), f"{function_id}: {source.relative_to(ROOT)} is missing (Handler {handler})"
        tree = ast.parse(source.read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        defined |= {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        assert attribute in defined, f"{function_id}: {source.relative_to(ROOT)} defines no {attribute!r}"


@pytest.mark.timeout(400)
def test_sam_build_puts_trueup_and_its_requirements_where_lambda_finds_them(
    template: Template, built: Path
) -> None:
    (layer_id,) = of_type(template, "AWS::Serverless::LayerVersion")
    python = built / layer_id / "python"  # a layer's python/ is on the runtime's sys.path
    shipped = {p.relative_to(ROOT / "shared").as_posix() for p in (ROOT / "shared" / "trueup").rglob("*.py")}
    in_layer = {p.relative_to(python).as_posix() for p in (python / "trueup").rglob("*.py")}
    assert "trueup/__init__.py" in in_layer
    assert shipped <= in_layer, f"missing from the layer: {sorted(shipped - in_layer)}"
    for package in ("pydantic", "httpx", "aws_lambda_powertools", "rapidfuzz"):
        assert (python / package / "__init__.py").is_file(), f"{package} is not in the layer"
    requirements = requirement_names((ROOT / "shared" / "requirements.txt").read_text().splitlines())
    installed = {p.name.split("-")[0].lower().replace("_", "-") for p in python.glob("*.dist-info")}
    assert requirements <= installed, (
        f"requirements missing from the layer: {sorted(requirements - installed)}"
    )
    # Compiled extensions must be Lambda's (CPython 3.12 on x86_64 Linux), whatever Python ran the build.
    extensions = [p.name for p in python.rglob("*.so")]
    assert extensions, "no compiled extension in the layer (pydantic_core has one)"
    foreign = [
        name
        for name in extensions
        if "aarch64" in name or ("cpython-3" in name and "cpython-312-x86_64-linux-gnu" not in name)
    ]
    assert not foreign, f"extensions built for another platform: {foreign}"
    for function_id, function in of_type(template, "AWS::Serverless::Function").items():
        module = function["Properties"]["Handler"].rsplit(".", 1)[0].replace(".", "/")
        assert (built / function_id / f"{module}.py").is_file(), (
            f"{function_id} was built without {module}.py"
        )
    # Bytecode for the runtime, valid whatever the files' times in Lambda: unchecked-hash .pyc files
    # (PEP 552 flags 0b01), so no cold start compiles the layer.
    for module in ("trueup/config", "trueup/api/resolver", "boto3/__init__", "pydantic/fields"):
        folder, name = module.rsplit("/", 1)
        compiled = python / folder / "__pycache__" / f"{name}.cpython-312.pyc"
        assert compiled.is_file(), f"{module}.py ships without bytecode"
        assert int.from_bytes(compiled.read_bytes()[4:8], "little") == 0b01, f"{compiled.name} is checked"


# The audit log's partitions (trueup.store.table): the log, by kind, by client.
AUDIT = (
    "AUDIT",
    *("AUDIT-DECISION", "AUDIT-MAPPING", "AUDIT-SETTINGS", "AUDIT-ORGANIZATION", "AUDIT-SUGGESTION"),
    *("AUDIT-TERMS", "AUDIT-RULE", "AUDIT-SYNC", "AUDIT-CLIENT"),
)
# Which kinds of items (partition keys, trueup/store/table.py) each function may read and write.
TABLE_ACCESS = {
    "ApiFunction": {
        **{
            a: {
                "RUN",
                "CURRENT",
                "MAPPING",
                "CLAIM",
                "SETTINGS",
                "IDEMPOTENCY",
                "SUGGESTIONS",
                "CYCLE",
                "REVIEW",
                *AUDIT,
            }
            for a in ("dynamodb:GetItem", "dynamodb:Query")
        },
        # CURRENT: an admin accepting a held sync's data; CYCLE: POST /cycles; REVIEW: ignored
        # organizations and rejected suggestions
        "dynamodb:PutItem": {
            "RUN",
            "MAPPING",
            "CLAIM",
            "SETTINGS",
            "IDEMPOTENCY",
            "CURRENT",
            "CYCLE",
            "REVIEW",
        }
        | {"AUDIT", "AUDIT-MAPPING", "AUDIT-SETTINGS", "AUDIT-CLIENT"}  # each change, in the audit log
        | {"AUDIT-ORGANIZATION", "AUDIT-SUGGESTION", "AUDIT-SYNC"},
        "dynamodb:DeleteItem": {"MAPPING", "CLAIM", "IDEMPOTENCY", "REVIEW"},
        "dynamodb:UpdateItem": {"IDEMPOTENCY"},
    },
    # A cycle's snapshot is written with the cycle's step; {"sync": true} starts a cycle (and its run).
    "SnapshotFunction": {
        **{
            a: {
                "CURRENT",
                "SETTINGS",
                "MAPPING",
                "SNAPSHOT",
                "IDEMPOTENCY",
                "CYCLE",
                "RUN",
                "DECISION",
                "REVIEW",
            }
            for a in ("dynamodb:GetItem", "dynamodb:Query")
        },
        # A decision, a client's terms or a rule, with its audit entries (under the log, its kind and
        # its client).
        "dynamodb:PutItem": {
            *("SNAPSHOT", "IDEMPOTENCY", "CYCLE", "RUN"),
            *("DECISION", "REVIEW", "AUDIT", "AUDIT-DECISION", "AUDIT-TERMS", "AUDIT-RULE", "AUDIT-CLIENT"),
        },
        "dynamodb:UpdateItem": {"IDEMPOTENCY"},
        "dynamodb:DeleteItem": {"IDEMPOTENCY", "DECISION", "REVIEW"},
    },
    # Snapshots, and a cycle's exports step (once per cycle).
    "ExportFunction": {
        "dynamodb:GetItem": {"SNAPSHOT", "CYCLE", "IDEMPOTENCY", "AUDIT"},
        "dynamodb:Query": {"SNAPSHOT", "CYCLE", "IDEMPOTENCY", "AUDIT"},
        **{a: {"CYCLE", "IDEMPOTENCY"} for a in ("dynamodb:PutItem", "dynamodb:UpdateItem")},
        "dynamodb:DeleteItem": {"CYCLE", "IDEMPOTENCY"},
    },
    "Pax8SyncFunction": {
        **{a: {"RUN", "CURRENT", "LEASE"} for a in ("dynamodb:Query", "dynamodb:PutItem")},
        "dynamodb:GetItem": {"RUN", "CURRENT", "LEASE", "SETTINGS"},  # the settings: when to hold a sync
        "dynamodb:DeleteItem": {"LEASE"},
    },
    "RmmSyncFunction": {
        **{a: {"RUN", "CURRENT", "LEASE"} for a in ("dynamodb:Query", "dynamodb:PutItem")},
        "dynamodb:GetItem": {"RUN", "CURRENT", "LEASE", "SETTINGS"},
        "dynamodb:DeleteItem": {"LEASE"},
    },
    "PageSignInFunction": {},
    # Reads the current pointers; records where the suggestions it stored are.
    "SuggestionsFunction": {
        "dynamodb:GetItem": {"CURRENT", "SUGGESTIONS"},
        "dynamodb:PutItem": {"SUGGESTIONS"},
    },
    # Claims each schedule firing once, and records the run it starts.
    # and its cycles (the recent ones: stopping those a crashed step left waiting).
    "CycleFunction": {
        "dynamodb:GetItem": {"FIRING", "RUN", "CYCLE"},
        "dynamodb:PutItem": {"FIRING", "RUN", "CYCLE"},
        "dynamodb:Query": {"CYCLE"},
        "dynamodb:DeleteItem": {"FIRING"},
    },
    # Records what it told, so that a repeated event tells nobody twice; reads a cycle and its
    # snapshot, and records that the cycle was told.
    "NotifyFunction": {
        "dynamodb:GetItem": {"IDEMPOTENCY", "CYCLE", "SNAPSHOT"},
        "dynamodb:Query": {"CYCLE", "SNAPSHOT"},
        "dynamodb:PutItem": {"IDEMPOTENCY", "CYCLE"},
        **{a: {"IDEMPOTENCY"} for a in ("dynamodb:UpdateItem", "dynamodb:DeleteItem")},
    },
}


def table_access(template: Template, function_id: str) -> dict[str, set[str]]:
    """action -> the partition keys a function's policy allows it on the table (every statement on the
    table must name them with dynamodb:LeadingKeys)."""
    access: dict[str, set[str]] = {}
    for policy in template["Resources"][function_id]["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = [a for a in as_list(statement["Action"]) if str(a).startswith("dynamodb:")]
            if not actions:
                continue
            keys = (
                statement.get("Condition", {})
                .get("ForAllValues:StringEquals", {})
                .get("dynamodb:LeadingKeys")
            )
            assert keys, f"{function_id} {statement.get('Sid')}: table access without dynamodb:LeadingKeys"
            for action in actions:
                access.setdefault(action, set()).update(keys)
    return access


def test_each_function_reads_and_writes_only_its_own_kinds_of_items(template: Template) -> None:
    assert set(TABLE_ACCESS) == set(of_type(template, "AWS::Serverless::Function"))
    for function_id, expected in TABLE_ACCESS.items():
        assert table_access(template, function_id) == expected, function_id
    # The API function moves a current-generation pointer only as an admin accepts a held sync (it
    # never deletes one); no sync writes mappings or settings.
    assert "CURRENT" not in TABLE_ACCESS["ApiFunction"]["dynamodb:DeleteItem"]


def test_the_export_function_reads_only_snapshots_cycles_and_the_audit_log_of_the_table() -> None:
    from tests.aws_fixtures import RESOURCES
    from trueup.store import table as store

    statements = [
        s
        for policy in RESOURCES["ExportFunction"]["Properties"]["Policies"]
        for s in policy["Statement"]
        if any(str(a).startswith("dynamodb:") for a in s["Action"])
    ]
    reads = [s for s in statements if sorted(s["Action"]) == ["dynamodb:GetItem", "dynamodb:Query"]]
    assert [r["Condition"] for r in reads] == [
        {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["SNAPSHOT", "CYCLE", "IDEMPOTENCY", "AUDIT"]}}
    ]
    # It writes nothing but a cycle's step and its once-only records: never a snapshot, run or mapping.
    for statement in statements:
        if statement not in reads:
            keys = statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
            assert set(keys) <= {"CYCLE", "IDEMPOTENCY"}, statement["Sid"]
    assert '"SNAPSHOT"' in Path(store.__file__).read_text()  # the partition the snapshot items live in


def test_superseded_generations_expire_after_the_retention_and_the_current_one_never(
    template: Template,
) -> None:
    rules = template["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    on_generations = [r for r in rules if r.get("Prefix") == "generations/"]
    expiring = [r for r in on_generations if "ExpirationInDays" in r]
    # Only tagged (superseded) generations expire: an untagged one is current.
    assert len(expiring) == 1
    [rule] = expiring
    assert rule["TagFilters"] == [{"Key": "trueup-superseded", "Value": "true"}]
    assert rule["ExpirationInDays"] == {"Ref": "GenerationRetentionDays"}
    assert template["Parameters"]["GenerationRetentionDays"]["Default"] == 35
    from trueup.store.generations import SUPERSEDED_TAG

    assert rule["TagFilters"][0] == SUPERSEDED_TAG


def test_every_failure_ends_in_a_queue_whose_alarm_tells_the_notification_topic(template: Template) -> None:
    resources = template["Resources"]
    failed_events = {"Fn::GetAtt": ["FailedEvents", "Arn"]}
    # Every rule and schedule: undeliverable events go to FailedEvents, after bounded retries.
    delivered = [*events_of(template, "EventBridgeRule"), *events_of(template, "ScheduleV2")]
    assert len(delivered) >= 6
    for function_id, name, properties in delivered:
        assert properties.get("DeadLetterConfig") == {"Arn": failed_events}, f"{function_id}.{name}"
        assert properties["RetryPolicy"]["MaximumRetryAttempts"] <= 4, f"{function_id}.{name}"
    # Every function invoked asynchronously (by a rule or a schedule): failed invocations go to
    # FailedInvocations after at most two retries, and a sync (up to 15 minutes) is never retried.
    asynchronous = {function_id for function_id, _, _ in delivered}
    for function_id in of_type(template, "AWS::Serverless::Function"):
        config = resources[function_id]["Properties"].get("EventInvokeConfig")
        if function_id not in asynchronous:
            assert config is None, f"{function_id} is invoked synchronously: nothing to redeliver"
            continue
        assert config["DestinationConfig"]["OnFailure"] == {
            "Type": "SQS",
            "Destination": {"Fn::GetAtt": ["FailedInvocations", "Arn"]},
        }, function_id
        assert config["MaximumRetryAttempts"] <= 2 and config["MaximumEventAgeInSeconds"] <= 3600
        if function_id.endswith("SyncFunction"):
            assert config["MaximumRetryAttempts"] == 0, function_id
    # EventBridge may write to FailedEvents (and nothing else may be sent there by a service).
    (policy,) = of_type(template, "AWS::SQS::QueuePolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    # Each queue has an alarm on its depth that tells the topic; no data is not a failure.
    on_queues = [
        a["Properties"]
        for a in of_type(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "AWS/SQS"
    ]
    alarms = {a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]: a for a in on_queues}
    assert set(alarms) == set(of_type(template, "AWS::SQS::Queue")) == {"FailedEvents", "FailedInvocations"}
    for alarm in alarms.values():
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 1
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]
    # A cycle that stopped is counted by NotifyFunction (trueup.services.notifications); its alarm
    # tells the topic too, and a month without cycles is not one.
    [stopped] = [
        a["Properties"]
        for a in of_type(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "trueup"
    ]
    assert stopped["MetricName"] == "CyclesStopped" and stopped["Statistic"] == "Sum"
    assert stopped["Dimensions"] == [{"Name": "service", "Value": "trueup"}]
    assert stopped["TreatMissingData"] == "notBreaching" and stopped["AlarmActions"] == [
        {"Ref": "NotificationTopic"}
    ]
    from trueup.services import notifications

    assert '"CyclesStopped"' in Path(notifications.__file__).read_text()
