"""The shared HTTP contract (`../shared/tools/check-contract`, beside the repository) holds against the
local stack: what the page and scripts rely on, checked by a tool that is not ours."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.stack_process import REPO_ROOT, StackProcess

CHECK_CONTRACT = REPO_ROOT.parent / "shared" / "tools" / "check-contract"


def test_the_stack_meets_the_shared_http_contract(stack: StackProcess) -> None:
    if not CHECK_CONTRACT.is_file():
        pytest.fail(f"{CHECK_CONTRACT} is missing: ../shared belongs beside the repository", pytrace=False)
    answer = subprocess.run(
        [sys.executable, str(CHECK_CONTRACT), stack.url],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = answer.stdout + answer.stderr
    assert answer.returncode == 0 and "0 failed, 0 skipped" in output, output[-4000:]
