"""Cycles in the table (moto): started once per id, and two steps recorded at the same moment both
kept, with exactly one of them starting what comes next."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from moto import mock_aws

from tests.aws_fixtures import REGION, create_resources
from trueup import aws
from trueup.config import config
from trueup.domain.cycles import Next, sync_finished
from trueup.services import cycles
from trueup.store.table import TrueupTable

NOW = datetime(2026, 12, 1, 6, tzinfo=UTC)


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    with mock_aws():
        for name, value in create_resources({"Pax8Secret": {}, "NinjaOneSecret": {}}).items():
            monkeypatch.setenv(name, value)
        config.cache_clear()
        yield
    aws.reset_clients()
    config.cache_clear()


def test_a_cycle_is_started_once_per_id(table: None) -> None:
    first, created = cycles.start_cycle("2026-12-01T06:00:00Z", "schedule", NOW)
    assert created is True and set(first["syncs"]) == {"pax8", "rmm"}
    again, created = cycles.start_cycle("2026-12-01T06:00:00Z", "schedule", NOW)
    assert created is False and again == first


def test_two_syncs_finishing_together_are_both_kept_and_start_the_snapshot_once(
    table: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cycles.start_cycle("c1", "api", NOW)
    outcomes: list[Any] = []
    original = TrueupTable.get_cycle
    raced = False

    def reading_before_the_other_writes(self: TrueupTable, cycle_id: str) -> Any:
        nonlocal raced
        read = original(self, cycle_id)
        if not raced:  # the RMM sync's function records its outcome between this read and write
            raced = True
            outcomes.append(cycles.advance("c1", lambda c: sync_finished(c, "rmm", "succeeded", None, "t1")))
        return read

    monkeypatch.setattr(TrueupTable, "get_cycle", reading_before_the_other_writes)
    outcomes.append(cycles.advance("c1", lambda c: sync_finished(c, "pax8", "succeeded", None, "t2")))
    assert [next_step for _, next_step in outcomes] == [Next.NOTHING, Next.SNAPSHOT]
    stored = original(TrueupTable(), "c1")
    assert stored is not None
    assert {s: v["state"] for s, v in stored["syncs"].items()} == {"pax8": "succeeded", "rmm": "succeeded"}
    assert stored["snapshot"]["state"] == "running"
    # Delivered again, either outcome starts nothing.
    again = cycles.advance("c1", lambda c: sync_finished(c, "pax8", "succeeded", None, "t3"))
    assert again == (stored, Next.NOTHING)
