"""Helper process: one handler invocation, measured. Its peak memory and CPU are its own.

    python3.12 -S -P infra/bench/invoke.py --code-root functions/snapshot --path LAYER... \\
        --handler app.handler --event EVENT.json --out RESULT.json [--time module:Qualified.name ...]

Started as the local stack starts its workers (`infra.local.layer`): on the functions' runtime,
without site-packages, in the function's code folder with the function's environment only (as
Lambda sets it from the template). Like Lambda's Python runtime it puts that folder first on
`sys.path`, then its layer's folders (`--path`), and imports the handler (the init phase), then
calls it once. It imports only the standard library before that (botocore, for counting, from the
layer), so the figures are those of what deploys. The result file gives the handler's answer and:

- `wall_s`, `cpu_s` (user + system, every thread of the process) of the call alone;
- `max_rss_kib`: the process's peak resident memory (`ru_maxrss`, KiB on Linux), init included, as
  a Lambda invocation's "Max Memory Used" includes it; `init_rss_kib` the peak after the import;
- `aws_calls`: AWS API calls by `service:Operation`, counted in `botocore.endpoint.Endpoint.
  make_request`, through which every boto3 client sends (trueup's, Powertools' Parameters' and
  S3 transfers' alike). One call is counted once, however many HTTP attempts botocore's retries make;
- `timed`: seconds spent in each `--time` function (e.g. one Pax8 list), summed over calls.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import resource
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Context:
    """The context object Lambda passes to a Python handler (what Powertools' Logger reads)."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = f"bench-{os.getpid()}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def count_aws_calls() -> Counter[str]:
    """Count every AWS API call this process makes from now on, by `service:Operation`."""
    calls: Counter[str] = Counter()
    lock = threading.Lock()  # S3 transfers send parts from several threads
    import botocore.endpoint  # from the layer, once the paths are set

    original = botocore.endpoint.Endpoint.make_request

    @functools.wraps(original)
    def counted(self: Any, operation_model: Any, request_dict: Any) -> Any:
        with lock:
            calls[f"{operation_model.service_model.endpoint_prefix}:{operation_model.name}"] += 1
        return original(self, operation_model, request_dict)

    botocore.endpoint.Endpoint.make_request = counted
    return calls


def time_function(target: str, timed: dict[str, float]) -> None:
    """Wrap `module:Qualified.name` so that the seconds spent in it add up in `timed[target]`."""
    module_name, _, qualified = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, name = qualified.split(".")
    for part in parents:
        owner = getattr(owner, part)
    original: Callable[..., Any] = getattr(owner, name)
    timed[target] = 0.0

    @functools.wraps(original)
    def measured(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            timed[target] += time.perf_counter() - start

    setattr(owner, name, measured)


def _cpu_seconds() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.invoke")
    parser.add_argument("--code-root", type=Path, required=True, help="the function's CodeUri folder")
    parser.add_argument("--path", action="append", default=[], help="a layer folder (repeatable)")
    parser.add_argument("--handler", required=True, help="module.function, as the template's Handler")
    parser.add_argument("--function-name", default="trueup-bench")
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--timeout", type=float, default=900.0, help="what the context reports as left")
    parser.add_argument("--event", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--time", action="append", default=[], help="module:Qualified.name to time")
    parser.add_argument("--profile", type=Path, help="also write the call's cProfile statistics here")
    args = parser.parse_args(argv)

    event = json.loads(args.event.read_text())
    sys.path[:0] = [str(args.code_root), *args.path]
    calls = count_aws_calls()
    timed: dict[str, float] = {}
    init_start = time.perf_counter()
    os.chdir(args.code_root)
    module_name, _, attribute = args.handler.rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    for target in args.time:
        time_function(target, timed)
    init_s = time.perf_counter() - init_start
    init_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Calls made while importing belong to the cold start, not to the invocation: kept apart.
    init_calls = dict(calls)
    calls.clear()

    context = Context(args.function_name, args.memory_mb, args.timeout)
    user0, sys0 = _cpu_seconds()
    start = time.perf_counter()
    error = None
    result = None
    profiler = None
    if args.profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        result = handler(event, context)
    except Exception as exc:
        error = "".join(traceback.format_exception(exc))
        print(error, file=sys.stderr)
    wall = time.perf_counter() - start
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    user1, sys1 = _cpu_seconds()
    sys.stdout.flush()

    outcome = {
        "ok": error is None,
        "error": error,
        "result": result,
        "init_s": init_s,
        "wall_s": wall,
        "cpu_user_s": user1 - user0,
        "cpu_sys_s": sys1 - sys0,
        "cpu_s": (user1 - user0) + (sys1 - sys0),
        "init_rss_kib": init_rss,
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "aws_calls": dict(sorted(calls.items())),
        "init_aws_calls": init_calls,
        "timed": timed,
    }
    # Decimal and datetime values (boto3, pydantic dumps) are written as text: the parent only reads them.
    args.out.write_text(json.dumps(outcome, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
