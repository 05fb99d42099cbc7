"""ORM factories for sources and mappings, and a clock the sync engine believes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.core import clock
from app.core.db import session_scope
from app.models import Cycle, DataSource, KeyResult, Mapping, Objective, Observation, SyncRun
from app.sync.engine import sync_now


def freeze_today(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    """The engine's 'now' becomes noon UTC of `day`."""
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    monkeypatch.setattr(clock, "utcnow", lambda: moment)


def make_kr(**over: Any) -> int:
    with session_scope() as s:
        cycle = Cycle(name="2026-Q3", start_date=date(2026, 7, 1), end_date=date(2026, 9, 30))
        obj = Objective(title="Grow", cycle=cycle)
        fields: dict[str, Any] = {"title": "kr", "target_value": 3000.0} | over
        kr = KeyResult(objective=obj, **fields)
        s.add_all([cycle, obj, kr])
        s.flush()
        return kr.id


def make_source(name: str = "demo", connector: str = "demo", **over: Any) -> int:
    with session_scope() as s:
        src = DataSource(
            name=name, connector=connector, config=over.pop("config", {"seed": 7}), **over
        )
        s.add(src)
        s.flush()
        return src.id


def make_mapping(kr_id: int, source_id: int, metric: str = "sessions", **over: Any) -> int:
    with session_scope() as s:
        m = Mapping(key_result_id=kr_id, data_source_id=source_id, metric=metric, **over)
        s.add(m)
        s.flush()
        return m.id


def observations(kr_id: int) -> list[tuple[date, str, str, float, int | None]]:
    with session_scope() as s:
        rows = s.execute(
            select(
                Observation.date,
                Observation.group,
                Observation.role,
                Observation.value,
                Observation.sync_run_id,
            )
            .where(Observation.key_result_id == kr_id)
            .order_by(Observation.date, Observation.group, Observation.role)
        ).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]


def runs(source_id: int) -> list[SyncRun]:
    with session_scope() as s:
        return list(
            s.scalars(
                select(SyncRun).where(SyncRun.data_source_id == source_id).order_by(SyncRun.id)
            )
        )


def source(source_id: int) -> DataSource:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        return src


def sync_source(
    source_id: int, *, trigger: str = "cli", window: tuple[date, date] | None = None
) -> int:
    """One sync of the source through the engine, as the CLI runs it: the run's id."""
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        return sync_now(s, src, trigger=trigger, window=window)
