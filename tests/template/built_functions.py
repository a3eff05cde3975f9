"""Run every function of a `sam build` output the way Lambda runs it, once each, against moto.

Each function's worker is python3.12 started with -S, with the function's built code folder and the
built layer's `python/` folder on its path and nothing else: no dev venv, no site-packages, no
`shared/` source. The events are the ones each function really receives: API Gateway payload 2.0
for its HTTP routes, EventBridge's delivery of "Sync Requested" for the sync functions (against the
demo upstreams, through the secrets and endpoints the template wires). The Cognito-only function
(PageSignInFunction, a CloudFormation custom resource) gets CloudFormation's Create and Delete
requests against moto's Cognito, with its answer PUT to a local server standing in for CloudFormation.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.local.aws_standin import AwsStandIn, function_name
from infra.local.http_gateway import GatewayRequest, build_event, map_response, scheduler_input
from infra.local.layer import layer_paths
from infra.local.runtime import Worker, WorkerSpec, lambda_environment
from infra.local.stack import LocalStack, StackConfig
from infra.local.template import Router, StackTemplate

ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Invocation:
    """What one function answered: an HTTP status and body, or an event handler's result or error."""

    function: str
    ok: bool
    status: int | None = None
    body: Any = None
    error: str | None = None  # "errorType: errorMessage" when the invocation failed


def http_event(stack: LocalStack, method: str, path: str, body: Any = None) -> tuple[str, dict[str, Any]]:
    """(the function serving the route, its payload 2.0 event), as the API's gateway would build them."""
    match = Router(list(stack.template.routes)).match(method, path)
    assert match is not None, f"template.yaml has no route for {method} {path}"
    payload = b"" if body is None else json.dumps(body).encode()
    headers = [("host", "localhost"), ("content-type", "application/json")]
    request = GatewayRequest(method, path, headers, payload, "127.0.0.1")
    event = build_event(request, match, request_id=str(uuid.uuid4()), now=datetime.now(UTC))
    return match.route.function, event


def delivered(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """A trueup event as EventBridge delivers it to a function."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "trueup",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": {"version": 1, **detail},
    }


def sync_requested(run_id: str, source: str) -> dict[str, Any]:
    return delivered("Sync Requested", {"run_id": run_id, "source": source})


def invoke_http(stack: LocalStack, method: str, path: str, body: Any = None) -> Invocation:
    function, event = http_event(stack, method, path, body)
    assert stack.runtime is not None
    outcome = stack.runtime.invoke(function, event)
    if not outcome.ok:
        return Invocation(function, False, error=outcome.describe())
    response = map_response(outcome.result)
    text = response.body.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return Invocation(function, True, response.status, parsed)


def invoke_event(stack: LocalStack, function: str, event: dict[str, Any]) -> Invocation:
    assert stack.runtime is not None
    outcome = stack.runtime.invoke(function, event)
    if not outcome.ok:
        return Invocation(function, False, error=outcome.describe())
    return Invocation(function, True, body=outcome.result)


def run_each_function_once(
    build_dir: Path, data_dir: Path, python: Path, progress: Callable[[str], None] = lambda _: None
) -> dict[str, Invocation]:
    """Every function of `build_dir/template.yaml`, invoked once with a representative event.

    The API function describes the API, the snapshot function refuses a snapshot before any sync
    (409), the export function answers 404 for an unknown snapshot, and each sync function consumes
    a "Sync Requested" event for a run the API function queued, against the demo upstreams; then the
    suggestions function consumes the "Sync Completed" that follows, and the notification function a
    "Sync Failed". Results are keyed by logical id,
    plus "run": that sync run as GET /syncs/{id} shows it afterwards.
    """
    config = StackConfig(
        data_dir=data_dir,
        port=0,
        template_path=build_dir / "template.yaml",
        demo=True,
        first_sync=False,
        deliver_events=False,  # the sync functions get their events from here, one each
        prewarm=False,
        max_workers=1,
        python=python,
    )
    results: dict[str, Invocation] = {}
    with LocalStack(config, progress=progress) as stack:
        for method, path in (("GET", "/openapi.json"), ("POST", "/snapshots")):
            answer = invoke_http(stack, method, path)
            results[answer.function] = answer
        answer = invoke_http(stack, "POST", "/snapshots/20200101T000000000Z-000000/export")
        results[answer.function] = answer
        queued = invoke_http(stack, "POST", "/syncs", {"sources": ["pax8", "rmm"]})
        run_id = queued.body["id"] if queued.ok and isinstance(queued.body, dict) else "no-run"
        sources = {
            rule.function: rule.pattern["detail"]["source"][0]
            for rule in stack.template.rules
            if rule.pattern["detail-type"] == ["Sync Requested"]
        }
        for function, source in sources.items():
            results[function] = invoke_event(stack, function, sync_requested(run_id, source))
        if queued.ok:
            run = invoke_http(stack, "GET", f"/syncs/{run_id}")
            results["run"] = run
            # A sync reports what went wrong in its run rather than failing the invocation: judge it there.
            for function, source in sources.items():
                state = run.body["sources"][source] if run.ok else {}
                if results[function].ok and state.get("status") != "succeeded":
                    results[function] = Invocation(function, False, error=f"run {source}: {state}")
            # What follows a sync: the suggestions for the data now current, on "Sync Completed".
            current = invoke_http(stack, "GET", "/syncs/current")
            rmm = current.body["rmm"]["ninjaone"] if current.ok and isinstance(current.body, dict) else None
            (follows,) = [
                r.function
                for r in stack.template.rules
                if "Sync Completed" in r.pattern["detail-type"] and "detail" not in r.pattern
            ]
            completed = {"run_id": run_id, "source": "ninjaone", **(rmm or {})}
            results[follows] = invoke_event(stack, follows, delivered("Sync Completed", completed))
            # What a failed sync brings: a notification.
            (tells,) = [
                r.function
                for r in stack.template.rules
                if "Sync Failed" in r.pattern["detail-type"]
                and r.pattern.get("detail", {}).get("cycle_ids") == [{"exists": False}]
            ]
            failed = {"run_id": run_id, "source": "pax8", "error": "Pax8 answered 500"}
            results[tells] = invoke_event(stack, tells, delivered("Sync Failed", failed))
        # What a schedule starts: its Input, as Scheduler fills it in.
        (daily,) = [s for s in stack.template.schedules if s.event == "DailySync"]
        results[daily.function] = invoke_event(
            stack, daily.function, scheduler_input(daily, datetime.now(UTC))
        )
        if queued.ok:
            results["cycle"] = run_a_monthly_cycle(stack)
    # After the stack: one AWS stand-in per process at a time.
    results["PageSignInFunction"] = run_page_sign_in(build_dir, python)
    return results


def run_a_monthly_cycle(stack: LocalStack) -> Invocation:
    """The monthly schedule's firing, then each step's event handed to the function whose rule takes
    it, one after the other (this stack delivers no events itself): answers GET /cycles/{id} after."""
    (monthly,) = [s for s in stack.template.schedules if s.event == "Monthly"]
    started = invoke_event(stack, monthly.function, scheduler_input(monthly, datetime.now(UTC)))
    if not started.ok:
        return started
    cycle_id, run_id = started.body["cycle_id"], started.body["run_id"]

    def to_rule(detail_type: str, detail: dict[str, Any]) -> Invocation:
        (function,) = {
            r.function
            for r in stack.template.rules
            if detail_type in r.pattern["detail-type"]
            and (detail_type != "Sync Completed" or "detail" in r.pattern)  # the cycle's, not suggestions
        }
        return invoke_event(stack, function, delivered(detail_type, detail))

    for source in ("pax8", "ninjaone"):
        (function,) = {
            r.function
            for r in stack.template.rules
            if r.pattern["detail-type"] == ["Sync Requested"] and source in r.pattern["detail"]["source"]
        }
        synced = invoke_event(stack, function, sync_requested(run_id, source))
        if not synced.ok:
            return synced
    run = invoke_http(stack, "GET", f"/syncs/{run_id}").body
    for source, state in run["sources"].items():
        outcome = {
            "run_id": run_id,
            "source": source,
            "generation": state["generation"],
            "synced_at": state["started_at"],
            "records": state["records"],
            "skipped": state["skipped"],
            "cycle_ids": [cycle_id],
        }
        recorded = to_rule("Sync Completed", outcome)
        if not recorded.ok:
            return recorded
    for detail_type in ("Cycle Synced", "Snapshot Created", "Exports Ready"):
        cycle = invoke_http(stack, "GET", f"/cycles/{cycle_id}").body
        detail: dict[str, Any] = {"cycle_id": cycle_id}
        if detail_type == "Snapshot Created":
            snapshot = invoke_http(stack, "GET", f"/snapshots/{cycle['snapshot_id']}").body
            detail |= {"snapshot_id": snapshot["id"], "taken_at": snapshot["taken_at"], "trigger": "schedule"}
        if detail_type == "Exports Ready":
            detail |= {"snapshot_id": cycle["snapshot_id"], "keys": cycle["export_keys"]}
        step = to_rule(detail_type, detail)
        if not step.ok:
            return step
    return invoke_http(stack, "GET", f"/cycles/{cycle_id}")


@contextmanager
def cloudformation_response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(a URL, the JSON bodies PUT to it): CloudFormation's presigned ResponseURL, on loopback."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_PUT(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            received.append(json.loads(self.rfile.read(size)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/response", received
    finally:
        server.shutdown()
        server.server_close()


def run_page_sign_in(build_dir: Path, python: Path) -> Invocation:
    """PageSignInFunction as built: CloudFormation's Create, then Delete, against a Cognito user pool.

    The answer's body: {"responses": what it PUT to the ResponseURL, "client": the page client after}.
    """
    # Without SignInIssuer the template creates Cognito, and this function with it.
    template = StackTemplate.load(build_dir / "template.yaml", {"SignInIssuer": ""})
    spec = template.functions["PageSignInFunction"]
    standin = AwsStandIn()
    standin.start()
    try:
        cognito = standin.client("cognito-idp")
        pool = cognito.create_user_pool(PoolName="trueup-users")["UserPool"]["Id"]
        client = cognito.create_user_pool_client(
            UserPoolId=pool,
            ClientName="trueup-page",
            GenerateSecret=False,
            AccessTokenValidity=60,
            TokenValidityUnits={"AccessToken": "minutes"},
            ExplicitAuthFlows=["ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        name = function_name(spec.logical_id)
        worker = WorkerSpec(
            label=spec.logical_id,
            function_name=name,
            handler=spec.handler,
            code_root=spec.code_uri,
            environment=lambda_environment(
                {"POWERTOOLS_SERVICE_NAME": "trueup"},
                function_name=name,
                handler=spec.handler,
                code_root=spec.code_uri,
                memory_mb=spec.memory_mb,
                endpoint_url=standin.endpoint_url,
                credentials=(standin.credentials.access_key_id, standin.credentials.secret_access_key),
            ),
            timeout=spec.timeout,
            memory_mb=spec.memory_mb,
            python=python,
            paths=tuple(path for layer in spec.layers for path in layer_paths(layer, python)),
        )
        api_url = "https://abc123.execute-api.us-east-1.amazonaws.com/"
        properties = {
            "UserPoolId": pool,
            "ClientId": client,
            "CallbackURLs": [api_url],
            "LogoutURLs": [api_url],
            "AllowedOAuthFlows": ["code"],
            "AllowedOAuthScopes": ["openid", "profile", "email"],
            "SupportedIdentityProviders": ["COGNITO"],
        }
        with cloudformation_response_url() as (url, responses):
            for kind in ("Create", "Delete"):
                event = {
                    "RequestType": kind,
                    "ServiceToken": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}",
                    "ResponseURL": url,
                    "StackId": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/trueup/1",
                    "RequestId": str(uuid.uuid4()),
                    "LogicalResourceId": "PageSignIn",
                    "ResourceType": "Custom::PageSignIn",
                    "ResourceProperties": {"ServiceToken": "...", **properties},
                }
                outcome = run_once_with_event(worker, event)
                if not outcome[0]:
                    return Invocation(spec.logical_id, False, error=outcome[1])
            after = cognito.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]
        return Invocation(spec.logical_id, True, body={"responses": responses, "client": after})
    finally:
        standin.stop()


def run_once_with_event(spec: WorkerSpec, event: dict[str, Any]) -> tuple[bool, str | None]:
    """(ok, error) of one invocation of `spec` with `event` in a fresh worker."""
    worker = Worker(spec)
    try:
        outcome = worker.invoke(event)
    finally:
        worker.kill()
    return outcome.ok, None if outcome.ok else outcome.describe()
