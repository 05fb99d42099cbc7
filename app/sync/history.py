"""Run history: the sync runs of every source, newest first, as the API and the pages list them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.models import SyncRun


def list_runs(
    session: Session,
    data_source_id: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[SyncRun], int]:
    where = []
    if data_source_id is not None:
        where.append(SyncRun.data_source_id == data_source_id)
    if status is not None:
        where.append(SyncRun.status == status)
    total = session.scalar(select(func.count()).select_from(SyncRun).where(*where)) or 0
    rows = session.scalars(
        select(SyncRun)
        .where(*where)
        .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def get_run(session: Session, run_id: int) -> SyncRun:
    run = session.get(SyncRun, run_id)
    if run is None:
        raise NotFound(f"sync run {run_id} not found")
    return run
