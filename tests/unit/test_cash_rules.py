"""The pure rules of recurrent cash: fees, ranges, decline codes, request signatures, transitions."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caja.domain.approvals import ApprovalReply
from caja.domain.cash_payments import AmountRange, CashLimits, check_amount, parse_amount, payable_range
from caja.domain.failure_codes import FailureCode, from_merchant
from caja.domain.networks import sign, verify
from caja.domain.orders import CHARGE_TRANSITIONS, ChargeStatus, Order, OrderPaymentStatus, PayerDetails
from caja.domain.pricing import CashPricing

LIMITS = CashLimits(min_amount=100, max_amount=1_000_000)


def test_the_default_fee_reproduces_the_seeds_sandbox_example() -> None:
    assert CashPricing().fee(20_000) == 905


def test_a_fee_never_exceeds_the_amount() -> None:
    assert CashPricing().fee(100) == 100


@given(st.integers(min_value=1, max_value=10**9))
def test_fees_are_exact_integer_rounding(amount: int) -> None:
    pricing = CashPricing(rate_bp=290, fixed=200, tax_bp=1600)
    exact = (amount * 0.029 + 2.00 * 100) * 1.16
    assert abs(pricing.fee(amount) - min(exact, amount)) <= 0.5 + 1e-6 * amount


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (ApprovalReply(True), AmountRange(100, 1_000_000)),
        (ApprovalReply(True, 5_000, 500_000), AmountRange(5_000, 500_000)),
        (ApprovalReply(True, 10, 2_000_000), AmountRange(100, 1_000_000)),
        (ApprovalReply(True, None, 0), FailureCode.NO_DEBT),
        (ApprovalReply(True, 2_000_000, None), FailureCode.AMOUNT_NOT_ALLOWED),
    ],
)
def test_payable_range(reply: ApprovalReply, expected: object) -> None:
    assert payable_range(reply, LIMITS) == expected


@pytest.mark.parametrize(
    ("amount", "code"),
    [(0, "02"), (-1, "02"), (99, "16"), (1_000_001, "16"), (4_999, "35"), (500_001, "35"), (5_000, None)],
)
def test_check_amount(amount: int, code: str | None) -> None:
    found = check_amount(amount, AmountRange(5_000, 500_000), LIMITS)
    assert (found.value if found else None) == code


def test_merchant_codes_outside_the_table_become_19() -> None:
    assert from_merchant("15") is FailureCode.USER_BLOCKED
    assert from_merchant("77") is FailureCode.NOT_AUTHORIZED
    assert from_merchant(None) is FailureCode.NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("10000", 10_000),
        (10_000, 10_000),
        (" 7 ", 7),
        ("1e3", None),
        (True, None),
        (1.5, None),
        ("", None),
        ("٣", None),
    ],
)
def test_parse_amount(value: object, parsed: int | None) -> None:
    assert parse_amount(value) == parsed


def test_signatures_match_an_independent_hmac() -> None:
    body = b'{"reference": "1"}'
    expected = hmac.new(b"nsk_s", b"1800000000.POST./network/v1/lookups." + body, hashlib.sha256).hexdigest()
    assert sign("nsk_s", "1800000000", "post", "/network/v1/lookups", body) == f"v1={expected}"


def test_verify_refuses_what_it_must() -> None:
    body = b"{}"
    good = sign("nsk_s", "1800000000", "POST", "/p", body)
    assert verify("nsk_s", "1800000000", good, "POST", "/p", body, 1_800_000_100) is None
    assert verify("nsk_s", "1800000000", f"v1=00 {good}", "POST", "/p", body, 1_800_000_000) is None
    assert verify("nsk_s", "1800000000", good, "POST", "/q", body, 1_800_000_000) is not None
    assert verify("nsk_s", "1800000000", good, "POST", "/p", b"{ }", 1_800_000_000) is not None
    assert verify("nsk_t", "1800000000", good, "POST", "/p", body, 1_800_000_000) is not None
    assert verify("nsk_s", "1800000000", good, "POST", "/p", body, 1_800_000_301) is not None
    assert verify("nsk_s", "soon", good, "POST", "/p", body, 1_800_000_000) is not None


def test_an_illegal_transition_raises_a_conekta_processing_error() -> None:
    assert CHARGE_TRANSITIONS[ChargeStatus.PAID] == frozenset({ChargeStatus.REVERSED})
    order = Order(
        id="ord_1",
        account_id="acc_1",
        livemode=False,
        customer_id="cus_1",
        amount=100,
        currency="MXN",
        payment_status=OrderPaymentStatus.REVERSED,
        payer=PayerDetails(name="Ana", email=None, phone=None),
        metadata={},
        created_at=0,
        updated_at=0,
    )
    with pytest.raises(Exception) as raised:
        order.moved_to(OrderPaymentStatus.PAID, 1)
    assert getattr(raised.value, "http_status", None) == 422
