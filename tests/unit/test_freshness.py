"""How old a snapshot's data was: worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trueup.domain.freshness import data_age_warnings

TAKEN = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_data_synced_within_the_threshold_gives_no_warning() -> None:
    # 26 hours exactly is not more than 26 hours.
    fresh = {"pax8": TAKEN - timedelta(hours=1), "rmm": TAKEN - timedelta(hours=26)}
    assert data_age_warnings(TAKEN, fresh, 26) == []


def test_each_source_older_than_the_threshold_is_named_with_its_age_and_time() -> None:
    old = {"pax8": TAKEN - timedelta(hours=26, minutes=1), "rmm": TAKEN - timedelta(days=3, hours=5)}
    assert data_age_warnings(TAKEN, old, 26) == [
        "The Pax8 data was 26 hours old when this snapshot was taken (synced 30 Nov 2026 03:59 UTC, "
        "more than 26 hours before): sync, then take a snapshot before relying on it.",
        "The RMM data was 3 days old when this snapshot was taken (synced 28 Nov 2026 01:00 UTC, "
        "more than 26 hours before): sync, then take a snapshot before relying on it.",
    ]


def test_the_threshold_is_a_setting() -> None:
    synced = {"rmm": TAKEN - timedelta(hours=2)}
    assert data_age_warnings(TAKEN, synced, 1) != []
    assert data_age_warnings(TAKEN, synced, 2) == []
    # 47 hours still reads in hours, 48 in days.
    assert "47 hours old" in data_age_warnings(TAKEN, {"rmm": TAKEN - timedelta(hours=47)}, 1)[0]
    assert "2 days old" in data_age_warnings(TAKEN, {"rmm": TAKEN - timedelta(hours=48)}, 1)[0]
