"""``caja listen`` and ``caja trigger``: developer tools that talk to a running Caja over HTTP.

Like Stripe CLI's: ``listen`` registers a temporary webhook that points at a local URL, prints
one line per delivery attempt as it happens (read from the events API), and deletes the webhook
when it stops; ``trigger`` makes the objects an event needs through the merchant API, so the
event comes from the real flow, and prints the event it produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import httpx
import typer

from caja.loopback_approver import LoopbackApprover

ACCEPT = "application/vnd.conekta-v2.3.0+json"
DEFAULT_SERVER = "http://127.0.0.1:8300"
Echo = Callable[[str], None]


class CliError(Exception):
    """A failure to show the developer as one line, ending the command with status 1."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status Caja answered, when it answered


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    details = body.get("details") if isinstance(body, dict) else None
    if details:
        first = details[0]
        return f"HTTP {response.status_code}: {first.get('debug_message') or first.get('message')}"
    return f"HTTP {response.status_code}"


class Api:
    """The merchant API with one key."""

    def __init__(self, server: str, api_key: str) -> None:
        self.server = server.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.server,
            headers={"Authorization": f"Bearer {api_key}", "Accept": ACCEPT, "User-Agent": "caja-cli"},
            timeout=15.0,
            trust_env=False,
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        try:
            response = await self._client.request(
                method, path, json=body, params={k: v for k, v in params.items() if v is not None}
            )
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach Caja at {self.server}: {exc}") from None
        if response.status_code != 200:
            raise CliError(f"{method} {path} failed: {_describe(response)}", status=response.status_code)
        return response.json()

    async def newest_event_id(self) -> str | None:
        page = await self.call("GET", "/events", limit=1)
        return page["data"][0]["id"] if page["data"] else None

    async def events_since(self, cursor: str | None, event_type: str | None = None) -> list[dict[str, Any]]:
        """Events newer than ``cursor`` (all of them when None), oldest first."""
        found: list[dict[str, Any]] = []
        if cursor is None:
            page = await self.call("GET", "/events", limit=250, type=event_type)
            return list(reversed(page["data"]))
        while True:
            page = await self.call("GET", "/events", limit=250, previous=cursor, type=event_type)
            data = page["data"]
            if not data:
                return found
            found.extend(reversed(data))
            cursor = data[0]["id"]
            if not page["has_more"]:
                return found


# --- listen -----------------------------------------------------------------------------------


@dataclass
class _Watch:
    event: dict[str, Any]
    seen: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def _clock(epoch: int | None) -> str:
    when = datetime.fromtimestamp(epoch) if epoch else datetime.now()
    return when.strftime("%Y-%m-%d %H:%M:%S")


def delivery_line(event: dict[str, Any], log: dict[str, Any]) -> str:
    status = log.get("last_http_response_status")
    if status is None:
        outcome = "ERR (no response)"
    elif 200 <= status < 300:
        outcome = f"{status} OK"
    else:
        outcome = f"{status} FAILED"
    return (
        f"{_clock(log.get('last_attempted_at'))}  {event['type']:<24} {event['id']}  "
        f"--> {outcome}  POST {log.get('url')}  [{log.get('id')}]"
    )


async def listen(
    api: Api,
    forward_to: str,
    events: list[str],
    echo: Echo,
    *,
    poll_interval: float = 0.3,
    stop: asyncio.Event | None = None,
) -> None:
    """Forward events to ``forward_to`` until ``stop`` is set (SIGINT / SIGTERM by default)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    cursor = await api.newest_event_id()
    body: dict[str, Any] = {"url": forward_to, "description": "caja listen"}
    if events:
        body["subscribed_events"] = events
    webhook = await api.call("POST", "/webhooks", body)
    webhook_id = webhook["id"]
    echo(
        f"Ready. Forwarding {', '.join(events) if events else 'every event'} to {forward_to} "
        f"(webhook {webhook_id}, signing secret {webhook.get('signing_secret')}). Ctrl-C to stop."
    )
    watching: dict[str, _Watch] = {}
    try:
        while not stop.is_set():
            try:
                fresh = await api.events_since(cursor)
                if fresh:
                    cursor = fresh[-1]["id"]
                for event in fresh:
                    if any(log.get("webhook_id") == webhook_id for log in event.get("webhook_logs", ())):
                        watching[event["id"]] = _Watch(event)
                fresh_ids = {e["id"] for e in fresh}
                for event_id, watch in list(watching.items()):
                    if event_id not in fresh_ids:
                        watch.event = await api.call("GET", f"/events/{event_id}")
                    if _report(watch, webhook_id, echo):
                        del watching[event_id]
            except CliError as exc:
                echo(f"{_clock(None)}  (polling failed: {exc}; retrying)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_interval)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        try:
            await api.call("DELETE", f"/webhooks/{webhook_id}")
            echo(f"Stopped. Webhook {webhook_id} deleted.")
        except CliError as exc:
            echo(f"Stopped, but webhook {webhook_id} could not be deleted: {exc}")


def _report(watch: _Watch, webhook_id: str, echo: Echo) -> bool:
    """Print attempts not printed yet; True once every delivery to our webhook has settled."""
    event = watch.event
    settled = True
    for log in event.get("webhook_logs", ()):
        if log.get("webhook_id") != webhook_id:
            continue
        state = (
            log.get("failed_attempts"),
            log.get("last_attempted_at"),
            log.get("last_http_response_status"),
        )
        status = log.get("last_http_response_status")
        if log.get("last_attempted_at") is not None and watch.seen.get(log["id"]) != state:
            watch.seen[log["id"]] = state
            echo(delivery_line(event, log))
        if not (status is not None and 200 <= status < 300):
            settled = False
    return settled or event.get("webhook_status") in {"failed", "not_applicable", "successful"}


# --- trigger ----------------------------------------------------------------------------------

UNROUTABLE = "http://127.0.0.1:9/caja-trigger"  # the discard port: nothing listens


async def _customer(api: Api) -> dict[str, Any]:
    return await api.call(  # type: ignore[no-any-return]
        "POST",
        "/customers",
        {
            "name": "Cliente de prueba (caja trigger)",
            "email": "cliente@example.com",
            "phone": "+525555555555",
        },
    )


async def _source(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    customer = await _customer(api)
    source = await api.call(
        "POST", f"/customers/{customer['id']}/payment_sources", {"type": "cash_recurrent"}
    )
    return customer, source


async def _customer_created(api: Api, _opts: TriggerOptions) -> str:
    return str((await _customer(api))["id"])


async def _customer_updated(api: Api, _opts: TriggerOptions) -> str:
    customer = await _customer(api)
    await api.call("PUT", f"/customers/{customer['id']}", {"name": "Cliente actualizado (caja trigger)"})
    return str(customer["id"])


async def _customer_deleted(api: Api, _opts: TriggerOptions) -> str:
    customer = await _customer(api)
    await api.call("DELETE", f"/customers/{customer['id']}")
    return str(customer["id"])


async def _source_created(api: Api, _opts: TriggerOptions) -> str:
    _, source = await _source(api)
    return str(source["id"])


async def _source_updated(api: Api, _opts: TriggerOptions) -> str:
    customer, source = await _source(api)
    expires_at = int(time.time()) + 30 * 86_400
    await api.call(
        "PUT", f"/customers/{customer['id']}/payment_sources/{source['id']}", {"expires_at": expires_at}
    )
    return str(source["id"])


async def _source_deleted(api: Api, _opts: TriggerOptions) -> str:
    customer, source = await _source(api)
    await api.call("DELETE", f"/customers/{customer['id']}/payment_sources/{source['id']}")
    return str(source["id"])


async def _temporary_webhook(api: Api) -> dict[str, Any]:
    return await api.call(  # type: ignore[no-any-return]
        "POST",
        "/webhooks",
        {"url": UNROUTABLE, "description": "caja trigger (deleted at once)", "subscribed_events": []},
    )


async def _webhook_created(api: Api, _opts: TriggerOptions) -> str:
    webhook = await _temporary_webhook(api)
    await api.call("DELETE", f"/webhooks/{webhook['id']}")
    return str(webhook["id"])


async def _webhook_updated(api: Api, _opts: TriggerOptions) -> str:
    webhook = await _temporary_webhook(api)
    await api.call("PUT", f"/webhooks/{webhook['id']}", {"description": "caja trigger (updated)"})
    await api.call("DELETE", f"/webhooks/{webhook['id']}")
    return str(webhook["id"])


_webhook_deleted = _webhook_created


async def _webhook_key_created(api: Api, _opts: TriggerOptions) -> str:
    # Inactive, so deliveries keep being signed with the current key; removed straight away.
    key = await api.call("POST", "/webhook_keys", {"active": False})
    await api.call("DELETE", f"/webhook_keys/{key['id']}")
    return str(key["id"])


_webhook_key_deleted = _webhook_key_created


async def _webhook_ping(api: Api, opts: TriggerOptions) -> str:
    webhook_id = opts.webhook_id
    if webhook_id is None:
        page = await api.call("GET", "/webhooks", limit=250)
        candidates = [w for w in page["data"] if not w.get("synchronous")]
        if not candidates:
            raise CliError(
                "no webhook to ping: create one first (`caja listen --forward-to URL` does), "
                "or name one with --webhook"
            )
        webhook_id = candidates[0]["id"]
    await api.call("POST", f"/webhooks/{webhook_id}/test")
    return str(webhook_id)


# Payments: a recurrent-cash payment through ``POST /payment_test``, the store simulator, which
# the account's synchronous webhook must approve as it would a store's.

TRIGGER_AMOUNT = 10_000  # centavos ($100.00 MXN), moved into the range the lookup allows
# A synchronous webhook registered a moment ago is asked within a second (the server caches them).
APPROVER_WAIT_SECONDS = 5.0
APPROVER_DESCRIPTION = "caja trigger approver (deleted at once)"
# How long a stand-in goes on answering once deleted: Caja reads an account's synchronous webhooks
# at most once a second per process, and a call under way has already read them.
APPROVER_LINGER_SECONDS = 1.5


async def _approvers(api: Api) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The account's synchronous webhooks that Caja asks (in the key's mode): its own, and the
    stand-ins of ``caja trigger`` runs (this one's, another's going on, or a killed one's)."""
    page = await api.call("GET", "/webhooks", limit=250)
    asked = [
        w
        for w in page["data"]
        if w.get("synchronous") and w.get("active", True) and w.get("status") != "disabled"
    ]
    stand_ins = [w for w in asked if w.get("description") == APPROVER_DESCRIPTION]
    return [w for w in asked if w not in stand_ins], stand_ins


async def _answers(url: str) -> bool:
    """Whether anything listens where a stand-in approver was registered (always on loopback)."""
    parts = httpx.URL(url)
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.host, parts.port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _remove_stale_stand_ins(api: Api, stand_ins: list[dict[str, Any]]) -> None:
    """Delete the stand-ins nothing answers for any more (a run killed before it could): Caja
    would ask them, and every test payment of the account would be declined 19."""
    for webhook in stand_ins:
        if not await _answers(webhook["url"]):
            with contextlib.suppress(CliError):  # another run removed it first
                await api.call("DELETE", f"/webhooks/{webhook['id']}")


@contextlib.asynccontextmanager
async def _approval(api: Api) -> AsyncIterator[LoopbackApprover | None]:
    """The account's own synchronous webhooks decide when it has some, as for a store's payment;
    otherwise a loopback approver stands in, registered until the block ends."""
    own, stand_ins = await _approvers(api)
    await _remove_stale_stand_ins(api, stand_ins)
    if own:
        yield None
        return
    async with LoopbackApprover() as approver:
        webhook = await api.call(
            "POST",
            "/webhooks",
            {
                "url": approver.url,
                "synchronous": True,
                "description": APPROVER_DESCRIPTION,
            },
        )
        try:
            yield approver
        finally:
            # Shielded: a second Ctrl-C or SIGTERM during the delete does not call it off.
            await asyncio.shield(api.call("DELETE", f"/webhooks/{webhook['id']}"))
            # A payment of another run going on may have read it before the delete: answer it.
            await asyncio.sleep(APPROVER_LINGER_SECONDS)


async def _merchant_replies(api: Api, reference: str) -> str:
    """What each of the account's own synchronous webhooks answered about ``reference`` last, from
    its approval log (written a moment after each call, hence the short wait)."""
    own, _ = await _approvers(api)
    deadline = time.monotonic() + 2.0
    while True:
        replies = []
        for webhook in own:
            page = await api.call("GET", f"/_caja/webhooks/{webhook['id']}/approval_calls", limit=10)
            call = next((c for c in page["data"] if c.get("reference") == reference), None)
            if call is not None:
                said = call.get("error") or f"answered {json.dumps(call.get('reply'))}"
                replies.append(f"{webhook['url']} {said}")
        if len(replies) == len(own) or time.monotonic() > deadline:
            return "; ".join(replies)
        await asyncio.sleep(0.2)


def _declined(
    what: str, answer: dict[str, Any], approver: LoopbackApprover | None, replies: str = ""
) -> CliError:
    declined = (
        f"the {what} was declined {answer.get('failure_code')} "
        f"({answer.get('failure_message_en') or answer.get('failure_message')})"
    )
    if approver is None:
        return CliError(
            f"{declined}: the account's synchronous webhook declined it or did not answer in time"
            f"{f' ({replies})' if replies else ''}; "
            "GET /_caja/webhooks/{id}/approval_calls shows every call"
        )
    if not any(kind.startswith("inbound_payment.") for kind in approver.asked):
        return CliError(
            f"{declined}: Caja did not reach caja trigger's approver at {approver.url}; when Caja "
            "runs on another host, register a synchronous webhook of your own (docs/api.md)"
        )
    return CliError(
        f"{declined}, though caja trigger's approver approved it: another synchronous webhook of the "
        "account did not (GET /_caja/webhooks/{id}/approval_calls shows its replies)"
    )


async def _pay(api: Api, reference: str, approver: LoopbackApprover | None) -> dict[str, Any]:
    """``POST /payment_test``'s answer for a paid payment of ``reference``: a lookup, then the
    payment of an amount inside the range it allows. With the stand-in, a decline only means that
    Caja has not seen it yet (a second at most) or still asked another run's stand-in as it went
    away, so the two are tried again for a few seconds; the account's own webhooks decide once."""
    deadline = time.monotonic() + APPROVER_WAIT_SECONDS
    while True:
        looked = await api.call(
            "POST", "/payment_test", {"event_type": "inbound_payment.lookup", "reference": reference}
        )
        what, outcome = "lookup", looked["lookup"]
        if outcome.get("payable"):
            amount = min(max(TRIGGER_AMOUNT, int(outcome["min_amount"])), int(outcome["max_amount"]))
            answer = await api.call(
                "POST",
                "/payment_test",
                {"event_type": "inbound_payment.payment_attempt", "reference": reference, "amount": amount},
            )
            what, outcome = "payment", answer.get("payment") or answer["lookup"]
            if outcome.get("status") == "paid":
                return answer  # type: ignore[no-any-return]
        if approver is None:
            raise _declined(what, outcome, approver, await _merchant_replies(api, reference))
        if time.monotonic() > deadline:
            raise _declined(what, outcome, approver)
        await asyncio.sleep(0.2)


async def _paid_payment(api: Api) -> dict[str, Any]:
    """A paid recurrent-cash payment of a new customer's reference; its charge."""
    _, source = await _source(api)
    async with _approval(api) as approver:
        answer = await _pay(api, source["reference"], approver)
    return await api.call("GET", f"/charges/{answer['charge_id']}")  # type: ignore[no-any-return]


async def _charge_paid(api: Api, _opts: TriggerOptions) -> str:
    return str((await _paid_payment(api))["id"])


async def _order_paid(api: Api, _opts: TriggerOptions) -> str:
    return str((await _paid_payment(api))["order_id"])


async def _reversed_payment(api: Api) -> dict[str, Any]:
    charge = await _paid_payment(api)
    reference = charge["payment_method"]["reference"]
    return await api.call(  # type: ignore[no-any-return]
        "POST", "/payment_test", {"event_type": "inbound_payment.reverse", "reference": reference}
    )


async def _charge_reversed(api: Api, _opts: TriggerOptions) -> str:
    return str((await _reversed_payment(api))["charge_id"])


async def _order_reversed(api: Api, _opts: TriggerOptions) -> str:
    return str((await _reversed_payment(api))["order_id"])


@dataclass(frozen=True, slots=True)
class TriggerOptions:
    webhook_id: str | None = None


Trigger = Callable[[Api, TriggerOptions], Awaitable[str]]

TRIGGERS: dict[str, Trigger] = {
    "customer.created": _customer_created,
    "customer.updated": _customer_updated,
    "customer.deleted": _customer_deleted,
    "payment_source.created": _source_created,
    "payment_source.updated": _source_updated,
    "payment_source.deleted": _source_deleted,
    "webhook.created": _webhook_created,
    "webhook.updated": _webhook_updated,
    "webhook.deleted": _webhook_deleted,
    "webhook_key.created": _webhook_key_created,
    "webhook_key.deleted": _webhook_key_deleted,
    "webhook_ping": _webhook_ping,
    "order.created": _order_paid,
    "charge.created": _charge_paid,
    "charge.paid": _charge_paid,
    "order.paid": _order_paid,
    "charge.reversed": _charge_reversed,
    "order.reversed": _order_reversed,
}


async def _require_test_key(api: Api) -> None:
    """Refuse a live key before anything is made: triggered objects are test data, and
    ``POST /payment_test`` is the sandbox's. The sandbox tools (``/_caja``) answer a live key 403
    and have no side effects."""
    try:
        await api.call("GET", "/_caja/emails", limit=1)
    except CliError as exc:
        if exc.status == 403:
            raise CliError("caja trigger needs a test key: it makes test data, never live objects") from None
        raise


def unsupported(event_type: str) -> CliError:
    return CliError(
        f"caja trigger cannot fire {event_type!r}. Supported event types: {', '.join(sorted(TRIGGERS))}"
    )


async def trigger(api: Api, event_type: str, echo: Echo, options: TriggerOptions | None = None) -> list[str]:
    """Fire ``event_type`` through the API; the ids of the events of that type it produced."""
    action = TRIGGERS.get(event_type)
    if action is None:
        raise unsupported(event_type)
    await _require_test_key(api)
    cursor = await api.newest_event_id()
    subject = await action(api, options or TriggerOptions())
    produced = [
        event
        for event in await api.events_since(cursor, event_type)
        if event_type == "webhook_ping" or (event["data"].get("object") or {}).get("id") == subject
    ]
    if not produced:
        raise CliError(f"{event_type}: the API calls succeeded but no {event_type} event appeared")
    for event in produced:
        echo(f"Triggered {event_type}: event {event['id']} ({subject})")
    return [event["id"] for event in produced]


# --- the commands (``caja listen``, ``caja trigger``) -----------------------------------------

ServerOpt = Annotated[
    str | None,
    typer.Option("--server", help=f"Caja's base URL (env CAJA_SERVER_URL; default {DEFAULT_SERVER})"),
]
ApiKeyOpt = Annotated[
    str | None, typer.Option("--api-key", help="A private API key (env CAJA_API_KEY)", show_default=False)
]


def _dev_api(server: str | None, api_key: str | None) -> Api:
    key = api_key or os.environ.get("CAJA_API_KEY")
    if not key:
        raise typer.BadParameter("give --api-key or set CAJA_API_KEY", param_hint="--api-key")
    return Api(server or os.environ.get("CAJA_SERVER_URL") or DEFAULT_SERVER, key)


def _echo(line: str) -> None:
    typer.echo(line)


def listen_command(
    forward_to: Annotated[
        str, typer.Option("--forward-to", help="Where to POST each event (test mode: any URL)")
    ],
    api_key: ApiKeyOpt = None,
    server: ServerOpt = None,
    events: Annotated[
        str | None, typer.Option("--events", help="Comma-separated event types (default: every type)")
    ] = None,
    poll_interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between looks at the event log")
    ] = 0.3,
) -> None:
    """Forward a running Caja's events to a local URL, printing each delivery as it happens.

    Registers a temporary webhook pointing at --forward-to and deletes it on Ctrl-C or SIGTERM.
    """
    wanted = [name.strip() for name in (events or "").split(",") if name.strip()]
    api = _dev_api(server, api_key)

    async def run() -> None:
        async with api:
            await listen(api, forward_to, wanted, _echo, poll_interval=poll_interval)

    try:
        asyncio.run(run())
    except CliError as exc:
        typer.echo(f"caja listen: {exc}", err=True)
        raise typer.Exit(1) from None


def trigger_command(
    event_type: Annotated[str, typer.Argument(help="The event to fire, e.g. customer.created")],
    api_key: ApiKeyOpt = None,
    server: ServerOpt = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="webhook_ping: the webhook to ping (default: the newest)")
    ] = None,
) -> None:
    """Fire an event through a running Caja's API, creating the objects it needs."""
    if event_type not in TRIGGERS:
        typer.echo(f"caja trigger: {unsupported(event_type)}", err=True)
        raise typer.Exit(2)
    api = _dev_api(server, api_key)

    async def run() -> None:
        # Ctrl-C or SIGTERM cancels the run, so that a stand-in approver is deleted on the way out
        # (left registered, it would decline every later test payment of the account).
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        try:
            async with api:
                await trigger(api, event_type, _echo, TriggerOptions(webhook_id=webhook))
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    try:
        asyncio.run(run())
    except CliError as exc:
        typer.echo(f"caja trigger: {exc}", err=True)
        raise typer.Exit(1) from None
    except asyncio.CancelledError:
        typer.echo("caja trigger: interrupted", err=True)
        raise typer.Exit(130) from None


app = typer.Typer(help="Caja's developer tools", no_args_is_help=True)
app.command(name="listen")(listen_command)
app.command(name="trigger")(trigger_command)
