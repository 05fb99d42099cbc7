"""Cycles, objectives, key results, observations and check-ins (SPEC section 1)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from app.core.clock import utcnow
from app.models.base import Base, TimestampMixin


class Cycle(TimestampMixin, Base):
    __tablename__ = "cycles"

    name: Mapped[str] = mapped_column(String(200))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    #: Set by closing the cycle (SPEC section 8): its reads answer the figures frozen then.
    closed_at: Mapped[datetime | None] = mapped_column(default=None)

    objectives: Mapped[list[Objective]] = relationship(back_populates="cycle")

    @property
    def status(self) -> str:
        return "closed" if self.closed_at is not None else "open"


class Objective(TimestampMixin, Base):
    __tablename__ = "objectives"

    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str] = mapped_column(String(200), default="")
    level: Mapped[str] = mapped_column(String(16), default="team")
    team: Mapped[str] = mapped_column(String(200), default="")
    parent_key_result_id: Mapped[int | None] = mapped_column(
        ForeignKey("key_results.id", ondelete="SET NULL", use_alter=True), index=True
    )
    #: The objective of an earlier cycle this one was carried over from (SPEC section 8).
    carried_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("objectives.id", ondelete="SET NULL"), index=True
    )
    #: The ids of its copies, comma-separated, when the query asked for them
    #: (`app.okr.service.carried_to_ids`): read within the statement that loads it.
    carried_to_csv: Mapped[str | None] = query_expression()
    #: The progress read frozen when its cycle was closed (`app.okr.freeze`), or None.
    frozen_progress: Mapped[dict[str, Any] | None] = mapped_column(default=None)

    cycle: Mapped[Cycle] = relationship(back_populates="objectives")
    key_results: Mapped[list[KeyResult]] = relationship(
        back_populates="objective",
        foreign_keys="KeyResult.objective_id",
        order_by="KeyResult.id",
    )


class KeyResult(TimestampMixin, Base):
    __tablename__ = "key_results"

    objective_id: Mapped[int] = mapped_column(
        ForeignKey("objectives.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(500))
    owner: Mapped[str] = mapped_column(String(200), default="")
    unit: Mapped[str] = mapped_column(String(50), default="")
    kind: Mapped[str] = mapped_column(String(16), default="metric")
    direction: Mapped[str] = mapped_column(String(16), default="increase")
    start_value: Mapped[float | None] = mapped_column(Double)
    target_value: Mapped[float | None] = mapped_column(Double)
    target_change_pct: Mapped[float | None] = mapped_column(Double)
    aggregation: Mapped[str] = mapped_column(String(16), default="sum")
    group_rule: Mapped[str] = mapped_column(String(16), default="combine")
    weight: Mapped[float] = mapped_column(Double, default=1.0)
    #: The unfinished key result of an earlier cycle this one continues (SPEC section 8).
    carried_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("key_results.id", ondelete="SET NULL"), index=True
    )
    #: As `Objective.carried_to_csv`.
    carried_to_csv: Mapped[str | None] = query_expression()
    #: The editor's grade of a closed key result, beside the computed `score` (SPEC section 8).
    final_score: Mapped[float | None] = mapped_column(Double, default=None)
    final_score_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: As `Objective.frozen_progress`, with `sync_run_ids`: the runs whose points made it.
    frozen_progress: Mapped[dict[str, Any] | None] = mapped_column(default=None)

    objective: Mapped[Objective] = relationship(
        back_populates="key_results", foreign_keys=[objective_id]
    )


class Observation(Base):
    """One daily figure. Re-syncing a day replaces it, so the series is always the latest truth."""

    __tablename__ = "observations"
    __table_args__ = (
        UniqueConstraint("mapping_id", "group", "role", "date"),
        # Check-ins have no mapping; NULLs never collide in a unique constraint, so the day's
        # manual value gets its own partial index.
        Index(
            "uq_observations_manual_day",
            "key_result_id",
            "group",
            "role",
            "date",
            unique=True,
            postgresql_where=text("mapping_id IS NULL"),
            sqlite_where=text("mapping_id IS NULL"),
        ),
        Index("ix_observations_kr_date", "key_result_id", "date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_result_id: Mapped[int] = mapped_column(ForeignKey("key_results.id", ondelete="CASCADE"))
    mapping_id: Mapped[int | None] = mapped_column(ForeignKey("mappings.id", ondelete="CASCADE"))
    group: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default="value")
    date: Mapped[date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Double)
    sync_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("sync_runs.id", ondelete="SET NULL"), index=True
    )
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SeriesMonth(Base):
    """One series' daily values of one calendar month, reduced: what a read needs from it.

    Derived from `observations` (scale applied, unreadable figures left out, several rows of
    one day summed), and rewritten in the same transaction as every write that moves them
    (`app.okr.months`), so an uncached read adds up about twelve of these per series instead
    of scanning a year of days. The moments are taken from the month's first day (`x` = day
    of month - 1), so a read can move them to any cycle's origin exactly.
    """

    __tablename__ = "series_months"

    key_result_id: Mapped[int] = mapped_column(
        ForeignKey("key_results.id", ondelete="CASCADE"), primary_key=True
    )
    group: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: The month's first day.
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Double)
    minimum: Mapped[float] = mapped_column(Double)
    maximum: Mapped[float] = mapped_column(Double)
    last_date: Mapped[date] = mapped_column(Date)
    last_value: Mapped[float] = mapped_column(Double)
    sx: Mapped[float] = mapped_column(Double)
    sxy: Mapped[float] = mapped_column(Double)
    sxx: Mapped[float] = mapped_column(Double)


class KeyResultMonth(Base):
    """How many days of a month have any observation of a key result (readable or not)."""

    __tablename__ = "key_result_months"

    key_result_id: Mapped[int] = mapped_column(
        ForeignKey("key_results.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    days: Mapped[int] = mapped_column(Integer)


class CheckIn(TimestampMixin, Base):
    __tablename__ = "check_ins"
    __table_args__ = (Index("ix_check_ins_kr_date", "key_result_id", "date"),)

    key_result_id: Mapped[int] = mapped_column(ForeignKey("key_results.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    #: None for a note and confidence only (the one kind a key result fed by mappings takes).
    value: Mapped[float | None] = mapped_column(Double)
    note: Mapped[str] = mapped_column(Text, default="")
    confidence: Mapped[int | None] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(200), default="")
