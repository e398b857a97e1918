"""The composition root: builds the settings' engine, clock and services once, and hands them down."""

from __future__ import annotations

from dataclasses import dataclass, field

from caja.admission import Gate
from caja.config import Settings
from caja.delivery.approvals import ApprovalClient
from caja.delivery.dispatcher import Dispatcher, HandlerRegistry
from caja.delivery.keyring import SecretBox, load_secret_box
from caja.delivery.mail import EmailDelivery, Mailer, test_mode_mailer
from caja.delivery.mail_catcher import MailCatcher
from caja.delivery.priority import BackgroundLane, Foreground
from caja.delivery.runtime import build_dispatcher, new_registry
from caja.delivery.signing import SignatureWorkers, default_signing_threads
from caja.delivery.wakeups import PgWakeups
from caja.domain.clock import Clock, SystemClock
from caja.domain.jobs import JobKind
from caja.housekeeping import Housekeeper
from caja.services.accounts import KeyResolver
from caja.services.cash_payments import CashDesk
from caja.services.networks import NetworkAuthenticator
from caja.store.db import Database
from caja.store.uow import UnitOfWorkFactory
from caja.web.barcodes import BarcodeRenderer
from caja.web.emails import templates


@dataclass
class Container:
    settings: Settings
    database: Database
    clock: Clock
    uow: UnitOfWorkFactory
    keys: KeyResolver
    barcodes: BarcodeRenderer = field(default_factory=BarcodeRenderer)
    # Seals webhook private keys and signing secrets at rest; set by start().
    _secret_box: SecretBox | None = None
    # Job handlers by kind: start() registers "webhook"; other kinds register theirs before it.
    handlers: HandlerRegistry | None = None
    # The outbox dispatcher, when this process runs one (settings.delivery.dispatcher).
    dispatcher: Dispatcher | None = None
    wakeups: PgWakeups | None = None
    # Applies the retention window (settings.retention) where a dispatcher runs.
    housekeeper: Housekeeper | None = None
    _approvals: ApprovalClient | None = None
    # Computes the RSA signatures of approval calls and deliveries; set by start().
    signing: SignatureWorkers | None = None
    # ``caja serve`` runs the sandbox's mail catcher (settings.mail.catcher); workers do not.
    run_mail_catcher: bool = False
    mail_catcher: MailCatcher | None = None
    _networks: NetworkAuthenticator | None = None
    _cash_desk: CashDesk | None = None
    # Sends the e-mail jobs; its kept-open SMTP connections close with the container.
    mailer: Mailer | None = None
    test_mailer: Mailer | None = None  # test-mode payer mail, when it goes elsewhere (the catcher)
    # The requests in flight, when this process serves HTTP (set by caja.app.create_app): its
    # dispatcher's background jobs (e-mail) then give way to them (caja.delivery.priority).
    foreground: Foreground | None = None
    _store_calls: Gate | None = None

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def secret_box(self) -> SecretBox:
        if self._secret_box is None:
            raise RuntimeError("Container.start() has not run: no secret box yet")
        return self._secret_box

    @property
    def approvals(self) -> ApprovalClient:
        """Synchronous approval calls to merchants (recurrent cash)."""
        if self._approvals is None:
            raise RuntimeError("Container.start() has not run: no approval client yet")
        return self._approvals

    @property
    def networks(self) -> NetworkAuthenticator:
        """Recognises store networks' signed requests."""
        if self._networks is None:
            raise RuntimeError("Container.start() has not run: no network authenticator yet")
        return self._networks

    @property
    def cash_desk(self) -> CashDesk:
        """What the recurrent cash flow needs (services.cash_payments)."""
        if self._cash_desk is None:
            raise RuntimeError("Container.start() has not run: no cash desk yet")
        return self._cash_desk

    @property
    def store_calls(self) -> Gate:
        """Admits the store network's lookups and payments to the event loop (caja.admission)."""
        if self._store_calls is None:
            self._store_calls = Gate(self.settings.store_call_slots)
        return self._store_calls

    async def start(self) -> None:
        """Runs in the serving event loop (the app's lifespan), before the first request."""
        if self._secret_box is None:
            previous = (self.settings.previous_secret,) if self.settings.previous_secret else ()
            self._secret_box = await load_secret_box(self.uow, self.clock, self.settings.secret, previous)
        mail = self.settings.mail
        if self.run_mail_catcher and mail.catcher and self.mail_catcher is None:
            catcher = MailCatcher(self.uow, self.clock, mail.catcher_host, mail.catcher_port)
            if await catcher.start():
                self.mail_catcher = catcher
        delivery = self.settings.delivery
        if self.signing is None:
            threads = delivery.signing_threads
            self.signing = SignatureWorkers(default_signing_threads() if threads is None else threads)
        if self._approvals is None:
            self._approvals = ApprovalClient(
                self.uow, self.clock, self._secret_box, budget=delivery.approval_timeout, signing=self.signing
            )
            self.uow.add_webhooks_listener(self._approvals.forget_targets)
        if self._cash_desk is None:
            self._networks = NetworkAuthenticator(self.uow, self.clock, self._secret_box)
            self._cash_desk = CashDesk(
                self.uow, self.clock, self._approvals, self.settings.cash, self.settings.base_url
            )
        if not self.database.is_sqlite and self.wakeups is None:
            # Other processes' dispatchers (caja worker) hear of jobs this one commits at once.
            # Background jobs (receipts) alone notify no one: every dispatcher polls them in bulk.
            quiet = self.handlers.background_kinds if self.handlers is not None else frozenset()
            self.wakeups = PgWakeups(self.database.url, quiet_kinds=quiet)
            self.uow.add_commit_listener(self.wakeups.notify_soon)
        if delivery.dispatcher and self.dispatcher is None:
            lane = None
            if self.foreground is not None:
                lane = BackgroundLane(self.foreground, delivery.background_max_wait)
            self.dispatcher = build_dispatcher(
                self.uow,
                self.clock,
                self._secret_box,
                delivery,
                registry=self.handlers,
                lane=lane,
                signing=self.signing,
            )
            await self.dispatcher.start()
            if self.wakeups is not None:
                await self.wakeups.listen(self.dispatcher.wake)
        if delivery.dispatcher and self.housekeeper is None and self.settings.retention.window > 0:
            self.housekeeper = Housekeeper(self.uow, self.clock, self.settings.retention)
            self.housekeeper.start()

    async def close(self) -> None:
        if self.housekeeper is not None:
            await self.housekeeper.stop()
            self.housekeeper = None
        if self.wakeups is not None:
            self.uow.remove_commit_listener(self.wakeups.notify_soon)
            await self.wakeups.close()
            self.wakeups = None
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            self.dispatcher = None
        for mailer in (self.mailer, self.test_mailer):
            if mailer is not None:
                await mailer.close()
        if self._approvals is not None:
            await self._approvals.aclose()
            self._approvals = None
            self._cash_desk = None
        if self.mail_catcher is not None:
            await self.mail_catcher.stop()
            self.mail_catcher = None
        if self.signing is not None:
            self.signing.close()
            self.signing = None
        await self.database.dispose()


def build(settings: Settings, clock: Clock | None = None) -> Container:
    database = Database(settings.database_url, pool_size=settings.db_pool_size)
    uow = UnitOfWorkFactory(database)
    clock = clock or SystemClock()
    handlers = new_registry(settings.delivery)
    mailer = Mailer(settings.mail)
    test_mailer = test_mode_mailer(settings.mail)
    handlers.register(
        JobKind.EMAIL.value,
        EmailDelivery(mailer, clock, templates().render_email, test_mailer=test_mailer),
        background=True,
    )
    return Container(
        settings=settings,
        database=database,
        clock=clock,
        uow=uow,
        keys=KeyResolver(uow),
        handlers=handlers,
        mailer=mailer,
        test_mailer=test_mailer,
    )
