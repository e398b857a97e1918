"""``caja``: run the server, manage accounts, apply migrations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import FrameType
from typing import Annotated, TypeVar

import typer
import uvicorn
import uvloop

from caja import bootstrap, devcli, heap, logs
from caja.app import create_app
from caja.config import Settings, SettingsError
from caja.delivery.keyring import SecretBox, ServerSecretMismatchError, load_secret_box
from caja.domain.errors import ResourceNotFoundError
from caja.domain.networks import Network
from caja.metrics_server import serving_metrics
from caja.services import accounts, networks, retention
from caja.store import migrate
from caja.store.db import redact_url

T = TypeVar("T")

cli = typer.Typer(
    help="Caja: a self-hostable Conekta-compatible gateway for offline payments.", no_args_is_help=True
)
accounts_cli = typer.Typer(help="Merchant accounts and their API keys.", no_args_is_help=True)
cli.add_typer(accounts_cli, name="accounts")
networks_cli = typer.Typer(
    help="Store networks (cash aggregators) and their credentials.", no_args_is_help=True
)
cli.add_typer(networks_cli, name="networks")

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database-url", help="sqlite:///path or postgresql://... (env CAJA_DATABASE_URL)"),
]


def _settings(**overrides: object) -> Settings:
    # The one place that reads the environment.
    try:
        return Settings.from_env(os.environ).with_overrides(**overrides)
    except SettingsError as exc:
        typer.echo(f"caja: {exc}", err=True)
        raise typer.Exit(2) from None


def _on_current_schema(settings: Settings, work: Callable[[bootstrap.Container], Awaitable[T]]) -> T:
    """Run ``work`` once the database's schema is current, and close everything after it."""
    container = bootstrap.build(settings)

    async def run() -> T:
        try:
            await migrate.upgrade(container.database)
            return await work(container)
        finally:
            await container.close()

    return asyncio.run(run())


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (env CAJA_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (env CAJA_PORT)")] = None,
    database_url: DatabaseOpt = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="Fix the sandbox test key (env CAJA_API_KEY)")
    ] = None,
    public_url: Annotated[
        str | None, typer.Option(help="Base URL payers' browsers use (env CAJA_PUBLIC_URL)")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error")] = None,
    keep_alive: Annotated[
        int | None,
        typer.Option(
            min=1, help="Seconds an idle HTTP connection is kept open (default 75; env CAJA_KEEP_ALIVE)"
        ),
    ] = None,
    no_dispatcher: Annotated[
        bool,
        typer.Option(
            "--no-dispatcher",
            help="Deliver no webhooks here; `caja worker` processes do (env CAJA_DISPATCHER=off)",
        ),
    ] = False,
    mail_catcher_port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Port of the built-in SMTP mail catcher (env CAJA_MAIL_CATCHER_PORT)"
        ),
    ] = None,
    no_mail_catcher: Annotated[
        bool,
        typer.Option(
            "--no-mail-catcher",
            help="Run no built-in SMTP mail catcher on 127.0.0.1 (env CAJA_MAIL_CATCHER=off)",
        ),
    ] = False,
) -> None:
    """Apply migrations, make sure a sandbox account exists, and serve the API."""
    settings = _settings(
        host=host,
        port=port,
        database_url=database_url,
        api_key=api_key,
        public_url=public_url,
        log_level=log_level,
        keep_alive=keep_alive,
    )
    if no_dispatcher:
        settings = replace(settings, delivery=replace(settings.delivery, dispatcher=False))
    if no_mail_catcher:
        settings = replace(settings, mail=replace(settings.mail, catcher=False))
    elif mail_catcher_port is not None:
        settings = replace(settings, mail=replace(settings.mail, catcher_port=mail_catcher_port))
    logs.configure(settings.log_level, json=settings.log_json)
    if settings.api_key is not None:
        try:
            accounts.check_custom_key(settings.api_key)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--api-key") from None
    container = bootstrap.build(settings)
    container.run_mail_catcher = settings.mail.catcher

    async def prepare() -> accounts.SandboxAccess:
        await migrate.upgrade(container.database)
        # Checked before serving: a wrong CAJA_SECRET stops here with a clear message.
        previous = (settings.previous_secret,) if settings.previous_secret else ()
        await load_secret_box(container.uow, container.clock, settings.secret, previous)
        access = await accounts.ensure_sandbox(container.uow, container.clock, settings.api_key)
        # uvicorn runs its own event loop: connections opened on this one must not be reused there.
        await container.database.dispose()
        return access

    try:
        access = asyncio.run(prepare())
    except ServerSecretMismatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"Caja {settings.base_url}  database {redact_url(container.database.url)}")
    typer.echo(f"Sandbox account {access.account.id}")
    if access.test_private_key and settings.api_key is None:
        typer.echo(f"Sandbox test private key (shown once): {access.test_private_key}")
    elif access.test_private_key is None:
        typer.echo("Sandbox test key: as issued before (or `caja accounts roll-key ACCOUNT_ID`).")
    mail = settings.mail
    if mail.catcher:
        typer.echo(
            f"Mail catcher smtp://{mail.catcher_host}:{mail.catcher_port}  "
            f"(read with GET /_caja/emails or {settings.base_url}/_caja/dashboard)"
        )
    config = uvicorn.Config(
        create_app(container),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_keep_alive=settings.keep_alive,
        timeout_graceful_shutdown=10,
    )
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal to the
    # handlers it found; these make that final step a clean exit (status 0), not a kill.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_after_graceful_shutdown)
    uvicorn.Server(config).run()


def _exit_after_graceful_shutdown(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def worker_settings(settings: Settings, concurrency: int | None) -> Settings:
    """A worker's settings: it always dispatches, and by default signs on its event loop."""
    delivery = replace(settings.delivery, dispatcher=True)
    if delivery.signing_threads is None:
        # Workers scale out as processes, about one per core: signing threads of their own would
        # only contend with the other workers for the same cores (three workers on two cores,
        # measured: a fifth fewer deliveries per CPU-second with a signing thread each).
        delivery = replace(delivery, signing_threads=0)
    if concurrency is not None:
        delivery = replace(delivery, concurrency=concurrency)
    return replace(settings, delivery=delivery)


@cli.command()
def worker(
    database_url: DatabaseOpt = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Jobs this process runs at once (env CAJA_DISPATCHER_CONCURRENCY)"),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve GET /metrics on this port, for the CAJA_ADMIN_TOKEN bearer (env CAJA_METRICS_PORT)",
        ),
    ] = None,
    metrics_host: Annotated[
        str | None, typer.Option(help="Interface of --metrics-port (127.0.0.1; env CAJA_METRICS_HOST)")
    ] = None,
) -> None:
    """Deliver webhooks and run other outbox jobs, beside `caja serve --no-dispatcher`.

    Any number of workers may share one PostgreSQL database: each claims jobs with SKIP LOCKED.
    Stops gracefully on SIGTERM or SIGINT (running jobs finish or are handed back).
    """
    given = _settings(
        database_url=database_url, log_level=log_level, metrics_port=metrics_port, metrics_host=metrics_host
    )
    settings = worker_settings(given, concurrency)
    logs.configure(settings.log_level, json=settings.log_json)
    container = bootstrap.build(settings)

    async def run() -> None:
        current = await migrate.current_revision(container.database)
        if current != migrate.head_revision():
            await container.database.dispose()
            typer.echo(
                f"the database schema is at {current}, this worker needs {migrate.head_revision()}: "
                "run `caja migrate` (or start `caja serve`) first",
                err=True,
            )
            raise typer.Exit(1)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await container.start()
        heap.freeze_start_up_objects()
        assert container.dispatcher is not None
        typer.echo(
            f"Caja worker {container.dispatcher.worker_id}  database {redact_url(container.database.url)}",
        )
        try:
            async with contextlib.AsyncExitStack() as metrics:
                if settings.metrics_port is not None:
                    url = await metrics.enter_async_context(
                        serving_metrics(container, settings.metrics_host, settings.metrics_port)
                    )
                    needs = "" if settings.admin_token else " (off until CAJA_ADMIN_TOKEN is set)"
                    typer.echo(f"Metrics {url}{needs}")
                await stop.wait()
        finally:
            await container.close()

    uvloop.run(run())


# Developer tools over HTTP; defined in caja.devcli, which the ``caja`` entry point runs without
# importing the server (so they start in a fraction of a second).
cli.command(name="listen")(devcli.listen_command)
cli.command(name="trigger")(devcli.trigger_command)


@cli.command(name="migrate")
def migrate_command(database_url: DatabaseOpt = None) -> None:
    """Apply every pending migration (``caja serve`` does this on start)."""
    settings = _settings(database_url=database_url)
    container = bootstrap.build(settings)

    async def run() -> str | None:
        try:
            await migrate.upgrade(container.database)
            return await migrate.current_revision(container.database)
        finally:
            await container.close()

    typer.echo(f"schema at revision {asyncio.run(run())}")


@cli.command(name="prune")
def prune_command(
    days: Annotated[
        float | None,
        typer.Option(help="Delete what is older than this many days, above 0 (env CAJA_RETENTION_DAYS, 90)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; delete nothing")] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Apply the retention window now: delete old events with their deliveries, the approval
    calls' log, e-mail jobs, caught e-mails and expired store lookups (docs/operations.md).

    Processes that run a dispatcher do this every CAJA_RETENTION_INTERVAL seconds anyway.
    """
    settings = _settings(database_url=database_url)
    if days is not None and not 0 < days < float("inf"):
        typer.echo(f"caja: --days must be a number of days above 0, not {days}", err=True)
        raise typer.Exit(2)
    window = (days if days is not None else settings.retention.days) * 86_400
    if window <= 0:
        typer.echo("caja: retention is off (CAJA_RETENTION_DAYS=0): pass --days to prune anyway", err=True)
        raise typer.Exit(2)
    report = _on_current_schema(settings, lambda c: retention.prune(c.uow, c.clock, window, dry_run=dry_run))
    counts: dict[str, int | bool] = {"cutoff": report.cutoff, **report.counts()}
    if dry_run:
        counts["dry_run"] = True
    if as_json:
        typer.echo(json.dumps(counts))
    else:
        typer.echo(" ".join(f"{name}={value}" for name, value in counts.items()))


@accounts_cli.command("create")
def accounts_create(
    name: Annotated[str, typer.Option(help="The merchant's name")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the account and keys as JSON")] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Create a merchant account with a test and a live private key (shown once)."""
    settings = _settings(database_url=database_url)
    issued = _on_current_schema(settings, lambda c: accounts.create_account(c.uow, c.clock, name))
    out: dict[str, object] = {
        "id": issued.account.id,
        "name": issued.account.name,
        "created_at": issued.account.created_at,
        "test_private_key": issued.test_private_key,
        "live_private_key": issued.live_private_key,
    }
    _emit(out, as_json)


@accounts_cli.command("roll-key")
def accounts_roll_key(
    account_id: Annotated[str, typer.Argument(help="acc_...")],
    live: Annotated[bool, typer.Option("--live", help="Roll the live key instead of the test key")] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Revoke an account's key of one mode and print a new one."""
    settings = _settings(database_url=database_url)
    try:
        typer.echo(
            _on_current_schema(
                settings, lambda c: accounts.roll_key(c.uow, c.clock, account_id, livemode=live)
            )
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _network_out(network: Network, secret: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {
        "id": network.id,
        "name": network.name,
        "livemode": network.livemode,
        "created_at": network.created_at,
        "revoked_at": network.revoked_at,
        "previous_secret_expires_at": network.previous_secret_expires_at,
    }
    if secret is not None:
        out["secret"] = secret
    return out


def _emit(out: dict[str, object], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(out))
    else:
        for field, value in out.items():
            typer.echo(f"{field}: {value}")


def _with_box(
    settings: Settings, work: Callable[[bootstrap.Container, SecretBox], Awaitable[T]]
) -> Callable[[bootstrap.Container], Awaitable[T]]:
    """``work`` with the server secret's box, which seals and opens the networks' secrets."""

    async def run(container: bootstrap.Container) -> T:
        previous = (settings.previous_secret,) if settings.previous_secret else ()
        box = await load_secret_box(container.uow, container.clock, settings.secret, previous)
        return await work(container, box)

    return run


@networks_cli.command("create")
def networks_create(
    name: Annotated[str, typer.Option(help="The network's name (an aggregator, a store chain)")],
    test: Annotated[
        bool, typer.Option("--test", help="A test network: it pays test-mode references only")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the credentials as JSON")] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Issue credentials for a store network to call the network API (the secret is shown once)."""
    settings = _settings(database_url=database_url)
    issued = _on_current_schema(
        settings,
        _with_box(settings, lambda c, box: networks.create(c.uow, c.clock, box, name, livemode=not test)),
    )
    _emit(_network_out(issued.network, issued.secret), as_json)


@networks_cli.command("list")
def networks_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """List the store networks (never their secrets), revoked ones included."""
    settings = _settings(database_url=database_url)
    for network in _on_current_schema(settings, lambda c: networks.list_networks(c.uow)):
        out = _network_out(network)
        if as_json:
            typer.echo(json.dumps(out))
        else:
            state = "revoked" if network.revoked_at is not None else "active"
            typer.echo(f"{network.id}  {'live' if network.livemode else 'test'}  {state}  {network.name}")


@networks_cli.command("rotate")
def networks_rotate(
    network_id: Annotated[str, typer.Argument(help="net_...")],
    grace: Annotated[
        int,
        typer.Option(min=0, help="Seconds the old secret stays valid, for the network to deploy the new one"),
    ] = 86_400,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new credentials as JSON")] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Issue a new secret for a network (shown once); the old one is accepted until --grace ends."""
    settings = _settings(database_url=database_url)
    try:
        issued = _on_current_schema(
            settings,
            _with_box(settings, lambda c, box: networks.rotate(c.uow, c.clock, box, network_id, grace)),
        )
    except ResourceNotFoundError:
        typer.echo(f"caja: no active network {network_id}", err=True)
        raise typer.Exit(1) from None
    _emit(_network_out(issued.network, issued.secret), as_json)


@networks_cli.command("revoke")
def networks_revoke(
    network_id: Annotated[str, typer.Argument(help="net_...")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the network as JSON")] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Refuse every call of a network from now on (other processes: within 30 s). Cannot be undone."""
    settings = _settings(database_url=database_url)
    try:
        network = _on_current_schema(settings, lambda c: networks.revoke(c.uow, c.clock, network_id))
    except ResourceNotFoundError:
        typer.echo(f"caja: no network {network_id}", err=True)
        raise typer.Exit(1) from None
    _emit(_network_out(network), as_json)


def main() -> None:
    cli()
