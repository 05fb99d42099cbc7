"""The progress revision: bumped in the same transaction as any write that can move progress.

Readers key their caches by it, so a cached dashboard is exact until the next write on any
replica, and costs one primary-key read to validate. The hooks sit on every Session, so no write
path (API, sync engine, CLI) can forget it.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from sqlalchemy import BigInteger, String, event, select, update
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, UOWTransaction, mapped_column

from app.models.base import Base


class Revision(Base):
    __tablename__ = "revisions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


PROGRESS = "progress"
#: Tables whose rows feed progress, status, forecasts or staleness.
PROGRESS_TABLES = frozenset(
    {"cycles", "objectives", "key_results", "observations", "check_ins", "mappings", "data_sources"}
)
_FLAG = "krsync_progress_changed"


def current(session: Session) -> int:
    return session.scalar(select(Revision.value).where(Revision.name == PROGRESS)) or 0


def changed(session: Session) -> None:
    """A write that went around the ORM (on the session's connection) moved progress: the
    revision is bumped at the commit, as for the writes the hooks below see."""
    session.info[_FLAG] = True


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _ctx: UOWTransaction) -> None:
    for obj in chain(session.new, session.dirty, session.deleted):
        if getattr(obj, "__tablename__", None) in PROGRESS_TABLES:
            session.info[_FLAG] = True
            return


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table: Any = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in PROGRESS_TABLES:
            state.session.info[_FLAG] = True


#: Built once: every commit that moves progress runs it.
_BUMP = update(Revision).where(Revision.name == PROGRESS).values(value=Revision.value + 1)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    session.flush()
    if session.info.pop(_FLAG, False):
        # On the session's connection: the ORM's bulk update would look for the row among the
        # session's objects first, and no reader keeps it in a session.
        session.connection().execute(_BUMP)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)
