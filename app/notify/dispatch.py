"""The dispatcher: sends what the outbox holds, at least once, in order per channel.

Each round claims the *head* of channels (the oldest pending delivery of a channel, if it is due
and nobody holds it) by leasing it in one conditional ``UPDATE``: on PostgreSQL its candidates
are picked ``FOR UPDATE SKIP LOCKED``, so replicas claiming at once take different rows; on
SQLite the statement runs under the database's single write lock. The conditions are repeated
on the row being updated, so a row another dispatcher delivered or leased in the meantime is
left alone. A channel's later event can't be claimed while an earlier one is pending, so events
arrive in the order they happened, one at a time per channel; different channels are sent in
parallel (``KRSYNC_NOTIFY_CONCURRENCY`` requests in flight, 20 by default).

After each attempt the row is written in the same transaction that claims the channel's next
event: delivered, or pending again with its next attempt after about 5 s, 30 s, 2 min and then
longer (up to 8 h apart), or failed once it has been retried for 24 hours. A dispatcher killed
mid-request leaves a lease that expires after :data:`LEASE`; the event is then sent again, the
receiver recognising it by its unchanged `webhook-id`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from app.core.db import get_sessionmaker
from app.core.secrets import SecretKeyError
from app.core.settings import get_settings
from app.core.vault import get_secret_box
from app.models import NotificationChannel, NotificationDelivery, NotificationEvent
from app.notify.send import Outcome, Sender, Target
from app.sync import clock

log = logging.getLogger("krsync.notify")

#: How long a claimed delivery is a dispatcher's own: far longer than one attempt may take.
LEASE = timedelta(minutes=2)
#: The wait after the 1st, 2nd, ... failed attempt; the last one repeats.
RETRY_AFTER: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
)
#: How long after the event a delivery is still tried; then it is `failed`.
GIVE_UP_AFTER = timedelta(hours=24)
#: Attempts kept in a delivery's log (24 hours of the schedule above make about a dozen).
LOG_KEEP = 20

Now = Callable[[], datetime]


def retry_delay(attempts: int) -> timedelta:
    """The wait before the next attempt once ``attempts`` (≥ 1) have failed."""
    return RETRY_AFTER[min(max(attempts, 1), len(RETRY_AFTER)) - 1]


@dataclass(frozen=True)
class Job:
    """A claimed delivery, with what sending it takes; plain values, usable off the session."""

    delivery_id: int
    channel_id: int
    attempts: int
    created_at: datetime
    message_id: str
    body: str
    attempt_log: list[Any]
    target: Target
    #: Why it can't be sent as the channel stands (its secrets can't be opened).
    problem: str | None = None


@dataclass
class Report:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    #: Leases that expired under this dispatcher (another one took the row over).
    lost: int = 0

    @property
    def attempts(self) -> int:
        return self.delivered + self.retrying + self.failed + self.lost

    def count(self, status: str) -> None:
        if status == "delivered":
            self.delivered += 1
        elif status == "failed":
            self.failed += 1
        elif status == "pending":
            self.retrying += 1
        else:
            self.lost += 1


# --- claiming and recording -------------------------------------------------------------------

D = NotificationDelivery
C = NotificationChannel
E = NotificationEvent


def _due(now: datetime, channel_id: int | None) -> list[Any]:
    earlier = aliased(NotificationDelivery)
    conditions: list[Any] = [
        D.status == "pending",
        D.next_attempt_at <= now,
        or_(D.lease_until.is_(None), D.lease_until < now),
        ~exists().where(
            earlier.channel_id == D.channel_id, earlier.status == "pending", earlier.id < D.id
        ),
        D.channel_id.in_(select(C.id).where(C.enabled.is_(True))),
    ]
    if channel_id is not None:
        conditions.append(D.channel_id == channel_id)
    return conditions


def claim(
    session: Session, owner: str, now: datetime, limit: int, channel_id: int | None = None
) -> list[Job]:
    """Lease up to ``limit`` channel heads that are due (of one channel, if given)."""
    pick = select(D.id).where(*_due(now, channel_id)).order_by(D.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list(
        session.scalars(
            update(D)
            .where(D.id.in_(pick.scalar_subquery()), *_due(now, channel_id))
            .values(lease_owner=owner, lease_until=now + LEASE)
            .returning(D.id)
        )
    )
    if not ids:
        return []
    rows = session.execute(
        select(D, E.message_id, E.body, C)
        .join(E, E.id == D.event_id)
        .join(C, C.id == D.channel_id)
        .where(D.id.in_(ids))
        .order_by(D.id)
    ).all()
    return [
        _job(delivery, message_id, body, channel) for delivery, message_id, body, channel in rows
    ]


def target_of(channel: NotificationChannel) -> tuple[Target, str | None]:
    """The channel with its secrets opened, or why they can't be."""
    secrets: dict[str, Any] = {}
    problem = None
    if channel.secrets_encrypted:
        try:
            box = get_secret_box()
            if box is None:
                raise SecretKeyError(
                    "the channel's URL is encrypted but KRSYNC_SECRET_KEY is not set"
                )
            secrets = box.decrypt_json(channel.secrets_encrypted)
        except SecretKeyError as exc:
            problem = f"the channel's URL can't be read: {exc}"
    to = (channel.config or {}).get("to") or []
    target = Target(
        channel_id=channel.id,
        name=channel.name,
        kind=channel.kind,
        url=secrets.get("url"),
        signing_secret=secrets.get("signing_secret"),
        to=[str(a) for a in to],
    )
    return target, problem


def _job(
    delivery: NotificationDelivery, message_id: str, body: str, channel: NotificationChannel
) -> Job:
    target, problem = target_of(channel)
    return Job(
        delivery_id=delivery.id,
        channel_id=delivery.channel_id,
        attempts=delivery.attempts,
        created_at=delivery.created_at,
        message_id=message_id,
        body=body,
        attempt_log=list(delivery.attempt_log or []),
        target=target,
        problem=problem,
    )


def record(session: Session, job: Job, outcome: Outcome, owner: str, now: datetime) -> str:
    """Write an attempt's outcome; the delivery's new status ("lost" if the lease had passed)."""
    attempts = job.attempts + 1
    entry = {
        "at": now.isoformat(),
        "response_status": outcome.response_status,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
    }
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_attempt_at": now,
        "response_status": outcome.response_status,
        "last_error": outcome.error,
        "attempt_log": [*job.attempt_log, entry][-LOG_KEEP:],
        "lease_owner": None,
        "lease_until": None,
    }
    give_up_at = job.created_at + GIVE_UP_AFTER
    if outcome.ok:
        status = "delivered"
        values["delivered_at"] = now
    elif now >= give_up_at:
        status = "failed"
    else:
        status = "pending"
        values["next_attempt_at"] = min(now + retry_delay(attempts), give_up_at)
    values["status"] = status
    updated = session.execute(
        update(D).where(D.id == job.delivery_id, D.lease_owner == owner).values(**values)
    )
    if getattr(updated, "rowcount", 1) == 0:
        log.warning(
            "delivery %s to channel %s: its lease passed before the attempt ended; another "
            "dispatcher has it now",
            job.delivery_id,
            job.channel_id,
        )
        return "lost"
    return status


# --- the loop -------------------------------------------------------------------------------


class Dispatcher:
    """Sends what is due now and returns; `krsync notify run` and the scheduler's job use it."""

    def __init__(
        self,
        *,
        concurrency: int | None = None,
        now: Now = clock.utcnow,
        sender: Sender | None = None,
        run_for: timedelta | None = None,
        on_progress: Callable[[Report], None] | None = None,
    ) -> None:
        settings = get_settings()
        self.concurrency = concurrency or settings.notify_concurrency
        self.now = now
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self.report = Report()
        self._sender = sender
        self._run_for = run_for
        self._on_progress = on_progress
        self._stop_claiming_at: datetime | None = None
        self._executor: ThreadPoolExecutor | None = None

    def _make_sender(self) -> Sender:
        settings = get_settings()
        return Sender(
            public_url=settings.public_url,
            smtp_url=settings.smtp_url.get_secret_value() if settings.smtp_url else None,
            mail_from=settings.mail_from,
            allow_private=settings.allow_private_networks,
            max_connections=self.concurrency,
        )

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def _claim(self, limit: int, channel_id: int | None = None) -> list[Job]:
        with get_sessionmaker()() as session, session.begin():
            return claim(session, self.owner, self.now(), limit, channel_id)

    def _record_and_next(self, job: Job, outcome: Outcome, go_on: bool) -> tuple[str, Job | None]:
        with get_sessionmaker()() as session, session.begin():
            now = self.now()
            status = record(session, job, outcome, self.owner, now)
            if status != "delivered" or not go_on:
                return status, None
            following = claim(session, self.owner, now, 1, job.channel_id)
            return status, following[0] if following else None

    def _claiming(self) -> bool:
        return self._stop_claiming_at is None or self.now() < self._stop_claiming_at

    async def _channel(self, sender: Sender, job: Job | None) -> None:
        """A channel's due events, one after another, until one fails or none is left."""
        while job is not None:
            if job.problem is not None:
                outcome = Outcome(False, error=job.problem)
            else:
                outcome = await sender.send(job.target, job.message_id, job.body, self.now())
            if not outcome.ok:
                log.info(
                    "notification to channel %r not delivered (attempt %s): %s",
                    job.target.name,
                    job.attempts + 1,
                    outcome.error,
                )
            status, job = await self._db(self._record_and_next, job, outcome, self._claiming())
            self.report.count(status)
            if self._on_progress is not None:
                self._on_progress(self.report)

    async def run(self) -> Report:
        if self._run_for is not None:
            self._stop_claiming_at = self.now() + self._run_for
        self._executor = ThreadPoolExecutor(
            max_workers=min(self.concurrency, 8), thread_name_prefix="krsync-notify"
        )
        sender = self._sender or self._make_sender()
        try:
            async with sender:
                await self._loop(sender)
        finally:
            self._executor.shutdown(wait=True)
        return self.report

    async def _loop(self, sender: Sender) -> None:
        running: set[asyncio.Task[None]] = set()
        look = True
        while True:
            free = self.concurrency - len(running)
            if look and free > 0 and self._claiming():
                jobs: Sequence[Job] = await self._db(self._claim, free)
                running |= {asyncio.create_task(self._channel(sender, job)) for job in jobs}
            if not running:
                return
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if (exc := task.exception()) is not None:
                    # A database hiccup: the lease expires and the event is sent on a later run.
                    log.warning("a notification channel's dispatch stopped: %s", type(exc).__name__)
            look = True


def dispatch_due(**options: Any) -> Report:
    """Everything due now, then return (the scheduler's job, `krsync notify run`)."""
    return asyncio.run(Dispatcher(**options).run())
