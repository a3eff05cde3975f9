"""Local Lambda runtime: each function runs in warm worker processes, as Lambda runs it in containers.

A `FunctionPool` starts a worker (`infra/local/worker.py`) on first use and reuses it, scaling out to a
few workers when requests overlap, as Lambda does. Each worker gets only the function's own
environment (plus the runtime's variables), imports the handler from the function's CodeUri, and
talks to this process over two dedicated pipes; the handler's stdout and stderr are forwarded to
the stack's log, prefixed with the function's name. The template's Timeout is enforced by killing
the worker (the next invocation starts a fresh one, a cold start); an unhandled exception is
reported back with its traceback logged, like Lambda's error response.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from infra.local.worker import HEADER

log = logging.getLogger("infra.local.runtime")
# Run as a script, not as `-m infra.local.worker`: the worker's process must not need `infra` importable.
WORKER_SCRIPT = Path(__file__).resolve().with_name("worker.py")
function_log = logging.getLogger("infra.local.functions")

# What synchronous Lambda invocations may answer (API Gateway gets an error beyond it).
MAX_SYNC_RESPONSE_BYTES = 6 * 1024 * 1024
_RESULT_ENVELOPE = len(b'{"ok": true, "result": }')
_STOP_GRACE_SECONDS = 2.0

OutcomeStatus = Literal["ok", "error", "timeout", "crash"]

# What a worker takes from this process's environment: how to run, and how to reach the internet
# (proxies, CA bundles) when the handlers call the real vendors. Nothing else, credentials least.
_INHERITED = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
)


@dataclass(frozen=True)
class WorkerSpec:
    """How to start a worker: what it runs, with which environment, under which limits."""

    label: str  # for logs: the template's logical id
    function_name: str  # what Lambda would call it (context.function_name)
    handler: str  # module.function (module:function when `call`)
    code_root: Path | None
    environment: Mapping[str, str]  # the whole environment of the worker process
    timeout: float  # seconds
    memory_mb: int = 128
    call: bool = False  # call handler() with no arguments (a maintenance hook), not handler(event, context)
    # The function's runtime and what its layers put on the import path (`infra.local.layer`). With a
    # `python`, the worker starts with -S: it sees the code root, these paths and the standard library
    # only, as in Lambda. Without one it runs on this interpreter with its site-packages (the runtime's
    # own tests, whose handlers import nothing but the standard library).
    python: Path | None = None
    paths: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What one invocation came to."""

    status: OutcomeStatus
    request_id: str
    duration_ms: float
    result: Any = None
    error: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self) -> str:
        if self.ok:
            return "ok"
        error = self.error or {}
        return f"{self.status}: {error.get('errorType', '?')}: {error.get('errorMessage', '')}"


class WorkerError(RuntimeError):
    """A worker could not be started."""


@dataclass(eq=False)  # identity semantics: pools keep workers in sets
class Worker:
    """One worker process and its request/response pipes."""

    spec: WorkerSpec
    process: subprocess.Popen[bytes] = field(init=False)
    _requests: int = field(init=False)
    _responses: int = field(init=False)
    _buffer: bytearray = field(init=False, default_factory=bytearray)
    _pipes_open: bool = field(init=False, default=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        command = [
            str(self.spec.python or sys.executable),
            *(["-S"] if self.spec.python else []),
            # -P: neither the cwd nor the worker's own folder is importable; only the code root and paths.
            "-P",
            str(WORKER_SCRIPT),
            "--handler",
            self.spec.handler,
            "--requests",
            str(request_read),
            "--responses",
            str(response_write),
            "--parent",
            str(os.getpid()),
        ]
        if self.spec.code_root is not None:
            command += ["--code-root", str(self.spec.code_root)]
        for path in self.spec.paths:
            command += ["--path", str(path)]
        if self.spec.call:
            command.append("--call")
        try:
            self.process = subprocess.Popen(
                command,
                env=dict(self.spec.environment),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(request_read, response_write),
                # Its own session: Ctrl-C in the terminal reaches the stack, which stops workers in order.
                start_new_session=True,
            )
        except OSError as exc:
            for fd in (request_read, request_write, response_read, response_write):
                os.close(fd)
            raise WorkerError(f"cannot start a worker for {self.spec.label}: {exc}") from exc
        os.close(request_read)
        os.close(response_write)
        self._requests, self._responses = request_write, response_read
        self._pipes_open = True
        for stream, name in ((self.process.stdout, "stdout"), (self.process.stderr, "stderr")):
            assert stream is not None
            threading.Thread(
                target=_forward, args=(stream, self.spec.label), name=f"{self.spec.label}-{name}", daemon=True
            ).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: Any, max_response_bytes: int | None = None) -> Outcome:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        deadline = started + self.spec.timeout
        request = {
            "event": event,
            "request_id": request_id,
            "deadline_ms": int((time.time() + self.spec.timeout) * 1000),
            "function_name": self.spec.function_name,
            "memory_limit_in_mb": self.spec.memory_mb,
        }

        def outcome(
            status: OutcomeStatus, result: Any = None, error: Mapping[str, Any] | None = None
        ) -> Outcome:
            elapsed = (time.monotonic() - started) * 1000
            return Outcome(status, request_id, elapsed, result, error)

        payload = json.dumps(request, separators=(",", ":")).encode()
        try:
            _write_all(self._requests, HEADER.pack(len(payload)) + payload)
            frame = self._read_frame(deadline)
        except (OSError, EOFError):  # a broken pipe, or the stack closing the worker under us
            try:
                code: int | None = self.process.wait(timeout=1.0)  # the pipe closes just before the exit
            except subprocess.TimeoutExpired:
                code = None
            message = f"RequestId: {request_id} Error: Runtime exited" + (
                f" with error: exit status {code}" if code is not None else " without answering"
            )
            function_log.error("%s | %s", self.spec.label, message)
            return outcome("crash", error={"errorType": "Runtime.ExitError", "errorMessage": message})
        if frame is None:
            message = f"RequestId: {request_id} Error: Task timed out after {self.spec.timeout:.2f} seconds"
            function_log.error("%s | %s", self.spec.label, message)
            return outcome("timeout", error={"errorType": "Sandbox.Timedout", "errorMessage": message})
        if max_response_bytes is not None and len(frame) - _RESULT_ENVELOPE > max_response_bytes:
            message = (
                f"Response payload size ({len(frame) - _RESULT_ENVELOPE} bytes) exceeded maximum allowed "
                f"payload size ({max_response_bytes} bytes)."
            )
            function_log.error("%s | %s", self.spec.label, message)
            return outcome(
                "error", error={"errorType": "Function.ResponseSizeTooLarge", "errorMessage": message}
            )
        answer = json.loads(frame)
        if answer.get("ok"):
            return outcome("ok", result=answer.get("result"))
        return outcome("error", error=answer.get("error") or {})

    def _read_frame(self, deadline: float) -> bytes | None:
        """One response frame, or None when the deadline passes first; EOFError if the worker died."""
        buffer = self._buffer
        while True:
            if len(buffer) >= HEADER.size:
                (size,) = HEADER.unpack_from(buffer)
                if len(buffer) >= HEADER.size + size:
                    frame = bytes(buffer[HEADER.size : HEADER.size + size])
                    del buffer[: HEADER.size + size]
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._responses], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._responses, 1 << 20)
            if not chunk:
                raise EOFError
            buffer += chunk

    def stop(self) -> None:
        """Let the worker finish (closing its request pipe ends its loop), then make sure it is gone."""
        self.ask_to_stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=_STOP_GRACE_SECONDS)
        self.kill()

    def ask_to_stop(self) -> None:
        """Close its request pipe: it ends its loop and exits (stop() then waits for it)."""
        with self._lock:
            if self._pipes_open and self._requests >= 0:
                os.close(self._requests)
                self._requests = -1

    def kill(self) -> None:
        if self.process.poll() is None:
            # The whole session: a handler's own child processes go too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        with self._lock:
            # Once only: a second close could hit a descriptor number reused by another worker's pipe.
            if self._pipes_open:
                self._pipes_open = False
                for fd in (self._requests, self._responses):
                    if fd >= 0:
                        os.close(fd)


def lambda_environment(
    function_env: Mapping[str, str],
    *,
    function_name: str,
    handler: str,
    code_root: Path,
    memory_mb: int,
    endpoint_url: str,
    credentials: tuple[str, str],
    region: str = "us-east-1",
) -> dict[str, str]:
    """A worker's whole environment: the function's variables plus what Lambda's runtime sets.

    Nothing else of this process's environment is passed on (vendor credentials in particular),
    and the user's ~/.aws files are hidden, so a handler sees what it would see in Lambda, with
    boto3 pointed at the AWS stand-in through AWS_ENDPOINT_URL, with the (access key id, secret) the
    stand-in made for this run: it refuses any other.
    """
    inherited = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    if any(name.lower().endswith("_proxy") for name in inherited):
        # A proxy for the real vendors must not swallow calls to the stand-in and the demo upstreams.
        loopback = "127.0.0.1,localhost"
        for name in ("NO_PROXY", "no_proxy"):
            inherited[name] = f"{inherited[name]},{loopback}" if inherited.get(name) else loopback
    runtime = {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": credentials[0],
        "AWS_SECRET_ACCESS_KEY": credentials[1],
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "LAMBDA_TASK_ROOT": str(code_root),
        "_HANDLER": handler,
        "TZ": "UTC",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # Logs reach the stack as they are written, not when a buffer fills.
        "PYTHONUNBUFFERED": "1",
    }
    # Lambda does not let a function override its reserved variables; neither does the local stack.
    return {**inherited, **function_env, **runtime}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _forward(stream: IO[bytes], label: str) -> None:
    # Powertools logs one JSON document per line; forwarding line by line keeps them whole.
    with stream:
        for raw in iter(stream.readline, b""):
            function_log.info("%s | %s", label, raw.decode("utf-8", "replace").rstrip("\r\n"))


class FunctionPool:
    """The warm workers of one function: reused between invocations, at most `max_workers` at once."""

    def __init__(self, spec: WorkerSpec, max_workers: int = 4) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be 1 or more, got {max_workers}")
        self.spec = spec
        self.max_workers = max_workers
        self._condition = threading.Condition()
        self._idle: list[Worker] = []
        self._all: set[Worker] = set()
        self._starting = 0
        self._closed = False

    def invoke(self, event: Any, max_response_bytes: int | None = None) -> Outcome:
        worker = self._acquire()
        try:
            outcome = worker.invoke(event, max_response_bytes)
        except BaseException:
            self._discard(worker)
            raise
        error_type = str((outcome.error or {}).get("errorType", ""))
        if outcome.status in ("timeout", "crash") or error_type.startswith("Runtime."):
            # A timed-out or crashed worker is in an unknown state, and a failed init exits by itself.
            self._discard(worker)
        else:
            self._release(worker)
        return outcome

    def prewarm(self) -> None:
        """Start one worker ahead of the first invocation (Lambda's init phase, done early)."""
        with self._condition:
            if self._closed or self._idle or self._all or self._starting:
                return
            self._starting += 1
        self._started(self._new_worker())

    def _new_worker(self) -> Worker:
        try:
            return Worker(self.spec)
        except BaseException:
            with self._condition:
                self._starting -= 1
                self._condition.notify()
            raise

    def _started(self, worker: Worker) -> None:
        with self._condition:
            self._starting -= 1
            self._all.add(worker)
            if self._closed:
                closed = True
            else:
                closed = False
                self._idle.append(worker)
                self._condition.notify()
        if closed:
            worker.kill()

    def _acquire(self) -> Worker:
        with self._condition:
            while True:
                if self._closed:
                    raise WorkerError(f"{self.spec.label} is shutting down")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    self._all.discard(worker)
                if len(self._all) + self._starting < self.max_workers:
                    self._starting += 1
                    break
                self._condition.wait()
        worker = self._new_worker()
        with self._condition:
            self._starting -= 1
            self._all.add(worker)
        return worker

    def _release(self, worker: Worker) -> None:
        with self._condition:
            if not self._closed:
                self._idle.append(worker)
                self._condition.notify()
                return
        worker.stop()

    def _discard(self, worker: Worker) -> None:
        worker.kill()
        with self._condition:
            self._all.discard(worker)
            self._condition.notify()

    def workers(self) -> int:
        with self._condition:
            return len(self._all)

    def close(self) -> None:
        for worker in self.closing():
            worker.stop()

    def closing(self) -> list[Worker]:
        """Take no more invocations: kill the busy workers (an invocation in flight at shutdown ends
        with the stack, as in a killed container) and ask the idle ones to stop; answers those, for
        the caller to wait on (all pools' at once: each takes a moment to exit)."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = self._all.difference(idle)
            self._all.clear()
            self._condition.notify_all()
        for worker in busy:
            worker.kill()
        for worker in idle:
            worker.ask_to_stop()
        return idle


class FunctionRuntime:
    """Every function's pool, by logical id."""

    def __init__(self, specs: Iterable[WorkerSpec], max_workers: int = 4) -> None:
        self._pools = {spec.label: FunctionPool(spec, max_workers) for spec in specs}

    def __contains__(self, function: str) -> bool:
        return function in self._pools

    def invoke(self, function: str, event: Any, max_response_bytes: int | None = None) -> Outcome:
        pool = self._pools.get(function)
        if pool is None:
            raise KeyError(f"no function {function!r} in the local stack")
        return pool.invoke(event, max_response_bytes)

    def prewarm(self) -> None:
        """Start one worker per function, all at once, so that first requests are not cold starts."""
        threads = [
            threading.Thread(target=_prewarm_quietly, args=(pool,), name=f"prewarm-{name}", daemon=True)
            for name, pool in self._pools.items()
        ]
        for thread in threads:
            thread.start()

    def close(self) -> None:
        """Every pool's workers asked to stop at once, then each waited for."""
        stopping = [worker for pool in self._pools.values() for worker in pool.closing()]
        for worker in stopping:
            worker.stop()


def _prewarm_quietly(pool: FunctionPool) -> None:
    try:
        pool.prewarm()
    except WorkerError as exc:
        log.warning("%s", exc)


def run_once(spec: WorkerSpec) -> Outcome:
    """Run `spec` in a fresh worker for one invocation (event None) and stop it."""
    worker = Worker(spec)
    try:
        return worker.invoke(None)
    finally:
        worker.kill()
