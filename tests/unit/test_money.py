"""What each gap costs, case by case: every amount below is worked out by hand beside it.

Prices are per unit and per billing term (Monthly 1 month, Annual 12, 2-Year 24, 3-Year 36); a row's
unit price is the quantity-weighted mean of its priced subscriptions' monthly prices; a gap is the
variance times it, rounded half-up to the currency's minor unit.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tests.engine_builders import EDR, company, devices, org, pax8, rmm, sub
from trueup.domain.models import Amounts, CurrencyTotals, Row, Settings, Subscription
from trueup.domain.money import minor_unit, rounded
from trueup.domain.reconcile import reconcile

ONLY_EDR = Settings(coverages=[EDR])


def acme_row(subscriptions: list[Subscription], device_count: int, settings: Settings = ONLY_EDR) -> Row:
    [edr] = reconcile(
        pax8([company("acme")], subscriptions), rmm([org(1, "Acme")], devices(1, device_count)), settings
    ).coverages
    [row] = edr.rows
    return row


def usd(price: str, cost: str | None, price_gap: str, cost_gap: str | None) -> Amounts:
    return Amounts(
        currency="USD",
        unit_price=Decimal(price),
        unit_cost=None if cost is None else Decimal(cost),
        monthly_price_gap=Decimal(price_gap),
        monthly_cost_gap=None if cost_gap is None else Decimal(cost_gap),
    )


def test_monthly_and_annual_subscriptions_of_one_product_give_one_monthly_unit_price() -> None:
    # 10 monthly at $4.50 and 5 annual at $48.00 a year ($4.00 a month): (45 + 20) / 15 = $4.3333
    # a licence a month, shown $4.33. 18 devices - 15 licences = +3: 3 x 4.3333 = $13.00 not billed.
    # Costs: monthly $3.60, annual $36.00 a year ($3.00): (36 + 15) / 15 = $3.40; 3 x 3.40 = $10.20.
    row = acme_row(
        [
            sub("m", "acme", 10, price="4.50", cost="3.60"),
            sub("a", "acme", 5, term="Annual", price="48.00", cost="36.00"),
        ],
        18,
    )
    assert (row.licenses, row.variance, row.status.value) == (15, 3, "under_licensed")
    assert row.amounts == usd("4.33", "3.40", "13.00", "10.20")
    assert row.warnings == [] and row.amounts_warning is None


def test_a_subscription_without_a_price_counts_as_licences_but_not_in_the_price() -> None:
    # 10 at $5.00 and 4 without a price: 14 licences; the unit price is the priced ones' $5.00.
    # 16 devices - 14 = +2: $10.00 a month not billed; costs $4.00: $8.00.
    row = acme_row([sub("p", "acme", 10), sub("n", "acme", 4, price=None, cost=None)], 16)
    assert (row.licenses, row.variance) == (14, 2)
    assert row.amounts == usd("5.00", "4.00", "10.00", "8.00")


def test_a_row_with_no_priced_subscription_has_no_amounts_and_says_why() -> None:
    row = acme_row([sub("n", "acme", 4, price=None, cost=None)], 6)
    assert (row.variance, row.amounts) == (2, None)
    assert row.amounts_warning == (
        "no counted subscription has a price for a billing term of known months: no amount"
    )
    assert row.warnings == []  # the counts themselves are sound


def test_a_price_without_a_cost_gives_the_price_gap_only() -> None:
    row = acme_row([sub("p", "acme", 4, price="7.25", cost=None)], 5)  # +1: $7.25, no cost known
    assert row.amounts == usd("7.25", None, "7.25", None)


def test_two_currencies_in_one_row_give_no_amounts_rather_than_a_guess() -> None:
    row = acme_row([sub("u", "acme", 5), sub("e", "acme", 5, price="4.00", currency="EUR")], 12)
    assert (row.licenses, row.variance, row.amounts) == (10, 2, None)
    assert row.amounts_warning == "its subscriptions are priced in several currencies (EUR, USD): no amount"


def test_a_trial_is_left_out_of_the_price_but_its_licences_count() -> None:
    # 10 monthly at $6.00 and 5 on a Trial term (no months per term): 15 licences, unit price $6.00.
    # 12 devices - 15 = -3: the client overpays 3 x 6.00 = $18.00 a month; costs $4.00: $12.00.
    row = acme_row([sub("m", "acme", 10, price="6.00"), sub("t", "acme", 5, term="Trial", price="0")], 12)
    assert (row.licenses, row.variance, row.status.value) == (15, -3, "over_licensed")
    assert row.amounts == usd("6.00", "4.00", "-18.00", "-12.00")


def test_an_over_licensed_annual_commitment_shows_when_it_can_be_reduced() -> None:
    # 20 annual at $120.00 a year ($10.00 a month), committed until 1 March 2027 (the data was synced on
    # 1 Nov 2026); a commitment that ended before the sync is not one. 15 devices - 20 = -5: the client
    # overpays $50.00 a month; $96.00 a year to Pax8 is $8.00 a month: the MSP overpays $40.00.
    ends = datetime(2027, 3, 1, tzinfo=UTC)
    row = acme_row(
        [
            sub("a", "acme", 12, term="Annual", price="120.00", cost="96.00", commitment_end=ends),
            sub(
                "b",
                "acme",
                8,
                term="Annual",
                price="120.00",
                cost="96.00",
                commitment_end=datetime(2027, 6, 1, tzinfo=UTC),
            ),
            sub("old", "acme", 0, term="Annual", commitment_end=datetime(2026, 10, 1, tzinfo=UTC)),
        ],
        15,
    )
    assert (row.variance, row.status.value) == (-5, "over_licensed")
    assert row.amounts == usd("10.00", "8.00", "-50.00", "-40.00")
    assert row.commitment_ends == date(2027, 3, 1)


def test_amounts_round_half_up_to_the_currencys_minor_unit_per_row_and_totals_add_rounded_rows() -> None:
    # $3.335 a month: shown $3.34 (half-up); one device over: +$3.34; one under: -$3.34 (away from 0).
    data = pax8(
        [company("acme"), company("bolt"), company("cora")],
        [
            sub("a", "acme", 1, price="3.335", cost="3.335"),
            sub("b", "bolt", 1, price="3.335", cost="3.335"),
            sub("c", "cora", 3, price="3.335", cost="3.335"),
        ],
    )
    inventory = rmm(
        [org(1, "Acme"), org(2, "Bolt"), org(3, "Cora")], devices(1, 2) + devices(2, 2) + devices(3, 2)
    )
    [edr] = reconcile(data, inventory, ONLY_EDR).coverages
    by_client = {r.client: r.amounts for r in edr.rows}
    assert by_client["Acme"] == usd("3.34", "3.34", "3.34", "3.34")
    assert by_client["Cora"] == usd("3.34", "3.34", "-3.34", "-3.34")
    # The total of two rows of exactly $3.335 each is $6.68 (each rounded first), not 6.67.
    assert edr.summary.money == {
        "USD": CurrencyTotals(
            under_licensed_price_gap=Decimal("6.68"),
            under_licensed_cost_gap=Decimal("6.68"),
            over_licensed_price_gap=Decimal("-3.34"),
            over_licensed_cost_gap=Decimal("-3.34"),
        )
    }


def test_a_currency_without_cents_rounds_to_whole_units() -> None:
    # ¥1,000.50 a month is shown ¥1,001; +2 devices: 2 x 1,000.50 = ¥2,001.
    row = acme_row([sub("j", "acme", 4, price="1000.50", cost=None, currency="JPY")], 6)
    assert row.amounts == Amounts(
        currency="JPY",
        unit_price=Decimal("1001"),
        unit_cost=None,
        monthly_price_gap=Decimal("2001"),
        monthly_cost_gap=None,
    )
    assert row.amounts.model_dump(mode="json")["monthly_price_gap"] == "2001"


def test_a_matched_row_within_the_tolerance_keeps_its_small_gap_outside_the_totals() -> None:
    # 11 devices, 10 licences, tolerance 1: matched, yet $5.00 a month is not billed.
    [edr] = reconcile(
        pax8([company("acme")], [sub("s", "acme", 10)]),
        rmm([org(1, "Acme")], devices(1, 11)),
        Settings(coverages=[EDR], tolerance=1),
    ).coverages
    [row] = edr.rows
    assert row.status.value == "matched" and row.amounts == usd("5.00", "4.00", "5.00", "4.00")
    assert edr.summary.money == {}


def test_unmapped_rows_have_no_amounts() -> None:
    # Zed holds 3 licences and has no RMM organization; Echo has 2 devices and no Pax8 company.
    [edr] = reconcile(
        pax8([company("zed")], [sub("s", "zed", 3)]), rmm([org(1, "Echo")], devices(1, 2)), ONLY_EDR
    ).coverages
    assert [(r.client, r.status.value, r.amounts) for r in edr.rows] == [
        ("Echo", "unmapped", None),
        ("Zed", "unmapped", None),
    ]


def test_the_months_per_term_are_a_setting() -> None:
    # An account whose annual price reads as monthly: Annual = 1 month. 2 x $10.00 = $20.00.
    settings = Settings(coverages=[EDR], months_per_term={"Monthly": 1, "Annual": 1})
    row = acme_row([sub("a", "acme", 3, term="Annual", price="10.00", cost=None)], 5, settings)
    assert row.amounts == usd("10.00", None, "20.00", None)


@pytest.mark.parametrize(
    ("currency", "unit", "half"),
    [
        ("USD", "0.01", "0.13"),
        ("eur", "0.01", "0.13"),
        ("JPY", "1", "0"),
        ("KWD", "0.001", "0.125"),
        ("XYZ", "0.01", "0.13"),
    ],
)
def test_minor_units_and_half_up(currency: str, unit: str, half: str) -> None:
    # 0.125 is exactly half a cent over 0.12 (half-up: 0.13), and 0.125 yen rounds to 0.
    assert minor_unit(currency) == Decimal(unit)
    assert rounded(Decimal("0.125"), currency) == Decimal(half)
    assert rounded(Decimal("-0.125"), currency) == -Decimal(half)
