"""What the local stack reads from `template.yaml`: functions, routes, rules, schedules and resources.

The template is the only place that says which handler serves a route, which events reach which
function and what each function finds in its environment; the local stack follows it so that it
cannot drift from what deploys. Parsing goes through `samtranslator.yaml_helper.yaml_parse` (plain
YAML loaders reject `!Ref`), and the few intrinsic functions a function environment or a resource
name uses (Ref, Fn::Sub, Fn::GetAtt, Fn::Join, Fn::If) are resolved against the local physical names.

Conditions are evaluated on the parameters' values; a resource whose condition is false does not exist
locally, as it would not in AWS. The local stack stands in for "your own OpenID provider"
(SignInIssuer; its own provider with TRUEUP_AUTH=oidc), never for the Cognito user pool the template
creates without one: `LOCAL_PARAMETERS` says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from samtranslator.yaml_helper import yaml_parse

FUNCTION = "AWS::Serverless::Function"
LAYER = "AWS::Serverless::LayerVersion"
TABLE = "AWS::DynamoDB::Table"
BUCKET = "AWS::S3::Bucket"
EVENT_BUS = "AWS::Events::EventBus"
SECRET = "AWS::SecretsManager::Secret"
TOPIC = "AWS::SNS::Topic"
QUEUE = "AWS::SQS::Queue"
HTTP_API = "AWS::Serverless::HttpApi"

DEFAULT_TIMEOUT = 3  # seconds: Lambda's and SAM's default when neither Globals nor the function set one
DEFAULT_MEMORY = 128
DEFAULT_ROUTE = "$default"
ANY_METHOD = "ANY"
# Used instead of the template's defaults (and overridden by what the local stack passes).
LOCAL_PARAMETERS = {"SignInIssuer": "http://127.0.0.1/local-sign-in"}


class TemplateError(ValueError):
    """template.yaml says something the local stack cannot follow; the message names the place."""


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function, with Globals applied (environment values still unresolved)."""

    logical_id: str
    code_uri: Path
    handler: str
    timeout: int
    memory_mb: int
    environment: Mapping[str, Any]
    # The ContentUri folders of its layers (Globals' first, as SAM merges them), in the template's order.
    layers: tuple[Path, ...] = ()
    # EventInvokeConfig: how often an asynchronous invocation is retried (None: Lambda's default, 2),
    # and where one that failed after them goes (its OnFailure destination, unresolved).
    max_retries: int | None = None
    on_failure: Any = None


@dataclass(frozen=True)
class Route:
    """One HttpApi event: `METHOD /path/{param}` (or `$default`) served by a function."""

    method: str  # upper case, or ANY
    path: str  # as in the template, or $default
    function: str
    event: str
    public: bool = False  # `Auth: {Authorizer: NONE}`: no token needed

    @property
    def key(self) -> str:
        """API Gateway's routeKey."""
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"


@dataclass(frozen=True)
class EventRule:
    """One EventBridgeRule event: the pattern that sends a bus's events to a function."""

    function: str
    event: str
    bus: Any  # a template value (Ref, name) or None for the default bus
    pattern: Mapping[str, Any]


@dataclass(frozen=True)
class Schedule:
    """One Schedule/ScheduleV2 event; locally it fires only on request (POST /_local/schedules/...)."""

    function: str
    event: str
    expression: Any
    input: Any  # the event the function receives (Input parsed as JSON), {} when the template sets none


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class StackTemplate:
    path: Path
    parameters: Mapping[str, str]  # name -> default value (as CloudFormation passes it: a string)
    resources: Mapping[str, Resource]
    functions: Mapping[str, FunctionSpec]
    routes: Sequence[Route]
    rules: Sequence[EventRule]
    schedules: Sequence[Schedule]
    conditions: Mapping[str, bool] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, parameters: Mapping[str, str] | None = None) -> StackTemplate:
        try:
            document = yaml_parse(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise TemplateError(f"cannot read the template {path}: {exc}") from exc
        if not isinstance(document, dict):
            raise TemplateError(f"{path} is not a CloudFormation template (no mapping at the top)")
        return cls.parse(document, path, parameters)

    @classmethod
    def parse(
        cls, document: Mapping[str, Any], path: Path, given: Mapping[str, str] | None = None
    ) -> StackTemplate:
        root = path.parent
        parameters: dict[str, str] = {}
        for name, spec in (document.get("Parameters") or {}).items():
            default = spec.get("Default") if isinstance(spec, dict) else None
            if default is not None:
                parameters[name] = _cfn_string(default)
        declared = document.get("Parameters") or {}
        parameters |= {k: v for k, v in {**LOCAL_PARAMETERS, **(given or {})}.items() if k in declared}
        conditions = _conditions(document.get("Conditions") or {}, parameters, path)

        raw_resources = document.get("Resources")
        if not isinstance(raw_resources, dict) or not raw_resources:
            raise TemplateError(f"{path}: no Resources")
        resources: dict[str, Resource] = {}
        for logical_id, raw in raw_resources.items():
            if not isinstance(raw, dict) or not isinstance(raw.get("Type"), str):
                raise TemplateError(f"{path}: resource {logical_id} has no Type")
            condition = raw.get("Condition")
            if condition is not None:
                if condition not in conditions:
                    raise TemplateError(f"{path}: {logical_id}.Condition {condition!r} is not in Conditions")
                if not conditions[condition]:
                    continue  # not created with these parameters
            properties = raw.get("Properties") or {}
            if not isinstance(properties, dict):
                raise TemplateError(f"{path}: {logical_id}.Properties is not a mapping")
            resources[logical_id] = Resource(logical_id, raw["Type"], properties)

        globals_ = (document.get("Globals") or {}).get("Function") or {}
        functions: dict[str, FunctionSpec] = {}
        routes: list[Route] = []
        rules: list[EventRule] = []
        schedules: list[Schedule] = []
        for resource in resources.values():
            if resource.type != FUNCTION:
                continue
            function = _function(resource, globals_, root, path, resources)
            functions[function.logical_id] = function
            for event_name, event in (resource.properties.get("Events") or {}).items():
                where = f"{path}: {resource.logical_id}.Events.{event_name}"
                kind = event.get("Type") if isinstance(event, dict) else None
                props = (event.get("Properties") or {}) if isinstance(event, dict) else {}
                if kind == "HttpApi":
                    routes.append(_route(resource.logical_id, event_name, props, where))
                elif kind == "EventBridgeRule":
                    pattern = props.get("Pattern")
                    if not isinstance(pattern, dict) or not pattern:
                        raise TemplateError(f"{where}: an EventBridgeRule needs a Pattern")
                    rules.append(
                        EventRule(resource.logical_id, event_name, props.get("EventBusName"), pattern)
                    )
                elif kind in ("Schedule", "ScheduleV2"):
                    schedules.append(
                        Schedule(
                            resource.logical_id,
                            event_name,
                            props.get("Schedule") or props.get("ScheduleExpression"),
                            _schedule_input(props.get("Input"), where),
                        )
                    )
                # Other event sources (SQS, S3...) do not exist in trueup's template yet; none is
                # silently half-supported: they are simply not wired locally.
        _check_unique_routes(routes, path)
        return cls(path, parameters, resources, functions, routes, rules, schedules, conditions)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == type_]


def _conditions(raw: Mapping[str, Any], parameters: Mapping[str, str], path: Path) -> dict[str, bool]:
    """Each condition's value for these parameters (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition)."""
    values: dict[str, bool] = {}
    refs = Resolver(dict(parameters))

    def evaluate(expression: Any, where: str) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, arg),) = expression.items()
            if key == "Condition":
                return condition(str(arg), where)
            if key == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
                left, right = (refs.resolve_string(v, where) for v in arg)
                return left == right
            if key == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
                return not evaluate(arg[0], where)
            if key == "Fn::And" and isinstance(arg, list):
                return all(evaluate(a, where) for a in arg)
            if key == "Fn::Or" and isinstance(arg, list):
                return any(evaluate(a, where) for a in arg)
        raise TemplateError(f"{where}: the local stack cannot evaluate the condition {expression!r}")

    def condition(name: str, where: str) -> bool:
        if name not in values:
            if name not in raw:
                raise TemplateError(f"{where}: no condition {name!r} in Conditions")
            values[name] = evaluate(raw[name], f"{path}: Conditions.{name}")
        return values[name]

    for name in raw:
        condition(name, f"{path}: Conditions")
    return values


def _cfn_string(value: Any) -> str:
    # CloudFormation hands every parameter and environment value to Lambda as a string.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_cfn_string(v) for v in value)
    return str(value)


def _layers(
    function: Resource, globals_: Mapping[str, Any], root: Path, where: str, resources: Mapping[str, Resource]
) -> tuple[Path, ...]:
    folders = []
    for reference in [*(globals_.get("Layers") or []), *(function.properties.get("Layers") or [])]:
        target = resources.get(reference.get("Ref", "")) if isinstance(reference, dict) else None
        if target is None or target.type != LAYER:
            raise TemplateError(
                f"{where}: layer {reference!r} is not !Ref of an {LAYER} in this template; the local stack "
                "runs only layers whose code it has"
            )
        content = target.properties.get("ContentUri")
        if not isinstance(content, str) or not content:
            raise TemplateError(f"{where}: layer {target.logical_id} has no local ContentUri folder")
        folders.append((root / content).resolve())
    return tuple(folders)


def _function(
    resource: Resource, globals_: Mapping[str, Any], root: Path, path: Path, resources: Mapping[str, Resource]
) -> FunctionSpec:
    props = resource.properties
    where = f"{path}: {resource.logical_id}"

    def setting(name: str, default: Any = None) -> Any:
        return props.get(name, globals_.get(name, default))

    code_uri, handler = setting("CodeUri"), setting("Handler")
    if not isinstance(code_uri, str) or not code_uri:
        raise TemplateError(f"{where}: CodeUri must be a local folder (got {code_uri!r})")
    if not isinstance(handler, str) or "." not in handler:
        raise TemplateError(f"{where}: Handler must look like module.function (got {handler!r})")
    # SAM merges Globals maps into the function's own: the function's keys win.
    environment = {
        **((globals_.get("Environment") or {}).get("Variables") or {}),
        **((props.get("Environment") or {}).get("Variables") or {}),
    }
    timeout, memory = setting("Timeout", DEFAULT_TIMEOUT), setting("MemorySize", DEFAULT_MEMORY)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
        raise TemplateError(f"{where}: Timeout must be a whole number of seconds (got {timeout!r})")
    if not isinstance(memory, int) or isinstance(memory, bool):
        raise TemplateError(f"{where}: MemorySize must be a number of MB (got {memory!r})")
    invoke_config = props.get("EventInvokeConfig") or {}
    retries = invoke_config.get("MaximumRetryAttempts")
    if retries is not None and (
        not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 2
    ):
        raise TemplateError(
            f"{where}: EventInvokeConfig.MaximumRetryAttempts must be 0, 1 or 2 (got {retries!r})"
        )
    on_failure = ((invoke_config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    return FunctionSpec(
        resource.logical_id,
        (root / code_uri).resolve(),
        handler,
        timeout,
        memory,
        environment,
        _layers(resource, globals_, root, where, resources),
        retries,
        on_failure,
    )


def _route(function: str, event: str, props: Mapping[str, Any], where: str) -> Route:
    path, method = props.get("Path"), props.get("Method")
    if path is None and method is None:
        return Route(ANY_METHOD, DEFAULT_ROUTE, function, event)  # SAM: an HttpApi event without both
    if not isinstance(path, str) or not path.startswith("/"):
        raise TemplateError(f"{where}: Path must start with '/' (got {path!r})")
    if not isinstance(method, str) or not method:
        raise TemplateError(f"{where}: Method is missing")
    method = method.upper()
    if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" or method == "*":
        method = ANY_METHOD
    public = ((props.get("Auth") or {}).get("Authorizer")) == "NONE"
    return Route(method, path, function, event, public)


def _schedule_input(raw: Any, where: str) -> Any:
    if raw is None:
        return {}
    if not isinstance(raw, str):
        raise TemplateError(f"{where}: Input must be a JSON string")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{where}: Input is not JSON: {exc}") from exc


def _check_unique_routes(routes: Sequence[Route], path: Path) -> None:
    seen: dict[str, Route] = {}
    for route in routes:
        other = seen.setdefault(route.key, route)
        if other is not route:
            raise TemplateError(
                f"{path}: route {route.key} is declared twice "
                f"({other.function}.{other.event} and {route.function}.{route.event})"
            )


# ---------------------------------------------------------------------------------------- routing
@dataclass(frozen=True)
class _Segment:
    kind: int  # 0 static, 1 {param}, 2 {param+} (greedy): the order API Gateway prefers them in
    text: str


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]


@dataclass
class Router:
    """API Gateway HTTP API route selection: the most specific route wins.

    A static segment beats a `{param}`, which beats a greedy `{param+}`; a route with the request's
    method beats `ANY`; `$default` catches what nothing else matches. No match is API Gateway's 404.
    """

    routes: Sequence[Route]
    _compiled: list[tuple[Route, list[_Segment]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._compiled = [(r, _segments(r.path)) for r in self.routes if r.path != DEFAULT_ROUTE]

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        parts = _split(raw_path)
        candidates: list[tuple[tuple[tuple[int, ...], int], RouteMatch]] = []
        for route, segments in self._compiled:
            if route.method not in (method, ANY_METHOD):
                continue
            params = _match_segments(segments, parts)
            if params is None:
                continue
            rank = (tuple(s.kind for s in segments), 0 if route.method == method else 1)
            candidates.append((rank, RouteMatch(route, params)))
        if candidates:
            return min(candidates, key=lambda c: c[0])[1]
        for route in self.routes:
            if route.path == DEFAULT_ROUTE:
                return RouteMatch(route, {})
        return None


_PARAM = re.compile(r"^\{([A-Za-z0-9_.:-]+)(\+?)\}$")


def _split(path: str) -> list[str]:
    return path[1:].split("/") if path.startswith("/") and path != "/" else ([] if path == "/" else [path])


def _segments(path: str) -> list[_Segment]:
    out: list[_Segment] = []
    for part in _split(path):
        param = _PARAM.match(part)
        if param is None:
            out.append(_Segment(0, part))
        else:
            out.append(_Segment(2 if param.group(2) else 1, param.group(1)))
    return out


def _match_segments(segments: Sequence[_Segment], parts: Sequence[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for index, segment in enumerate(segments):
        if segment.kind == 2:
            rest = parts[index:]
            if not rest or not rest[0]:
                return None
            params[segment.text] = unquote("/".join(rest))
            return params
        if index >= len(parts):
            return None
        part = parts[index]
        if segment.kind == 0:
            if unquote(part) != segment.text:
                return None
        else:
            if not part:
                return None
            params[segment.text] = unquote(part)
    return params if len(parts) == len(segments) else None


# ------------------------------------------------------------------------------ intrinsic functions
@dataclass(frozen=True)
class Resolver:
    """Resolves Ref, Fn::Sub, Fn::GetAtt and Fn::Join against the local stack's names.

    `refs` maps logical ids and parameter names to what `!Ref` gives (table name, bucket name, bus
    name, secret ARN, parameter value; pseudo parameters included); `attributes` maps
    (logical id, attribute) to what `!GetAtt` gives.
    """

    refs: Mapping[str, str]
    attributes: Mapping[tuple[str, str], str] = field(default_factory=dict)
    conditions: Mapping[str, bool] = field(default_factory=dict)

    def resolve(self, value: Any, where: str = "template") -> Any:
        if isinstance(value, list):
            return [self.resolve(v, where) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg, where)
            if key == "Fn::Sub":
                return self._sub(arg, where)
            if key == "Fn::GetAtt":
                return self._get_att(arg, where)
            if key == "Fn::If":
                if not (isinstance(arg, list) and len(arg) == 3 and arg[0] in self.conditions):
                    raise TemplateError(f"{where}: Fn::If takes [a condition of Conditions, then, else]")
                return self.resolve(arg[1] if self.conditions[arg[0]] else arg[2], where)
            if key == "Fn::Join":
                if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list)):
                    raise TemplateError(f"{where}: Fn::Join takes [delimiter, [values]]")
                return str(arg[0]).join(_cfn_string(self.resolve(v, where)) for v in arg[1])
            if key.startswith("Fn::"):
                raise TemplateError(f"{where}: the local stack does not resolve {key}")
        return {k: self.resolve(v, f"{where}.{k}") for k, v in value.items()}

    def resolve_string(self, value: Any, where: str) -> str:
        resolved = self.resolve(value, where)
        if isinstance(resolved, dict):
            raise TemplateError(f"{where}: expected a string, got {resolved!r}")
        return _cfn_string(resolved)

    def _ref(self, name: Any, where: str) -> str:
        if not isinstance(name, str) or name not in self.refs:
            raise TemplateError(f"{where}: !Ref {name} names nothing the local stack created")
        return self.refs[name]

    def _get_att(self, arg: Any, where: str) -> str:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        if not (isinstance(arg, list) and len(arg) == 2):
            raise TemplateError(f"{where}: Fn::GetAtt takes [LogicalId, Attribute]")
        key = (str(arg[0]), str(arg[1]))
        if key not in self.attributes:
            raise TemplateError(f"{where}: !GetAtt {key[0]}.{key[1]} is not known locally")
        return self.attributes[key]

    def _sub(self, arg: Any, where: str) -> str:
        variables: Mapping[str, Any] = {}
        if isinstance(arg, list):
            if len(arg) != 2 or not isinstance(arg[1], dict):
                raise TemplateError(f"{where}: Fn::Sub takes a string or [string, {{variables}}]")
            arg, variables = arg[0], arg[1]
        if not isinstance(arg, str):
            raise TemplateError(f"{where}: Fn::Sub needs a string")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} is the escape for a literal ${Literal}
            if name in variables:
                return self.resolve_string(variables[name], where)
            if name in self.refs:
                return self.refs[name]
            if "." in name:
                return self._get_att(name.split(".", 1), where)
            raise TemplateError(f"{where}: ${{{name}}} names nothing the local stack created")

        return re.sub(r"\$\{([^}]+)\}", replace, arg)


def resolve_environment(
    function: FunctionSpec, resolver: Resolver, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The function's environment as Lambda would see it, with local overrides of declared variables.

    An override only replaces a variable the template declares for this function: the local stack
    never hands a function configuration the deployed function would not have.
    """
    env = {
        name: resolver.resolve_string(value, f"{function.logical_id}.Environment.{name}")
        for name, value in function.environment.items()
    }
    for name, value in (overrides or {}).items():
        if name in env:
            env[name] = value
    return env
