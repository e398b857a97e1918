"""The synchronous reply contract, parsed purely (seed page 000: payable, min/max amount, failure codes)."""

from __future__ import annotations

import pytest

from caja.domain.approvals import (
    ApprovalFailure,
    ApprovalFailureReason,
    ApprovalReply,
    combine,
    parse_reply,
)


def test_the_seed_replies() -> None:
    assert parse_reply(b'{"payable": true, "min_amount": 5000, "max_amount": 1000000}') == ApprovalReply(
        True, 5000, 1000000
    )
    assert parse_reply(b'{"payable": true}') == ApprovalReply(True)
    assert parse_reply(b'{"payable": false, "failure_code": "15"}') == ApprovalReply(False, failure_code="15")


def test_only_one_bound_and_extra_fields_are_fine() -> None:
    assert parse_reply(b'{"payable": true, "max_amount": 300, "note": "x"}') == ApprovalReply(True, None, 300)
    assert parse_reply(b'{"payable": false}') == ApprovalReply(False)


def test_a_zero_maximum_means_no_debt_whatever_the_minimum() -> None:
    no_debt = ApprovalReply(True, None, 0)
    assert parse_reply(b'{"payable": true, "min_amount": 0, "max_amount": 0}') == no_debt
    # A merchant that always sends its fixed minimum still says "nothing owed", not a broken reply.
    assert parse_reply(b'{"payable": true, "min_amount": 5000, "max_amount": 0}') == no_debt
    assert combine([ApprovalReply(True, 5000, None), no_debt]) == no_debt


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"payable"',
        b"{}",
        b'{"payable": "true"}',
        b'{"payable": 1}',
        b'{"payable": true, "min_amount": 5000, "max_amount": 100}',
        b'{"payable": true, "min_amount": -1}',
        b'{"payable": true, "max_amount": 10.5}',
        b'{"payable": true, "max_amount": "500"}',
        b'{"payable": true, "max_amount": true}',
        b'{"payable": true, "max_amount": 1e20}',
        b'{"payable": true, "failure_code": "15"}',
        b'{"payable": false, "failure_code": 15}',
        b'{"payable": false, "failure_code": "abc"}',
    ],
)
def test_out_of_contract(body: bytes) -> None:
    result = parse_reply(body)
    assert isinstance(result, ApprovalFailure), result
    assert result.reason is ApprovalFailureReason.OUT_OF_CONTRACT


@pytest.mark.parametrize("body", [b"", b"ok", b"{payable: true}", b'{"payable": true', b"\xff\xfe"])
def test_not_json(body: bytes) -> None:
    result = parse_reply(body)
    assert isinstance(result, ApprovalFailure) and result.reason is ApprovalFailureReason.BAD_JSON


def test_allows() -> None:
    reply = ApprovalReply(True, 5000, 10000)
    assert reply.allows(5000) and reply.allows(10000)
    assert not reply.allows(4999) and not reply.allows(10001)
    assert ApprovalReply(True).allows(1)
    assert not ApprovalReply(False, failure_code="15").allows(1)


def test_several_webhooks_must_all_agree() -> None:
    assert combine([ApprovalReply(True, 100, 900), ApprovalReply(True, 300, None)]) == ApprovalReply(
        True, 300, 900
    )
    declined = ApprovalReply(False, failure_code="19")
    assert combine([ApprovalReply(True), declined]) == declined
    apart = combine([ApprovalReply(True, 0, 100), ApprovalReply(True, 200, 300)])
    assert isinstance(apart, ApprovalFailure) and apart.reason is ApprovalFailureReason.OUT_OF_CONTRACT
