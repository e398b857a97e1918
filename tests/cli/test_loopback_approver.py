"""caja trigger's stand-in approver: every call approved, on kept-alive connections too."""

from __future__ import annotations

import asyncio
import json

import httpx

from caja.loopback_approver import LoopbackApprover


async def test_it_approves_every_call_and_keeps_the_types_asked() -> None:
    async with LoopbackApprover() as approver, httpx.AsyncClient(trust_env=False) as client:
        for kind in ("webhook_ping", "inbound_payment.lookup", "inbound_payment.payment_attempt"):
            reply = await client.post(approver.url, content=json.dumps({"type": kind, "data": {}}))
            assert reply.status_code == 200 and reply.json() == {"payable": True}
        not_json = await client.post(approver.url, content=b"\xff")
        assert not_json.json() == {"payable": True}
    assert approver.asked == [
        "webhook_ping",
        "inbound_payment.lookup",
        "inbound_payment.payment_attempt",
        "?",
    ]


async def test_a_kept_alive_connection_does_not_hold_its_stop() -> None:
    approver = LoopbackApprover()
    await approver.__aenter__()
    reader, writer = await asyncio.open_connection("127.0.0.1", int(approver.url.split(":")[2].split("/")[0]))
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    await asyncio.wait_for(approver.__aexit__(None, None, None), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b'{"payable": true}'  # the reply, then the close
    writer.close()
