"""The benchmark run: helper processes up, a sync of both sources and a snapshot through the handlers.

The flow is the product's own. `POST /syncs` goes to the function the template routes it to (as an
API Gateway payload 2.0 event); the "Sync Requested" events the bus routes by the template's rules
are picked up from the rules' queues and handed to the sync functions; then `POST /snapshots`.
Each handler invocation runs in a fresh process of its own (`infra.bench.invoke`), so the peak
memory and CPU measured are that step's alone; the syncs run one after the other so that each
wall time is its own too. The demo upstreams and moto run in helper processes of their own.
"""

from __future__ import annotations

import gzip
import inspect
import json
import math
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx

from infra.bench import figures as fig
from infra.bench.processes import Helper, HelperError
from infra.bench.rmm_adapters import measure_rmms
from infra.local.aws_standin import REGION
from infra.local.eventbridge import lambda_event
from infra.local.http_gateway import GatewayRequest, build_event, map_response, scheduler_input
from infra.local.layer import layer_paths, runtime_python
from infra.local.runtime import lambda_environment
from infra.local.template import Router, StackTemplate
from trueup.vendors.ninjaone import NinjaOneAdapter
from trueup.vendors.pax8 import PAGE_SIZE as PAX8_PAGE_SIZE
from trueup.vendors.pax8 import Pax8Client

# What API Gateway's JWT authorizer hands the functions for the benchmark's calls: a script with the
# admin role (client credentials), as a deployed stack would see one.
BENCH_CALLER = {"jwt": {"claims": {"sub": "bench", "client_id": "bench", "roles": "[admin]"}, "scopes": None}}

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
INVOKE_SCRIPT = Path(__file__).resolve().with_name("invoke.py")  # run as a script: needs no `infra`
ACCOUNT_ID = "123456789012"
# The Pax8 lists a sync reads, timed inside the sync's process (the "Pax8 list time").
PAX8_LISTS = ("companies", "products", "subscriptions")
UPSTREAMS_READY_S = 900  # building a 1,000,000-device data set takes a while
STANDIN_READY_S = 120
EVENT_WAIT_S = 30
CYCLE_WAIT_S = 1800
# The functions a monthly cycle's events reach, in the order of its steps. SuggestionsFunction also
# takes "Sync Completed", but nothing of the cycle waits on it; on AWS it runs beside the cycle on a
# CPU of its own, here it would take one of the machine's two, so the cycle's figure leaves it out.
CYCLE_FUNCTIONS = (
    "Pax8SyncFunction",
    "RmmSyncFunction",
    "CycleFunction",
    "SnapshotFunction",
    "ExportFunction",
    "NotifyFunction",
)


class BenchmarkError(RuntimeError):
    """The benchmark could not produce its figures (a step failed); the message says which and why."""


@dataclass(frozen=True)
class Options:
    clients: int = 2000
    devices_per_client: int = 50
    latency: float = 0.1
    ninjaone_page_cap: int = 1000
    profile_dir: Path | None = None  # each invocation's cProfile statistics, by invocation
    # The snapshot alone, with evidence on and off, at this many made-up devices (0: not measured).
    snapshot_devices: int = 1_000_000


def _default(function: Callable[..., Any], parameter: str) -> Any:
    # The client's own default, read rather than copied, so that the minimum follows the code.
    return inspect.signature(function).parameters[parameter].default


@dataclass(frozen=True)
class Invocation:
    """What one measured handler invocation came to (see `infra.bench.invoke`)."""

    function: str
    result: Any
    wall_s: float
    cpu_s: float
    cpu_user_s: float
    cpu_sys_s: float
    max_rss_kib: int
    init_rss_kib: int
    aws_calls: dict[str, int]
    timed: dict[str, float]
    memory_mb: int
    timeout_s: int


class Functions:
    """Invokes the template's functions, each call in a fresh measured process."""

    def __init__(
        self,
        workdir: Path,
        standin: Mapping[str, Any],
        template: StackTemplate,
        profile_dir: Path | None = None,
    ) -> None:
        self._workdir = workdir
        self._functions: Mapping[str, Any] = standin["functions"]
        self._endpoint_url: str = standin["endpoint_url"]
        self._credentials: tuple[str, str] = tuple(standin["credentials"])
        self._router = Router(template.routes)
        self._count = 0
        self._count_lock = threading.Lock()  # the cycle's steps are invoked side by side
        self._profile_dir = profile_dir
        # Each handler runs as in the local stack and in Lambda: python3.12 -S, its code and its layer.
        self._python = runtime_python()
        self._paths = {
            f.logical_id: [p for layer in f.layers for p in layer_paths(layer, self._python)]
            for f in template.functions.values()
        }

    def invoke(
        self,
        function: str,
        event: Any,
        *,
        time_functions: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> Invocation:
        """One measured invocation; `env`: variables over the function's own (what a parameter sets)."""
        spec = self._functions.get(function)
        if spec is None:
            raise BenchmarkError(f"template.yaml has no function {function}")
        with self._count_lock:
            self._count += 1
            label = f"{self._count:02d}-{function}"
        event_path = self._workdir / f"{label}.event.json"
        out_path = self._workdir / f"{label}.result.json"
        event_path.write_text(json.dumps(event))
        # Readable output: warnings only, and no metrics lines (Powertools prints them to stdout).
        function_env = {
            **spec["environment"],
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            **(env or {}),
        }
        code_root = Path(spec["code_uri"])
        env = lambda_environment(
            function_env,
            function_name=spec["name"],
            handler=spec["handler"],
            code_root=code_root,
            memory_mb=spec["memory_mb"],
            endpoint_url=self._endpoint_url,
            credentials=self._credentials,
        )
        args = [
            "--code-root",
            str(code_root),
            *(arg for path in self._paths[function] for arg in ("--path", str(path))),
            "--handler",
            spec["handler"],
            "--function-name",
            spec["name"],
            "--memory-mb",
            str(spec["memory_mb"]),
            "--timeout",
            str(spec["timeout"]),
            "--event",
            str(event_path),
            "--out",
            str(out_path),
        ]
        for target in time_functions:
            args += ["--time", target]
        if self._profile_dir is not None:
            args += ["--profile", str(self._profile_dir / f"{label}.prof")]
        command = [str(self._python), "-S", "-P", str(INVOKE_SCRIPT)]
        helper = Helper(
            label, "infra.bench.invoke", args, self._workdir, env=env, cwd=code_root, command=command
        )
        helper.start()
        # Not the function's Timeout: this machine is not Lambda. The report compares with it instead.
        helper.wait_done(max(600.0, 3.0 * spec["timeout"]))
        outcome = json.loads(out_path.read_text())
        if not outcome["ok"]:
            raise helper.failure(f"the handler raised:\n{outcome['error']}")
        return Invocation(
            function=function,
            result=outcome["result"],
            wall_s=outcome["wall_s"],
            cpu_s=outcome["cpu_s"],
            cpu_user_s=outcome["cpu_user_s"],
            cpu_sys_s=outcome["cpu_sys_s"],
            max_rss_kib=outcome["max_rss_kib"],
            init_rss_kib=outcome["init_rss_kib"],
            aws_calls=outcome["aws_calls"],
            timed=outcome["timed"],
            memory_mb=spec["memory_mb"],
            timeout_s=spec["timeout"],
        )

    def http(
        self,
        method: str,
        target: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any, int, Invocation]:
        """One HTTP request as API Gateway hands it to the routed function: (status, headers, JSON
        body, body bytes as sent, the invocation)."""
        path = target.partition("?")[0]
        match = self._router.match(method, path)
        if match is None:
            raise BenchmarkError(f"template.yaml routes no function for {method} {path}")
        raw = b"" if body is None else json.dumps(body).encode()
        request_headers = [("host", "localhost"), *(headers or {}).items()]
        if raw:
            request_headers.append(("content-type", "application/json"))
        event = build_event(
            GatewayRequest(method, target, request_headers, raw, "127.0.0.1"),
            match,
            request_id=str(uuid.uuid4()),
            now=datetime.now(UTC),
            authorizer=None if match.route.public else BENCH_CALLER,
        )
        invocation = self.invoke(match.route.function, event, env=env)
        response = map_response(invocation.result)
        answer_headers = {name.lower(): value for name, value in response.headers}
        data = response.body
        if answer_headers.get("content-encoding") == "gzip":
            data = gzip.decompress(data)
        parsed = json.loads(data) if data else None
        return response.status, answer_headers, parsed, len(response.body), invocation


def _session(standin: Mapping[str, Any]) -> Any:
    key_id, secret = standin["credentials"]
    return boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=REGION)


def _sync_events(
    standin: Mapping[str, Any],
    run_id: str,
    functions: tuple[str, ...],
    detail_type: str = "Sync Requested",
    source: str | None = None,
) -> dict[str, dict[str, Any]]:
    """The `detail_type` event of `run_id` (and `source`) that the rules of `functions` routed, by
    function."""
    sqs = _session(standin).client("sqs", endpoint_url=standin["endpoint_url"])
    found: dict[str, dict[str, Any]] = {}
    queues = {entry["function"]: entry["queue_url"] for entry in standin["queues"]}
    unrouted = [function for function in functions if function not in queues]
    if unrouted:
        raise BenchmarkError(f"template.yaml has no EventBridge rule for {', '.join(unrouted)}")
    wanted = {function: queues[function] for function in functions}
    deadline = time.monotonic() + EVENT_WAIT_S
    while len(found) < len(wanted):
        if time.monotonic() > deadline:
            missing = sorted(set(wanted) - set(found))
            raise BenchmarkError(f"no {detail_type} event for {', '.join(missing)} within {EVENT_WAIT_S} s")
        for function, queue_url in wanted.items():
            if function in found:
                continue
            answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in answer.get("Messages", []):
                event = lambda_event(message["Body"])
                # moto leaves out two envelope fields EventBridge always sends to Lambda.
                event.setdefault("version", "0")
                event.setdefault("account", ACCOUNT_ID)
                detail = event["detail"]
                if (
                    event.get("detail-type") == detail_type
                    and detail.get("run_id") == run_id
                    and source in (None, detail.get("source"))
                ):
                    found[function] = event
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


# What a person's page asks the API for, in the order the page asks: (label, method, target). Each is
# asked without gzip, so the bytes are the uncompressed size (Lambda's limit is on that: 6 MB).
API_READS = (
    ("GET /snapshots/latest (first page)", "GET", "/snapshots/latest"),
    ("a page of rows (?cursor=500)", "GET", "/snapshots/{id}?cursor=500"),
    ("sorted and searched (?sort=-variance&q=a)", "GET", "/snapshots/{id}?sort=-variance&q=a"),
    ("GET /mappings, counts only (the menu)", "GET", "/mappings?list=unmapped_pax8&limit=1"),
    ("GET /mappings (the Unmapped clients view)", "GET", "/mappings?limit=50"),
    ("GET /mappings, one list searched", "GET", "/mappings?list=unmapped_rmm&q=a&limit=20"),
)
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def _api_reads(functions: Any, snapshot_id: str, taken: Invocation, taken_bytes: int) -> list[dict[str, Any]]:
    """Time and size of each answer. Each invocation runs in a process of its own: a function that
    has not yet read anything (nothing cached), the call alone timed, its import not."""
    figures = [
        {"label": "POST /snapshots", "status": 201, "wall_s": round(taken.wall_s, 3), "bytes": taken_bytes}
    ]
    for label, method, target in API_READS:
        status, _, body, size, invocation = functions.http(method, target.replace("{id}", snapshot_id))
        if status != 200:
            raise BenchmarkError(f"{method} {target} answered {status}: {body}")
        figures.append(
            {"label": label, "status": status, "wall_s": round(invocation.wall_s, 3), "bytes": size}
        )
    return figures


def _stored_bytes(standin: Mapping[str, Any]) -> dict[str, int]:
    s3 = _session(standin).client("s3", endpoint_url=standin["endpoint_url"])
    sizes = {"pax8_generation": 0, "rmm_generation": 0, "snapshot": 0}
    prefixes = {"generations/pax8/": "pax8_generation", "generations/rmm/": "rmm_generation"}
    for bucket in standin["buckets"].values():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                key: str = item["Key"]
                name = next((v for p, v in prefixes.items() if key.startswith(p)), None)
                if name is None and key.startswith("snapshots/"):
                    name = "snapshot"
                if name is not None:
                    sizes[name] += int(item["Size"])
    return sizes


def run(options: Options, progress: Callable[[str], None]) -> dict[str, Any]:
    """Run the benchmark and return its figures (see `figures.render` for what they mean)."""
    if options.clients < 1 or options.ninjaone_page_cap < 1:
        raise BenchmarkError("--clients and --ninjaone-page-cap must be 1 or more")
    if options.devices_per_client < 0 or options.latency < 0:
        raise BenchmarkError("--devices-per-client and --latency must be 0 or more")
    started = time.monotonic()
    template = StackTemplate.load(TEMPLATE)
    workdir = Path(tempfile.mkdtemp(prefix="trueup-bench-"))
    try:
        with ExitStack() as helpers:
            result = _run(options, progress, template, workdir, helpers)
    except (BenchmarkError, HelperError) as exc:
        raise BenchmarkError(f"{exc}\n(logs kept in {workdir})") from exc
    shutil.rmtree(workdir, ignore_errors=True)
    result["benchmark_s"] = round(time.monotonic() - started, 1)
    return result


def _snapshot_at_scale(
    functions: Functions, standin: Mapping[str, Any], options: Options, progress: Callable[[str], None]
) -> dict[str, Any] | None:
    """The snapshot alone at `options.snapshot_devices` made-up devices (100 a client), with evidence
    and without."""
    if options.snapshot_devices <= 0:
        return None
    from infra.bench import snapshot_scale

    per_client = 100
    clients = max(1, options.snapshot_devices // per_client)
    progress(f"writing a made-up inventory of {clients * per_client:,} devices straight into the stand-in...")
    functions_env = standin["functions"]["SnapshotFunction"]["environment"]
    environment = {
        **{k: v for k, v in functions_env.items() if k.startswith("TRUEUP_")},
        "AWS_ENDPOINT_URL": standin["endpoint_url"],
        "AWS_ACCESS_KEY_ID": standin["credentials"][0],
        "AWS_SECRET_ACCESS_KEY": standin["credentials"][1],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    snapshot_scale.write_current_generations(environment, clients, per_client)
    progress("taking its snapshot with evidence, then without...")

    def take(env: Mapping[str, str]) -> Invocation:
        status, _, body, _, invocation = functions.http("POST", "/snapshots", env=env)
        if status != 201:
            raise BenchmarkError(f"POST /snapshots at {clients:,} clients answered {status}: {body}")
        return invocation

    return {
        "clients": clients,
        "devices": clients * per_client,
        **snapshot_scale.snapshot_with_and_without_evidence(take),
    }


def _monthly_cycle(
    functions: Functions, standin: Mapping[str, Any], template: StackTemplate, progress: Callable[[str], None]
) -> dict[str, Any]:
    """The monthly schedule's firing to the notification, as the bus would run it: each event handed
    to the function whose rule routed it as soon as it is published, events in flight side by side
    (the two syncs run at once, as on AWS). Each invocation is a fresh process (a cold start)."""
    sqs = _session(standin).client("sqs", endpoint_url=standin["endpoint_url"])
    queues = [(q["function"], q["queue_url"]) for q in standin["queues"] if q["function"] in CYCLE_FUNCTIONS]
    for _, queue_url in queues:  # what earlier steps left for these functions is not the cycle's
        sqs.purge_queue(QueueUrl=queue_url)
    (monthly,) = [s for s in template.schedules if s.event == "Monthly"]
    steps: list[dict[str, Any]] = []
    started = time.monotonic()

    def step(function: str, event: Any, what: str) -> Invocation:
        began = time.monotonic() - started
        invocation = functions.invoke(function, event)
        steps.append(
            {
                "what": what,
                "function": function,
                "start_s": round(began, 3),
                "wall_s": round(invocation.wall_s, 3),
            }
        )
        return invocation

    fired = step(monthly.function, scheduler_input(monthly, datetime.now(UTC)), "the schedule fires")
    cycle_id = fired.result["cycle_id"]
    notified: Invocation | None = None
    with ThreadPoolExecutor(max_workers=4) as pool:
        running: list[Future[Invocation]] = []
        while notified is None:
            if time.monotonic() - started > CYCLE_WAIT_S:
                raise BenchmarkError(f"the cycle {cycle_id} was not told within {CYCLE_WAIT_S} s: {steps}")
            for future in [f for f in running if f.done()]:
                running.remove(future)
                invocation = future.result()  # a step that raised ends the benchmark, naming it
                if invocation.function == "NotifyFunction" and invocation.result.get("cycle_id") == cycle_id:
                    notified = invocation
            for function, queue_url in queues:
                answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
                for message in answer.get("Messages", []):
                    event = lambda_event(message["Body"])
                    event.setdefault("version", "0")
                    event.setdefault("account", ACCOUNT_ID)
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    what = event["detail-type"] + (
                        f" ({event['detail']['source']})" if "source" in event["detail"] else ""
                    )
                    running.append(pool.submit(step, function, event, what))
            if notified is None:
                time.sleep(0.02)  # polling the rules' queues, as Lambda's poller would
    total = time.monotonic() - started
    status, _, cycle, _, _ = functions.http("GET", f"/cycles/{cycle_id}")
    if status != 200 or cycle["status"] != "succeeded":
        raise BenchmarkError(f"the cycle did not succeed: {cycle}")
    progress(f"the monthly cycle took {total:.1f} s from the schedule firing to the notification")
    return {
        "cycle_id": cycle_id,
        "schedule_to_notification_s": round(total, 3),
        "subject": notified.result.get("subject"),
        "exports": len(cycle["export_keys"]),
        "steps": sorted(steps, key=lambda s: s["start_s"]),
    }


def _run(
    options: Options,
    progress: Callable[[str], None],
    template: StackTemplate,
    workdir: Path,
    helpers: ExitStack,
) -> dict[str, Any]:
    progress(
        f"building the demo data set ({options.clients:,} clients x {options.devices_per_client} devices) "
        "and starting the demo upstreams..."
    )
    upstreams = Helper(
        "upstreams",
        "infra.bench.upstreams",
        [
            "--clients",
            str(options.clients),
            "--devices-per-client",
            str(options.devices_per_client),
            "--latency",
            str(options.latency),
            "--pax8-max-page-size",
            str(PAX8_PAGE_SIZE),
            "--ninjaone-page-cap",
            str(options.ninjaone_page_cap),
            "--ready",
            str(workdir / "upstreams.ready.json"),
        ],
        workdir,
    )
    upstreams.start()
    helpers.callback(upstreams.stop)
    demo = upstreams.wait_ready(UPSTREAMS_READY_S)

    progress("starting the AWS stand-in (moto server) with the template's resources...")
    parameters = {
        "Pax8ApiUrl": demo["pax8_api_url"],
        "Pax8TokenUrl": demo["pax8_token_url"],
        "NinjaOneUrl": demo["ninjaone_url"],
    }
    standin_helper = Helper(
        "aws",
        "infra.bench.standin",
        [
            "--template",
            str(TEMPLATE),
            "--parameters",
            json.dumps(parameters),
            "--ready",
            str(workdir / "aws.ready.json"),
        ],
        workdir,
    )
    standin_helper.start()
    helpers.callback(standin_helper.stop)
    standin = standin_helper.wait_ready(STANDIN_READY_S)
    functions = Functions(workdir, standin, template, options.profile_dir)
    control = httpx.Client(base_url=demo["pax8_control_url"], timeout=30)
    helpers.callback(control.close)

    status, _, run, _, _ = functions.http("POST", "/syncs")
    if status != 202:
        raise BenchmarkError(f"POST /syncs answered {status}: {run}")
    events = _sync_events(standin, run["id"], ("Pax8SyncFunction", "RmmSyncFunction"))
    control.post("/_demo/reset").raise_for_status()

    progress("syncing Pax8...")
    pax8_targets = tuple(f"trueup.vendors.pax8:Pax8Client.{name}" for name in (*PAX8_LISTS, "fetch_lists"))
    pax8 = functions.invoke("Pax8SyncFunction", events["Pax8SyncFunction"], time_functions=pax8_targets)
    progress("syncing the RMM (NinjaOne)...")
    rmm = functions.invoke("RmmSyncFunction", events["RmmSyncFunction"])
    stats = control.get("/_demo/stats").raise_for_status().json()

    status, _, run, _, _ = functions.http("GET", f"/syncs/{run['id']}")
    failed = {s: v for s, v in run["sources"].items() if v["status"] != "succeeded"}
    if status != 200 or failed:
        problems = "; ".join(f"{s}: {v['status']} ({v['error']})" for s, v in failed.items())
        raise BenchmarkError(f"the syncs did not succeed: {problems or run}")

    progress("working out the mapping suggestions (after the last sync)...")
    completed = _sync_events(standin, run["id"], ("SuggestionsFunction",), "Sync Completed", "ninjaone")
    suggested = functions.invoke("SuggestionsFunction", completed["SuggestionsFunction"])
    if not isinstance(suggested.result, dict) or not suggested.result.get("key"):
        raise BenchmarkError(f"the suggestions were not worked out: {suggested.result}")

    progress("taking the snapshot...")
    status, headers, snapshot, response_bytes, snap = functions.http(
        "POST", "/snapshots", headers={"accept-encoding": "gzip"}
    )
    if status != 201:
        raise BenchmarkError(f"POST /snapshots answered {status}: {snapshot}")
    stored = _stored_bytes(standin)
    progress("the same snapshot without evidence...")
    status, _, _, _, without = functions.http("POST", "/snapshots", env={"TRUEUP_SNAPSHOT_EVIDENCE": "off"})
    if status != 201:
        raise BenchmarkError(f"POST /snapshots without evidence answered {status}")
    progress("reading the snapshot and the mappings over the API...")
    api = _api_reads(functions, snapshot["id"], snap, response_bytes)
    progress("firing the monthly schedule: syncs, snapshot, exports, notification...")
    cycle = _monthly_cycle(functions, standin, template, progress)
    at_scale = _snapshot_at_scale(functions, standin, options, progress)
    rmm_adapters = measure_rmms(options.clients, options.devices_per_client, options.latency, progress)

    pax8_concurrency: int = _default(Pax8Client, "concurrency")
    ninjaone_requested: int = _default(NinjaOneAdapter, "page_size")
    ninjaone_page = min(ninjaone_requested, options.ninjaone_page_cap)
    records = demo["records"]
    pax8_lists = [
        fig.VendorList(name, f"/v1/{name}", records[name], PAX8_PAGE_SIZE, ends_with_empty_page=False)
        for name in PAX8_LISTS
    ]
    ninjaone_lists = [
        fig.VendorList(name, f"/v2/{name}", records[name], ninjaone_page, ends_with_empty_page=True)
        for name in ("organizations", "devices")
    ]
    # The device roles come whole in one request (the vendor spec declares no paging for them).
    ninjaone_lists.append(
        fig.VendorList(
            "roles", "/v2/roles", records["roles"], max(records["roles"], 1), ends_with_empty_page=False
        )
    )
    requests = {
        "pax8": fig.upstream_requests(pax8_lists, "/v1/token", stats["pax8"]),
        "ninjaone": fig.upstream_requests(ninjaone_lists, "/ws/oauth/token", stats["ninjaone"]),
    }

    latency = options.latency
    pax8_list_figures = {}
    for position, item in enumerate(pax8_lists):
        pages = requests["pax8"]["lists"][item.name]["actual"]
        floor = fig.concurrent_list_floor(pages, pax8_concurrency, latency)
        if position == 0:
            # The first list's time includes the token request, made on its first page.
            floor += requests["pax8"]["token"]["minimum"] * latency
        pax8_list_figures[item.name] = {
            "pages": pages,
            "includes_token": position == 0,
            "wall_s": round(pax8.timed[f"trueup.vendors.pax8:Pax8Client.{item.name}"], 3),
            "ideal_s": round(fig.concurrent_list_ideal(pages, pax8_concurrency, latency), 3),
            "floor_s": round(floor, 3),
        }
    # The sync reads the three lists side by side (fetch_lists): their own times overlap, so the
    # listing time is fetch_lists' and its floor is one token, one round of first pages, then the
    # remaining pages in rounds of `concurrency`.
    lists_s = pax8.timed["trueup.vendors.pax8:Pax8Client.fetch_lists"]
    ideal_s = sum(v["ideal_s"] for v in pax8_list_figures.values())
    all_pages = sum(v["pages"] for v in pax8_list_figures.values())
    floor_s = (
        requests["pax8"]["token"]["minimum"]
        + 1
        + math.ceil(max(0, all_pages - len(pax8_lists)) / pax8_concurrency)
    ) * latency
    rmm_pages = sum(v["actual"] for v in requests["ninjaone"]["lists"].values())
    steps = {"pax8_sync": pax8, "rmm_sync": rmm, "suggestions": suggested, "snapshot": snap}
    memory = {
        name: {
            "peak": fig.mb(step.max_rss_kib),
            "after_import": fig.mb(step.init_rss_kib),
            "function_memory_mb": step.memory_mb,
        }
        for name, step in steps.items()
    }
    largest_peak = max(entry["peak"] for entry in memory.values())
    coverages = snapshot["coverages"]
    return {
        "size": {
            "clients": options.clients,
            "devices_per_client": options.devices_per_client,
            "devices": records["devices"],
            "subscriptions": records["subscriptions"],
            "companies": records["companies"],
            "products": records["products"],
            "organizations": records["organizations"],
        },
        "latency_s": latency,
        "page_sizes": {
            "pax8": PAX8_PAGE_SIZE,
            "ninjaone": ninjaone_page,
            "ninjaone_requested": ninjaone_requested,
            "ninjaone_cap": options.ninjaone_page_cap,
        },
        "upstream_requests": requests,
        "syncs": {
            "pax8": {
                "wall_s": round(pax8.wall_s, 3),
                "limit_s": pax8.timeout_s,
                "records": run["sources"]["pax8"]["records"],
                "concurrency": pax8_concurrency,
                "lists_s": round(lists_s, 3),
                "ideal_s": round(ideal_s, 3),
                "floor_s": round(floor_s, 3),
                "lists": pax8_list_figures,
            },
            "rmm": {
                "wall_s": round(rmm.wall_s, 3),
                "limit_s": rmm.timeout_s,
                "records": run["sources"]["ninjaone"]["records"],
                "pages": rmm_pages,
                "ideal_s": round(rmm_pages * latency, 3),
            },
        },
        "suggestions": {
            "wall_s": round(suggested.wall_s, 3),
            "limit_s": suggested.timeout_s,
            "organizations": suggested.result["organizations"],
        },
        "memory_mb": memory,
        "snapshot_evidence": {
            "on": {
                "cpu_s": round(snap.cpu_s, 2),
                "wall_s": round(snap.wall_s, 2),
                "peak_mb": fig.mb(snap.max_rss_kib),
            },
            "off": {
                "cpu_s": round(without.cpu_s, 2),
                "wall_s": round(without.wall_s, 2),
                "peak_mb": fig.mb(without.max_rss_kib),
            },
        },
        "snapshot_at_scale": at_scale,
        "rmm_adapters": rmm_adapters,
        "snapshot": {
            "cpu_s": round(snap.cpu_s, 3),
            "cpu_user_s": round(snap.cpu_user_s, 3),
            "cpu_sys_s": round(snap.cpu_sys_s, 3),
            "wall_s": round(snap.wall_s, 3),
            "limit_s": snap.timeout_s,
            "coverages": len(coverages),
            # The answer holds summaries: each row is counted under its status.
            "rows": sum(
                c["summary"][s]
                for c in coverages
                for s in ("under_licensed", "over_licensed", "matched", "unmapped")
            ),
            "response_bytes": response_bytes,
            "response_encoding": headers.get("content-encoding", "identity"),
        },
        "aws_requests": {
            name: {"total": sum(step.aws_calls.values()), "by_operation": step.aws_calls}
            for name, step in steps.items()
        },
        "stored_bytes": stored,
        "api": api,
        "cycle": cycle,
        "targets": {
            "requests_within_1_05x": all(r["within_target"] for r in requests.values()),
            "pax8_list_vs_ideal": round(lists_s / ideal_s, 2) if ideal_s else None,
            "pax8_list_vs_floor": round(lists_s / floor_s, 2) if floor_s else None,
            "largest_peak_mb": largest_peak,
            "largest_api_response_bytes": max(read["bytes"] for read in api),
            "api_responses_within_6_mb": all(read["bytes"] <= LAMBDA_RESPONSE_LIMIT for read in api),
            "memory_within_512_mb": largest_peak <= fig.MEMORY_TARGET_MB,
            "snapshot_cpu_under_2_s": snap.cpu_s < fig.SNAPSHOT_CPU_TARGET_S,
        },
    }
