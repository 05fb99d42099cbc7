"""Notification channels and the outbox: events written with the change, deliveries per channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.models.base import Base, TimestampMixin


class NotificationChannel(TimestampMixin, Base):
    """Where events go: a Slack or Teams incoming webhook, mail addresses, or a signed webhook."""

    __tablename__ = "notification_channels"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    # What may be shown: the addresses of an `email` channel. Never a URL.
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Fernet token of {"url": ..., "signing_secret": ...}; never leaves the process in clear.
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    events: Mapped[list[Any]] = mapped_column(default=list)
    scope: Mapped[dict[str, Any] | None] = mapped_column()
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class NotificationEvent(Base):
    """One event as every channel receives it, written in the transaction of its cause.

    ``body`` is the JSON text sent (and signed) on every attempt, so a retry carries the same
    bytes; ``message_id`` is its `webhook-id` across retries.
    """

    __tablename__ = "notification_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(Text)
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationDelivery(Base):
    """One event to one channel: its attempts, the next one, and who holds it right now.

    A dispatcher leases a row (``lease_owner``, ``lease_until``) before sending, so several
    replicas never send it at once; a lease that outlives its dispatcher (killed mid-request)
    expires and the row is sent again: at least once.
    """

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "channel_id"),
        # The head of a channel (its oldest pending delivery) is what may be sent next.
        Index("ix_notification_deliveries_channel_status", "channel_id", "status", "id"),
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("notification_events.id", ondelete="CASCADE"), index=True
    )
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    response_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The latest attempts, oldest first: {"at", "response_status", "error", "duration_ms"}.
    attempt_log: Mapped[list[Any]] = mapped_column(default=list)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
