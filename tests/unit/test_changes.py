"""What changed since the previous snapshot, and each client's short history, on rows made by hand."""

from __future__ import annotations

from typing import Any

from trueup.domain.changes import HISTORY_KEPT, history_from_rows, with_changes
from trueup.domain.models import Change, CoverageResult, ExclusionReason, PreviousRow, Row, Status, Summary


def row(key: str, devices: int | None, licenses: int | None, status: str) -> Row:
    variance = None if devices is None or licenses is None else devices - licenses
    unmapped_org = key.startswith("ninjaone:")
    return Row(
        client=key.title(),
        pax8_company_id=None if unmapped_org else key,
        rmm_organization_ids=[key] if unmapped_org else [f"ninjaone:{key}"],
        devices=devices,
        licenses=licenses,
        variance=variance,
        status=Status(status),
        excluded=dict.fromkeys(ExclusionReason, 0),
    )


def point(snapshot: str, devices: int | None, licenses: int | None, status: str) -> dict[str, Any]:
    variance = None if devices is None or licenses is None else devices - licenses
    return {
        "snapshot_id": snapshot,
        "taken_at": f"2026-{snapshot[1:].zfill(2)}-01T06:00:00Z",
        "devices": devices,
        "licenses": licenses,
        "variance": variance,
        "status": status,
    }


def coverage(rows: list[Row]) -> CoverageResult:
    return CoverageResult(id="edr", name="EDR", summary=Summary(), rows=rows)


def test_each_change_against_the_snapshot_just_before() -> None:
    # The snapshot before (s10): Acme +2, Bravo matched, Charlie -4, Delta +1, an unmapped organization
    # with 2 devices; Hotel last had a row in s9 (not in s10).
    before = {
        "acme": [point("s10", 7, 5, "under_licensed")],
        "bravo": [point("s10", 3, 3, "matched")],
        "charlie": [point("s10", 6, 10, "over_licensed")],
        "delta": [point("s10", 5, 4, "under_licensed")],
        "ninjaone:9": [point("s10", 2, None, "unmapped")],
        "hotel": [point("s9", 1, 4, "over_licensed")],
    }
    now = [
        row("acme", 7, 5, "under_licensed"),  # same gap, same figures: same
        row("bravo", 5, 3, "under_licensed"),  # a gap where there was none: new
        row("charlie", 10, 10, "matched"),  # matched now, a gap before: closed
        row("delta", 6, 4, "under_licensed"),  # still a gap, +1 became +2: changed
        row("ninjaone:9", 2, None, "unmapped"),  # still unmapped, same figures: same
        row("golf", 3, 1, "under_licensed"),  # no row before: first
        row("hotel", 1, 4, "over_licensed"),  # its last row is older than the snapshot before: first
    ]
    [result], histories = with_changes([coverage(now)], {"edr": before}, "s11", "2026-11-01T06:00:00Z", "s10")
    assert [(r.client, r.change) for r in result.rows] == [
        ("Acme", Change.SAME),
        ("Bravo", Change.NEW),
        ("Charlie", Change.CLOSED),
        ("Delta", Change.CHANGED),
        ("Ninjaone:9", Change.SAME),
        ("Golf", Change.FIRST),
        ("Hotel", Change.FIRST),
    ]
    assert result.rows[3].previous == PreviousRow(
        snapshot_id="s10", devices=5, licenses=4, variance=1, status=Status.UNDER_LICENSED
    )
    assert result.rows[5].previous is None and result.rows[6].previous is None
    assert result.summary.changes == {
        Change.NEW: 1,
        Change.CLOSED: 1,
        Change.CHANGED: 1,
        Change.SAME: 2,
        Change.FIRST: 2,
    }
    # The history gains this snapshot's figures; a client with no row now keeps its old points.
    edr = histories["edr"]
    assert edr["delta"] == [point("s10", 5, 4, "under_licensed"), point("s11", 6, 4, "under_licensed")]
    assert edr["golf"] == [point("s11", 3, 1, "under_licensed")]
    assert len(edr["hotel"]) == 2 and edr["hotel"][0]["snapshot_id"] == "s9"


def test_matched_both_times_is_the_same_whatever_the_figures() -> None:
    before = {"acme": [point("s1", 4, 4, "matched")]}
    [result], _ = with_changes([coverage([row("acme", 9, 9, "matched")])], {"edr": before}, "s2", "t", "s1")
    assert result.rows[0].change is Change.SAME


def test_a_status_that_flips_between_gaps_is_changed() -> None:
    before = {"acme": [point("s1", 6, 4, "under_licensed")]}
    [result], _ = with_changes(
        [coverage([row("acme", 4, 6, "over_licensed")])], {"edr": before}, "s2", "t", "s1"
    )
    assert result.rows[0].change is Change.CHANGED


def test_the_first_snapshot_has_every_row_first() -> None:
    [result], histories = with_changes([coverage([row("acme", 1, 1, "matched")])], {}, "s1", "t", None)
    assert result.rows[0].change is Change.FIRST and result.summary.changes[Change.FIRST] == 1
    assert histories == {"edr": {"acme": [{**point("s1", 1, 1, "matched"), "taken_at": "t"}]}}


def test_the_history_keeps_the_last_twelve_snapshots() -> None:
    before = {"acme": [point(f"s{n}", n, 1, "under_licensed") for n in range(1, 13)]}
    _, histories = with_changes(
        [coverage([row("acme", 13, 1, "under_licensed")])], {"edr": before}, "s13", "t", "s12"
    )
    kept = histories["edr"]["acme"]
    assert len(kept) == HISTORY_KEPT == 12
    assert [p["snapshot_id"] for p in kept] == [f"s{n}" for n in range(2, 14)]


def test_a_history_is_made_from_a_snapshot_stored_before_histories_were_kept() -> None:
    stored = [
        r.model_dump(mode="json")
        for r in (row("acme", 7, 5, "under_licensed"), row("ninjaone:9", 2, None, "unmapped"))
    ]
    assert history_from_rows(stored, "s1", "2026-01-01T06:00:00Z") == {
        "acme": [point("s1", 7, 5, "under_licensed")],
        "ninjaone:9": [point("s1", 2, None, "unmapped")],
    }
