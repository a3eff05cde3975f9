"""What a gap costs: a row's unit price and unit cost per month, and its monthly gaps.

Pure, in decimal. Pax8 gives each subscription a `price` ("the price for the customer": what the
MSP bills) and a `partnerCost` ("the price for the Partner": what the MSP pays Pax8), per unit and
per billing term; a term's months come from the settings (`months_per_term`), so that an account
whose figures read otherwise can be corrected. Nothing is guessed: a row without a priced
subscription, or priced in several currencies, gets no amounts and a warning saying why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from trueup.domain.models import Amounts, CurrencyTotals, Row, Status, Subscription

# ISO 4217 minor units of the currencies that do not use cents; every other currency uses two.
_MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF"), 0),
    **dict.fromkeys(("UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of `currency` (0.01 for USD, 1 for JPY, 0.001 for KWD)."""
    return Decimal(1).scaleb(-_MINOR_UNITS.get(currency.upper(), 2))


def rounded(amount: Decimal, currency: str) -> Decimal:
    """Half-up to the currency's minor unit: 13.005 USD is 13.01, -13.005 is -13.01."""
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def row_amounts(
    variance: int, subscriptions: Sequence[Subscription], months_per_term: Mapping[str, int]
) -> tuple[Amounts | None, str | None]:
    """The row's amounts from its counted subscriptions, or (None, why not).

    unit_price = sum(quantity x price / months) / sum(quantity) over the subscriptions with a price
    and a term of known months; unit_cost the same with partnerCost. Each gap is the variance times
    the exact unit figure, then rounded once, like the unit figures themselves."""
    priced = [s for s in subscriptions if price_left_out(s, months_per_term) is None and s.quantity > 0]
    if not priced:
        return None, "no counted subscription has a price for a billing term of known months: no amount"
    currencies = sorted({(s.currency or "").upper() for s in priced})
    if currencies == [""]:
        return None, "its subscriptions' prices name no currency: no amount"
    if len(currencies) > 1:
        named = ", ".join(c or "none" for c in currencies)
        return None, f"its subscriptions are priced in several currencies ({named}): no amount"
    currency = currencies[0]
    unit_price = _per_unit_month([(s, s.price) for s in priced], months_per_term)
    costed = [(s, s.partner_cost) for s in priced if s.partner_cost is not None]
    unit_cost = _per_unit_month(costed, months_per_term) if costed else None
    return (
        Amounts(
            currency=currency,
            unit_price=rounded(unit_price, currency),
            unit_cost=None if unit_cost is None else rounded(unit_cost, currency),
            monthly_price_gap=rounded(variance * unit_price, currency),
            monthly_cost_gap=None if unit_cost is None else rounded(variance * unit_cost, currency),
        ),
        None,
    )


def price_left_out(subscription: Subscription, months_per_term: Mapping[str, int]) -> str | None:
    """Why a counted subscription is left out of its row's price, or None when it is in it."""
    if subscription.price is None:
        return "no price"
    if months_per_term.get(subscription.billing_term or "", 0) <= 0:
        term = subscription.billing_term or "none"
        return f"billing term {term} has no months per term in the settings"
    return None


def _per_unit_month(
    figures: Iterable[tuple[Subscription, Decimal | None]], months_per_term: Mapping[str, int]
) -> Decimal:
    total = Decimal(0)
    units = 0
    for subscription, amount in figures:
        assert amount is not None
        total += subscription.quantity * amount / months_per_term[subscription.billing_term or ""]
        units += subscription.quantity
    return total / units


def commitment_ends(subscriptions: Iterable[Subscription], as_of: datetime) -> date | None:
    """The earliest end of a commitment still running at `as_of` (when the data was synced): an
    NCE-style commitment cannot be reduced before it."""
    ends = [
        s.commitment_end.date()
        for s in subscriptions
        if s.commitment_end is not None and s.commitment_end > as_of
    ]
    return min(ends) if ends else None


def coverage_totals(rows: Iterable[Row]) -> dict[str, CurrencyTotals]:
    """Per currency, the gaps of the under-licensed and of the over-licensed rows (sums of the
    rounded rows; matched rows, even with a small gap, are in neither)."""
    sums: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        if row.amounts is None or row.status not in (Status.UNDER_LICENSED, Status.OVER_LICENSED):
            continue
        side = "under_licensed" if row.status is Status.UNDER_LICENSED else "over_licensed"
        zero = Decimal(0).quantize(minor_unit(row.amounts.currency))
        totals = sums.setdefault(row.amounts.currency, {})
        totals[f"{side}_price_gap"] = totals.get(f"{side}_price_gap", zero) + row.amounts.monthly_price_gap
        if row.amounts.monthly_cost_gap is not None:
            key = f"{side}_cost_gap"
            totals[key] = totals.get(key, zero) + row.amounts.monthly_cost_gap
    return {
        currency: CurrencyTotals(
            **{
                key: totals.get(key, Decimal(0).quantize(minor_unit(currency)))
                for key in CurrencyTotals.model_fields
            }
        )
        for currency, totals in sorted(sums.items())
    }
