"""checkov, the infrastructure-as-code scanner, passes on template.yaml: every finding is fixed or
suppressed inline (the resource's Metadata) with a one-line reason.

checkov pins its own boto3, so it lives in a venv of its own (`make checkov-venv`, which `make test`
runs first).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.template.offline_sam import ROOT, TEMPLATE_PATH

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def scan() -> dict[str, Any]:
    if not CHECKOV.is_file():
        pytest.fail(
            f"checkov is missing at {CHECKOV}: run `make checkov-venv` (make test does)", pytrace=False
        )
    answer = subprocess.run(
        [str(CHECKOV), "--file", str(TEMPLATE_PATH), "--output", "json", "--compact"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=Path(TEMPLATE_PATH).parent,
    )
    assert answer.stdout.strip(), answer.stderr[-2000:]
    report = json.loads(answer.stdout)
    result: dict[str, Any] = report[0] if isinstance(report, list) else report
    return result


def test_checkov_finds_nothing_on_the_template(scan: dict[str, Any]) -> None:
    assert scan["summary"]["parsing_errors"] == 0
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in scan["results"]["failed_checks"]]
    assert not failed, "checkov findings on template.yaml:\n" + "\n".join(failed)
    assert scan["summary"]["passed"] > 20  # it really looked


def test_every_suppression_says_why(scan: dict[str, Any]) -> None:
    skipped = scan["results"]["skipped_checks"]
    assert skipped
    silent = [
        f"{c['check_id']} {c['resource']}"
        for c in skipped
        if len(c["check_result"].get("suppress_comment") or "") < 20
    ]
    assert not silent, f"suppressed without a reason: {silent}"
