"""One writer per run: an exclusive lease on a run, held in the run's own store.

The lease is a row of the table ``nas_run_leases`` in the store's database (beside Optuna's tables), so it works
wherever the store does: a SQLite file on one machine, a PostgreSQL server shared by a cluster. Taking it is one
atomic statement (an insert that the primary key refuses when the run is held, or an update conditioned on the
holder's token when the holder is dead); the holder renews its heartbeat from a background thread. A lease is taken
over when its holder is known dead (same host, no such process) or has not renewed it for `LEASE_EXPIRY_S`.

Optuna has no lock of its own to offer (its storage has no compare-and-set), hence this small table.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

import sqlalchemy as sa

from nas.core.errors import RunLockedError, StoreError
from nas.search.store import SQLITE_PREFIX, storage_errors

#: A lease whose holder has not renewed it for this long is taken over (seconds).
LEASE_EXPIRY_S = 60.0
#: How often the holder renews its lease (seconds).
HEARTBEAT_S = 5.0

_TABLE = sa.Table(
    "nas_run_leases",
    sa.MetaData(),
    sa.Column("run", sa.String(512), primary_key=True),
    sa.Column("token", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: a process on a host, since when, last heard from when (epoch seconds)."""

    token: str
    host: str
    pid: int
    since: float
    heartbeat: float

    def describe(self) -> str:
        started = datetime.fromtimestamp(self.since).isoformat(sep=" ", timespec="seconds")
        return f"host {self.host}, pid {self.pid}, since {started}"

    def dead(self, now: float, expiry_s: float) -> bool:
        """Whether the holder is gone: a process of this host that no longer exists, or silent for ``expiry_s``."""
        return now - self.heartbeat > expiry_s or (self.host == socket.gethostname() and not _alive(self.pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLease:
    """The exclusive right to write the run ``run`` of the store at ``url`` (a context manager).

    Raises:
        RunLockedError: on entry, when a live search holds the run (the message names it).

    Example:
        >>> with RunLease("sqlite:///runs/demo/store.db", "demo") as lease:  # doctest: +SKIP
        ...     lease.check()  # raises RunLockedError once another search has taken the run over
    """

    def __init__(
        self, url: str, run: str, *, expiry_s: float = LEASE_EXPIRY_S, heartbeat_s: float = HEARTBEAT_S
    ) -> None:
        self.url, self.run, self.expiry_s, self.heartbeat_s = url, run, expiry_s, heartbeat_s
        self.token = uuid.uuid4().hex
        self._engine = _engine(url)
        self._stop = threading.Event()
        self._lost_to: str | None = None  # who took the run over, once another search did
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunLease:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lease (over from a dead holder, if need be) and start renewing it."""
        with storage_errors(self.url):
            _TABLE.metadata.create_all(self._engine, checkfirst=True)
            for _ in range(3):  # the holder may let go, or another search step in, between two statements
                now = time.time()
                mine = {"token": self.token, "host": socket.gethostname(), "pid": os.getpid(), "since": now}
                if self._insert(mine):
                    break
                holder = self.holder()
                if holder is not None and not holder.dead(now, self.expiry_s):
                    raise RunLockedError(
                        f"run {self.run!r} is being written by another search ({holder.describe()}); one search "
                        f"writes a run at a time: wait for it to end or stop it (a lease not renewed for "
                        f"{self.expiry_s:.0f} s is taken over)"
                    )
                if holder is not None and self._take_over(holder, mine):
                    break
            else:
                raise RunLockedError(f"run {self.run!r} is contended by other searches; try again")
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self.run}", daemon=True)
        self._thread.start()

    def _insert(self, mine: dict[str, object]) -> bool:
        try:
            with self._engine.begin() as db:
                db.execute(_TABLE.insert().values(run=self.run, heartbeat=mine["since"], **mine))
        except sa.exc.IntegrityError:  # held, or left behind by a dead holder
            return False
        return True

    def _take_over(self, holder: Holder, mine: dict[str, object]) -> bool:
        with self._engine.begin() as db:
            taken = db.execute(
                _TABLE.update()
                .where(_TABLE.c.run == self.run, _TABLE.c.token == holder.token)
                .values(heartbeat=time.time(), **mine)
            )
        return bool(taken.rowcount == 1)  # another search may have taken it over first

    def holder(self) -> Holder | None:
        """Who holds the lease now, if anyone."""
        with self._engine.connect() as db:
            row = db.execute(sa.select(_TABLE).where(_TABLE.c.run == self.run)).first()
        return None if row is None else Holder(row.token, row.host, row.pid, row.since, row.heartbeat)

    @property
    def lost(self) -> bool:
        """Whether another search has taken the run over (this one was silent too long)."""
        return self._lost_to is not None

    def check(self) -> None:
        """Raise `RunLockedError` if the lease is `lost`."""
        if self._lost_to is not None:
            raise RunLockedError(
                f"run {self.run!r} was taken over by another search ({self._lost_to}) after this one did not "
                f"renew its lease for {self.expiry_s:.0f} s; this search stopped"
            )

    def release(self) -> None:
        """Stop renewing and give the lease up (if this search holds it: nothing to do when it never did)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        with storage_errors(self.url), self._engine.begin() as db:
            db.execute(_TABLE.delete().where(_TABLE.c.run == self.run, _TABLE.c.token == self.token))
        self._engine.dispose()

    def renew(self) -> bool:
        """Renew the heartbeat now (the background thread does every ``heartbeat_s``); False once another search
        has taken the run over, which `check` then reports."""
        try:
            with self._engine.begin() as db:
                renewed = db.execute(
                    _TABLE.update()
                    .where(_TABLE.c.run == self.run, _TABLE.c.token == self.token)
                    .values(heartbeat=time.time())
                )
        except sa.exc.SQLAlchemyError:
            return True  # the database is busy or unreachable for now: the next beat tries again
        if renewed.rowcount == 0:
            holder = self.holder()
            self._lost_to = holder.describe() if holder else "it has let go since"
        return self._lost_to is None

    def _renew(self) -> None:
        while not self._stop.wait(self.heartbeat_s) and self.renew():
            pass


def _engine(url: str) -> sa.Engine:
    """An engine for the lease table; SQLite waits for a busy file instead of failing at once."""
    try:
        if url.startswith(SQLITE_PREFIX):
            return sa.create_engine(url, connect_args={"timeout": 60})
        return sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as error:
        raise StoreError(f"cannot open the result storage {url}: {error}") from None
