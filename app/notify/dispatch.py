"""The dispatcher: sends what the outbox holds, at least once, in order per channel.

Each round claims the *head* of channels (the oldest pending delivery of a channel, if it is due
and nobody holds it) by leasing it in one conditional ``UPDATE``: on PostgreSQL its candidates
are picked ``FOR UPDATE SKIP LOCKED``, so replicas claiming at once take different rows; on
SQLite the statement runs under the database's single write lock. The conditions are repeated
on the row being updated, so a row another dispatcher delivered or leased in the meantime is
left alone. A channel's later event can't be claimed while an earlier one is pending, so events
arrive in the order they happened, one at a time per channel; different channels are sent in
parallel (``KRSYNC_NOTIFY_CONCURRENCY`` requests in flight, 20 by default).

A claimed head comes with the events queued behind it (:data:`AHEAD` a channel), leased
together: nobody else can claim them, since only a channel's head is ever claimable. Each
attempt's outcome is written while the next event is sent (in batches, one commit for the
outcomes that ended meanwhile): delivered, or pending again with its next attempt after about
5 s, 30 s, 2 min and then longer (up to 8 h apart), or failed once it has been retried for 24
hours; a failure gives the rest of the run back untried. The run's last outcome is written in
the transaction that claims the channel's next events. A dispatcher killed mid-run leaves leases
that expire after :data:`LEASE`; what it had sent without writing down is then sent again, the
receiver recognising it by its unchanged `webhook-id`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from app.core import clock
from app.core.changes import same_named
from app.core.db import get_sessionmaker
from app.core.secrets import SecretKeyError
from app.core.settings import get_settings
from app.core.vault import get_secret_box
from app.models import NotificationChannel, NotificationDelivery, NotificationEvent
from app.notify.send import Outcome, Sender, Target

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
#: Outcomes written in one transaction at most.
_BATCH = 200
#: Events of one channel leased at once: while one is sent, the last one's outcome is written,
#: so a database round trip is not waited for between two events of a channel.
AHEAD = 25
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
class Attempt:
    """An attempt's outcome on its way to the database, with what goes with it: the channel's
    leased events left untried after a failure, and whether to claim the channel's next ones."""

    job: Job
    outcome: Outcome
    release: list[Job] = field(default_factory=list)
    claim_next: bool = False


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


def _heads(channel_ids: Sequence[int] | None) -> Any:
    """The oldest pending delivery of each enabled channel (of these, if given): one index
    lookup a channel, however long the queue behind it."""
    behind = aliased(NotificationDelivery)
    oldest = (
        select(func.min(behind.id))
        .where(behind.channel_id == C.id, behind.status == "pending")
        .scalar_subquery()
    )
    heads = select(oldest).where(C.enabled.is_(True))
    if channel_ids is not None:
        heads = heads.where(C.id.in_(channel_ids))
    return heads


def _claimable(now: datetime) -> list[Any]:
    # Repeated on the row the UPDATE changes, where PostgreSQL checks them again once a
    # concurrent claim or record has committed: a row delivered or leased meanwhile is skipped.
    # (A row, once the oldest pending one of its channel, stays so until it leaves `pending`:
    # ids only grow, and nothing goes back to `pending`.)
    return [
        D.status == "pending",
        D.next_attempt_at <= now,
        or_(D.lease_until.is_(None), D.lease_until < now),
    ]


def claim(
    session: Session,
    owner: str,
    now: datetime,
    limit: int,
    channel_ids: Sequence[int] | None = None,
    ahead: int = 1,
) -> list[Job]:
    """Lease up to ``limit`` channel heads that are due (of these channels, if given), each with
    the events queued behind it, up to ``ahead`` a channel; in order of their ids."""
    if channel_ids is not None and not channel_ids:
        return []
    pick = (
        select(D.id)
        .where(D.id.in_(_heads(channel_ids)), *_claimable(now))
        .order_by(D.id)
        .limit(limit)
    )
    lease = update(D).values(lease_owner=owner, lease_until=now + LEASE).returning(D.id)
    if session.get_bind().dialect.name == "postgresql":
        # A materialized CTE, not `id IN (subquery)`: PostgreSQL may run a subquery of an UPDATE
        # more than once, and with SKIP LOCKED each run picks other rows, past the LIMIT.
        picked = (
            pick.with_for_update(skip_locked=True, of=D).cte("picked").prefix_with("MATERIALIZED")
        )
        lease = lease.where(D.id == picked.c.id, *_claimable(now))
    else:
        lease = lease.where(D.id.in_(pick.scalar_subquery()), *_claimable(now))
    heads = list(session.scalars(lease))
    if not heads:
        return []
    return _jobs(session, [*heads, *_lease_following(session, owner, now, heads, ahead)])


def _lease_following(
    session: Session, owner: str, now: datetime, heads: Sequence[int], ahead: int
) -> list[int]:
    """The events queued behind the heads just leased, up to ``ahead`` a channel with its head.

    Nobody else can hold them: a channel's later events are only ever claimed by whoever holds
    its head, so no row lock is needed. The conditions are checked again all the same, and a
    channel's run stops at the first event they leave out, so nothing is sent out of order.
    """
    if ahead <= 1:
        return []
    ranked = (
        select(
            D.id,
            D.channel_id,
            func.row_number().over(partition_by=D.channel_id, order_by=D.id).label("rank"),
        )
        .where(D.channel_id.in_(select(D.channel_id).where(D.id.in_(heads))))
        .where(D.status == "pending")
        .subquery()
    )
    queued = session.execute(
        select(ranked.c.id, ranked.c.channel_id)
        .where(ranked.c.rank.between(2, ahead))
        .order_by(ranked.c.id)
    ).all()
    if not queued:
        return []
    taken = set(
        session.scalars(
            update(D)
            .where(D.id.in_([row.id for row in queued]), *_claimable(now))
            .values(lease_owner=owner, lease_until=now + LEASE)
            .returning(D.id)
        )
    )
    kept: list[int] = []
    left: list[int] = []
    stopped: set[int] = set()
    for row in queued:
        if row.channel_id in stopped or row.id not in taken:
            stopped.add(row.channel_id)
            if row.id in taken:
                left.append(row.id)
            continue
        kept.append(row.id)
    if left:
        release(session, left, owner)
    return kept


def release(session: Session, ids: Sequence[int], owner: str) -> None:
    """Give leased deliveries back untried (their channel stopped at an earlier one)."""
    session.execute(
        update(D)
        .where(D.id.in_(ids), D.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def _jobs(session: Session, ids: Sequence[int]) -> list[Job]:
    # Plain columns, not ORM objects: this runs once a delivery.
    rows = session.execute(
        select(
            D.id,
            D.channel_id,
            D.attempts,
            D.created_at,
            D.attempt_log,
            E.message_id,
            E.body,
            C.name,
            C.kind,
            C.config,
            C.secrets_encrypted,
        )
        .join(E, E.id == D.event_id)
        .join(C, C.id == D.channel_id)
        .where(D.id.in_(ids))
        .order_by(D.id)
    ).all()
    return [_job(row) for row in rows]


def target_of(channel: NotificationChannel) -> tuple[Target, str | None]:
    """The channel with its secrets opened, or why they can't be."""
    return _target(
        channel.id, channel.name, channel.kind, channel.config, channel.secrets_encrypted
    )


@functools.lru_cache(maxsize=256)
def _opened(token: str, keys: str) -> tuple[dict[str, Any] | None, str | None]:
    """Decrypted once per token and key, not once per delivery (``keys`` keys the cache)."""
    try:
        box = get_secret_box()
        if box is None:
            raise SecretKeyError("the channel's URL is encrypted but KRSYNC_SECRET_KEY is not set")
        return box.decrypt_json(token), None
    except SecretKeyError as exc:
        return None, f"the channel's URL can't be read: {exc}"


def _target(
    channel_id: int,
    name: str,
    kind: str,
    config: dict[str, Any] | None,
    token: str | None,
) -> tuple[Target, str | None]:
    secrets: dict[str, Any] = {}
    problem = None
    if token:
        key = get_settings().secret_key
        opened, problem = _opened(token, key.get_secret_value() if key else "")
        secrets = dict(opened or {})
    to = (config or {}).get("to") or []
    target = Target(
        channel_id=channel_id,
        name=name,
        kind=kind,
        url=secrets.get("url"),
        signing_secret=secrets.get("signing_secret"),
        to=[str(a) for a in to],
    )
    return target, problem


def _job(row: Any) -> Job:
    target, problem = _target(row.channel_id, row.name, row.kind, row.config, row.secrets_encrypted)
    return Job(
        **same_named(row, "channel_id attempts created_at message_id body"),
        delivery_id=row.id,
        attempt_log=list(row.attempt_log or []),
        target=target,
        problem=problem,
    )


_COLUMNS = (
    "status",
    "attempts",
    "last_attempt_at",
    "delivered_at",
    "next_attempt_at",
    "response_status",
    "last_error",
    "attempt_log",
)
_RECORD = (
    update(cast(Table, NotificationDelivery.__table__))
    .where(D.id == bindparam("b_id"), D.lease_owner == bindparam("b_owner"))
    .values(
        lease_owner=None,
        lease_until=None,
        **{column: bindparam(f"b_{column}") for column in _COLUMNS},
    )
)


def _outcome_values(job: Job, outcome: Outcome, now: datetime) -> dict[str, Any]:
    attempts = job.attempts + 1
    entry = {
        "at": now.isoformat(),
        "response_status": outcome.response_status,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
    }
    give_up_at = job.created_at + GIVE_UP_AFTER
    next_attempt_at = now
    if outcome.ok:
        status = "delivered"
    elif now >= give_up_at:
        status = "failed"
    else:
        status = "pending"
        next_attempt_at = min(now + retry_delay(attempts), give_up_at)
    return {
        "status": status,
        "attempts": attempts,
        "last_attempt_at": now,
        "delivered_at": now if outcome.ok else None,
        "next_attempt_at": next_attempt_at,
        "response_status": outcome.response_status,
        "last_error": outcome.error,
        "attempt_log": [*job.attempt_log, entry][-LOG_KEEP:],
    }


def record(
    session: Session, done: Sequence[tuple[Job, Outcome]], owner: str, now: datetime
) -> list[str]:
    """Write attempts' outcomes in one statement run for each; their deliveries' new status.

    A row whose lease passed before its attempt ended (another dispatcher took it over) is left
    to that dispatcher; the warning says so.
    """
    values = [_outcome_values(job, outcome, now) for job, outcome in done]
    params = [
        {"b_id": job.delivery_id, "b_owner": owner, **{f"b_{k}": v for k, v in row.items()}}
        for (job, _), row in zip(done, values, strict=True)
    ]
    result = session.execute(_RECORD, params)
    written = getattr(result, "rowcount", -1)
    if 0 <= written < len(params):
        log.warning(
            "%s of %s notification deliveries outlived their lease before the attempt ended; "
            "other dispatchers have them now",
            len(params) - written,
            len(params),
        )
    return [row["status"] for row in values]


def _no_flush_wait(session: Session) -> None:
    """PostgreSQL answers the commit before its WAL reaches the disk. What a database crash could
    then lose is the last moment's outcomes: those events are sent again (at least once, with
    their `webhook-id`), never lost, since the events themselves were committed durably by the
    change that caused them."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


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
        self._outcomes: asyncio.Queue[tuple[Attempt, asyncio.Future[tuple[str, list[Job]]]]] = (
            asyncio.Queue()
        )

    def _make_sender(self) -> Sender:
        settings = get_settings()
        return Sender(
            public_url=settings.public_url,
            smtp_url=settings.smtp_url.get_secret_value() if settings.smtp_url else None,
            mail_from=settings.mail_from,
            allow_private=settings.allow_private_networks,
        )

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def _claim(self, limit: int) -> list[Job]:
        with get_sessionmaker()() as session, session.begin():
            return claim(session, self.owner, self.now(), limit, ahead=AHEAD)

    def _record_batch(self, done: Sequence[Attempt]) -> list[tuple[str, list[Job]]]:
        """Outcomes written, the untried rest of a stopped channel given back, and the next
        events of each channel whose run was delivered to its end claimed, in one transaction:
        one commit for all the attempts that ended meanwhile."""
        with get_sessionmaker()() as session, session.begin():
            _no_flush_wait(session)
            now = self.now()
            statuses = record(session, [(a.job, a.outcome) for a in done], self.owner, now)
            untried = [job.delivery_id for a in done for job in a.release]
            if untried:
                release(session, untried, self.owner)
            go_on = self._claiming()
            ended = [
                a.job.channel_id
                for a, status in zip(done, statuses, strict=True)
                if a.claim_next and status == "delivered"
            ]
            following = claim(session, self.owner, now, len(ended), ended, AHEAD) if go_on else []
        by_channel: dict[int, list[Job]] = {}
        for job in following:
            by_channel.setdefault(job.channel_id, []).append(job)
        return [
            (status, by_channel.get(a.job.channel_id, []) if a.claim_next else [])
            for a, status in zip(done, statuses, strict=True)
        ]

    async def _writer(self) -> None:
        """Takes every outcome that arrived while it was writing the last ones."""
        queue = self._outcomes
        while True:
            first = await queue.get()
            batch = [first]
            while not queue.empty() and len(batch) < _BATCH:
                batch.append(queue.get_nowait())
            try:
                results = await self._db(self._record_batch, [attempt for attempt, _ in batch])
            except Exception as exc:
                for _, waiting in batch:
                    waiting.set_exception(exc)
                continue
            for (_, waiting), result in zip(batch, results, strict=True):
                waiting.set_result(result)

    def _record(self, attempt: Attempt) -> asyncio.Future[tuple[str, list[Job]]]:
        waiting: asyncio.Future[tuple[str, list[Job]]] = asyncio.get_running_loop().create_future()
        self._outcomes.put_nowait((attempt, waiting))
        return waiting

    def _counted(self, status: str) -> None:
        self.report.count(status)
        if self._on_progress is not None:
            self._on_progress(self.report)

    def _claiming(self) -> bool:
        return self._stop_claiming_at is None or self.now() < self._stop_claiming_at

    async def _channel(self, sender: Sender, run: list[Job]) -> None:
        """A channel's due events, one after another, until one fails or none is left.

        An event's outcome is written while the next one is sent; only the run's last one is
        waited for (with the claim of what follows). A dispatcher that dies meanwhile sends again,
        with the same `webhook-id`, the delivered events whose outcome it had not written yet.
        """
        queue = deque(run)
        written: list[asyncio.Future[tuple[str, list[Job]]]] = []
        try:
            while queue:
                job = queue.popleft()
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
                    untried, queue = list(queue), deque()
                    written.append(self._record(Attempt(job, outcome, untried)))
                    continue
                if queue:
                    written.append(self._record(Attempt(job, outcome)))
                    continue
                for status, _ in await asyncio.gather(*written):
                    self._counted(status)
                written = []
                status, following = await self._record(Attempt(job, outcome, claim_next=True))
                self._counted(status)
                queue.extend(following)
            for status, _ in await asyncio.gather(*written):
                self._counted(status)
        finally:
            # Retrieved either way, so a failed write is reported once (by the task), not again
            # as a future nobody looked at.
            for waiting in written:
                if waiting.done() and not waiting.cancelled():
                    waiting.exception()

    async def run(self) -> Report:
        if self._run_for is not None:
            self._stop_claiming_at = self.now() + self._run_for
        self._executor = ThreadPoolExecutor(
            max_workers=min(self.concurrency, 8), thread_name_prefix="krsync-notify"
        )
        sender = self._sender or self._make_sender()
        self._outcomes = asyncio.Queue()
        # PostgreSQL takes transactions side by side; SQLite has one writer anyway.
        postgres = get_sessionmaker().kw["bind"].dialect.name == "postgresql"
        writers = [asyncio.create_task(self._writer()) for _ in range(3 if postgres else 1)]
        try:
            async with sender:
                await self._loop(sender)
        finally:
            for writer in writers:
                writer.cancel()
            self._executor.shutdown(wait=True)
        return self.report

    async def _loop(self, sender: Sender) -> None:
        running: set[asyncio.Task[None]] = set()
        look = True
        while True:
            free = self.concurrency - len(running)
            if look and free > 0 and self._claiming():
                runs: dict[int, list[Job]] = {}
                for job in await self._db(self._claim, free):
                    runs.setdefault(job.channel_id, []).append(job)
                running |= {asyncio.create_task(self._channel(sender, r)) for r in runs.values()}
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
