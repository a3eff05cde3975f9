from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.template import (
    Resolver,
    Route,
    Router,
    StackTemplate,
    TemplateError,
    resolve_environment,
)
from tests.local.tiny_stack import write_template

REPO_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

TEMPLATE = """
Parameters:
  VendorUrl:
    Type: String
    Default: https://vendor.example/v1
  Retention:
    Type: Number
    Default: 30
Globals:
  Function:
    Timeout: 30
    MemorySize: 1024
    Environment:
      Variables:
        TABLE: !Ref Table
        BUS: !Ref Bus
        SHARED: from-globals
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub ${AWS::StackName}-events
  Secret:
    Type: AWS::SecretsManager::Secret
  ApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/api/
      Handler: app.handler
      Environment:
        Variables:
          SHARED: overridden
          VENDOR_URL: !Ref VendorUrl
          SECRET_ID: !Ref Secret
          DAYS: !Ref Retention
          QUEUE_NAME: !Sub "${AWS::StackName}-${Table}-q"
      Events:
        Get:
          Type: HttpApi
          Properties: { Method: get, Path: "/things/{thing_id}" }
        Latest:
          Type: HttpApi
          Properties: { Method: GET, Path: /things/latest }
        AnyFile:
          Type: HttpApi
          Properties: { Method: ANY, Path: "/files/{path+}" }
        Put:
          Type: HttpApi
          Properties: { Method: PUT, Path: "/things/{thing_id}" }
  SyncFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/sync/
      Handler: handlers.sync.main
      Timeout: 900
      Events:
        Requested:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [trueup]
              detail-type: [Sync Requested]
        Monthly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 6 1 * ? *)
            Input: '{"trigger": "schedule"}'
"""


@pytest.fixture
def template(tmp_path: Path) -> StackTemplate:
    return StackTemplate.load(write_template(tmp_path, TEMPLATE))


def resolver() -> Resolver:
    return Resolver(
        {
            "Table": "local-Table",
            "Bus": "local-events",
            "Secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:local/Secret-AbCdEf",
            "VendorUrl": "https://vendor.example/v1",
            "Retention": "30",
            "AWS::StackName": "local",
        }
    )


def test_functions_take_code_uri_handler_and_limits_with_globals(template, tmp_path):
    api, sync = template.functions["ApiFunction"], template.functions["SyncFunction"]
    assert api.code_uri == (tmp_path / "functions" / "api").resolve()
    assert (api.handler, api.timeout, api.memory_mb) == ("app.handler", 30, 1024)
    assert (sync.handler, sync.timeout, sync.memory_mb) == ("handlers.sync.main", 900, 1024)


def test_environment_merges_globals_and_resolves_refs_to_local_names(template):
    env = resolve_environment(template.functions["ApiFunction"], resolver())
    assert env == {
        "TABLE": "local-Table",
        "BUS": "local-events",
        "SHARED": "overridden",
        "VENDOR_URL": "https://vendor.example/v1",
        "SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:local/Secret-AbCdEf",
        "DAYS": "30",
        "QUEUE_NAME": "local-local-Table-q",
    }
    assert resolve_environment(template.functions["SyncFunction"], resolver())["SHARED"] == "from-globals"


def test_overrides_replace_only_variables_the_function_declares(template):
    overrides = {"VENDOR_URL": "http://127.0.0.1:9999/v1", "NOT_DECLARED": "x"}
    api = resolve_environment(template.functions["ApiFunction"], resolver(), overrides)
    sync = resolve_environment(template.functions["SyncFunction"], resolver(), overrides)
    assert api["VENDOR_URL"] == "http://127.0.0.1:9999/v1"
    assert "NOT_DECLARED" not in api
    assert "VENDOR_URL" not in sync


def test_unknown_ref_is_an_error_naming_it(template):
    incomplete = Resolver({"Table": "t"})
    with pytest.raises(TemplateError, match="!Ref Bus"):
        resolve_environment(template.functions["ApiFunction"], incomplete)


def test_routes_rules_and_schedules_come_from_the_events(template):
    assert {r.key: (r.function, r.event) for r in template.routes} == {
        "GET /things/{thing_id}": ("ApiFunction", "Get"),
        "GET /things/latest": ("ApiFunction", "Latest"),
        "ANY /files/{path+}": ("ApiFunction", "AnyFile"),
        "PUT /things/{thing_id}": ("ApiFunction", "Put"),
    }
    [rule] = template.rules
    assert (rule.function, rule.event, rule.bus) == ("SyncFunction", "Requested", {"Ref": "Bus"})
    assert rule.pattern == {"source": ["trueup"], "detail-type": ["Sync Requested"]}
    [schedule] = template.schedules
    assert (schedule.function, schedule.event, schedule.input) == (
        "SyncFunction",
        "Monthly",
        {"trigger": "schedule"},
    )


def test_a_static_segment_beats_a_parameter_whatever_the_order(template):
    router = Router(template.routes)
    latest = router.match("GET", "/things/latest")
    assert latest is not None and latest.route.event == "Latest" and latest.path_parameters == {}
    other = router.match("GET", "/things/t-42")
    assert other is not None and other.route.event == "Get" and other.path_parameters == {"thing_id": "t-42"}
    reversed_router = Router(list(reversed(template.routes)))
    again = reversed_router.match("GET", "/things/latest")
    assert again is not None and again.route.event == "Latest"


def test_methods_greedy_paths_and_misses(template):
    router = Router(template.routes)
    put = router.match("PUT", "/things/latest")
    assert put is not None and put.route.event == "Put" and put.path_parameters == {"thing_id": "latest"}
    files = router.match("DELETE", "/files/a/b%20c.txt")
    assert files is not None and files.path_parameters == {"path": "a/b c.txt"}
    assert router.match("POST", "/things/latest") is None
    assert router.match("GET", "/things") is None
    assert router.match("GET", "/things/t-1/extra") is None
    assert router.match("GET", "/things/") is None
    assert router.match("GET", "/files/") is None


def test_exact_method_beats_any_and_default_catches_the_rest():
    routes = [
        Route("ANY", "/items/{id}", "Anything", "A"),
        Route("GET", "/items/{id}", "Getter", "G"),
        Route("ANY", "$default", "Fallback", "D"),
    ]
    router = Router(routes)
    got = router.match("GET", "/items/1")
    assert got is not None and got.route.function == "Getter"
    posted = router.match("POST", "/items/1")
    assert posted is not None and posted.route.function == "Anything"
    fallback = router.match("GET", "/elsewhere")
    assert fallback is not None and fallback.route.function == "Fallback" and fallback.route.key == "$default"


def test_a_route_declared_twice_is_an_error(tmp_path):
    body = """
    Resources:
      One:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: a/
          Handler: app.handler
          Events:
            A: {Type: HttpApi, Properties: {Method: GET, Path: /x}}
      Two:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: b/
          Handler: app.handler
          Events:
            B: {Type: HttpApi, Properties: {Method: GET, Path: /x}}
    """
    with pytest.raises(TemplateError, match=r"GET /x is declared twice \(One.A and Two.B\)"):
        StackTemplate.load(write_template(tmp_path, body))


def test_sub_getatt_join_and_escapes():
    r = Resolver({"AWS::Region": "us-east-1", "Bucket": "b"}, {("Bucket", "Arn"): "arn:aws:s3:::b"})
    assert r.resolve({"Fn::Sub": "${Bucket.Arn}/x/${!Literal}"}) == "arn:aws:s3:::b/x/${Literal}"
    assert r.resolve({"Fn::Sub": ["${Name}-${AWS::Region}", {"Name": {"Ref": "Bucket"}}]}) == "b-us-east-1"
    assert r.resolve({"Fn::Join": ["/", ["a", {"Ref": "Bucket"}]]}) == "a/b"
    assert r.resolve({"Fn::GetAtt": ["Bucket", "Arn"]}) == "arn:aws:s3:::b"
    with pytest.raises(TemplateError, match="does not resolve Fn::Select"):
        r.resolve({"Fn::Select": [0, ["a"]]})
    with pytest.raises(TemplateError, match=r"Fn::If takes \[a condition of Conditions"):
        r.resolve({"Fn::If": ["c", 1, 2]})


def test_conditions_follow_the_parameters_and_drop_the_resources_they_rule_out(tmp_path: Path) -> None:
    body = """
    Parameters:
      Issuer: {Type: String, Default: ""}
    Conditions:
      Own: !Not [!Condition NoIssuer]
      NoIssuer: !Equals [!Ref Issuer, ""]
    Resources:
      Pool:
        Type: AWS::Cognito::UserPool
        Condition: NoIssuer
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: fn/
          Handler: app.handler
          Environment:
            Variables:
              ISSUER: !If [NoIssuer, "from the pool", !Ref Issuer]
          Events:
            Page: {Type: HttpApi, Properties: {Method: GET, Path: /, Auth: {Authorizer: NONE}}}
            Data: {Type: HttpApi, Properties: {Method: GET, Path: /data}}
    """
    default = StackTemplate.load(write_template(tmp_path, body))
    assert default.conditions == {"NoIssuer": True, "Own": False}
    assert "Pool" in default.resources
    given = StackTemplate.load(write_template(tmp_path, body), {"Issuer": "http://op"})
    assert given.conditions == {"NoIssuer": False, "Own": True}
    assert "Pool" not in given.resources
    resolver = Resolver(dict(given.parameters), conditions=given.conditions)
    assert resolve_environment(given.functions["Fn"], resolver) == {"ISSUER": "http://op"}
    assert {r.path: r.public for r in given.routes} == {"/": True, "/data": False}


def test_the_local_stack_never_stands_in_for_cognito():
    template = StackTemplate.load(REPO_TEMPLATE)
    assert template.conditions["UseCognito"] is False
    assert not [r for r in template.resources.values() if r.type.startswith("AWS::Cognito::")]
    assert "PageSignInFunction" not in template.functions
    public = {r.key for r in template.routes if r.public}
    assert public == {"GET /", "GET /static/{asset}", "GET /auth/config"}


def test_trueups_template_routes_snapshots_latest_before_a_snapshot_id():
    template = StackTemplate.load(REPO_TEMPLATE)
    router = Router(template.routes)
    latest = router.match("GET", "/snapshots/latest")
    assert latest is not None and latest.route.path == "/snapshots/latest"
    one = router.match("GET", "/snapshots/abc")
    assert one is not None and one.path_parameters == {"snapshot_id": "abc"}
    assert router.match("GET", "/not-a-route") is None
