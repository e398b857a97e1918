"""SQLite: one writer connection with pipelined group commit, and a few reader connections.

SQLite allows one writer at a time, and a durable commit costs an fsync. Writers therefore queue
on one connection; every unit of work runs inside a SAVEPOINT of a shared transaction, and the
transaction commits once a turn of the event loop brought no unit to join it (or the batch is
full; see _end_when_gathered). A unit that fails rolls back
to its savepoint and leaves the others in the batch untouched.

Durability is Caja's job, not SQLite's: the database runs in WAL mode with ``synchronous=NORMAL``
(commits append to the WAL without syncing it; checkpoints still sync), and after each batch's
COMMIT a thread of its own fsyncs the WAL file (caja.store.wal_sync). Every unit's caller
resumes only after that fsync, so an answered request is on disk — while the next batch already
runs on the writer instead of idling through the previous batch's fsync.

BEGIN IMMEDIATE and COMMIT run on the event loop: in WAL mode with ``synchronous=NORMAL`` they
take microseconds (COMMIT only appends the batch's pages to the WAL), far less than the two
thread hand-offs they used to cost each payment. Only a write lock held by another process
sends BEGIN to a worker thread to wait for it (the writer's own busy timeout is zero).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy import event

from caja.store.connection import LoopConnection, json_dumps, json_loads
from caja.store.wal_sync import WalSyncer

log = structlog.get_logger("caja.store.sqlite")

MAX_BATCH = 256
# Copy the WAL back into the database file at most this often, while there are commits...
CHECKPOINT_INTERVAL = 0.5
# ...and, since a WAL only starts over once a checkpoint has caught up with every write (which
# it seldom does beside a busy writer), let the next one catch up with the writer held once
# this much of the WAL is in use (see _catch_up). SQLite reuses the file from its start, so
# the file's size is not the trigger: the frames the last checkpoint found are.
RESTART_WAL_BYTES = 256 * 1024 * 1024
# Should that never succeed (readers of other processes), the writer truncates the file past
# this size whatever it costs.
FORCE_TRUNCATE_WAL_BYTES = 4 * RESTART_WAL_BYTES
# Tries to come between two batches before leaving the catch-up to the next checkpoint.
CATCH_UP_TRIES = 3
# A WAL frame: a page and its 24-byte header.
FRAME_HEADER_BYTES = 24
# How long a unit that need not be durable waits for a batch to join rather than opening its own...
JOIN_WAIT = 0.02
# ...when durable units came this recently: otherwise no batch is likely to come, and it opens one.
JOIN_IF_DURABLE_WITHIN = 0.1
# Turns of the loop a new batch gives the units woken to join it (a woken wait takes two or three).
JOIN_TURNS = 10
# Turns of the loop a batch stays open after its last unit, for more units to join it: one, and
# another each time one came during the last (see _end_when_gathered).
GATHER_TURNS = 4
# How long a connection waits for another's lock (SQLite's busy handler).
BUSY_TIMEOUT_MS = 10_000


def sqlite_engine(url: str) -> sa.Engine:
    engine = sa.create_engine(
        url,
        poolclass=sa.NullPool,
        json_serializer=json_dumps,
        json_deserializer=json_loads,
        connect_args={"check_same_thread": False, "isolation_level": None},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL: commits do not sync the WAL themselves; SQLiteBackend fsyncs it after each batch
        # and answers nobody before that (see the module docstring).
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 64 MiB of page cache per connection: indexes of a million customers stay in memory.
        cursor.execute("PRAGMA cache_size=-65536")
        # No checkpoint inside a writer's COMMIT: SQLiteBackend checkpoints in the background.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # pysqlite would otherwise begin lazily and deferred; writers must hold the lock from BEGIN.
        # A reader unit may already have begun on the driver (see read_unit).
        driver: Any = conn.connection.driver_connection
        if driver is not None and driver.in_transaction:
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("caja_write") else "BEGIN")

    return engine


class _Batch:
    def __init__(self) -> None:
        # Each unit's own waiter, set once the batch's COMMIT is in the WAL (units that need not
        # be durable) or once that WAL is on disk. One per unit rather than one shared future:
        # a shared one needs asyncio.shield against a cancelled caller cancelling it for all,
        # and the shield costs every unit one more turn of a busy loop before it resumes.
        self.written: list[asyncio.Future[None]] = []
        self.synced: list[asyncio.Future[None]] = []
        self.units = 0
        # Whether any unit in it must be on disk before its caller goes on (see write_unit).
        self.durable = False

    def join(self, durable: bool) -> asyncio.Future[None]:
        """Count a unit in, and return what it waits for once its statements are done."""
        self.units += 1
        self.durable = self.durable or durable
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self.synced if durable else self.written).append(waiter)
        return waiter

    def fail(self, exc: BaseException) -> None:
        for future in (*self.written, *self.synced):
            if not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved: units that failed never await it


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        # The data and what reading it needs (its size), not the modification time: as SQLite
        # syncs. A WAL reused from its start then costs no journal commit of the file system.
        os.fdatasync(fd)
    finally:
        os.close(fd)


class SQLiteBackend:
    def __init__(self, url: str, readers: int = 4) -> None:
        self.engine = sqlite_engine(url)
        database = sa.engine.make_url(url).database or ""
        self._database_path = database
        self._wal_path = database + "-wal"
        # Commits that could not run on the loop (see _end_batch), and their fsyncs.
        self._syncs: set[asyncio.Task[None]] = set()
        self._syncer = WalSyncer(self._fsync_wal)
        self._checkpointing: asyncio.Future[None] | None = None
        self._last_checkpoint = 0.0
        # One connection for the background checkpoints: a new one would read the schema again.
        self._checkpointer: sa.Connection | None = None
        self._frame_bytes = 0
        # Checkpoints that caught up with the writer held (see _catch_up): for tests and operators.
        self.catch_ups = 0
        self._writer: sa.Connection | None = None
        self._write_tx: sa.RootTransaction | None = None
        self._lock = asyncio.Lock()
        self._queued = 0
        self._ending: asyncio.Future[None] | None = None
        self._batch: _Batch | None = None
        # Whether a batch of units that need not be durable has committed since the last dispose.
        # Never cleared by a durable batch's fsync: that fsync may have begun before a later
        # lazy batch's COMMIT, and a stop must leave nothing unsynced.
        self._unsynced = False
        # Set from the moment a writer is about to open a batch until that batch commits: units
        # that need not be durable wait for it (see write_unit).
        self._opening = asyncio.Event()
        self._opening_loop: asyncio.AbstractEventLoop | None = None
        # Lazy units waiting for a batch to open (see write_unit).
        self._joining = 0
        # When the last durable unit came: lazy units wait to join only while such units come.
        self._last_durable = float("-inf")
        self._idle_readers: list[sa.Connection] = []
        self._closing = False
        self._max_idle_readers = readers

    def _opening_event(self) -> asyncio.Event:
        # An event waited on belongs to one loop, and a backend outlives the loop that set it up.
        loop = asyncio.get_running_loop()
        if self._opening_loop is not loop:
            self._opening, self._opening_loop = asyncio.Event(), loop
        return self._opening

    def _writer_connection(self) -> sa.Connection:
        if self._writer is None or self._writer.closed:
            self._writer = self.engine.connect().execution_options(caja_write=True)
            # Never wait on the loop: a lock held elsewhere sends BEGIN to a thread (_begin).
            self._driver(self._writer).execute("PRAGMA busy_timeout=0")
        return self._writer

    @staticmethod
    def _driver(conn: sa.Connection) -> Any:
        driver = conn.connection.driver_connection
        assert driver is not None
        return driver

    async def _begin(self, conn: sa.Connection) -> sa.RootTransaction:
        """BEGIN IMMEDIATE on the loop; in a worker thread, waiting, if another process holds the lock."""
        driver = self._driver(conn)
        try:
            driver.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            await asyncio.to_thread(self._begin_waiting, driver)
        # SQLAlchemy's transaction joins the driver's (see the engine's begin listener).
        return conn.begin()

    @staticmethod
    def _begin_waiting(driver: Any) -> None:
        driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            driver.execute("BEGIN IMMEDIATE")
        finally:
            driver.execute("PRAGMA busy_timeout=0")

    @asynccontextmanager
    async def write_unit(
        self, *, durable: bool = True, prompt: bool = False, single_statement: bool = False
    ) -> AsyncIterator[LoopConnection]:
        """A unit in the writer's current batch; its caller resumes once the batch has committed
        and, if ``durable``, once the WAL holding it is on disk.

        ``durable=False`` is for bookkeeping that a crash may lose because it is redone anyway
        (the dispatcher's claims and records: a job whose claim or record is lost runs again, as
        jobs do at least once). A batch of such units alone is not synced: the next durable
        batch's fsync covers its frames, which come before that batch's in the WAL. At a
        moderate rate this spares the dispatcher's transactions an fsync each.

        While durable units keep coming (requests that write), such a unit also waits up to
        ``JOIN_WAIT`` for another writer to open a batch and joins it, instead of opening one of
        its own: at a moderate rate the dispatcher's claim and record of a payment's e-mail then
        share the BEGIN, COMMIT and fsync of the next payment rather than paying for theirs (each
        a hand-off to a worker thread and back). With none coming (a dispatcher working through
        a backlog on its own) it does not wait: nothing would come to join. A ``prompt`` unit
        never waits to join: one that a caller waits for (a store's lookup), or whose rows would
        lengthen the commit of the batch it joined (the approval calls' log, in a payment's).
        A ``single_statement`` write is a transaction like any other here.
        """
        del single_statement
        if durable:
            self._last_durable = time.monotonic()
        elif (
            not prompt
            and self._batch is None
            and not self._lock.locked()
            and time.monotonic() - self._last_durable < JOIN_IF_DURABLE_WITHIN
        ):
            self._joining += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._opening_event().wait(), JOIN_WAIT)
            finally:
                # No await between leaving the joiners and joining the queue (see the opener).
                self._joining -= 1
        self._queued += 1
        try:
            await self._lock.acquire()
        finally:
            self._queued -= 1
        waiter: asyncio.Future[None] | None = None
        failure: BaseException | None = None
        try:
            conn = self._writer_connection()
            if self._batch is None:
                # Units waiting to join a batch queue up while this one begins (see above).
                self._opening_event().set()
                self._write_tx = await self._begin(conn)
                self._batch = _Batch()
                # Woken joiners take a few turns of the loop to queue, and BEGIN came back
                # sooner: wait for them, or this unit commits alone before they are in.
                for _ in range(JOIN_TURNS):
                    if self._joining == 0:
                        break
                    await asyncio.sleep(0)
            waiter = self._batch.join(durable)
            # Savepoints straight on the driver: SQLAlchemy's nested-transaction bookkeeping
            # costs more than the SQL, and only this method ever opens one on this connection.
            driver = self._driver(conn)
            driver.execute("SAVEPOINT caja_unit")
            try:
                yield LoopConnection(conn)
            except BaseException as exc:
                failure = exc
                driver.execute("ROLLBACK TO SAVEPOINT caja_unit")
                driver.execute("RELEASE SAVEPOINT caja_unit")
            else:
                driver.execute("RELEASE SAVEPOINT caja_unit")
        except BaseException as exc:
            failure = failure or exc
        finally:
            if self._batch is not None and self._batch.units >= MAX_BATCH:
                self._end_batch()
            else:
                self._lock.release()
                if self._batch is not None and self._queued == 0:
                    self._end_soon()
        if failure is not None:
            raise failure
        assert waiter is not None
        await waiter

    def _end_soon(self) -> None:
        if self._ending is None or self._ending.done():
            self._ending = asyncio.ensure_future(self._end_when_gathered())

    async def _end_when_gathered(self) -> None:
        """End the open batch once a turn of the loop brought no unit to join it.

        Units run on the loop from BEGIN to their last statement without a pause, so none would
        ever share a batch (its COMMIT, and the pages that every unit writes, such as the tails
        of the indexes) if the batch committed as soon as its last unit is done. At full speed
        the requests of one turn of the loop reach their writes together: they join, and the
        batch commits once they stop coming. At a moderate rate nobody comes, and the turn it
        waits costs microseconds. (Counting the turn between the last unit's release and this
        task's first step as the first one saves a turn at a moderate rate, but cost 5-15% more
        CPU per full-speed call in two quick runs each: smaller batches.)
        """
        batch = self._batch
        for _ in range(GATHER_TURNS):
            if batch is None or self._batch is not batch:
                # Filled up and ended meanwhile. A batch opened since had its last unit find
                # this task on its way, so none other will end it: this one does.
                break
            seen = batch.units
            await asyncio.sleep(0)
            if batch.units == seen:
                break
        if self._batch is None:
            return
        await self._lock.acquire()
        if self._batch is not None:
            self._end_batch()
        else:
            self._lock.release()

    def _end_batch(self) -> None:
        """COMMIT the batch on the loop, release the writer, and ask for the fsync its durable
        units wait for: the next batch runs while that fsync goes on."""
        batch, tx = self._batch, self._write_tx
        self._batch, self._write_tx = None, None
        self._opening_event().clear()
        assert batch is not None and tx is not None
        if self._wal_size() >= FORCE_TRUNCATE_WAL_BYTES:
            self._in_background(self._commit_and_truncate(batch, tx))
            return
        try:
            self._commit(tx)
        except BaseException as exc:
            self._in_background(self._lose(batch, exc))
            if not isinstance(exc, Exception):
                raise
            return
        self._committed(batch)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        # A task owns the batch and the lock from here: cancelling the request that ended the
        # batch must neither abandon its neighbours nor free the lock mid-commit.
        task = asyncio.ensure_future(work)
        self._syncs.add(task)
        task.add_done_callback(self._syncs.discard)

    def _committed(self, batch: _Batch) -> None:
        self._lock.release()
        for waiter in batch.written:
            if not waiter.done():  # its caller was cancelled
                waiter.set_result(None)
        if batch.durable:
            self._syncer.request(*batch.synced)
        else:
            self._unsynced = True
        self._maybe_checkpoint()

    async def _lose(self, batch: _Batch, exc: BaseException) -> None:
        """The batch is lost as a whole: every unit in it must hear so, none may report success."""
        try:
            await asyncio.to_thread(self._discard_writer)
        finally:
            batch.fail(exc)
            self._lock.release()

    async def _commit_and_truncate(self, batch: _Batch, tx: sa.RootTransaction) -> None:
        """The background catch-up never found its moment (see _catch_up): COMMIT, then truncate
        the WAL still holding the writer, waiting for readers as long as it takes (in a thread)."""

        def work() -> None:
            self._commit(tx)
            if self._writer is None:
                return
            driver: Any = self._writer.connection.driver_connection
            try:
                driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                # The batch is committed whatever happens here: it must not be reported lost.
                log.warning("could not truncate the WAL; trying again after a later batch", exc_info=True)

        try:
            await asyncio.to_thread(work)
        except BaseException as exc:
            await self._lose(batch, exc)
            return
        self._committed(batch)

    def _commit(self, tx: sa.RootTransaction) -> None:
        tx.commit()

    def _wal_size(self) -> int:
        try:
            return os.path.getsize(self._wal_path)
        except OSError:
            return 0

    def _maybe_checkpoint(self) -> None:
        """Start a background checkpoint, unless one is running or the last began moments ago.

        Left to SQLite, the checkpoint would run inside whichever COMMIT crossed the threshold,
        holding up the writer while it copies and syncs pages scattered over the whole file (on
        a million-customer database the server sat waiting for I/O and its create rate halved).
        PASSIVE checkpoints run beside the writer and never wait for it.
        """
        if self._checkpoint_running():
            return
        now = time.monotonic()
        if now - self._last_checkpoint < CHECKPOINT_INTERVAL:
            return
        self._last_checkpoint = now
        self._checkpointing = asyncio.ensure_future(self._background_checkpoint())

    async def _background_checkpoint(self) -> None:
        in_use = await asyncio.to_thread(self._checkpoint)
        # Not while dispose() holds the writer: it waits for this checkpoint.
        if in_use >= RESTART_WAL_BYTES and not self._closing:
            try:
                await self._catch_up()
            except sqlite3.Error:
                log.warning("could not catch up with the WAL; trying after a later checkpoint", exc_info=True)

    async def _catch_up(self) -> None:
        """Let a checkpoint copy the rest of the WAL with the writer held, so the WAL starts over.

        Under sustained writes a PASSIVE checkpoint never copies the last frames (the writer
        keeps adding some), so the WAL only grows. Here the one that just ran has copied nearly
        everything beside the writer; this one runs between two batches, in a worker thread
        (the loop goes on serving reads meanwhile; writers queue), copies what was added since,
        and syncs the database file; the next write then starts the WAL over from its beginning.

        It used to be a TRUNCATE checkpoint on the event loop, done whenever the WAL file passed
        64 MiB: on a database of a million customers that froze the loop for 120–170 ms about
        once a second (measured), the copy and the sync of pages scattered over the whole file.
        Now it comes four times less often, and never stops the loop. The file is not truncated
        (SQLite reuses it), so it keeps the size it reached.
        """
        for _ in range(CATCH_UP_TRIES):
            await self._lock.acquire()
            if self._batch is None:
                break
            self._end_batch()  # a batch was open: let it go first, try again
        else:
            return
        try:
            await asyncio.to_thread(self._checkpoint)
            self.catch_ups += 1
        finally:
            self._lock.release()

    def _checkpoint_running(self) -> bool:
        """Whether this loop's last checkpoint is still running (one of an earlier loop is over)."""
        running = self._checkpointing
        if running is None or running.done():
            return False
        # A backend outlives the loop that ran `caja serve`'s set-up (migrations, the sandbox).
        return running.get_loop() is asyncio.get_running_loop()

    def _checkpoint(self) -> int:
        """A PASSIVE checkpoint; the bytes of WAL in use when it ran."""
        if self._checkpointer is None or self._checkpointer.closed:
            self._checkpointer = self.engine.connect()
        driver: Any = self._checkpointer.connection.driver_connection
        if self._frame_bytes == 0:
            self._frame_bytes = driver.execute("PRAGMA page_size").fetchone()[0] + FRAME_HEADER_BYTES
        _busy, frames, _copied = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return max(int(frames), 0) * self._frame_bytes

    def _fsync_wal(self) -> None:
        # Any fsync of the WAL file flushes every frame written to it so far, this batch's included.
        path = self._wal_path if os.path.exists(self._wal_path) else self._database_path
        _fsync_path(path)

    def _discard_writer(self) -> None:
        if self._writer is not None:
            self._writer.invalidate()
            self._writer = None

    @asynccontextmanager
    async def read_unit(
        self, *, single_statement: bool = False, snapshot: bool = True
    ) -> AsyncIterator[LoopConnection]:
        # On the loop, BEGIN and ROLLBACK cost microseconds: every read takes them.
        del single_statement, snapshot
        conn = self._idle_readers.pop() if self._idle_readers else self.engine.connect()
        driver: Any = conn.connection.driver_connection
        # BEGIN and ROLLBACK straight on the driver: SQLAlchemy's transaction objects cost more
        # than the read they wrap. A statement run through SQLAlchemy joins this transaction.
        driver.execute("BEGIN")
        try:
            yield LoopConnection(conn)
        finally:
            if conn.in_transaction():
                conn.rollback()
            if driver.in_transaction:
                driver.execute("ROLLBACK")
            if len(self._idle_readers) < self._max_idle_readers:
                self._idle_readers.append(conn)
            else:
                conn.close()

    async def run_sync(self, fn: Any) -> Any:
        def work() -> Any:
            with self.engine.connect().execution_options(caja_write=True) as conn:
                result = fn(conn)
                conn.commit()
                return result

        return await asyncio.to_thread(work)

    async def dispose(self) -> None:
        self._closing = True
        # A checkpoint may be waiting for the writer to truncate the WAL: let it finish first.
        running = self._checkpointing
        if running is not None and self._checkpoint_running():
            await asyncio.gather(running, return_exceptions=True)
        await self._lock.acquire()
        if self._batch is not None:
            self._end_batch()
            await self._lock.acquire()
        if self._syncs:
            await asyncio.gather(*self._syncs, return_exceptions=True)
        await self._syncer.stop()
        if self._unsynced:
            # What a stop leaves behind is on disk, bookkeeping included.
            await asyncio.to_thread(self._fsync_wal)
            self._unsynced = False
        running = self._checkpointing
        if running is not None and self._checkpoint_running():
            await asyncio.gather(running, return_exceptions=True)
        # Even a finished future must not be awaited from another loop (gather would schedule
        # a callback on the loop that made it, closed by then).
        self._checkpointing = None
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        try:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        finally:
            self._lock.release()
        for conn in self._idle_readers:
            conn.close()
        self._idle_readers.clear()
        self.engine.dispose()
        # Disposed, the backend may serve again (`caja serve` sets up on one loop, serves on another).
        self._closing = False
