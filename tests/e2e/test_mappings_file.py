"""A mappings file seeds manual mappings when the local stack starts (by name or by id)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.stack_process import StackProcess


def test_a_mappings_file_rolls_a_site_up_before_the_first_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = tmp_path / "mappings.json"
    seed.write_text(json.dumps({"Contoso Ltd": ["Contoso", "Contoso - Denver"], "Nobody Inc": ["Contoso"]}))
    monkeypatch.setenv("TRUEUP_MAPPINGS_FILE", str(seed))
    stack = StackProcess(tmp_path / "data", tmp_path / "stack.log")
    stack.start()
    try:
        assert any(line.startswith("mappings file: 'Nobody Inc' not applied (404") for line in stack.lines)
        assert any(line.startswith("mappings file: 1 mapping(s) applied") for line in stack.lines)
        status, taken = stack.api("POST", "/snapshots")
        assert status == 201
        rows = {r["client"]: r for r in stack.snapshot(taken["id"])["coverages"][0]["rows"]}
        contoso = rows["Contoso Ltd"]
        assert (contoso["devices"], contoso["licenses"], contoso["status"]) == (22, 22, "matched")
        assert contoso["rmm_organization_names"] == ["Contoso", "Contoso - Denver"]
        assert "Contoso - Denver" not in rows
    finally:
        assert stack.stop() == 0, stack.log()
