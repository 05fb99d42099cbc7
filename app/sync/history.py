"""Run history: the sync runs of every source, newest first, as the API and the pages list them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.db import equal_to, paged
from app.core.errors import found
from app.models import DataSource, SyncRun


def list_runs(
    session: Session,
    data_source_id: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[SyncRun], int]:
    where = equal_to((SyncRun.data_source_id, data_source_id), (SyncRun.status, status))
    newest = (SyncRun.started_at.desc(), SyncRun.id.desc())
    return paged(session, select(SyncRun), where, *newest, limit=limit, offset=offset)


def get_run(session: Session, run_id: int) -> SyncRun:
    return found(session.get(SyncRun, run_id), f"sync run {run_id}")


def latest_runs(session: Session, per_source: int) -> list[SyncRun]:
    """Each source's newest ``per_source`` runs in one statement, by source then newest first."""
    rank = (
        func.row_number()
        .over(
            partition_by=SyncRun.data_source_id,
            order_by=(SyncRun.started_at.desc(), SyncRun.id.desc()),
        )
        .label("rank")
    )
    ranked = select(SyncRun.id, rank).subquery()
    return list(
        session.scalars(
            select(SyncRun)
            .join(ranked, ranked.c.id == SyncRun.id)
            .where(ranked.c.rank <= per_source)
            .order_by(SyncRun.data_source_id, SyncRun.started_at.desc(), SyncRun.id.desc())
        ).all()
    )


def sources_with_last_run(session: Session) -> list[tuple[DataSource, SyncRun | None]]:
    """Every source by name with its last-created run (None before its first)."""
    last = (
        select(SyncRun.data_source_id, func.max(SyncRun.id).label("run_id"))
        .group_by(SyncRun.data_source_id)
        .subquery()
    )
    rows = session.execute(
        select(DataSource, SyncRun)
        .outerjoin(last, last.c.data_source_id == DataSource.id)
        .outerjoin(SyncRun, SyncRun.id == last.c.run_id)
        .order_by(DataSource.name)
    ).all()
    return [(source, run) for source, run in rows]
