"""Uncached reads add up monthly reductions kept by the writes: same figures as the raw days.

`_load_stats` reads a window's whole months from `series_months` and `key_result_months` and only
the days of months it covers in part from `observations`. Two properties, over generated data,
on every database the tests run on:

1. the figures it loads equal those the engine's own reduction (`stats_from_daily`) makes of
   the raw rows: scale applied, unreadable figures left out, several rows of a day summed,
   the baseline window, days with data, provisional days, for cycles on and off month bounds
   and an `as_of` anywhere, mid-month included;
2. after any sequence of writes through the real write paths (sync store, check-ins, mapping
   scale edits and deletes, ORM edits, and a statement no path marked), the stored months equal
   a rebuild from scratch, and the reads still equal the raw computation.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from app.core.db import make_engine
from app.core.migrate import downgrade, upgrade
from app.core.values import MAX_ABS_VALUE
from app.models import (
    CheckIn,
    Cycle,
    DataSource,
    KeyResult,
    KeyResultMonth,
    Mapping,
    Objective,
    Observation,
    SeriesMonth,
    SyncRun,
    months,
)
from app.okr import service
from app.okr.progress_service import _load_stats, _Loaded
from app.progress import Cycle as CycleSpan
from app.progress import SeriesKey, baseline_window, window
from app.progress.engine import stats_from_daily
from app.sources import service as sources_service
from app.sync import store

N_KRS = 4
#: Key results 0 and 1 are fed by mappings (two on kr 0, with scales); 2 and 3 take check-ins.
MAPPINGS = ((0, "", "value", 0.5), (0, "a", "value", -1.5), (1, "", "numerator", 2.0))
#: On month bounds and off them: partial months at both ends of W and of the baseline.
CYCLES = (
    CycleSpan(date(2026, 1, 1), date(2026, 3, 31)),
    CycleSpan(date(2026, 1, 10), date(2026, 4, 20)),
    CycleSpan(date(2026, 2, 3), date(2026, 2, 24)),
)
FIRST = date(2025, 8, 1)
LAST = date(2026, 5, 31)

#: Quarters are exact in binary, and so are their products with the scales, so every sum agrees
#: whatever order a reduction adds in; 1e300 is a stored figure past the readable bound.
readable_values = st.integers(-40_000, 40_000).map(lambda n: n / 4)
values = readable_values | st.just(1e300)
SCALES = (0.25, 0.5, 2.0, -1.5, 3.0)
days = st.integers(0, (LAST - FIRST).days).map(lambda n: FIRST + timedelta(days=n))
manual_series = st.sampled_from([("", "value"), ("a", "value"), ("", "numerator")])
manual_rows = st.dictionaries(
    st.tuples(st.integers(2, N_KRS - 1), manual_series, days), values, max_size=50
)
mapped_rows = st.dictionaries(
    st.tuples(st.integers(0, len(MAPPINGS) - 1), days), values, max_size=60
)
# A manual figure on a mapped key result too (one checked in before the mapping was made).
extra_rows = st.dictionaries(st.tuples(st.integers(0, 1), days), values, max_size=10)
cycles = st.sampled_from(CYCLES)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def ids(engine: Engine) -> tuple[list[int], list[int]]:
    """Key result ids and mapping ids (in `MAPPINGS` order)."""
    with Session(engine) as session:
        cycle = Cycle(name="c", start_date=date(2026, 1, 1), end_date=date(2026, 5, 31))
        objective = Objective(title="o", cycle=cycle)
        krs = [KeyResult(title=f"kr {i}", objective=objective) for i in range(N_KRS)]
        source = DataSource(name="s", connector="hubspot", config={}, state={})
        session.add_all([cycle, objective, *krs, source])
        session.flush()
        mappings = [
            Mapping(
                key_result_id=krs[k].id,
                data_source_id=source.id,
                metric="deals.count",
                group=g,
                role=r,
                scale=scale,
            )
            for k, g, r, scale in MAPPINGS
        ]
        session.add_all(mappings)
        session.add(SyncRun(data_source_id=source.id, trigger="manual"))
        session.commit()
        return [kr.id for kr in krs], [m.id for m in mappings]


def _reference(
    session: Session,
    kr_ids: list[int],
    baseline_ids: list[int],
    cycle: CycleSpan,
    as_of: date,
    provisional: dict[int, date],
) -> _Loaded:
    """What the loaded figures must be, reduced in Python from every raw row."""
    scales: dict[int, float] = dict(session.execute(select(Mapping.id, Mapping.scale)).all())
    rows = session.execute(
        select(
            Observation.key_result_id,
            Observation.mapping_id,
            Observation.group,
            Observation.role,
            Observation.date,
            Observation.value,
        )
    ).all()
    loaded = _Loaded()
    w = window(cycle, as_of)
    spans = ([(kr_ids, w, loaded.current)] if w else []) + [
        (baseline_ids, baseline_window(cycle), loaded.baseline)
    ]
    for wanted, (lo, hi), into in spans:
        points: dict[tuple[int, SeriesKey], list[tuple[date, float]]] = defaultdict(list)
        for kr, mapping_id, g, r, d, v in rows:
            if kr in wanted and lo <= d <= hi and abs(v) <= MAX_ABS_VALUE:
                scale = 1.0 if mapping_id is None else scales[mapping_id]
                points[(kr, (g, r))].append((d, v * scale))
        for (kr, key), pts in points.items():
            into.setdefault(kr, {})[key] = stats_from_daily(pts, cycle.start)
    if w:
        seen: dict[int, set[date]] = defaultdict(set)
        for kr, mapping_id, _g, _r, d, v in rows:
            if kr not in kr_ids or not w[0] <= d <= w[1]:
                continue
            seen[kr].add(d)
            first = provisional.get(mapping_id) if mapping_id is not None else None
            if first is not None and d >= first and abs(v) <= MAX_ABS_VALUE:
                known = loaded.provisional_from.get(kr)
                loaded.provisional_from[kr] = d if known is None else min(known, d)
        loaded.days = {kr: len(found) for kr, found in seen.items()}
    return loaded


def _check_reads(
    session: Session,
    kr_ids: list[int],
    baseline_ids: list[int],
    cycle: CycleSpan,
    as_of: date,
    provisional: dict[int, date],
) -> None:
    loaded = _load_stats(session, kr_ids, baseline_ids, cycle, as_of, provisional)
    expected = _reference(session, kr_ids, baseline_ids, cycle, as_of, provisional)
    session.rollback()
    assert loaded.current == expected.current
    assert loaded.baseline == expected.baseline
    assert loaded.days == expected.days
    assert loaded.provisional_from == expected.provisional_from


def _stored(session: Session) -> tuple[set[Any], set[Any]]:
    series = {tuple(r) for r in session.execute(select(SeriesMonth.__table__)).all()}
    kr_days = {tuple(r) for r in session.execute(select(KeyResultMonth.__table__)).all()}
    return series, kr_days


def _check_months(session: Session) -> None:
    """What the writes left equals a rebuild from the raw rows."""
    kept = _stored(session)
    for stmt in months.statements(session.get_bind().dialect.name, None):
        session.execute(stmt)
    rebuilt = _stored(session)
    session.rollback()
    assert kept == rebuilt


_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
as_ofs = st.integers(-100, 160).map(lambda n: date(2026, 1, 1) + timedelta(days=n))


@_SETTINGS
@given(
    manual=manual_rows,
    mapped=mapped_rows,
    extra=extra_rows,
    cycle=cycles,
    as_of=as_ofs,
    baseline=st.sets(st.integers(0, N_KRS - 1)),
    provisional=st.dictionaries(st.integers(0, len(MAPPINGS) - 1), days, max_size=2),
)
def test_reads_from_months_equal_the_raw_reduction(
    engine: Engine,
    ids: tuple[list[int], list[int]],
    manual: dict[tuple[int, tuple[str, str], date], float],
    mapped: dict[tuple[int, date], float],
    extra: dict[tuple[int, date], float],
    cycle: CycleSpan,
    as_of: date,
    baseline: set[int],
    provisional: dict[int, date],
) -> None:
    kr_ids, mapping_ids = ids
    with Session(engine) as session:
        session.execute(delete(Observation))  # unmarked: every month is rebuilt
        session.add_all(
            Observation(key_result_id=kr_ids[k], group=g, role=r, date=d, value=v)
            for (k, (g, r), d), v in manual.items()
        )
        session.add_all(
            Observation(
                key_result_id=kr_ids[MAPPINGS[m][0]],
                mapping_id=mapping_ids[m],
                group=MAPPINGS[m][1],
                role=MAPPINGS[m][2],
                date=d,
                value=v,
            )
            for (m, d), v in mapped.items()
        )
        session.add_all(
            Observation(key_result_id=kr_ids[k], date=d, value=v) for (k, d), v in extra.items()
        )
        session.commit()
        _check_months(session)
        _check_reads(
            session,
            kr_ids,
            [kr_ids[k] for k in sorted(baseline)],
            cycle,
            as_of,
            {mapping_ids[m]: d for m, d in provisional.items()},
        )


# --- writes ------------------------------------------------------------------------------------

writes = st.one_of(
    st.tuples(
        st.just("upsert"),
        st.integers(0, len(MAPPINGS) - 1),
        st.dictionaries(days, values, min_size=1, max_size=8),
    ),
    st.tuples(st.just("clear_window"), st.integers(0, len(MAPPINGS) - 1), days, days),
    st.tuples(st.just("replace_history"), st.integers(0, len(MAPPINGS) - 1)),
    st.tuples(st.just("scale"), st.integers(0, len(MAPPINGS) - 1), st.sampled_from(SCALES)),
    st.tuples(st.just("delete_mapping"), st.integers(0, len(MAPPINGS) - 1)),
    st.tuples(
        st.just("check_in"),
        st.integers(2, N_KRS - 1),
        st.integers(0, 150).map(lambda n: date(2026, 1, 1) + timedelta(days=n)),
        readable_values,
    ),
    st.tuples(st.just("edit_check_in"), st.integers(0, 5), st.integers(-40, 40), readable_values),
    st.tuples(st.just("delete_check_in"), st.integers(0, 5)),
    st.tuples(st.just("orm_edit"), st.integers(0, 20), st.booleans(), values),
    st.tuples(st.just("orm_delete"), st.integers(0, 20)),
    st.tuples(st.just("unmarked_update"), st.integers(0, N_KRS - 1), values),
)


def _apply(session: Session, write: tuple[Any, ...], kr_ids: list[int], mids: list[int]) -> None:
    kind = write[0]
    if kind in ("upsert", "clear_window", "replace_history", "scale", "delete_mapping"):
        mapping = session.get(Mapping, mids[write[1]])
        if mapping is None:
            return  # deleted by an earlier write
    if kind == "upsert":
        run = session.scalars(select(SyncRun.id)).first()
        assert run is not None
        rows = [
            store.Row(mapping.key_result_id, mapping.id, mapping.group, mapping.role, d, v)
            for d, v in write[2].items()
        ]
        store.upsert(session, rows, run)
    elif kind == "clear_window":
        lo, hi = sorted(write[2:4])
        store.clear_window(session, [mapping.id], lo, hi)
    elif kind == "replace_history":
        store.replace_history(session, [mapping.id])
    elif kind == "scale":
        mapping.scale = write[2]
    elif kind == "delete_mapping":
        sources_service.delete_mapping(session, mapping.id, "test")
    elif kind == "check_in":
        service.add_check_in(
            session, kr_ids[write[1]], {"date": write[2], "value": write[3], "note": ""}, "test"
        )
    elif kind in ("edit_check_in", "delete_check_in"):
        found = session.scalars(select(CheckIn).order_by(CheckIn.id)).all()
        if not found:
            return
        check_in = found[write[1] % len(found)]
        if kind == "delete_check_in":
            service.delete_check_in(session, check_in.key_result_id, check_in.id, "test")
            return
        day = min(max(check_in.date + timedelta(days=write[2]), date(2026, 1, 1)), LAST)
        service.update_check_in(
            session,
            check_in.key_result_id,
            check_in.id,
            {"date": day, "value": write[3]},
            "test",
        )
    elif kind in ("orm_edit", "orm_delete"):
        found_obs = session.scalars(select(Observation).order_by(Observation.id)).all()
        if not found_obs:
            return
        obs = found_obs[write[1] % len(found_obs)]
        if kind == "orm_delete":
            session.delete(obs)
            return
        obs.value = write[3]
        if write[2]:  # to a day of its own: no row, generated or moved, takes it
            obs.date = date(2027, 1, 1) + timedelta(days=obs.id)
    elif kind == "unmarked_update":
        session.execute(
            update(Observation)
            .where(Observation.key_result_id == kr_ids[write[1]])
            .values(value=write[2])
        )


@_SETTINGS
@given(
    seed=mapped_rows,
    steps=st.lists(writes, min_size=1, max_size=8),
    cycle=cycles,
    as_of=as_ofs,
    provisional=st.dictionaries(st.integers(0, len(MAPPINGS) - 1), days, max_size=2),
)
def test_every_write_path_keeps_the_months_exact(
    engine: Engine,
    ids: tuple[list[int], list[int]],
    seed: dict[tuple[int, date], float],
    steps: list[tuple[Any, ...]],
    cycle: CycleSpan,
    as_of: date,
    provisional: dict[int, date],
) -> None:
    kr_ids, mapping_ids = ids
    with Session(engine) as session:
        # Each example starts from the fixture's state: mappings back, no figures, no check-ins.
        session.execute(delete(Observation))
        session.execute(delete(CheckIn))
        _restore_mappings(session, kr_ids, mapping_ids)
        session.flush()  # no relationship orders the mappings' inserts before their figures
        session.add_all(
            Observation(
                key_result_id=kr_ids[MAPPINGS[m][0]],
                mapping_id=mapping_ids[m],
                group=MAPPINGS[m][1],
                role=MAPPINGS[m][2],
                date=d,
                value=v,
            )
            for (m, d), v in seed.items()
        )
        session.commit()
        for step in steps:
            _apply(session, step, kr_ids, mapping_ids)
            session.commit()
            _check_months(session)
        wanted = {mapping_ids[m]: d for m, d in provisional.items()}
        _check_reads(session, kr_ids, kr_ids, cycle, as_of, wanted)


def _restore_mappings(session: Session, kr_ids: list[int], mapping_ids: list[int]) -> None:
    source = session.scalars(select(DataSource)).one()
    for (k, g, r, scale), mapping_id in zip(MAPPINGS, mapping_ids, strict=True):
        mapping = session.get(Mapping, mapping_id)
        if mapping is None:
            session.add(
                Mapping(
                    id=mapping_id,
                    key_result_id=kr_ids[k],
                    data_source_id=source.id,
                    metric="deals.count",
                    group=g,
                    role=r,
                    scale=scale,
                )
            )
        else:
            mapping.scale = scale


def test_the_migration_fills_the_months_of_figures_already_stored(
    db_url: str, engine: Engine, ids: tuple[list[int], list[int]]
) -> None:
    kr_ids, mapping_ids = ids
    downgrade(db_url, "0008")
    rows = [
        {"key_result_id": kr_ids[2], "mapping_id": None, "date": date(2026, 1, 31), "value": 2.5},
        {"key_result_id": kr_ids[2], "mapping_id": None, "date": date(2026, 2, 1), "value": 1e300},
        {"key_result_id": kr_ids[2], "mapping_id": None, "date": date(2026, 3, 9), "value": -4.0},
        {"key_result_id": kr_ids[0], "mapping_id": mapping_ids[0], "date": date(2026, 3, 9)},
        {"key_result_id": kr_ids[0], "mapping_id": None, "date": date(2026, 3, 9), "value": 1.0},
    ]
    with engine.begin() as conn:  # no Session: the tables its hooks write don't exist yet
        conn.execute(
            insert(Observation.__table__),
            [
                {"group": "", "role": "value", "value": 8.0, "recorded_at": datetime.now(UTC), **r}
                for r in rows
            ],
        )
    upgrade(db_url)
    with Session(engine) as session:
        series, kr_days = _stored(session)
        # Readable figures of kr 2 in January and March, kr 0's day in March (one synced at
        # scale 0.5 and one checked in, summed); days with any figure, 1e300 included.
        assert {(kr, month, total) for kr, _g, _r, month, _n, total, *_ in series} == {
            (kr_ids[2], date(2026, 1, 1), 2.5),
            (kr_ids[2], date(2026, 3, 1), -4.0),
            (kr_ids[0], date(2026, 3, 1), 5.0),
        }
        assert len(kr_days) == 4
        _check_months(session)


def test_two_writers_of_one_key_result_take_turns(
    engine: Engine, ids: tuple[list[int], list[int]]
) -> None:
    """Two sources feeding one key result commit at once: the second's months hold both's
    figures (without turns it would find the first's rows in its way, or miss its figures)."""
    kr_ids, mapping_ids = ids
    day = date(2026, 3, 9)
    with Session(engine) as first, Session(engine) as second:
        run = first.scalars(select(SyncRun.id)).one()
        store.upsert(first, [store.Row(kr_ids[0], mapping_ids[0], "", "value", day, 4.0)], run)
        months.refresh(first)  # the first's months are written, not yet committed
        failures: list[BaseException] = []

        def write_second() -> None:
            try:
                row = store.Row(kr_ids[0], mapping_ids[1], "a", "value", day, 2.0)
                store.upsert(second, [row], run)
                second.commit()
            except BaseException as exc:  # reported below, in the test's thread
                failures.append(exc)

        thread = threading.Thread(target=write_second)
        thread.start()
        thread.join(timeout=0.5)  # the second waits for the first (a lock, or SQLite's)
        first.commit()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert failures == []
    with Session(engine) as session:
        _check_months(session)
        series, _ = _stored(session)
        assert {(g, total) for _kr, g, _r, _m, _n, total, *_ in series} == {("", 2.0), ("a", -3.0)}
