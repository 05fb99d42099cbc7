"""What a cycle's look back keeps: the retrospective's entries (SPEC section 8)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin


class RetrospectiveEntry(TimestampMixin, Base):
    __tablename__ = "retrospective_entries"

    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"), index=True)
    #: An entry about one objective; deleting the objective keeps what was learned, unlinked.
    objective_id: Mapped[int | None] = mapped_column(
        ForeignKey("objectives.id", ondelete="SET NULL"), index=True
    )
    format: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(200), default="")
