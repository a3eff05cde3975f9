"""`make bench-cold-start`: each function's cold import, as Lambda pays it, against `import boto3` alone.

    make bench-cold-start                        sam build, then 9 alternating runs
    make bench-cold-start ARGS="--runs 21"       more runs
    make bench-cold-start ARGS="--build-dir .aws-sam/build"   an existing `sam build` output
    make bench-cold-start ARGS="--instructions"  also count instructions (valgrind): a ratio that does
                                                 not move with the machine's load (a minute or two)

Lambda unpacks a function's code and its layer on a read-only file system: whatever bytecode the
build ships is all there is, and anything else is compiled at every cold start (the layer ships
bytecode: shared/Makefile). Each measurement is therefore a fresh python3.12 process started with
-S -B (no site-packages, no .pyc written) whose import path is the function's built code folder and
the built layer's `python/` folder and nothing else; it times the import of the handler's module
(`app`) inside the process. The reference is `import boto3` from the same layer, measured the same
way in the same rounds (the order of the imports rotates every round), so that the ratio speaks of
trueup's own weight whatever the machine's speed. Medians are printed
with the fastest run beside them; nothing is asserted, the target is printed as met or not.

Two more rows are handlers made of nothing but the libraries a kind of function stands on, the floor
no trueup code can go below while it uses them: "HTTP libraries alone" (`import boto3`, Powertools'
Logger and an APIGatewayHttpResolver) and "sync libraries alone" (boto3, the Logger, one pydantic
model and httpx).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from infra.build import LAMBDA_PYTHON, TEMPLATE_PATH, lambda_python, sam_build

TARGET_RATIO = 1.8
REFERENCE = "import boto3"
LAYER_FOLDER = "python"
# Handlers made of nothing but the libraries a kind of function stands on: the floor no trueup code of
# that kind can go below while it uses them.
FLOORS = {
    "HTTP libraries alone": """
import boto3
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import Logger

logger = Logger(service="floor")
app = APIGatewayHttpResolver()
""",
    "sync libraries alone": """
import boto3
import httpx
from aws_lambda_powertools.logging import Logger
from pydantic import BaseModel


class Record(BaseModel):
    name: str


logger = Logger(service="floor")
transport = httpx.HTTPTransport  # a client is made when a sync runs, not at import
""",
}

# Runs in the measured process: only the standard library before the timed import.
_PROBE = """
import sys, time
sys.path[:0] = sys.argv[2:]
started = time.perf_counter()
__import__(sys.argv[1])
print((time.perf_counter() - started) * 1000)
"""


@dataclass(frozen=True)
class Target:
    name: str  # a function's logical id, or the reference
    module: str
    paths: tuple[Path, ...]


@dataclass(frozen=True)
class Figure:
    name: str
    median_ms: float
    fastest_ms: float
    ratio: float  # median / the reference's median
    instructions: int | None = None  # executed by the import, when counted
    instructions_ratio: float | None = None


def functions_of(build_dir: Path) -> list[tuple[str, str, str]]:
    """(logical id, handler module, layer ids) of every function in a built template."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((build_dir / "template.yaml").read_text(encoding="utf-8"))
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        handler = properties.get("Handler", globals_.get("Handler"))
        layers = [*(globals_.get("Layers") or []), *(properties.get("Layers") or [])]
        layer_ids = ",".join(layer["Ref"] for layer in layers)
        found.append((logical_id, handler.rsplit(".", 1)[0], layer_ids))
    return found


def targets(build_dir: Path, floor_dir: Path) -> list[Target]:
    functions = functions_of(build_dir)
    layer_ids = {layer for _, _, ids in functions for layer in ids.split(",") if layer}
    if len(layer_ids) != 1:
        raise SystemExit(f"expected the functions to share one layer, found {sorted(layer_ids) or 'none'}")
    layer = build_dir / layer_ids.pop() / LAYER_FOLDER
    floors = []
    for number, (name, handler) in enumerate(FLOORS.items()):
        (floor_dir / f"floor{number}.py").write_text(handler, encoding="utf-8")
        floors.append(Target(name, f"floor{number}", (floor_dir, layer)))
    reference = Target(REFERENCE, "boto3", (layer,))
    return [reference, *floors] + [
        Target(name, module, (build_dir / name, layer)) for name, module, _ in functions
    ]


_ENVIRONMENT = {
    "LANG": "C.UTF-8",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "trueup",
    "POWERTOOLS_METRICS_NAMESPACE": "trueup",
}


def measure(python: Path, target: Target, cwd: Path) -> float:
    environment = {"PATH": os.environ.get("PATH", ""), **_ENVIRONMENT}
    answer = subprocess.run(
        [str(python), "-S", "-B", "-P", "-c", _PROBE, target.module, *map(str, target.paths)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if answer.returncode != 0:
        raise SystemExit(f"{target.name} does not import from the build:\n{answer.stderr[-2000:]}")
    return float(answer.stdout.strip().splitlines()[-1])


def count_instructions(python: Path, target: Target | None) -> int:
    """Instructions a process executes (valgrind's callgrind): the same count whatever the load."""
    module = [] if target is None else [target.module, *map(str, target.paths)]
    # With no target: the interpreter's start alone, subtracted from every count.
    probe = (
        "import sys" if target is None else "import sys; sys.path[:0] = sys.argv[2:]; __import__(sys.argv[1])"
    )
    answer = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            str(python),
            "-S",
            "-B",
            "-P",
            "-c",
            probe,
            *module,
        ],
        cwd=target.paths[0] if target else None,
        env={"PATH": os.environ.get("PATH", ""), **_ENVIRONMENT},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    for line in answer.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1].strip())
    what = target.name if target else "the interpreter"
    raise SystemExit(f"valgrind counted nothing for {what}:\n{answer.stderr[-1500:]}")


def with_instructions(python: Path, chosen: Sequence[Target], figures: list[Figure]) -> list[Figure]:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    print("counting instructions (valgrind)...", file=sys.stderr, flush=True)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        start = pool.submit(count_instructions, python, None)
        counts = dict(
            zip(
                [t.name for t in chosen],
                pool.map(lambda t: count_instructions(python, t), chosen),
                strict=True,
            )
        )
        startup = start.result()
    reference = counts[REFERENCE] - startup
    return [
        replace(
            f,
            instructions=counts[f.name] - startup,
            instructions_ratio=(counts[f.name] - startup) / reference,
        )
        for f in figures
    ]


def run(build_dir: Path, runs: int, progress: bool = True, instructions: bool = False) -> list[Figure]:
    python = lambda_python()
    floor_dir = Path(tempfile.mkdtemp(prefix="trueup-floor-"))
    try:
        return _run(python, targets(build_dir, floor_dir), runs, progress, instructions)
    finally:
        shutil.rmtree(floor_dir, ignore_errors=True)


def _run(python: Path, chosen: list[Target], runs: int, progress: bool, instructions: bool) -> list[Figure]:
    times: dict[str, list[float]] = {t.name: [] for t in chosen}
    for round_ in range(runs):
        # Rotate the order so that no target always runs first (or after the same neighbour).
        shift = round_ % len(chosen)
        for target in chosen[shift:] + chosen[:shift]:
            times[target.name].append(measure(python, target, target.paths[0]))
        if progress:
            print(f"round {round_ + 1}/{runs}", file=sys.stderr, flush=True)
    reference = statistics.median(times[REFERENCE])
    figures = [
        Figure(name, statistics.median(values), min(values), statistics.median(values) / reference)
        for name, values in times.items()
    ]
    return with_instructions(python, chosen, figures) if instructions else figures


def render(figures: Sequence[Figure], runs: int) -> str:
    counted = all(f.instructions is not None for f in figures)
    lines = [
        f"Cold import on python{LAMBDA_PYTHON}, from the built code folder and the built layer alone, "
        f"as Lambda loads them (median of {runs} alternating runs; fastest in brackets)",
        "",
        f"{'':<22}{'median':>9}{'fastest':>12}{'x boto3':>9}"
        + (f"{'instructions':>15}{'x boto3':>9}" if counted else "")
        + f"   target <= {TARGET_RATIO}x",
    ]
    for figure in figures:
        ratio = figure.instructions_ratio if counted and figure.instructions_ratio else figure.ratio
        measured = figure.name != REFERENCE and figure.name not in FLOORS
        verdict = ("met" if ratio <= TARGET_RATIO else "NOT met") if measured else ""
        fastest = f"({figure.fastest_ms:.0f} ms)"
        line = f"{figure.name:<22}{figure.median_ms:>6.0f} ms{fastest:>12}{figure.ratio:>8.2f}x"
        if counted:
            line += f"{(figure.instructions or 0) / 1e6:>12,.0f} M{figure.instructions_ratio or 0:>8.2f}x"
        lines.append(f"{line}   {verdict}")
    if counted:
        lines.append("(the verdict uses the instruction ratio, which the machine's load does not move)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.bench.cold_start", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=9, help="alternating rounds (default 9)")
    parser.add_argument("--build-dir", type=Path, help="an existing `sam build` output (default: build now)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one line of JSON")
    parser.add_argument(
        "--instructions", action="store_true", help="also count each import's instructions with valgrind"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be 1 or more")
    with tempfile.TemporaryDirectory(prefix="trueup-build-") as scratch:
        build_dir = args.build_dir
        if build_dir is None:
            print(f"sam build of {TEMPLATE_PATH.name}...", file=sys.stderr, flush=True)
            build_dir = Path(scratch)
            sam_build(build_dir)
        figures = run(build_dir.resolve(), args.runs, instructions=args.instructions)
    print(render(figures, args.runs))
    if args.json:
        print(json.dumps([f.__dict__ for f in figures]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
