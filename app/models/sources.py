"""Data sources, mappings and sync runs: where each figure comes from."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Double,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.process import this_process
from app.models.base import Base, TimestampMixin


class DataSource(TimestampMixin, Base):
    __tablename__ = "data_sources"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    connector: Mapped[str] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Fernet token of the JSON credentials; never leaves the process in clear.
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    schedule: Mapped[str] = mapped_column(String(100), default="0 3 * * *")
    lookback_days: Mapped[int] = mapped_column(Integer, default=3)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Connector-owned facts learnt at run time (token expiry, quota, re-authorize notice).
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_synced_day: Mapped[date | None] = mapped_column(Date)
    last_success_at: Mapped[datetime | None] = mapped_column()
    # Health (SPEC section 7): facts kept by `app.sync.health.record` in the transaction that
    # finishes a run; the `health` a read shows is computed from them, never stored.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    last_run_status: Mapped[str | None] = mapped_column(String(16))
    last_run_warned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Why the platform refused the credentials at the last run (redacted); new ones clear it.
    auth_error: Mapped[str | None] = mapped_column(Text)
    # Set when the failures reached KRSYNC_PAUSE_AFTER_FAILURES; only a resume clears it.
    paused_at: Mapped[datetime | None] = mapped_column()
    # When the stored credentials stop working with no person to renew them (a refresh token's
    # end, or an access token's where there is no refresh token); None when they don't say.
    credentials_expire_at: Mapped[datetime | None] = mapped_column()


class Mapping(TimestampMixin, Base):
    __tablename__ = "mappings"
    __table_args__ = (UniqueConstraint("key_result_id", "role", "group"),)

    key_result_id: Mapped[int] = mapped_column(
        ForeignKey("key_results.id", ondelete="CASCADE"), index=True
    )
    data_source_id: Mapped[int] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), index=True
    )
    metric: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    filters: Mapped[list[Any]] = mapped_column(default=list)
    role: Mapped[str] = mapped_column(String(16), default="value")
    group: Mapped[str] = mapped_column(String(200), default="")
    scale: Mapped[float] = mapped_column(Double, default=1.0)
    # Set on creation or change; the sync engine backfills the cycle and baseline, then clears it.
    backfill_pending: Mapped[bool] = mapped_column(Boolean, default=True)


class SyncRun(Base):
    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    data_source_id: Mapped[int] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="running")
    window_from: Mapped[date | None] = mapped_column(Date)
    window_to: Mapped[date | None] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set once a run holds its source's lock: a `running` run without it is only queued.
    prepared_at: Mapped[datetime | None] = mapped_column()
    # The process that runs it (`host:pid:start@place`), so a restart can tell a run whose
    # process died from one another process is still running; NULL for runs older than this.
    owner: Mapped[str | None] = mapped_column(String(255), default=lambda: str(this_process()))
    finished_at: Mapped[datetime | None] = mapped_column()
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    observations_written: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    # The schedule slot a scheduled run belongs to, so replicas never start it twice.
    slot: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("data_source_id", "slot"),)


class PushSignature(Base):
    """A signed push that was accepted, kept while its timestamp could still pass the check.

    The key makes a replay of the same signed push (the same digest for the same source) fail
    to insert, even when two copies arrive at once on different replicas.
    """

    __tablename__ = "push_signatures"

    data_source_id: Mapped[int] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True
    )
    # The hex HMAC-SHA256 the pusher sent: it covers the timestamp and the body.
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    signed_at: Mapped[datetime] = mapped_column(index=True)
    accepted_at: Mapped[datetime] = mapped_column(default=utcnow)
