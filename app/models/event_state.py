"""What the event evaluation last announced, so one change gives one event (SPEC section 7).

Statuses, health and reminders are computed, never stored; these rows keep only what was
*told*: evaluating the same facts twice (after a sync, a check-in, the daily job, two replicas)
finds the announcement already made and says nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.models.base import Base


class KeyResultEventState(Base):
    """A key result's last announced status, the one before it, and when."""

    __tablename__ = "key_result_event_states"

    key_result_id: Mapped[int] = mapped_column(
        ForeignKey("key_results.id", ondelete="CASCADE"), primary_key=True
    )
    #: The status the last `key_result.status_changed` named as new (or the first one seen).
    status: Mapped[str] = mapped_column(String(16))
    #: The old status of that event: a return to it within a day is held (flapping).
    previous_status: Mapped[str | None] = mapped_column(String(16))
    #: When that event was written; None while only the first status was recorded.
    changed_at: Mapped[datetime | None] = mapped_column()
    #: When `key_result.done` was sent: once per key result.
    done_at: Mapped[datetime | None] = mapped_column()
    #: When the last `check_in.reminder` was sent.
    reminded_at: Mapped[datetime | None] = mapped_column()
    #: When the row was last written (recorded, announced): an unchanged evaluation leaves it.
    evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SourceEventState(Base):
    """What was announced of a source beyond its run-by-run health transitions."""

    __tablename__ = "source_event_states"

    data_source_id: Mapped[int] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True
    )
    #: The API version whose retirement `source.api_version_sunset` announced.
    sunset_version: Mapped[str | None] = mapped_column(String(100))
    #: The credentials' end that a `source.needs_reauth` announced.
    reauth_for: Mapped[datetime | None] = mapped_column()


class DigestSent(Base):
    """One row per week a `digest.weekly` went out: the primary key keeps it to one."""

    __tablename__ = "digests_sent"

    #: The ISO week in KRSYNC_TIMEZONE, `2026-W49`.
    week: Mapped[str] = mapped_column(String(10), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
