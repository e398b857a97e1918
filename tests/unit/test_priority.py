"""The background lane: one job at a time, at moments when no request is in flight, or once overdue."""

from __future__ import annotations

import asyncio

import pytest

from caja.delivery.priority import BackgroundLane, Foreground


async def _job(lane: BackgroundLane, name: str, log: list[str], hold: asyncio.Event | None = None) -> None:
    async with lane.turn():
        log.append(f"{name} starts")
        if hold is not None:
            await hold.wait()
        log.append(f"{name} ends")


async def test_an_idle_server_runs_a_background_job_at_once() -> None:
    lane = BackgroundLane(Foreground(), max_wait=30)
    log: list[str] = []
    await asyncio.wait_for(_job(lane, "a", log), timeout=1)
    assert log == ["a starts", "a ends"]
    assert (lane.waited, lane.overdue) == (0, 0)


async def test_a_job_waits_for_the_requests_in_flight_then_runs() -> None:
    foreground = Foreground()
    lane = BackgroundLane(foreground, max_wait=30)
    log: list[str] = []
    foreground.enter()
    foreground.enter()
    task = asyncio.create_task(_job(lane, "a", log))
    await asyncio.sleep(0.05)
    assert log == []
    foreground.leave()  # one request still in flight
    await asyncio.sleep(0.05)
    assert log == []
    foreground.leave()
    await asyncio.wait_for(task, timeout=1)
    assert log == ["a starts", "a ends"]
    assert (lane.waited, lane.overdue) == (1, 0)


async def test_jobs_take_the_lane_one_at_a_time_in_order() -> None:
    lane = BackgroundLane(Foreground(), max_wait=30)
    log: list[str] = []
    holds = {name: asyncio.Event() for name in "abc"}
    tasks = []
    for name in "abc":
        tasks.append(asyncio.create_task(_job(lane, name, log, holds[name])))
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    assert log == ["a starts"]
    holds["c"].set()  # c is ready to end, but it has not started: it waits behind b
    holds["a"].set()
    await asyncio.sleep(0.05)
    assert log == ["a starts", "a ends", "b starts"]
    holds["b"].set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=1)
    assert log == ["a starts", "a ends", "b starts", "b ends", "c starts", "c ends"]


async def test_a_request_arriving_holds_back_the_next_job_not_the_running_one() -> None:
    foreground = Foreground()
    lane = BackgroundLane(foreground, max_wait=30)
    log: list[str] = []
    hold_a = asyncio.Event()
    a = asyncio.create_task(_job(lane, "a", log, hold_a))
    await asyncio.sleep(0)
    b = asyncio.create_task(_job(lane, "b", log))
    await asyncio.sleep(0.02)
    foreground.enter()
    hold_a.set()
    await asyncio.wait_for(a, timeout=1)
    await asyncio.sleep(0.05)
    assert log == ["a starts", "a ends"]
    foreground.leave()
    await asyncio.wait_for(b, timeout=1)
    assert log[-2:] == ["b starts", "b ends"]


async def test_a_job_that_waited_max_wait_runs_anyway_without_the_lane() -> None:
    foreground = Foreground()
    lane = BackgroundLane(foreground, max_wait=0.1)
    log: list[str] = []
    foreground.enter()  # a request that never ends
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.wait_for(_job(lane, "a", log), timeout=2)
    assert log == ["a starts", "a ends"]
    assert loop.time() - began >= 0.1
    assert (lane.waited, lane.overdue) == (1, 1)
    # It did not take the lane: once the request ends, the next job starts at once.
    foreground.leave()
    await asyncio.wait_for(_job(lane, "b", log), timeout=1)
    assert log[-2:] == ["b starts", "b ends"]


@pytest.mark.parametrize("turn_came", [False, True], ids=["while-waiting", "once-its-turn-came"])
async def test_a_cancelled_job_leaves_the_lane_usable(turn_came: bool) -> None:
    foreground = Foreground()
    lane = BackgroundLane(foreground, max_wait=30)
    log: list[str] = []
    foreground.enter()
    waiting = asyncio.create_task(_job(lane, "a", log))
    await asyncio.sleep(0.02)
    if turn_came:
        foreground.leave()  # hands the lane to "a", cancelled below before it runs
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert log == []
    if not turn_came:
        foreground.leave()
    await asyncio.wait_for(_job(lane, "b", log), timeout=1)
    assert log == ["b starts", "b ends"]
