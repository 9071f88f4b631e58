"""The money helpers every output goes through: rounding to cents and printing USD."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tracker.records import cents, format_usd, usd_cents


@pytest.mark.parametrize(
    ("usd", "plain", "with_symbol"),
    [
        (Decimal("1234.565"), "1,234.57", "$1,234.57"),  # half up, as invoices round
        (Decimal("-1.005"), "-1.01", "-$1.01"),  # a credit keeps its sign before the symbol
        (Decimal("-0.004"), "0.00", "$0.00"),  # rounds to zero: never "-0.00"
        (Decimal("0"), "0.00", "$0.00"),
    ],
)
def test_format_usd_rounds_half_up_and_never_shows_negative_zero(
    usd: Decimal, plain: str, with_symbol: str
) -> None:
    assert format_usd(usd) == plain
    assert format_usd(usd, symbol=True) == with_symbol


def test_cents_of_a_tiny_credit_is_plain_zero() -> None:
    assert str(cents(Decimal("-0.001"))) == "0.00"
    assert str(usd_cents(-4_000)) == "0.00"  # -0.004 USD in micro-dollars
