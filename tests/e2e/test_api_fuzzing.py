"""The API fuzzed by schemathesis against its own /openapi.json, on the local stack: every check on
(server errors, status codes, content types, response schemas, requests the description says are
valid accepted and invalid ones rejected, stateful sequences, missing authentication), a fixed seed
and a bounded number of examples, so the run is the same every time and takes about a minute.

Two exceptions, each for a reason:
- `unsupported_method` expects 405 for a method no route declares; API Gateway's HTTP APIs answer
  404 there, and the local gateway answers as API Gateway does.
- Three operations are run apart without `positive_data_acceptance`, because what they refuse
  depends on more than one value, which no schema can say: PUT /settings refuses repeated coverage
  ids (400 naming them), and POST /syncs and POST /snapshots refuse an Idempotency-Key already used
  with another body (422), which the fuzzer, reusing its generated keys, sends.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack_process import StackProcess, running_stack

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
SEED = "1"
# Operations whose refusals depend on more than one value (see above).
APART = "^(put_settings_settings_put|start_sync_syncs_post|take_snapshot_snapshots_post)$"
EVERY_CHECK = ["--checks", "all", "--request-timeout", "60", "--seed", SEED]


def fuzz(stack: StackProcess, *arguments: str) -> None:
    command = [str(SCHEMATHESIS), "run", f"{stack.url}/openapi.json", *EVERY_CHECK, *arguments]
    answer = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    output = answer.stdout + answer.stderr
    assert answer.returncode == 0, f"schemathesis found problems:\n{output[-6000:]}"
    assert "No issues found" in output or "warning" in output, output[-2000:]


@pytest.fixture(scope="module")
def signed_in_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    with running_stack(tmp_path_factory.mktemp("fuzz-signed-in"), quiet=True, auth="oidc") as running:
        yield running


def test_every_operation_answers_as_described(stack: StackProcess) -> None:
    fuzz(
        stack,
        "--exclude-checks",
        "unsupported_method",
        "--exclude-operation-id-regex",
        APART,
        "--max-examples",
        "5",
    )


def test_settings_syncs_and_snapshots_are_answered_as_described(stack: StackProcess) -> None:
    fuzz(
        stack,
        "--exclude-checks",
        "unsupported_method,positive_data_acceptance",
        "--include-operation-id-regex",
        APART,
        "--max-examples",
        "5",
    )


def test_with_sign_in_every_operation_answers_as_described_to_an_admin_and_refuses_no_token(
    signed_in_stack: StackProcess,
) -> None:
    token = signed_in_stack.script_token("admin")
    fuzz(
        signed_in_stack,
        "--header",
        f"Authorization: Bearer {token}",
        "--exclude-checks",
        "unsupported_method",
        "--exclude-operation-id-regex",
        APART,
        "--phases",
        "examples,fuzzing,stateful",
        "--max-examples",
        "3",
    )
    fuzz(
        signed_in_stack,
        "--header",
        f"Authorization: Bearer {token}",
        "--exclude-checks",
        "unsupported_method,positive_data_acceptance",
        "--include-operation-id-regex",
        APART,
        "--phases",
        "examples,fuzzing",
        "--max-examples",
        "3",
    )
