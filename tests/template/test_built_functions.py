"""What deploys is what is tested: the `sam build` output, run as Lambda runs it.

Each function is imported from its built code folder and the built layer alone, on python3.12 with
no site-packages, and invoked once against moto (the local stack's AWS stand-in, resources from the
built template) and the demo upstreams. A dependency the layer lacks fails here, as it would after
`sam deploy`, and not only in AWS.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from infra.build import lambda_python
from tests.template.built_functions import run_each_function_once
from tests.template.offline_sam import load_template

FUNCTIONS = {
    logical_id
    for logical_id, resource in load_template()["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}
LAYER = "TrueupLayer"


def broken_copy(built: Path, into: Path, missing: str) -> Path:
    """The build with one package taken out of the layer (everything else linked, not copied)."""
    into.mkdir()
    for entry in built.iterdir():
        if entry.name != LAYER:
            (into / entry.name).symlink_to(entry)
    python = into / LAYER / "python"
    python.mkdir(parents=True)
    for entry in (built / LAYER / "python").iterdir():
        if entry.name != missing and not entry.name.startswith(f"{missing}-"):
            (python / entry.name).symlink_to(entry)
    return into


@pytest.mark.timeout(300)
def test_every_built_function_imports_and_answers_as_in_lambda(built: Path, tmp_path: Path) -> None:
    results = run_each_function_once(built, tmp_path / "data", lambda_python())
    assert set(results) >= FUNCTIONS, f"functions never invoked: {sorted(FUNCTIONS - set(results))}"
    failed = {name: result.error for name, result in results.items() if not result.ok}
    assert not failed, f"functions that failed as built: {failed}"

    api = results["ApiFunction"]
    assert api.status == 200 and api.body["openapi"].startswith("3.")
    assert {"/syncs", "/snapshots", "/snapshots/{snapshot_id}/export.csv"} <= set(api.body["paths"])
    snapshot = results["SnapshotFunction"]
    assert snapshot.status == 409 and "sync first" in snapshot.body["message"]
    export = results["ExportFunction"]
    assert export.status == 404 and "no snapshot" in export.body["message"]
    run = results["run"].body
    for source in ("pax8", "ninjaone"):
        state = run["sources"][source]
        assert state["status"] == "succeeded", (source, state["error"])
        assert state["records"] > 0 and state["generation"]
    # The daily schedule's firing started a run of every source.
    daily = results["CycleFunction"].body
    assert daily["started"] is True and daily["run_id"]
    # A monthly cycle went through every step's function: synced, snapshot, exports, told.
    cycle = results["cycle"].body
    assert cycle["status"] == "succeeded", cycle
    assert cycle["export_keys"][-2].endswith("/all_coverages.csv") and len(cycle["export_keys"]) >= 3
    assert cycle["export_keys"][-1].endswith("/audit.csv")  # the audit log's entries
    # A failed sync was told on the notification topic (the stand-in's), once.
    notified = results["NotifyFunction"].body
    assert notified["subject"] == "trueup: the Pax8 sync failed" and notified["message_id"]
    # After the sync, the suggestions for the demo's current data were worked out and stored.
    suggestions = results["SuggestionsFunction"].body
    assert suggestions["key"].startswith("suggestions/") and suggestions["organizations"] > 0
    # The Cognito page client got its OAuth settings, and kept the ones it had; CloudFormation heard.
    sign_in = results["PageSignInFunction"].body
    client = sign_in["client"]
    assert client["CallbackURLs"] == ["https://abc123.execute-api.us-east-1.amazonaws.com/"]
    assert client["AllowedOAuthFlows"] == ["code"] and client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AccessTokenValidity"] == 60 and client["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]
    assert [(r["Status"], r["LogicalResourceId"]) for r in sign_in["responses"]] == [
        ("SUCCESS", "PageSignIn"),
        ("SUCCESS", "PageSignIn"),
    ]


@pytest.mark.timeout(300)
def test_the_check_fails_when_the_layer_lacks_a_runtime_dependency(built: Path, tmp_path: Path) -> None:
    broken = broken_copy(built, tmp_path / "build", missing="httpx")
    results = run_each_function_once(broken, tmp_path / "data", lambda_python())
    for function in ("Pax8SyncFunction", "RmmSyncFunction"):
        result = results[function]
        assert not result.ok, f"{function} ran without httpx in its layer"
        # At import (the Pax8 client), or when the sync loads the RMM's adapter (the run says so).
        assert result.error is not None and "No module named 'httpx'" in result.error
    # The HTTP functions never needed httpx: they still answer.
    assert [results[f].status for f in ("ApiFunction", "SnapshotFunction", "ExportFunction")] == [
        200,
        409,
        404,
    ]


# What each function must not load at its cold start (module prefixes).
NOT_LOADED = {
    "ApiFunction": (  # pydantic: only when a request reads a body, the settings or the mappings
        "pydantic",
        "httpx",
        "trueup.vendors",
        "trueup.domain.reconcile",
        "trueup.api.snapshots",
        "trueup.api.exports",
    ),
    "SnapshotFunction": (
        "httpx",
        "rapidfuzz",
        "trueup.vendors",
        "trueup.services.syncs",
        "pydantic",  # only taking a snapshot runs the engine and its models
        "trueup.api.openapi",
    ),
    "ExportFunction": (
        "httpx",
        "rapidfuzz",
        "trueup.vendors",
        "trueup.services.syncs",
        "pydantic",
        "trueup.domain.reconcile",
        "trueup.domain.models",  # it answers with a link, from stored rows: no model of the domain
        "trueup.api.openapi",
    ),
    "Pax8SyncFunction": (
        "aws_lambda_powertools.event_handler",
        "aws_lambda_powertools.utilities.parser",
        "trueup.api",
        "trueup.vendors.ninjaone",
        "rapidfuzz",
    ),
    "RmmSyncFunction": (
        "aws_lambda_powertools.event_handler",
        "aws_lambda_powertools.utilities.parser",
        "trueup.api",
        "trueup.vendors.pax8",
        "rapidfuzz",
    ),
    "SuggestionsFunction": (
        "aws_lambda_powertools.event_handler",
        "httpx",
        "trueup.api",
        "trueup.vendors",
        "trueup.domain.reconcile",
        "rapidfuzz",  # loaded only when there is something to compare
    ),
    "CycleFunction": (
        "aws_lambda_powertools.event_handler",
        "httpx",
        "rapidfuzz",
        "pydantic",  # until a firing asks for syncs or an event is read (the events' models)
        "trueup.api",
        "trueup.vendors",
        "trueup.domain.models",  # its own sequencing (trueup.domain.cycles) is plain Python
        "trueup.domain.reconcile",
    ),
    "NotifyFunction": (
        "aws_lambda_powertools.event_handler",
        "aws_lambda_powertools.utilities.idempotency",  # only when there is something to tell
        "httpx",
        "rapidfuzz",
        "trueup.api",
        "trueup.vendors",
        "trueup.domain",
        "trueup.store.generations",
    ),
    # A custom resource: one Cognito call at deploy time, nothing of the API or the data.
    "PageSignInFunction": (
        "aws_lambda_powertools.event_handler",
        "pydantic",
        "httpx",
        "rapidfuzz",
        "trueup.api",
        "trueup.services",
        "trueup.store",
        "trueup.vendors",
    ),
}


def loaded_modules(code: Path, layer: Path) -> set[str]:
    script = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(code)!r}, {str(layer)!r}]\n"
        "import app\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "TRUEUP_TABLE": "t",
        "TRUEUP_BUCKET": "b",
        "TRUEUP_EVENT_BUS": "e",
    }
    answer = subprocess.run(
        [str(lambda_python()), "-S", "-P", "-c", script],
        cwd=code,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    return set(json.loads(answer.stdout.splitlines()[-1]))


@pytest.mark.parametrize("function", sorted(NOT_LOADED))
def test_each_built_function_loads_only_what_it_serves(built: Path, function: str) -> None:
    assert set(NOT_LOADED) == FUNCTIONS, "NOT_LOADED must name every function of template.yaml"
    modules = loaded_modules(built / function, built / LAYER / "python")
    assert "trueup" in modules
    unexpected = sorted(
        m for m in modules for prefix in NOT_LOADED[function] if m == prefix or m.startswith(prefix + ".")
    )
    assert not unexpected, f"{function} loads at its cold start: {unexpected}"
