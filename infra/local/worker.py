"""The inside of one local Lambda "container": a process that imports a handler once and invokes it.

Started by `infra.local.runtime` as `python3.12 -S -P infra/local/worker.py ...` with the function's
environment only. Like Lambda's Python runtime it puts the function's code folder first on
`sys.path`, then its layers' folders (`--path`), runs the module's top level once (the init phase),
then serves invocations one at a time. Requests and responses travel over two dedicated pipes
(length-prefixed JSON frames), never over stdout/stderr: handlers and Powertools print logs and
metrics to stdout, which the parent forwards to its log.

Only the standard library is imported here, so nothing of the local stack leaks into the handler's
process beyond this module.
"""

from __future__ import annotations

import argparse
import decimal
import importlib
import json
import os
import struct
import sys
import threading
import time
import traceback
from typing import Any, BinaryIO

HEADER = struct.Struct(">I")
REGION = "us-east-1"
ACCOUNT = "123456789012"


def read_frame(stream: BinaryIO) -> Any:
    """One JSON frame, or None at end of stream (the parent went away)."""
    header = _read_exactly(stream, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    body = _read_exactly(stream, size)
    if body is None:
        return None
    return json.loads(body)


def write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class LambdaContext:
    """The context object Lambda passes to a Python handler (what Powertools' Logger reads)."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name: str = request["function_name"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb: int = request["memory_limit_in_mb"]
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        self.aws_request_id: str = request["request_id"]
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        self.identity = None
        self.client_context = None
        self._deadline_ms: int = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _json_default(value: Any) -> Any:
    # Lambda's runtime marshals Decimal (what boto3's DynamoDB resource returns) as a JSON number.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _log_error(exc: BaseException, label: str) -> None:
    # Lambda writes an unhandled error to the function's log; here that is stderr, which the parent forwards.
    print(f"[ERROR] {label}: {type(exc).__name__}: {exc}", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.flush()


def _load(handler: str, call: bool) -> Any:
    module_name, _, attribute = handler.partition(":") if call else handler.rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def _die_with(parent: int) -> None:
    # A killed stack cannot stop its workers; like a container on a dead host, they go with it
    # rather than finish an invocation against a stand-in that no longer holds their writes.
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra.local.worker")
    parser.add_argument("--code-root", help="the function's CodeUri folder (first on sys.path, the cwd)")
    parser.add_argument(
        "--path", action="append", default=[], help="a layer folder, after the code root (repeatable)"
    )
    parser.add_argument("--handler", required=True, help="module.function, or module:function with --call")
    parser.add_argument(
        "--call", action="store_true", help="call a function with no arguments, once per request"
    )
    parser.add_argument("--requests", type=int, required=True, help="fd the parent writes requests to")
    parser.add_argument("--responses", type=int, required=True, help="fd this process answers on")
    parser.add_argument("--parent", type=int, help="exit when this process (the stack) is gone")
    args = parser.parse_args(argv)
    if args.parent:
        threading.Thread(target=_die_with, args=(args.parent,), name="parent-watch", daemon=True).start()

    requests = os.fdopen(args.requests, "rb", buffering=0)
    responses = os.fdopen(args.responses, "wb", buffering=0)
    sys.path[:0] = [*([args.code_root] if args.code_root else []), *args.path]
    if args.code_root:
        os.chdir(args.code_root)

    target: Any = None
    init_error: dict[str, Any] | None = None
    try:
        target = _load(args.handler, args.call)
    except ModuleNotFoundError as exc:
        init_error = _error(exc, "Runtime.ImportModuleError")
        init_error["missingModule"] = exc.name
        if not args.call:
            _log_error(exc, f"Unable to import module for handler {args.handler}")
    except AttributeError as exc:
        init_error = _error(exc, "Runtime.HandlerNotFound")
        if not args.call:
            _log_error(exc, f"Handler {args.handler} not found")
    except Exception as exc:
        init_error = _error(exc, "Runtime.InitError")
        _log_error(exc, f"Init error in {args.handler}")

    while True:
        request = read_frame(requests)
        if request is None:
            return 0
        if init_error is not None:
            # Lambda retries the init phase on the next invocation: exit so the parent starts afresh.
            write_frame(responses, json.dumps({"ok": False, "error": init_error}).encode())
            return 1
        try:
            result = target() if args.call else target(request["event"], LambdaContext(request))
        except Exception as exc:
            _log_error(exc, f"RequestId: {request['request_id']} Error")
            answer: dict[str, Any] = {"ok": False, "error": _error(exc)}
        else:
            answer = {"ok": True, "result": result}
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        try:
            payload = json.dumps(answer, default=_json_default, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            error = _error(exc, "Runtime.MarshalError")
            error["errorMessage"] = f"Unable to marshal response: {exc}"
            _log_error(exc, "Unable to marshal response")
            payload = json.dumps({"ok": False, "error": error}).encode()
        write_frame(responses, payload)


if __name__ == "__main__":
    sys.exit(main())
