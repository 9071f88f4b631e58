"""SQL for budgets, alerts and the daemon: spend per budget scope, the alert ledger, the job
run history and the single-daemon lock. Works on SQLite and PostgreSQL alike.

Times go in as naive UTC and come out aware, money as integer micro-dollars, as in
``tracker.store.database``. The ledger relies only on a unique constraint and conditional updates, so
two processes racing for the same (alert, channel) can never both win.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from tracker.alert.channels import idempotency_key
from tracker.cost.items import EFFECTIVE, LIST, CostItem
from tracker.records import UNALLOCATED
from tracker.store.database import Repository, Store, aware_utc, naive_utc
from tracker.store.query import JOB_COLUMNS, ViewQueries, Window, item_sums, over_days, within
from tracker.store.schema import AlertDelivery, DaemonLock, Job, JobRun

if TYPE_CHECKING:
    from sqlalchemy import Select


@dataclass(frozen=True)
class JobSpendRow:
    """One job's micro-dollars on a range of days, with what a message needs to name it."""

    job_id: int
    name: str
    arn: str
    status: str
    final: bool
    team: str | None
    instance_type: str | None
    instance_count: int
    region: str
    unpriced: bool
    micros: int


class SpendQueries(Repository):
    """Spend of a budget's scope, read from the per-day cost split."""

    def job_spend(
        self, filters: dict[str, str], first: date, last: date, cost: str = "list"
    ) -> list[JobSpendRow]:
        """Each job's cost on days ``first``..``last`` (inclusive), scope ``filters``."""
        columns = (
            Job.id, Job.name, Job.arn, Job.status, Job.final, Job.team, Job.instance_type,
            Job.instance_count, Job.region, Job.unpriced,
        )  # fmt: skip
        query = over_days(*columns, *item_sums([_cost_item(cost)]))
        query = within(query, Window(first, last, filters)).group_by(*columns)
        with self.store.session() as session:
            rows = session.execute(query).all()
        return [JobSpendRow(*row[:-1], micros=int(row[-1])) for row in rows]

    def finished_micros(
        self, filters: dict[str, str], first: date, last: date, cost: str = "list"
    ) -> int:
        """Finished jobs' cost on days ``first``..``last``: the run-rate numerator."""
        item = _cost_item(cost)
        window = Window(first, last, filters)
        (row,) = ViewQueries(self.store).spend([], window, [item], counts=False, final_only=True)
        return int(row[item.name])

    def running_jobs(self, filters: dict[str, str] | None = None) -> list[Job]:
        """Jobs not yet final, in scope."""
        query = select(Job).where(Job.final == False).order_by(Job.id)  # noqa: E712
        for name, value in (filters or {}).items():
            query = query.where(func.coalesce(JOB_COLUMNS[name], UNALLOCATED) == value)
        with self.store.session() as session:
            return list(session.execute(query).scalars())

    def finished_since(self, since: datetime) -> list[Job]:
        """Final jobs that ended at or after ``since`` (for the over-estimate rule)."""
        query = (
            select(Job)
            .where(Job.final == True, Job.end_time >= naive_utc(since))  # noqa: E712
            .order_by(Job.end_time, Job.id)
        )
        with self.store.session() as session:
            return list(session.execute(query).scalars())


def _cost_item(cost: str) -> CostItem:
    """The budget's cost measure (list or effective) as a catalogue item."""
    return EFFECTIVE if cost == "effective" else LIST


# -- the alert ledger ----------------------------------------------------------------------------
UNCONFIRMED_ERROR = (
    "the sender died during the first send and again during its one resend: not sent again "
    "(check the channel; the receiver has it at most twice, both with the same idempotency key)"
)


@dataclass(frozen=True)
class Delivery:
    """A ledger row, as read back."""

    alert_key: str
    channel: str
    kind: str
    subject: str
    payload: dict[str, Any]
    status: str
    attempts: int
    sent_at: datetime | None
    last_error: str | None
    idempotency_key: str = ""
    sends: int = 0
    crash_resends: int = 0


@dataclass(frozen=True)
class Claim:
    """The right to send one (alert, channel) now.

    ``repeat``: an earlier attempt with the same idempotency key was started, so the receiver
    may already have it; ``after_crash``: this claim takes over one whose sender died.
    """

    token: str
    repeat: bool = False
    after_crash: bool = False


class AlertLedger(Repository):
    """What was sent where. ``claim`` -> deliver -> ``mark_sent`` or ``mark_failed``.

    A claim is an INSERT of the (alert, channel) row as ``sending``, committed before anything
    is sent; or a conditional UPDATE of a ``failed`` row (retried every run), or of a
    ``sending`` row older than ``lease`` (its sender died between committing the claim and
    recording the outcome: it may or may not have sent). Only one process can win any of
    them. A dead sender's claim is taken over and resent once (``crash_resends``); if that
    sender dies too, :meth:`give_up_abandoned` marks the row ``unconfirmed`` and it is never
    sent again. A sent row is never claimed again.
    """

    def __init__(
        self, store: Store, clock: Callable[[], datetime], lease: timedelta = timedelta(minutes=10)
    ):
        super().__init__(store)
        self.clock = clock
        self.lease = lease

    def claim(
        self, key: str, channel: str, kind: str, subject: str, payload: dict[str, Any]
    ) -> str | None:
        """:meth:`claim_delivery`'s token, or None."""
        claimed = self.claim_delivery(key, channel, kind, subject, payload)
        return claimed.token if claimed else None

    def claim_delivery(
        self, key: str, channel: str, kind: str, subject: str, payload: dict[str, Any]
    ) -> Claim | None:
        """A claim if this process should deliver now; None if sent, being sent or given up."""
        token = uuid.uuid4().hex
        now = naive_utc(self.clock())
        with self.store.session() as session:
            session.add(
                AlertDelivery(
                    alert_key=key,
                    channel=channel,
                    idempotency_key=idempotency_key(key, channel),
                    kind=kind,
                    subject=subject,
                    payload_json=json.dumps(payload, sort_keys=True, default=str),
                    status="sending",
                    sends=1,
                    claim_token=token,
                    created_at=now,
                    claimed_at=now,
                )  # fmt: skip
            )
            try:
                session.commit()
                return Claim(token)
            except IntegrityError:
                session.rollback()
        return self._reclaim(key, channel, token, now)

    def _reclaim(self, key: str, channel: str, token: str, now: datetime) -> Claim | None:
        row = (AlertDelivery.alert_key == key, AlertDelivery.channel == channel)
        claimed = {"status": "sending", "claim_token": token, "claimed_at": now,
                   "sends": AlertDelivery.sends + 1}  # fmt: skip
        failed = update(AlertDelivery).where(*row, AlertDelivery.status == "failed")
        abandoned = update(AlertDelivery).where(*row, *self._abandoned(now, resent=False))
        with self.store.session() as session:
            if session.execute(failed.values(**claimed)).rowcount == 1:
                session.commit()
                return Claim(token, repeat=True)
            taken = abandoned.values(**claimed, crash_resends=AlertDelivery.crash_resends + 1)
            if session.execute(taken).rowcount == 1:
                session.commit()
                return Claim(token, repeat=True, after_crash=True)
            session.commit()
        return None

    def _abandoned(self, now: datetime, *, resent: bool) -> tuple[Any, ...]:
        """A ``sending`` claim older than the lease: its sender died. ``resent``: already
        taken over once (and that sender died too)."""
        return (
            AlertDelivery.status == "sending",
            AlertDelivery.claimed_at < now - self.lease,
            AlertDelivery.crash_resends >= 1 if resent else AlertDelivery.crash_resends == 0,
        )

    def give_up_abandoned(self) -> list[Delivery]:
        """Mark ``unconfirmed`` every resent claim whose sender died again; return those rows.

        Such a delivery was attempted twice with the same idempotency key and the outcome of
        neither was recorded: it is never sent a third time.
        """
        now = naive_utc(self.clock())
        given_up = []
        for row in self._read(select(AlertDelivery).where(*self._abandoned(now, resent=True))):
            statement = (
                update(AlertDelivery)
                .where(AlertDelivery.alert_key == row.alert_key,
                       AlertDelivery.channel == row.channel, *self._abandoned(now, resent=True))
                .values(status="unconfirmed", claim_token=None, last_error=UNCONFIRMED_ERROR)
            )  # fmt: skip
            with self.store.session() as session:
                changed = session.execute(statement).rowcount
                session.commit()
            if changed == 1:
                given_up.append(row)
        return given_up

    def mark_sent(self, key: str, channel: str, token: str) -> None:
        self._finish(
            key, channel, token, status="sent", sent_at=naive_utc(self.clock()), last_error=None
        )

    def mark_failed(self, key: str, channel: str, token: str, error: str) -> None:
        self._finish(key, channel, token, status="failed", last_error=error[:2000])

    def mark_unroutable(self, key: str, channel: str, error: str) -> bool:
        """A retryable row whose channel is gone: ``failed`` with ``error``, nothing sent."""
        now = naive_utc(self.clock())
        statement = (
            update(AlertDelivery)
            .where(AlertDelivery.alert_key == key, AlertDelivery.channel == channel)
            .where((AlertDelivery.status == "failed") | and_(*self._abandoned(now, resent=False)))
            .values(status="failed", claim_token=None, last_error=error[:2000])
        )
        with self.store.session() as session:
            changed = session.execute(statement).rowcount
            session.commit()
        return changed == 1

    def _finish(self, key: str, channel: str, token: str, **values: Any) -> None:
        statement = (
            update(AlertDelivery)
            .where(
                AlertDelivery.alert_key == key,
                AlertDelivery.channel == channel,
                AlertDelivery.claim_token == token,
            )
            .values(attempts=AlertDelivery.attempts + 1, claim_token=None, **values)
        )
        with self.store.session() as session:
            session.execute(statement)
            session.commit()

    def state(self, keys: Iterable[str]) -> dict[tuple[str, str], str]:
        """(alert key, channel) -> status, for the given alert keys."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], str] = {}
        with self.store.session() as session:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = session.execute(
                    select(
                        AlertDelivery.alert_key, AlertDelivery.channel, AlertDelivery.status
                    ).where(AlertDelivery.alert_key.in_(chunk))
                ).all()
                found.update({(k, c): s for k, c, s in rows})
        return found

    def retryable(self) -> list[Delivery]:
        """Failed deliveries (retried every run) and claims of dead senders not yet resent
        (resent once), oldest first."""
        now = naive_utc(self.clock())
        query = (
            select(AlertDelivery)
            .where((AlertDelivery.status == "failed") | and_(*self._abandoned(now, resent=False)))
            .order_by(AlertDelivery.id)
        )
        return self._read(query)

    def deliveries(self, status: str | None = None) -> list[Delivery]:
        query = select(AlertDelivery).order_by(AlertDelivery.id)
        if status:
            query = query.where(AlertDelivery.status == status)
        return self._read(query)

    def counts(self) -> dict[str, int]:
        with self.store.session() as session:
            rows = session.execute(
                select(AlertDelivery.status, func.count()).group_by(AlertDelivery.status)
            ).all()
        return {status: int(n) for status, n in rows}

    def _read(self, query: Select) -> list[Delivery]:
        with self.store.session() as session:
            rows = list(session.execute(query).scalars())
        return [
            Delivery(
                r.alert_key,
                r.channel,
                r.kind,
                r.subject,
                json.loads(r.payload_json or "{}"),
                r.status,
                r.attempts,
                aware_utc(r.sent_at),
                r.last_error,
                r.idempotency_key,
                r.sends,
                r.crash_resends,
            )  # fmt: skip
            for r in rows
        ]


# -- job run history ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunRecord:
    job: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    seconds: float | None
    detail: str


class JobRunLog(Repository):
    """Start and finish of every scheduled job run."""

    def start(self, job: str, trigger: str, owner: str, now: datetime) -> int:
        with self.store.session() as session:
            run = JobRun(job=job, trigger=trigger, owner=owner, started_at=naive_utc(now))
            session.add(run)
            session.commit()
            return int(run.id)

    def finish(self, run_id: int, status: str, detail: str, now: datetime, seconds: float) -> None:
        with self.store.session() as session:
            session.execute(
                update(JobRun)
                .where(JobRun.id == run_id)
                .values(
                    status=status, detail=detail[:4000], finished_at=naive_utc(now), seconds=seconds
                )
            )
            session.commit()

    def latest(self, jobs: Iterable[str]) -> dict[str, RunRecord]:
        """The most recent run of each job (running or finished)."""
        out: dict[str, RunRecord] = {}
        with self.store.session() as session:
            for job in jobs:
                row = session.execute(
                    select(JobRun).where(JobRun.job == job).order_by(JobRun.id.desc()).limit(1)
                ).scalar_one_or_none()
                if row is not None:
                    out[job] = _run_record(row)
        return out

    def history(self, job: str | None = None, limit: int = 50) -> list[RunRecord]:
        query = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
        if job:
            query = query.where(JobRun.job == job)
        with self.store.session() as session:
            return [_run_record(r) for r in session.execute(query).scalars()]


def _run_record(row: JobRun) -> RunRecord:
    return RunRecord(
        row.job, row.trigger, aware_utc(row.started_at), aware_utc(row.finished_at),
        row.status, row.seconds, row.detail,
    )  # fmt: skip


# -- the single-daemon lock ---------------------------------------------------------------------
@dataclass(frozen=True)
class LockHolder:
    owner: str
    acquired_at: datetime
    heartbeat_at: datetime


class DaemonLockRow(Repository):
    """A row in the database names the running daemon; it proves it is alive by heartbeats.

    Works the same on SQLite and PostgreSQL (and for daemons on different hosts sharing a
    PostgreSQL database). A holder whose heartbeat is older than ``stale_after`` is presumed
    dead and its lock may be taken over.
    """

    NAME = "daemon"

    def __init__(self, store: Store, clock: Callable[[], datetime], stale_after: timedelta):
        super().__init__(store)
        self.clock = clock
        self.stale_after = stale_after

    def acquire(self, owner: str) -> LockHolder | None:
        """Take the lock; returns None on success, else the live holder that keeps it."""
        now = naive_utc(self.clock())
        with self.store.session() as session:
            session.add(DaemonLock(name=self.NAME, owner=owner, acquired_at=now, heartbeat_at=now))
            try:
                session.commit()
                return None
            except IntegrityError:
                session.rollback()
        holder = self.holder()
        if holder is None:  # released between our insert and our read: try once more
            return self.acquire(owner)
        if naive_utc(holder.heartbeat_at) >= now - self.stale_after:
            return holder
        with self.store.session() as session:  # take over a dead holder's lock, atomically
            result = session.execute(
                update(DaemonLock)
                .where(DaemonLock.name == self.NAME, DaemonLock.owner == holder.owner)
                .where(DaemonLock.heartbeat_at == naive_utc(holder.heartbeat_at))
                .values(owner=owner, acquired_at=now, heartbeat_at=now)
            )
            session.commit()
        return None if result.rowcount == 1 else (self.holder() or holder)

    def heartbeat(self, owner: str) -> bool:
        """Refresh the heartbeat; False if the lock is no longer ours."""
        with self.store.session() as session:
            result = session.execute(
                update(DaemonLock)
                .where(DaemonLock.name == self.NAME, DaemonLock.owner == owner)
                .values(heartbeat_at=naive_utc(self.clock()))
            )
            session.commit()
            return result.rowcount == 1

    def release(self, owner: str) -> None:
        with self.store.session() as session:
            session.execute(
                delete(DaemonLock).where(DaemonLock.name == self.NAME, DaemonLock.owner == owner)
            )
            session.commit()

    def holder(self) -> LockHolder | None:
        with self.store.session() as session:
            row = session.get(DaemonLock, self.NAME)
            if row is None:
                return None
            return LockHolder(row.owner, aware_utc(row.acquired_at), aware_utc(row.heartbeat_at))
