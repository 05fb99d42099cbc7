"""Key results without a mapping are reduced from their rows in one pass: same figures as by day.

`_load_stats` reduces the observations of unmapped key results directly, without grouping them by
day first and without the join to mappings. Their observations are manual ones, one per series
and day (`uq_observations_manual_day`), so the two reductions must agree on every figure; this
compares them over generated data, on every database the tests run on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, delete
from sqlalchemy.orm import Session

from app.models import Cycle, KeyResult, Objective, Observation
from app.okr.progress_service import _load_stats
from app.progress import Cycle as CycleSpan

CYCLE = CycleSpan(date(2026, 1, 1), date(2026, 3, 31))
N_KRS = 4

#: Quarters are exact in binary, so sums agree whatever order either reduction adds them in;
#: 1e300 is a stored figure past the readable bound, which both reductions must leave out.
values = st.integers(-40_000, 40_000).map(lambda n: n / 4) | st.just(1e300)
days = st.integers(-CYCLE.total_days - 3, CYCLE.total_days + 3).map(
    lambda n: CYCLE.start + timedelta(days=n)
)
series = st.sampled_from([("", "value"), ("a", "value"), ("b", "value"), ("", "numerator")])
rows = st.dictionaries(
    st.tuples(st.integers(0, N_KRS - 1), series, days), values, max_size=60
)  # keyed like uq_observations_manual_day: one manual figure per series and day


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def kr_ids(engine: Engine) -> list[int]:
    with Session(engine) as session:
        cycle = Cycle(name="q1", start_date=CYCLE.start, end_date=CYCLE.end)
        objective = Objective(title="o", cycle=cycle)
        krs = [KeyResult(title=f"kr {i}", objective=objective) for i in range(N_KRS)]
        session.add_all([cycle, objective, *krs])
        session.commit()
        return [kr.id for kr in krs]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=rows,
    as_of=st.integers(-5, CYCLE.total_days + 5).map(lambda n: CYCLE.start + timedelta(days=n)),
    baseline=st.sets(st.integers(0, N_KRS - 1)),
    split=st.sets(st.integers(0, N_KRS - 1)),
)
def test_the_rows_reduction_matches_the_daily_one(
    engine: Engine,
    kr_ids: list[int],
    data: dict[tuple[int, tuple[str, str], date], float],
    as_of: date,
    baseline: set[int],
    split: set[int],
) -> None:
    with Session(engine) as session:
        session.execute(delete(Observation))
        session.add_all(
            Observation(key_result_id=kr_ids[k], group=g, role=r, date=d, value=v)
            for (k, (g, r), d), v in data.items()
        )
        session.commit()
        baseline_ids = [kr_ids[k] for k in sorted(baseline)]

        def load(unmapped: set[int]) -> object:
            loaded = _load_stats(session, kr_ids, baseline_ids, CYCLE, as_of, {}, unmapped)
            session.rollback()  # SET LOCAL work_mem ends with the transaction
            return loaded

        by_day = load(set())
        assert load(set(kr_ids)) == by_day
        assert load({kr_ids[k] for k in split}) == by_day  # both halves in one statement
