"""The admission gate: new store calls wait behind started ones; a call waiting outside lets one in."""

from __future__ import annotations

import asyncio

import pytest

from caja.admission import Admitted, Away, Gate


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_calls_past_the_slots_start_in_arrival_order_as_slots_free() -> None:
    gate = Gate(1)
    started: list[int] = []
    release = [asyncio.Event() for _ in range(3)]

    async def call(n: int) -> None:
        async with Admitted(gate):
            started.append(n)
            await release[n].wait()

    tasks = [asyncio.create_task(call(n)) for n in range(3)]
    await _settle()
    assert started == [0]
    release[0].set()
    await _settle()
    assert started == [0, 1]
    release[2].set()  # the third is done with its work but has not started: it must still wait
    await _settle()
    assert started == [0, 1]
    release[1].set()
    await asyncio.gather(*tasks)
    assert started == [0, 1, 2]


async def test_a_call_waiting_for_the_merchant_gives_its_slot_up_and_takes_it_back_first() -> None:
    gate = Gate(1)
    order: list[str] = []
    merchant_answers = asyncio.Event()
    second_may_finish = asyncio.Event()

    async def first() -> None:
        async with Admitted(gate):
            order.append("first starts")
            with Away():
                await merchant_answers.wait()
            order.append("first resumes")

    async def second() -> None:
        async with Admitted(gate):
            order.append("second starts")
            await second_may_finish.wait()

    async def third() -> None:
        async with Admitted(gate):
            order.append("third starts")

    one = asyncio.create_task(first())
    await _settle()
    two = asyncio.create_task(second())
    await _settle()
    assert order == ["first starts", "second starts"]  # let in while the first waited outside
    three = asyncio.create_task(third())
    await _settle()
    merchant_answers.set()  # the gate is full (the second holds it), yet the first goes on at once
    await _settle()
    assert order == ["first starts", "second starts", "first resumes"]
    second_may_finish.set()
    await asyncio.gather(one, two, three)
    assert order[-1] == "third starts"


async def test_a_saturated_gate_lets_everyone_waiting_in_at_once() -> None:
    gate = Gate(1, flood=3)
    release = asyncio.Event()
    inside = 0

    async def call() -> None:
        nonlocal inside
        async with Admitted(gate):
            inside += 1
            await release.wait()

    tasks = [asyncio.create_task(call()) for _ in range(3)]
    await _settle()
    assert inside == 1  # one at work, two waiting: below the flood mark
    tasks.append(asyncio.create_task(call()))
    await _settle()
    assert inside == 4  # the third waiter made it a flood: all in
    release.set()
    await asyncio.gather(*tasks)
    async with asyncio.timeout(1):  # every slot came back
        async with Admitted(gate):
            pass


async def test_no_slots_means_no_limit() -> None:
    gate = Gate(0)
    inside = 0
    most = 0
    release = asyncio.Event()

    async def call() -> None:
        nonlocal inside, most
        async with Admitted(gate):
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1

    tasks = [asyncio.create_task(call()) for _ in range(10)]
    await _settle()
    assert most == 10
    release.set()
    await asyncio.gather(*tasks)


async def test_a_call_gives_its_slot_up_once_however_many_waits_it_runs_outside() -> None:
    gate = Gate(1)
    admitted: list[str] = []
    answers = asyncio.Event()
    hold = asyncio.Event()

    async def waiter(name: str) -> None:
        async with Admitted(gate):
            admitted.append(name)
            await hold.wait()

    async def one_merchant_webhook() -> None:
        with Away():
            await answers.wait()

    async with Admitted(gate):
        tasks = [asyncio.create_task(waiter(n)) for n in ("second", "third")]
        await _settle()
        with Away():
            # Two webhooks asked at once, each waiting outside in a task of its own.
            webhooks = asyncio.gather(one_merchant_webhook(), one_merchant_webhook())
            await _settle()
            assert admitted == ["second"]  # one slot was given up, not three
            answers.set()
            await webhooks
        hold.set()
        await _settle()
        assert admitted == ["second"]  # back at work, the first holds its slot again
    await asyncio.gather(*tasks)
    assert admitted == ["second", "third"]


async def test_away_outside_any_admitted_call_changes_nothing() -> None:
    with Away():
        await asyncio.sleep(0)


async def test_a_caller_that_gives_up_while_waiting_leaves_no_slot_taken() -> None:
    gate = Gate(1)
    hold = asyncio.Event()

    async def holder() -> None:
        async with Admitted(gate):
            await hold.wait()

    async def impatient() -> None:
        async with Admitted(gate):
            pytest.fail("an impatient caller was let in")

    first = asyncio.create_task(holder())
    await _settle()
    waiting = asyncio.create_task(impatient())
    await _settle()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    hold.set()
    await first
    # Both slots' worth of history is gone: a new call gets in at once.
    async with asyncio.timeout(1):
        async with Admitted(gate):
            pass


async def test_a_slot_handed_to_a_caller_that_was_cancelled_meanwhile_goes_to_the_next() -> None:
    gate = Gate(1)
    entered: list[str] = []

    async def caller(name: str) -> None:
        async with Admitted(gate):
            entered.append(name)

    await gate.enter()
    doomed = asyncio.create_task(caller("doomed"))
    patient = asyncio.create_task(caller("patient"))
    await _settle()
    gate.leave()  # the slot goes to "doomed"'s turn...
    doomed.cancel()  # ...which gives up before it runs
    with pytest.raises(asyncio.CancelledError):
        await doomed
    async with asyncio.timeout(1):
        await patient
    assert entered == ["patient"]
