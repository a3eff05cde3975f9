from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.runtime import FunctionPool, Outcome, WorkerSpec, lambda_environment, run_once
from tests.local.tiny_stack import write_handler

HANDLER = """
import json
import os
import sys
import time
from decimal import Decimal

COUNT = 0
print("init phase output")  # module top level: Lambda's init phase


def handler(event, context):
    global COUNT
    COUNT += 1
    action = event.get("action")
    if action == "env":
        return dict(os.environ)
    if action == "where":
        return {"cwd": os.getcwd(), "path0": sys.path[0]}
    if action == "noisy":
        # Output that looks like the channel's frames must not reach the channel.
        sys.stdout.write("\\x00\\x00\\x00\\x10{\\"ok\\": false}\\n")
        print("x" * 200000)
        os.write(1, b"written straight to fd 1\\n")
        print("to stderr", file=sys.stderr)
        return {"answer": 42}
    if action == "crash":
        raise ValueError("the handler broke")
    if action == "sleep":
        if "started" in event:
            open(event["started"], "w").close()
        time.sleep(event["seconds"])
        return "slept"
    if action == "count":
        return {"count": COUNT, "pid": os.getpid()}
    if action == "context":
        return {
            "function_name": context.function_name,
            "aws_request_id": context.aws_request_id,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "remaining": context.get_remaining_time_in_millis(),
        }
    if action == "exit":
        os._exit(3)
    if action == "decimal":
        return {"whole": Decimal("3"), "fraction": Decimal("1.5")}
    if action == "unserializable":
        return {"x": object()}
    if action == "sibling":
        import helper

        return helper.VALUE
    if action == "import":
        __import__(event["module"])
        return "imported"
    return event
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    root = write_handler(tmp_path, "probe", HANDLER)
    (root / "helper.py").write_text("VALUE = 'from the code root'\n", encoding="utf-8")
    # A module in the folder the stack runs from: a handler must not be able to import it.
    (tmp_path / "stack_cwd_only.py").write_text("VALUE = 1\n", encoding="utf-8")
    return root


def spec(code: Path, timeout: float = 10.0, **env: str) -> WorkerSpec:
    environment = lambda_environment(
        {"GREETING": "hello", **env},
        function_name="local-Probe",
        handler="app.handler",
        code_root=code,
        memory_mb=256,
        endpoint_url="http://127.0.0.1:1",
        credentials=("AKIALOCALTEST", "secret"),
    )
    return WorkerSpec("Probe", "local-Probe", "app.handler", code, environment, timeout, 256)


@pytest.fixture
def pool(code: Path) -> Iterator[FunctionPool]:
    pool = FunctionPool(spec(code), max_workers=2)
    try:
        yield pool
    finally:
        pool.close()


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, deadline: float = 10.0) -> None:
    # The forwarding threads log shortly after the answer arrives on its own pipe.
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if any(text in record.getMessage() for record in caplog.records):
            return
        time.sleep(0.01)
    raise AssertionError(f"{text!r} never logged; got {[r.getMessage()[:80] for r in caplog.records]}")


def test_the_worker_sees_only_the_functions_environment(pool, monkeypatch, code):
    monkeypatch.setenv("PAX8_CLIENT_SECRET", "must-not-leak")
    fresh = FunctionPool(spec(code), max_workers=1)  # started after the variable is set
    try:
        outcome = fresh.invoke({"action": "env"})
    finally:
        fresh.close()
    assert outcome.ok, outcome.describe()
    env = outcome.result
    assert "PAX8_CLIENT_SECRET" not in env
    assert env["GREETING"] == "hello"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "local-Probe"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]


def test_runtime_variables_cannot_be_overridden_by_the_function(code):
    environment = lambda_environment(
        {"AWS_ENDPOINT_URL": "https://real.amazonaws.com", "AWS_REGION": "eu-west-1"},
        function_name="f",
        handler="app.handler",
        code_root=code,
        memory_mb=128,
        endpoint_url="http://127.0.0.1:1",
        credentials=("AKIALOCALTEST", "secret"),
    )
    assert environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert environment["AWS_REGION"] == "us-east-1"


def test_the_code_root_is_importable_and_the_stacks_folder_is_not(code, monkeypatch):
    monkeypatch.chdir(code.parent.parent)  # where stack_cwd_only.py is: the stack's working folder
    pool = FunctionPool(spec(code), max_workers=1)
    try:
        assert pool.invoke({"action": "where"}).result == {"cwd": str(code), "path0": str(code)}
        assert pool.invoke({"action": "sibling"}).result == "from the code root"
        blocked = pool.invoke({"action": "import", "module": "stack_cwd_only"})
    finally:
        pool.close()
    assert blocked.status == "error"
    assert blocked.error is not None and blocked.error["errorType"] == "ModuleNotFoundError"


def test_handler_output_is_forwarded_and_does_not_corrupt_the_channel(pool, caplog):
    caplog.set_level(logging.INFO, logger="infra.local.functions")
    outcome = pool.invoke({"action": "noisy"})
    assert (outcome.status, outcome.result) == ("ok", {"answer": 42})
    for line in ("Probe | init phase output", "Probe | written straight to fd 1", "Probe | to stderr"):
        wait_for_log(caplog, line)
    assert pool.invoke({"action": "echo", "n": 1}).result == {"action": "echo", "n": 1}


def test_workers_stay_warm_between_invocations(pool):
    first, second = pool.invoke({"action": "count"}), pool.invoke({"action": "count"})
    assert first.result["pid"] == second.result["pid"]
    assert (first.result["count"], second.result["count"]) == (1, 2)


def test_overlapping_invocations_scale_out_to_more_workers(pool):
    results: list[Outcome] = []
    barrier = threading.Barrier(2)

    def call() -> None:
        barrier.wait()
        results.append(pool.invoke({"action": "sleep", "seconds": 0.5}))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.result for r in results] == ["slept", "slept"]
    assert pool.workers() == 2


def test_the_context_looks_like_lambdas(pool):
    outcome = pool.invoke({"action": "context"})
    context = outcome.result
    assert context["function_name"] == "local-Probe"
    assert context["aws_request_id"] == outcome.request_id
    assert context["memory_limit_in_mb"] == 256
    assert context["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:local-Probe"
    assert 0 < context["remaining"] <= 10_000


def test_a_crash_is_an_error_with_its_traceback_logged(pool, caplog):
    caplog.set_level(logging.INFO, logger="infra.local.functions")
    outcome = pool.invoke({"action": "crash"})
    assert outcome.status == "error"
    assert outcome.error is not None
    assert (outcome.error["errorType"], outcome.error["errorMessage"]) == ("ValueError", "the handler broke")
    wait_for_log(caplog, "Traceback (most recent call last)")
    wait_for_log(caplog, "ValueError: the handler broke")
    assert pool.invoke({"action": "count"}).result["count"] == 2  # the same warm worker carries on


def test_a_timeout_kills_the_worker_and_the_next_call_starts_a_fresh_one(code):
    pool = FunctionPool(spec(code, timeout=1.0), max_workers=1)
    try:
        before = pool.invoke({"action": "count"}).result["pid"]
        started = time.monotonic()
        outcome = pool.invoke({"action": "sleep", "seconds": 30})
        assert outcome.status == "timeout"
        assert time.monotonic() - started < 5
        assert (
            outcome.error is not None and "Task timed out after 1.00 seconds" in outcome.error["errorMessage"]
        )
        after = pool.invoke({"action": "count"}).result
        assert after["pid"] != before and after["count"] == 1
    finally:
        pool.close()


def test_a_worker_that_exits_mid_invocation_is_a_crash(pool):
    outcome = pool.invoke({"action": "exit"})
    assert outcome.status == "crash"
    assert outcome.error is not None and "exit status 3" in outcome.error["errorMessage"]
    assert pool.invoke({"action": "count"}).result["count"] == 1


def test_results_are_marshalled_like_lambda(pool):
    assert pool.invoke({"action": "decimal"}).result == {"whole": 3, "fraction": 1.5}
    bad = pool.invoke({"action": "unserializable"})
    assert bad.status == "error"
    assert bad.error is not None and bad.error["errorType"] == "Runtime.MarshalError"


def test_an_oversized_synchronous_answer_is_refused(pool):
    outcome = pool.invoke({"action": "echo", "blob": "x" * 2000}, max_response_bytes=1000)
    assert outcome.status == "error"
    assert outcome.error is not None and outcome.error["errorType"] == "Function.ResponseSizeTooLarge"


def test_a_missing_handler_module_is_an_import_error(tmp_path):
    code = write_handler(tmp_path, "empty", "X = 1\n", module="other")
    environment = lambda_environment(
        {},
        function_name="f",
        handler="app.handler",
        code_root=code,
        memory_mb=128,
        endpoint_url="http://x",
        credentials=("AKIALOCALTEST", "secret"),
    )
    pool = FunctionPool(WorkerSpec("Empty", "f", "app.handler", code, environment, 5.0), max_workers=1)
    try:
        outcome = pool.invoke({})
    finally:
        pool.close()
    assert outcome.status == "error"
    assert outcome.error is not None and outcome.error["errorType"] == "Runtime.ImportModuleError"


def test_run_once_calls_a_hook_without_arguments(tmp_path):
    code = write_handler(tmp_path, "hooks", "def recover():\n    return 7\n", module="hooks")
    environment = lambda_environment(
        {},
        function_name="f",
        handler="hooks:recover",
        code_root=code,
        memory_mb=128,
        endpoint_url="http://x",
        credentials=("AKIALOCALTEST", "secret"),
    )
    outcome = run_once(WorkerSpec("Hook", "f", "hooks:recover", code, environment, 5.0, call=True))
    assert (outcome.status, outcome.result) == ("ok", 7)
    missing = run_once(WorkerSpec("Hook", "f", "nowhere.at_all:recover", code, environment, 5.0, call=True))
    assert missing.error is not None and missing.error["missingModule"] == "nowhere"


ORPHANING_STACK = """
import sys, threading, time
from pathlib import Path
from infra.local.runtime import FunctionPool
from tests.local.test_runtime import spec

code, started = Path(sys.argv[1]), Path(sys.argv[2])
pool = FunctionPool(spec(code), max_workers=1)
pid = pool.invoke({"action": "count"}).result["pid"]
event = {"action": "sleep", "seconds": 60, "started": str(started)}
threading.Thread(target=pool.invoke, args=(event,)).start()
while not started.exists():  # the worker is now inside an invocation, not waiting for one
    time.sleep(0.01)
print(pid, flush=True)
threading.Event().wait()
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has finished
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_do_not_outlive_a_killed_stack(code, tmp_path):
    root, started = Path(__file__).parents[2], tmp_path / "started"
    command = [sys.executable, "-c", ORPHANING_STACK, str(code), str(started)]
    stack = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=root)
    assert stack.stdout is not None
    worker = int(stack.stdout.readline())
    assert _running(worker)
    stack.kill()
    stack.wait()
    stack.stdout.close()
    deadline = time.monotonic() + 10
    while _running(worker):
        assert time.monotonic() < deadline, "the worker outlived its stack"
        time.sleep(0.05)
