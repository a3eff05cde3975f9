"""The local stack: trueup's real Lambda handlers on one machine, with no AWS account.

`LocalStack.start()` brings up, in order:

1. the demo upstreams (demo mode only), on free ports;
2. the AWS stand-in (moto in server mode, in this process), with the tables, buckets, bus and
   secrets of `template.yaml` created from the template's own definitions; the secrets hold the
   vendor credentials (demo ones, or PAX8_* / NINJAONE_* from the environment or `.env`);
3. the functions of the template, each in warm worker processes with its own resolved
   environment (`infra.local.runtime`);
4. the saved state of TRUEUP_DATA_DIR (`infra.local.persistence`), then the recovery hook
   `trueup.services.sync_runs.recover_interrupted_runs()` if the package has it: it runs once in a
   fresh worker
   with ApiFunction's environment (the handlers' own configuration, and nothing set in this
   process's environment), and marks syncs a stopped stack left queued or running as failed;
5. the template's EventBridge rules, delivering to their functions (`infra.local.eventbridge`);
6. the HTTP API on 127.0.0.1:TRUEUP_PORT (`infra.local.http_gateway`);
7. a first sync of the sources that never synced in this data directory, through the real path
   (POST /syncs on the gateway, then GET /syncs/{id} until it settles), so POST /snapshots works
   at once.

The AWS stand-in counts every write to a table or a bucket; before any HTTP answer goes out (a read's
too) and after every event or schedule, the state is saved if anything was written since the last
save, so nothing acknowledged, and nothing shown, is lost when the process is killed.
`<TRUEUP_DATA_DIR>/stack.json` says where everything listens while it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import http.client
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

from infra.build import LAMBDA_PYTHON
from infra.local.aws_standin import AwsStandIn, LocalResources, create_resources, function_name
from infra.local.credentials import (
    VendorCredentials,
    demo_requested,
    rmm_sources,
    vendor_credentials,
    vendor_endpoints,
)
from infra.local.eventbridge import EventDelivery
from infra.local.http_gateway import Gateway, GatewayServer
from infra.local.layer import layer_paths, python_version, runtime_python
from infra.local.notifications import NotificationInbox
from infra.local.persistence import AwsState, StateDirectory, write_atomically
from infra.local.runtime import (
    MAX_SYNC_RESPONSE_BYTES,
    FunctionRuntime,
    Outcome,
    WorkerSpec,
    lambda_environment,
    run_once,
)
from infra.local.sign_in import (
    AUDIENCE,
    PAGE_CLIENT_ID,
    PEOPLE,
    ROLE_CLAIM,
    JwtAuthorizer,
    LocalProvider,
    SignInError,
    get_script_token,
)
from infra.local.sign_in import SCOPE as SIGN_IN_SCOPE
from infra.local.template import FunctionSpec, Resolver, Router, StackTemplate, resolve_environment
from trueup.errors import InvalidInput
from trueup.sources import RMM_NAMES
from trueup.vendors.credentials import ClientCredentials

log = logging.getLogger("infra.local.stack")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 3000
UNFINISHED = ("queued", "running")
RECOVERY_HOOK = "trueup.services.sync_runs:recover_interrupted_runs"
STACK_FILE = "stack.json"
AUTH_MODES = ("off", "oidc")
LOCK_FILE = "stack.lock"
# Function variables that name a vendor's endpoints; the local stack points them at the demo upstreams.
ENDPOINT_VARIABLES = ("PAX8_API_URL", "PAX8_TOKEN_URL", "NINJAONE_URL", "DATTO_URL")
SECRET_SUFFIX = "_SECRET_ID"  # PAX8_SECRET_ID names the secret holding the Pax8 credentials


class StackError(RuntimeError):
    """The local stack cannot start or serve; the message says what to do."""


@dataclass(frozen=True)
class StackConfig:
    data_dir: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    template_path: Path = REPO_ROOT / "template.yaml"
    demo: bool = True
    # None outside demo mode: no vendor is wired (tests of the stack's mechanics).
    credentials: VendorCredentials | None = None
    endpoint_overrides: Mapping[str, str] = field(default_factory=dict)
    first_sync: bool = True
    first_sync_timeout: float | None = None  # None: from the sync functions' Timeout
    max_workers: int = 4
    retry_delays: tuple[float, ...] = (1.0, 2.0)
    prewarm: bool = True
    mappings_file: Path | None = None  # manual mappings to seed (TRUEUP_MAPPINGS_FILE)
    deliver_events: bool = True  # False: events reach the bus and no function (tests invoking by hand)
    python: Path | None = None  # the functions' interpreter; None: python3.12 if there is one
    auth: str = "off"  # TRUEUP_AUTH: "off", or "oidc" (the local OpenID provider; infra.local.sign_in)
    # TRUEUP_DEMO_CLIENTS: the demo's size (None: its story of 40 clients; more adds generated ones
    # with TRUEUP_DEMO_DEVICES devices each), to try the page and the API at a large MSP's size.
    demo_clients: int | None = None
    demo_devices_per_client: int = 10
    # TRUEUP_DUPLICATE_EVENTS=1: every event is delivered twice, as EventBridge may (for tests).
    duplicate_events: bool = False
    # TRUEUP_SNAPSHOT_WAIT_DEVICES: the template's SnapshotWaitDevices (None: its default), to try the
    # 202 answer of a large snapshot on the demo's small data.
    snapshot_wait_devices: int | None = None
    # TRUEUP_RMM: the RMMs in use (the template's RmmSources), e.g. ("ninjaone", "datto").
    rmm_sources: tuple[str, ...] = ("ninjaone",)

    @property
    def sync_sources(self) -> tuple[str, ...]:
        """Every source a first sync needs: Pax8 and each RMM in use."""
        return ("pax8", *self.rmm_sources)

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str],
        *,
        force_demo: bool = False,
        port: int | None = None,
        data_dir: Path | None = None,
    ) -> StackConfig:
        """`make run`'s configuration: TRUEUP_PORT, TRUEUP_DATA_DIR, TRUEUP_DEMO and the credentials.

        A partial set of credentials is an error naming the missing variables (InvalidInput).
        """
        if port is None:
            raw = env.get("TRUEUP_PORT", "").strip() or str(DEFAULT_PORT)
            if not raw.isdigit() or not 0 <= int(raw) <= 65535:
                raise InvalidInput(f"TRUEUP_PORT must be a port number (0-65535), got {raw!r}")
            port = int(raw)
        if data_dir is None:
            raw_dir = env.get("TRUEUP_DATA_DIR", "").strip()
            data_dir = Path(raw_dir).expanduser() if raw_dir else REPO_ROOT / ".data"
        raw_mappings = env.get("TRUEUP_MAPPINGS_FILE", "").strip()
        mappings_file = Path(raw_mappings).expanduser().resolve() if raw_mappings else None
        if mappings_file is not None and not mappings_file.is_file():
            raise InvalidInput(f"TRUEUP_MAPPINGS_FILE {mappings_file} does not exist")
        auth = env.get("TRUEUP_AUTH", "").strip().lower() or "off"
        if auth not in AUTH_MODES:
            raise InvalidInput(f"TRUEUP_AUTH must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        demo = force_demo or demo_requested(env)
        raw_duplicate = env.get("TRUEUP_DUPLICATE_EVENTS", "").strip()
        if raw_duplicate not in ("", "0", "1"):
            raise InvalidInput(
                f"TRUEUP_DUPLICATE_EVENTS must be 1 (deliver every event twice) or 0, got {raw_duplicate!r}"
            )
        duplicate_events = raw_duplicate == "1"
        raw_wait = env.get("TRUEUP_SNAPSHOT_WAIT_DEVICES", "").strip()
        if raw_wait and not raw_wait.isdigit():
            raise InvalidInput(
                f"TRUEUP_SNAPSHOT_WAIT_DEVICES must be a whole number of devices, got {raw_wait!r}"
            )
        snapshot_wait_devices = int(raw_wait) if raw_wait else None
        sizes = {}
        for name, low, high in (("TRUEUP_DEMO_CLIENTS", 1, 100_000), ("TRUEUP_DEMO_DEVICES", 0, 500)):
            raw_size = env.get(name, "").strip()
            if raw_size and (not raw_size.isdigit() or not low <= int(raw_size) <= high):
                raise InvalidInput(f"{name} must be a whole number from {low} to {high:,}, got {raw_size!r}")
            sizes[name] = int(raw_size) if raw_size else None
        rmms = rmm_sources(env)
        # Checked even in demo mode: a half-configured .env is a mistake worth hearing about.
        credentials = vendor_credentials(env, rmms)
        if demo or credentials is None:
            return cls(
                data_dir=data_dir.resolve(),
                port=port,
                demo=True,
                mappings_file=mappings_file,
                auth=auth,
                demo_clients=sizes["TRUEUP_DEMO_CLIENTS"],
                demo_devices_per_client=sizes["TRUEUP_DEMO_DEVICES"] or 10,
                duplicate_events=duplicate_events,
                snapshot_wait_devices=snapshot_wait_devices,
                rmm_sources=rmms,
            )
        endpoints = vendor_endpoints(env)
        overrides = {
            name: value
            for name, value in (
                ("PAX8_API_URL", endpoints.pax8_api_url),
                ("PAX8_TOKEN_URL", endpoints.pax8_token_url),
                ("NINJAONE_URL", endpoints.ninjaone_url),
                ("DATTO_URL", endpoints.datto_url),
            )
            if value
        }
        return cls(
            data_dir=data_dir.resolve(),
            port=port,
            demo=False,
            credentials=credentials,
            endpoint_overrides=overrides,
            mappings_file=mappings_file,
            auth=auth,
            duplicate_events=duplicate_events,
            snapshot_wait_devices=snapshot_wait_devices,
            rmm_sources=rmms,
        )


def _say(message: str) -> None:
    print(message, flush=True)


class LocalStack:
    def __init__(self, config: StackConfig, progress: Callable[[str], None] = _say) -> None:
        self.config = config
        self.progress = progress
        self.template = StackTemplate.load(config.template_path, self._parameters())
        self.demo: Any = None  # infra.demo.servers.DemoUpstreams in demo mode
        self.standin: AwsStandIn | None = None
        self.resources: LocalResources | None = None
        self.runtime: FunctionRuntime | None = None
        self.state: AwsState | None = None
        self.events: EventDelivery | None = None
        self.notifications: NotificationInbox | None = None
        self.server: GatewayServer | None = None
        self.environments: dict[str, dict[str, str]] = {}
        self.import_paths: dict[str, tuple[Path, ...]] = {}
        self.python: Path = config.python or runtime_python()
        self._lock_file: IO[str] | None = None
        self.sign_in: LocalProvider | None = None
        self._script_token: str | None = None

    # ------------------------------------------------------------------------------ life cycle
    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        config = self.config
        self._lock_data_dir()
        # The port first: a port in use fails in a moment, not after the stand-in and a sync.
        gateway = Gateway(Router(self.template.routes), self._invoke_http)
        try:
            self.server = GatewayServer(gateway, config.host, config.port)
        except OSError as exc:
            hint = " (is trueup already running? TRUEUP_PORT picks another port)" if config.port else ""
            raise StackError(f"{exc}{hint}") from exc
        overrides = dict(config.endpoint_overrides)
        overrides["TRUEUP_PAGE_URL"] = self.server.url + "/"  # what notifications point people to
        if config.snapshot_wait_devices is not None:
            overrides["TRUEUP_SNAPSHOT_WAIT_DEVICES"] = str(config.snapshot_wait_devices)
        if config.auth == "oidc":
            try:
                self.sign_in = LocalProvider(config.data_dir, self.server.url, config.host).start()
            except SignInError as exc:
                raise StackError(str(exc)) from exc
            # The local provider is "your own OpenID provider" of the template's parameters.
            self.template = StackTemplate.load(
                config.template_path,
                {
                    **self._parameters(),
                    "SignInIssuer": self.sign_in.issuer,
                    "SignInClientId": PAGE_CLIENT_ID,
                    "SignInAudiences": AUDIENCE,
                    "SignInScope": SIGN_IN_SCOPE,
                    "RoleClaim": ROLE_CLAIM,
                },
            )
            gateway.authorizer = JwtAuthorizer(self.sign_in.issuer, (AUDIENCE, PAGE_CLIENT_ID))
            who = ", ".join(f"{p.email} / {p.password}" for p in PEOPLE)
            self.progress(f"sign-in: the local OpenID provider on {self.sign_in.issuer} (people: {who})")
        else:
            overrides["TRUEUP_SIGN_IN"] = "off"
            self.progress("sign-in: off, everyone is an admin (TRUEUP_AUTH=oidc turns it on)")
        credentials = config.credentials
        if config.demo:
            from infra.demo.dataset import build_dataset
            from infra.demo.servers import (
                DEFAULT_DATTO_CREDENTIALS,
                DEFAULT_NINJAONE_CREDENTIALS,
                DEFAULT_PAX8_CREDENTIALS,
                DemoUpstreams,
            )

            if config.demo_clients is None:
                # Small page caps: every list spans several pages, as a large tenant's would.
                self.demo = DemoUpstreams(
                    build_dataset(), pax8_max_page_size=25, ninjaone_page_cap=100
                ).start()
            else:  # a large MSP: the vendors' own page sizes
                dataset = build_dataset(config.demo_clients, config.demo_devices_per_client)
                self.demo = DemoUpstreams(dataset).start()
                self.progress(
                    f"demo size: {config.demo_clients:,} clients, {len(dataset.ninjaone_devices):,} devices"
                )
            rmm_urls = {"ninjaone": self.demo.ninjaone_url, "datto": self.demo.datto_url}
            serving = ", ".join(f"{RMM_NAMES[rmm]} on {rmm_urls[rmm]}" for rmm in config.rmm_sources)
            self.progress(f"demo upstreams: Pax8 on {self.demo.pax8_url}, {serving}")
            demo_rmm = {"ninjaone": DEFAULT_NINJAONE_CREDENTIALS, "datto": DEFAULT_DATTO_CREDENTIALS}
            credentials = VendorCredentials(
                pax8=ClientCredentials(*DEFAULT_PAX8_CREDENTIALS),
                rmm={rmm: ClientCredentials(*demo_rmm[rmm]) for rmm in config.rmm_sources},
            )
            endpoints = {
                "PAX8_API_URL": self.demo.pax8_api_url,
                "PAX8_TOKEN_URL": self.demo.pax8_token_url,
                **{f"{rmm.upper()}_URL": rmm_urls[rmm] for rmm in config.rmm_sources},
            }
            self._check_declared(endpoints)
            overrides |= endpoints

        self.progress("starting AWS stand-in (moto server)...")
        self.standin = AwsStandIn(config.host)
        self.standin.start()
        secret_values = self._secret_values(credentials)
        self.resources = create_resources(self.template, self.standin, secret_values)
        resolver = self.resources.resolver()

        version = python_version(self.python)
        if version != LAMBDA_PYTHON:
            self.progress(
                f"warning: no Python {LAMBDA_PYTHON} (Lambda's runtime) found; the handlers run on {version}"
            )
        specs = []
        for function in self.template.functions.values():
            env = resolve_environment(function, resolver, overrides)
            self.environments[function.logical_id] = env
            self.import_paths[function.logical_id] = tuple(
                path for layer in function.layers for path in layer_paths(layer, self.python, self.progress)
            )
            specs.append(self._worker_spec(function, env))
        self.runtime = FunctionRuntime(specs, config.max_workers)
        if config.prewarm:
            self.runtime.prewarm()  # imports happen while the state is restored

        directory = StateDirectory(config.data_dir)
        self.state = AwsState(
            directory,
            self.standin.client("dynamodb"),
            self.standin.client("s3"),
            self.resources.tables,
            self.resources.buckets,
            self.standin.gate,
        )
        restored = self.state.restore()
        if restored.saved_at:
            self.progress(
                f"restored {restored.items} item(s) and {restored.objects} object(s) from {config.data_dir} "
                f"(saved {restored.saved_at})"
            )
        else:
            self.progress(f"no saved state in {config.data_dir}: starting empty")
        self._recover_interrupted_runs()

        self.events = EventDelivery(
            self.standin,
            self.template.rules,
            resolver,
            self._invoke_event,
            timeouts={f.logical_id: f.timeout for f in self.template.functions.values()},
            retry_delays=config.retry_delays,
            duplicate=config.duplicate_events,
            max_retries={
                f.logical_id: f.max_retries
                for f in self.template.functions.values()
                if f.max_retries is not None
            },
            on_failure=self._failure_destinations(resolver),
        )
        self.events.create()
        if config.deliver_events:
            self.events.start()
        assert self.resources is not None
        self.notifications = NotificationInbox(self.standin.client, self.resources.topics, self.progress)
        self.notifications.start()
        gateway.notifications = self.notifications.listed

        gateway.schedules = [
            dataclasses.replace(x, expression=resolver.resolve(x.expression, f"{x.function}.{x.event}"))
            for x in self.template.schedules
        ]
        self.server.start()

        if config.first_sync and credentials is not None:
            self._first_sync()
        if config.mappings_file is not None:
            self._seed_mappings(config.mappings_file)
        self._write_stack_file()
        self.progress(f"trueup is ready on {self.url}")

    def _failure_destinations(self, resolver: Resolver) -> dict[str, str]:
        """Each function's on-failure destination (EventInvokeConfig), as a stand-in queue's URL."""
        assert self.resources is not None
        destinations = {}
        for function in self.template.functions.values():
            if function.on_failure is None:
                continue
            where = f"{function.logical_id}.EventInvokeConfig.DestinationConfig.OnFailure.Destination"
            arn = resolver.resolve_string(function.on_failure, where)
            if arn not in self.resources.queues:
                raise StackError(
                    f"{where}: {arn} is not a queue of the template (the local stack sends to queues)"
                )
            destinations[function.logical_id] = self.resources.queues[arn]
        return destinations

    def stop(self) -> None:
        """Stop everything that started, newest first; safe to call more than once."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.sign_in is not None:
            self.sign_in.stop()
            self.sign_in = None
        if self.events is not None:
            self.events.stop()
            self.events = None
        if self.notifications is not None:
            self.notifications.stop()
            self.notifications = None
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None
        if self.demo is not None:
            self.demo.stop()
            self.demo = None
        if self.standin is not None:
            self.standin.stop()
            self.standin = None
        if self._lock_file is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.config.data_dir / STACK_FILE).unlink()
            self._lock_file.close()  # closing releases the lock
            self._lock_file = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self.server is None:
            raise StackError("the local stack is not serving")
        return self.server.url

    # ---------------------------------------------------------------------------- invocations
    def _invoke_http(self, function: str, event: dict[str, Any], may_write: bool) -> Outcome:
        # Every answer, a read's too, waits for the save of whatever was written before it: a GET may
        # show what a sync function wrote a moment ago, before the save after its event.
        assert self.runtime is not None
        return self._saved(self.runtime.invoke(function, event, MAX_SYNC_RESPONSE_BYTES))

    def _invoke_event(self, function: str, event: dict[str, Any]) -> Outcome:
        assert self.runtime is not None
        return self._saved(self.runtime.invoke(function, event))

    def _saved(self, outcome: Outcome) -> Outcome:
        """Save what the invocation may have written before anyone hears of it."""
        assert self.state is not None
        try:
            self.state.save_if_changed()
        except Exception as exc:
            log.exception("could not save the local state to %s", self.config.data_dir)
            error = {"errorType": "Local.StateNotSaved", "errorMessage": f"could not save the state: {exc}"}
            return Outcome("error", outcome.request_id, outcome.duration_ms, error=error)
        return outcome

    def save_state(self) -> None:
        assert self.state is not None
        self.state.save()

    # ------------------------------------------------------------------------------- wiring
    def _worker_spec(self, function: FunctionSpec, env: Mapping[str, str]) -> WorkerSpec:
        assert self.standin is not None
        name = function_name(function.logical_id)
        return WorkerSpec(
            label=function.logical_id,
            function_name=name,
            handler=function.handler,
            code_root=function.code_uri,
            environment=lambda_environment(
                env,
                function_name=name,
                handler=function.handler,
                code_root=function.code_uri,
                memory_mb=function.memory_mb,
                endpoint_url=self.standin.endpoint_url,
                credentials=(
                    self.standin.credentials.access_key_id,
                    self.standin.credentials.secret_access_key,
                ),
            ),
            timeout=function.timeout,
            memory_mb=function.memory_mb,
            python=self.python,
            paths=self.import_paths[function.logical_id],
        )

    def _parameters(self) -> dict[str, str]:
        """The template's parameters the local stack sets: the RMMs in use."""
        return {"RmmSources": ",".join(self.config.rmm_sources)}

    def _check_declared(self, overrides: Mapping[str, str]) -> None:
        declared = {name for f in self.template.functions.values() for name in f.environment}
        missing = sorted(set(overrides) - declared)
        if missing:
            # Else a handler would call the real vendor with the demo credentials.
            raise StackError(
                f"{self.template.path}: no function declares {', '.join(missing)}; "
                "the demo upstreams cannot be wired in"
            )

    def _secret_values(self, credentials: VendorCredentials | None) -> dict[str, str]:
        """Secret values by logical id: a function variable <VENDOR>_SECRET_ID names the vendor's secret."""
        if credentials is None:
            return {}
        by_vendor = {"PAX8": credentials.pax8, **{rmm.upper(): pair for rmm, pair in credentials.rmm.items()}}
        values: dict[str, str] = {}
        for function in self.template.functions.values():
            for name, value in function.environment.items():
                vendor = name.removesuffix(SECRET_SUFFIX)
                if vendor == name or vendor not in by_vendor:
                    continue
                if not (isinstance(value, dict) and isinstance(value.get("Ref"), str)):
                    raise StackError(
                        f"{function.logical_id}: {name} must be !Ref of a secret in {self.template.path}"
                    )
                pair = by_vendor[vendor]
                values[value["Ref"]] = json.dumps(
                    {"client_id": pair.client_id, "client_secret": pair.client_secret}
                )
        unplaced = sorted(
            v
            for v in by_vendor
            if not any(f.environment.get(v + SECRET_SUFFIX) for f in self.template.functions.values())
        )
        if unplaced:
            raise StackError(
                f"{self.template.path}: no function has {', '.join(v + SECRET_SUFFIX for v in unplaced)}; "
                "the credentials would reach no handler"
            )
        return values

    def _recover_interrupted_runs(self) -> None:
        functions = self.template.functions
        host = functions.get("ApiFunction") or next(
            (f for f in functions.values() if "TRUEUP_TABLE" in f.environment), None
        )
        if host is None:
            return
        assert self.runtime is not None
        base = self._worker_spec(host, self.environments[host.logical_id])
        spec = WorkerSpec(
            label=f"{host.logical_id} (recovery)",
            function_name=base.function_name,
            handler=RECOVERY_HOOK,
            code_root=base.code_root,
            environment=base.environment,
            timeout=max(base.timeout, 60),
            memory_mb=base.memory_mb,
            call=True,
            python=base.python,
            paths=base.paths,
        )
        outcome = run_once(spec)
        error = outcome.error or {}
        module = RECOVERY_HOOK.partition(":")[0]
        if error.get("errorType") == "Runtime.HandlerNotFound" or (
            error.get("errorType") == "Runtime.ImportModuleError" and error.get("missingModule") == module
        ):
            log.info("no %s in the trueup package: nothing to recover", RECOVERY_HOOK)
            return
        if not outcome.ok:
            raise StackError(f"recovering interrupted syncs failed: {outcome.describe()}")
        assert self.state is not None
        self.state.save()
        if outcome.result:
            self.progress(f"marked {outcome.result} interrupted sync(s) as failed")

    # ---------------------------------------------------------------------------- first sync
    def _first_sync(self) -> None:
        status, listing = self._request("GET", "/syncs")
        if status != 200:
            raise StackError(f"GET /syncs answered {status}: {_short(listing)}")
        synced = {
            source
            for run in _runs(listing)
            for source, state in _source_states(run).items()
            if state.get("status") == "succeeded"
        }
        needed = [source for source in self.config.sync_sources if source not in synced]
        # With several RMMs, the later ones after the first: an RMM sync reads the others' device
        # names to know which serial numbers to read (Datto RMM: one request each), so that one
        # machine in two RMMs is counted once from the first snapshot on.
        first_rmm = next((source for source in needed if source != "pax8"), None)
        waves = [
            [s for s in needed if s in ("pax8", first_rmm)],
            [s for s in needed if s not in ("pax8", first_rmm)],
        ]
        for wave in waves:
            if wave:
                self._sync_wave(wave)

    def _sync_wave(self, needed: list[str]) -> None:
        self.progress(f"first sync: {', '.join(needed)}...")
        status, run = self._request("POST", "/syncs", {"sources": needed})
        if status != 202 or not isinstance(run, dict) or "id" not in run:
            raise StackError(f"POST /syncs answered {status}: {_short(run)}")
        deadline = time.monotonic() + self._first_sync_timeout()
        reported: set[str] = set()
        while True:
            states = _source_states(run)
            for source, state in states.items():
                if source in reported or state.get("status") in UNFINISHED:
                    continue
                reported.add(source)
                if state.get("status") == "succeeded":
                    self.progress(
                        f"first sync: {source} succeeded ({state.get('records')} records, "
                        f"{state.get('skipped') or 0} skipped)"
                    )
                else:
                    error = state.get("error") or "no error given"
                    raise StackError(f"first sync: {source} {state.get('status')}: {error}")
            if all(state.get("status") not in UNFINISHED for state in states.values()):
                return
            if time.monotonic() > deadline:
                waiting = sorted(s for s, state in states.items() if state.get("status") in UNFINISHED)
                raise StackError(f"first sync: {', '.join(waiting)} did not finish in time (run {run['id']})")
            time.sleep(0.2)  # polling our own server for a background job: nothing to await instead
            status, answer = self._request("GET", f"/syncs/{run['id']}")
            if status != 200 or not isinstance(answer, dict):
                raise StackError(f"GET /syncs/{run['id']} answered {status}: {_short(answer)}")
            run = answer

    def _first_sync_timeout(self) -> float:
        if self.config.first_sync_timeout is not None:
            return self.config.first_sync_timeout
        if self.config.demo:
            return 120.0
        synced_by = {rule.function for rule in self.template.rules}
        longest = max(
            (f.timeout for f in self.template.functions.values() if f.logical_id in synced_by), default=900
        )
        return longest * (1 + len(self.config.retry_delays)) + 60

    # --------------------------------------------------------------------------- mapping seed
    def _seed_mappings(self, path: Path) -> None:
        """Apply a mappings file through PUT /mappings/{id}, the way a person would.

        The file is JSON: {"<Pax8 company id or exact name>": ["<RMM organization id or exact name>", ...]}.
        Companies that already have a manual mapping keep it (the file only seeds). A line that cannot
        be applied is reported and skipped; the stack still starts.
        """
        try:
            seed = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StackError(f"mappings file {path}: not readable JSON ({exc})") from exc
        if not isinstance(seed, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(o, str) for o in v)
            for k, v in seed.items()
        ):
            raise StackError(f'mappings file {path}: expected {{"company": ["organization", ...], ...}}')
        status, view = self._request("GET", "/mappings")
        if status != 200 or not isinstance(view, dict):
            raise StackError(f"mappings file {path}: GET /mappings answered {status}")
        companies = {m["client"]: m["pax8_company_id"] for m in view["mappings"] if m.get("client")}
        companies |= {u["client"]: u["pax8_company_id"] for u in view["unmapped_pax8"]}
        organizations = {o["name"]: o["id"] for m in view["mappings"] for o in m.get("rmm_organizations", [])}
        organizations |= {u["name"]: u["rmm_organization_id"] for u in view["unmapped_rmm"]}
        manual = {m["pax8_company_id"] for m in view["mappings"] if m["source"] == "manual"}
        applied = 0
        for company, orgs in seed.items():
            company_id: str = companies.get(company) or company
            if company_id in manual:
                continue
            org_ids = [organizations.get(o, o) for o in orgs]
            status, answer = self._request(
                "PUT", f"/mappings/{quote(company_id, safe='')}", {"rmm_organization_ids": org_ids}
            )
            if status == 200:
                applied += 1
            else:
                message = answer.get("message") if isinstance(answer, dict) else answer
                self.progress(f"mappings file: {company!r} not applied ({status}: {message})")
        self.progress(f"mappings file: {applied} mapping(s) applied from {path}")

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        assert self.server is not None
        connection = http.client.HTTPConnection(self.config.host, self.server.port, timeout=130)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            if self.sign_in is not None:  # the stack's own calls are a script's, with the admin role
                headers["Authorization"] = f"Bearer {self._admin_token()}"
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        try:
            return response.status, json.loads(data) if data else None
        except json.JSONDecodeError:
            return response.status, data.decode("utf-8", "replace")

    def _admin_token(self) -> str:
        assert self.sign_in is not None
        if self._script_token is None:
            auth = self.sign_in.describe()
            client = auth["clients"]["admin"]
            self._script_token = get_script_token(
                auth["token_url"], client["client_id"], client["client_secret"]
            )
        return self._script_token

    # ------------------------------------------------------------------------------ the data dir
    def _lock_data_dir(self) -> None:
        data_dir = self.config.data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            handle = open(data_dir / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 (held open: the lock)
        except OSError as exc:
            raise StackError(f"cannot use TRUEUP_DATA_DIR {data_dir}: {exc}") from exc
        try:
            # Released by the kernel when this process ends, however it ends.
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise StackError(
                f"another trueup stack (pid {holder}) is using {data_dir}; stop it, or set TRUEUP_DATA_DIR"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def describe(self) -> dict[str, Any]:
        """What stack.json holds: where everything listens (the demo upstreams' control endpoints too)."""
        assert self.standin is not None and self.server is not None
        demo = None
        if self.demo is not None:
            demo = {
                "pax8_url": self.demo.pax8_url,
                "pax8_api_url": self.demo.pax8_api_url,
                "pax8_token_url": self.demo.pax8_token_url,
                "ninjaone_url": self.demo.ninjaone_url,
                "ninjaone_token_url": self.demo.ninjaone_token_url,
                "pax8_port": urlsplit(self.demo.pax8_url).port,
                "ninjaone_port": urlsplit(self.demo.ninjaone_url).port,
                "control": f"{self.demo.pax8_url}/_demo",
            }
        return {
            "pid": os.getpid(),
            "url": self.url,
            "port": self.server.port,
            "data_dir": str(self.config.data_dir),
            "aws_endpoint_url": self.standin.endpoint_url,
            "demo": demo,
            "auth": self.sign_in.describe() if self.sign_in is not None else None,
            "started_at": datetime.now(UTC).isoformat(),
        }

    def _write_stack_file(self) -> None:
        data = json.dumps(self.describe(), indent=2).encode() + b"\n"
        write_atomically(self.config.data_dir / STACK_FILE, data)


def _runs(listing: Any) -> list[dict[str, Any]]:
    """The runs of GET /syncs, whether it answers a list or {items|runs: [...]}."""
    if isinstance(listing, list):
        return [r for r in listing if isinstance(r, dict)]
    if isinstance(listing, dict):
        for key in ("items", "runs", "syncs"):
            if isinstance(listing.get(key), list):
                return [r for r in listing[key] if isinstance(r, dict)]
    return []


def _source_states(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per source, its state in a run: `sources` is {source: state} or [{source, ...}]."""
    sources = run.get("sources")
    if isinstance(sources, dict):
        return {k: v for k, v in sources.items() if isinstance(v, dict)}
    if isinstance(sources, list):
        return {s["source"]: s for s in sources if isinstance(s, dict) and "source" in s}
    return {}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 300 else text[:300] + "..."
