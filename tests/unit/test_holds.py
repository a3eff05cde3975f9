"""The rule that holds short data back: worked out by hand, case by case."""

from __future__ import annotations

import pytest

from trueup.domain.holds import shrinkage as shrinkage_by
from trueup.domain.models import Settings


def shrinkage(vendor: str, current: dict[str, int], new: dict[str, int], **limits: int) -> str | None:
    """With the settings' defaults (20 % and 10 records) unless given."""
    defaults = Settings()
    limits = {"percent": defaults.hold_shrink_percent, "records": defaults.hold_shrink_records, **limits}
    return shrinkage_by(vendor, current, new, **limits)


@pytest.mark.parametrize(
    ("current", "new", "held"),
    [
        # The reported case: NinjaOne ended its device list early (628 -> 240: 61.8 % and 388 lost).
        ({"organization": 40, "device": 628}, {"organization": 40, "device": 240}, True),
        # Exactly 20 % lost is not more than 20 %: kept (100 -> 80).
        ({"device": 100}, {"device": 80}, False),
        # 21 % and 21 records: held (100 -> 79).
        ({"device": 100}, {"device": 79}, True),
        # More than 20 % but fewer than 10 records: a small MSP's normal churn (40 -> 31: 22.5 %, 9 lost).
        ({"device": 40}, {"device": 31}, False),
        # 10 records and 25 %: held (40 -> 30).
        ({"device": 40}, {"device": 30}, True),
        # Many records but a small share: a large MSP's normal month (100,000 -> 95,000: 5 %).
        ({"device": 100_000}, {"device": 95_000}, False),
        # Empty while the current list is not: held however small (3 -> 0).
        ({"company": 3}, {"company": 0}, True),
        # A list missing from the new counts is an empty list.
        ({"company": 3, "subscription": 5}, {"subscription": 5}, True),
        # Growth is never held, nor is a list the current data does not have.
        ({"device": 10}, {"device": 5_000}, False),
        ({}, {"company": 0, "device": 0}, False),
        ({"company": 0}, {"company": 0}, False),
        # Products and skipped records are not compared (a catalogue shrinks; skips are reported apart).
        ({"product": 249, "skipped": 50}, {"product": 1, "skipped": 0}, False),
    ],
)
def test_a_list_is_held_when_it_lost_more_than_a_share_and_a_count_or_all(
    current: dict[str, int], new: dict[str, int], held: bool
) -> None:
    assert (shrinkage("NinjaOne", current, new) is not None) is held


def test_the_reason_says_what_the_vendor_returned_against_the_current_data() -> None:
    assert (
        shrinkage("NinjaOne", {"organization": 40, "device": 628}, {"organization": 40, "device": 240})
        == "NinjaOne returned 240 devices; the current data has 628"
    )
    assert (
        shrinkage("Pax8", {"company": 40, "subscription": 74}, {"company": 0, "subscription": 1})
        == "Pax8 returned 0 companies; the current data has 40; "
        "Pax8 returned 1 subscription; the current data has 74"
    )
    assert shrinkage("NinjaOne", {"device": 12_345}, {"device": 1}) == (
        "NinjaOne returned 1 device; the current data has 12,345"
    )


def test_the_share_and_the_count_are_settings() -> None:
    # 100 -> 90 (10 %): kept by default, held at 5 %; 100 -> 50: held by default, kept at 60 %.
    assert shrinkage("X", {"device": 100}, {"device": 90}) is None
    assert shrinkage("X", {"device": 100}, {"device": 90}, percent=5) is not None
    assert shrinkage("X", {"device": 100}, {"device": 50}, percent=60) is None
    # records=0: any share above the percentage; percent=0 and records=1: any loss at all.
    assert shrinkage("X", {"device": 5}, {"device": 3}, records=0) is not None
    assert shrinkage("X", {"device": 5}, {"device": 4}, percent=0, records=1) is not None
    # percent=100: only an empty list is held.
    assert shrinkage("X", {"device": 5}, {"device": 1}, percent=100) is None
    assert shrinkage("X", {"device": 5}, {"device": 0}, percent=100) is not None
