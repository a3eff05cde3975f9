"""Sorting and searching a snapshot's rows, on rows made by hand."""

from __future__ import annotations

from typing import Any

import pytest

from trueup.api.http import parse_cursor
from trueup.domain.names import folded, natural
from trueup.errors import InvalidInput
from trueup.services.snapshots import _sorted, parse_sort


def row(client: str, devices: int | None, licenses: int | None, status: str) -> dict[str, Any]:
    variance = None if devices is None or licenses is None else devices - licenses
    return {
        "client": client,
        "devices": devices,
        "licenses": licenses,
        "variance": variance,
        "status": status,
    }


ROWS = [
    row("Bravo", 10, 5, "under_licensed"),
    row("alpha", 3, None, "unmapped"),
    row("Émile", 4, 4, "matched"),
    row("Charlie", 2, 5, "over_licensed"),
    row("delta", 4, 4, "matched"),
]


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [r["client"] for r in rows]


def test_names_sort_as_a_person_reads_them() -> None:
    names_ = ["Client 10", "client 2", "Client 1b", "Client 1a", "Ärzte 3", "Arzte 20", "10 Downing"]
    assert sorted(names_, key=natural) == [
        "10 Downing",
        "Ärzte 3",
        "Arzte 20",
        "Client 1a",
        "Client 1b",
        "client 2",
        "Client 10",
    ]


def test_a_search_ignores_case_and_accents() -> None:
    assert folded("Émile Zola") == "emile zola"
    assert folded("SOCIÉTÉ") == folded("societe")
    assert folded("Straße") == "strasse"  # casefold, not lower


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (None, ["Bravo", "alpha", "Émile", "Charlie", "delta"]),  # as stored
        (("client", False), ["alpha", "Bravo", "Charlie", "delta", "Émile"]),  # any case, É as E
        (("client", True), ["Émile", "delta", "Charlie", "Bravo", "alpha"]),
        (("devices", False), ["Charlie", "alpha", "Émile", "delta", "Bravo"]),  # 4 and 4: stored order
        (("devices", True), ["Bravo", "Émile", "delta", "alpha", "Charlie"]),
        (("licenses", False), ["Émile", "delta", "Bravo", "Charlie", "alpha"]),  # no licences: last
        (("licenses", True), ["Bravo", "Charlie", "Émile", "delta", "alpha"]),  # and last again
        (("variance", False), ["Charlie", "Émile", "delta", "Bravo", "alpha"]),
        (("status", False), ["Bravo", "alpha", "Charlie", "Émile", "delta"]),
        (("status", True), ["Émile", "delta", "Charlie", "alpha", "Bravo"]),
    ],
)
def test_rows_sort_by_a_column_with_no_data_last_and_ties_as_stored(
    sort: tuple[str, bool] | None, expected: list[str]
) -> None:
    assert names(_sorted(ROWS, sort)) == expected


def test_rows_sort_by_their_monthly_price_gap_as_numbers_with_no_amounts_last() -> None:
    def priced(client: str, gap: str | None) -> dict[str, Any]:
        amounts = None if gap is None else {"currency": "USD", "monthly_price_gap": gap}
        return {**row(client, 1, 1, "matched"), "amounts": amounts}

    rows = [priced("a", "9.50"), priced("b", None), priced("c", "-20.00"), priced("d", "13.00")]
    # As numbers, not text ("9.50" > "13.00" as text); no amounts last either way.
    assert names(_sorted(rows, ("monthly", True))) == ["d", "a", "c", "b"]
    assert names(_sorted(rows, ("monthly", False))) == ["c", "a", "d", "b"]


def test_sort_and_cursor_parameters_are_read_or_refused_naming_them() -> None:
    assert parse_sort(None) is None and parse_sort("") is None
    assert parse_sort("variance") == ("variance", False) and parse_sort("-client") == ("client", True)
    with pytest.raises(InvalidInput, match="unknown sort 'price'"):
        parse_sort("price")
    assert parse_cursor(None) == 0 and parse_cursor("") == 0 and parse_cursor("500") == 500
    for bad in ("-1", "1e3", "x", "1234567890"):
        with pytest.raises(InvalidInput, match="malformed cursor"):
            parse_cursor(bad)
