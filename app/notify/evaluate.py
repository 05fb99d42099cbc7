"""The events of SPEC section 7, decided: which changes are news, and when.

Two kinds of cause:

- **A change that happens** (a sync run's outcome, a check-in, a key result's edit): the caller
  passes what changed, in its own transaction, and the events are written with it
  (:func:`source_health_changed`, :func:`key_results_changed`).
- **Time that passes** (expected progress moves with the calendar, credentials near their end,
  an API version nears retirement, a week of silence, Monday morning): :func:`evaluate_all`,
  run hourly by the scheduler's leader and by ``krsync notify evaluate``.

One change gives one event, never one per evaluation: what was last announced is kept
(``app.models.event_state``), and an evaluation that finds the same facts says nothing. The
rules, precisely:

- ``key_result.status_changed``: the computed status differs from the last announced one.
  The first status seen of a key result is recorded silently (a deploy or a new key result
  floods no channel). **Flapping**: within :data:`FLAP_WINDOW` (24 hours) of a key result's
  last event, a return to the status that event left (A → B announced, then back to A) is
  held: no event, nothing recorded. If the key result still stands at A once the window has
  passed, the next evaluation (at the latest the hourly job) announces B → A; if it went on
  to B again, nothing was ever due. A move to a third status is announced at once.
- ``key_result.done``: the first time a key result's status is ``done``; once per key result.
- ``source.failing`` when a source that was healthy or degraded has a failed run;
  ``source.needs_reauth`` when it becomes so (a refused credential at a run, or credentials
  within 7 days of their end, found by the evaluation once per end date); ``source.paused``
  when a run pauses it; ``source.recovered`` when a run brings a failing, paused or
  needs-reauth source back to healthy or degraded. A resume (paused → failing) is no news.
- ``source.api_version_sunset``: the source's API version retires within 60 days; once per
  source and version.
- ``check_in.reminder``: a key result of a running cycle with neither mappings nor roll-up,
  whose last check-in (or creation) is 7 days old or more; then again only after 7 more days
  of silence (once per 7-day gap).
- ``digest.weekly``: the first evaluation at or after Monday 09:00 in ``KRSYNC_TIMEZONE`` sends
  the week's digest; a row per ISO week (its primary key) keeps it to one however many
  replicas or runs try.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from app.core import clock
from app.core.db import among_bound, get_sessionmaker
from app.core.settings import get_settings
from app.models import (
    CheckIn,
    Cycle,
    DataSource,
    DigestSent,
    KeyResult,
    KeyResultEventState,
    Mapping,
    Objective,
    SourceEventState,
)
from app.notify.events import EventType, emit, emit_many
from app.okr.progress_service import ProgressCalculator, definition
from app.progress import Progress, validate_definition
from app.sync.source_health import HealthChange, health_of, reason_of

log = logging.getLogger("krsync.events")

#: A return to the status a key result's last event left, within this, is held (flapping).
FLAP_WINDOW = timedelta(hours=24)
#: No check-in on a manual key result for this long sends a reminder.
REMINDER_AFTER = timedelta(days=7)
#: The weekly digest: Monday (ISO weekday 1) at 09:00 in KRSYNC_TIMEZONE.
DIGEST_WEEKDAY = 1
DIGEST_AT = time(9, 0)
_OK = ("healthy", "degraded")
_BROKEN = ("failing", "needs_reauth", "paused")


def local_now(now: datetime | None = None) -> datetime:
    """Now in KRSYNC_TIMEZONE: the calendar the daily evaluation and the digest follow."""
    return (now or clock.utcnow()).astimezone(ZoneInfo(get_settings().timezone))


# --- sources -----------------------------------------------------------------------------------


def _source_scope(session: Session, source_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """What each source feeds, as scope values: a team's channel hears of its team's sources."""
    scopes: dict[int, dict[str, set[Any]]] = {
        s: {"cycle_id": set(), "objective_id": set(), "team": set(), "owner": set()}
        for s in source_ids
    }
    if not source_ids:
        return {}
    rows = session.execute(
        select(
            Mapping.data_source_id,
            Objective.cycle_id,
            Objective.id,
            Objective.team,
            Objective.owner,
            KeyResult.owner,
        )
        .join(KeyResult, KeyResult.id == Mapping.key_result_id)
        .join(Objective, Objective.id == KeyResult.objective_id)
        .where(Mapping.data_source_id.in_(source_ids))
    )
    for source_id, cycle_id, objective_id, team, obj_owner, kr_owner in rows:
        scope = scopes[source_id]
        scope["cycle_id"].add(cycle_id)
        scope["objective_id"].add(objective_id)
        if team:
            scope["team"].add(team)
        scope["owner"].update(o for o in (obj_owner, kr_owner) if o)
    return {s: {k: sorted(v, key=str) for k, v in scope.items()} for s, scope in scopes.items()}


def _source_data(source: DataSource, now: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "source": {"id": source.id, "name": source.name, "connector": source.connector},
        "health": health_of(source, now),
        "consecutive_failures": source.consecutive_failures or 0,
        "reason": reason_of(source, now),
        **extra,
    }


def source_health_changed(
    session: Session, source: DataSource, change: HealthChange, *, error: str | None = None
) -> list[str]:
    """The ``source.*`` events of one health transition, in the transaction that made it.

    Returns the event types written (whether or not a channel wanted them).
    """
    old, new = change.old, change.new
    types: list[str] = []
    if change.paused or (new == "paused" and old != "paused"):
        types.append("source.paused")
    elif new == "failing" and old in _OK:
        types.append("source.failing")
    elif new == "needs_reauth" and old != "needs_reauth":
        types.append("source.needs_reauth")
    elif new in _OK and old in _BROKEN:
        types.append("source.recovered")
    if not types:
        return types
    now = clock.utcnow()
    scope = _source_scope(session, [source.id]).get(source.id, {})
    data = _source_data(source, now, previous_health=old)
    if error is not None:
        data["error"] = error
    for type_ in types:
        emit(session, type_, data, scope)  # type: ignore[arg-type]
    if "source.needs_reauth" in types and source.credentials_expire_at is not None:
        _source_state(session, source.id).reauth_for = source.credentials_expire_at
    return types


def _source_state(session: Session, source_id: int) -> SourceEventState:
    state = session.get(SourceEventState, source_id)
    if state is None:
        state = SourceEventState(data_source_id=source_id)
        session.add(state)
    return state


def evaluate_sources(session: Session, now: datetime | None = None) -> int:
    """Credentials near their end and API versions near retirement: once per end and version."""
    from app.sources.service import source_api_version
    from app.sync.source_health import REAUTH_WITHIN, sunset_notice
    from connectors.registry import UnknownConnectorError, get_connector

    now = now or clock.utcnow()
    sources = list(session.scalars(select(DataSource).order_by(DataSource.id)))
    states = {s.data_source_id: s for s in session.scalars(select(SourceEventState))}
    written = 0
    scopes: dict[int, dict[str, Any]] | None = None
    for source in sources:
        state = states.get(source.id)
        end = source.credentials_expire_at
        due: list[tuple[str, dict[str, Any]]] = []
        if (
            end is not None
            and end - now <= REAUTH_WITHIN
            and source.paused_at is None
            and (state is None or state.reauth_for != end)
        ):
            due.append(("source.needs_reauth", {"credentials_expire_at": end.isoformat()}))
            state = state or _source_state(session, source.id)
            state.reauth_for = end
        version, sunset = source_api_version(source)
        if version is not None and sunset is not None:
            try:
                name = get_connector(source.connector).name
            except UnknownConnectorError:
                name = source.connector
            notice = sunset_notice(name, version, sunset, now.date())
            if notice is not None and (state is None or state.sunset_version != version):
                due.append(
                    (
                        "source.api_version_sunset",
                        {
                            "api_version": version,
                            "api_version_sunset": sunset.isoformat(),
                            "notice": notice,
                        },
                    )
                )
                state = state or _source_state(session, source.id)
                state.sunset_version = version
        if due:
            if scopes is None:
                scopes = _source_scope(session, [s.id for s in sources])
            for type_, extra in due:
                emit(session, type_, _source_data(source, now, **extra), scopes.get(source.id))  # type: ignore[arg-type]
                written += 1
    return written


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# --- key results -------------------------------------------------------------------------------


@functools.cache
def _parents_of(dialect: str) -> Select[int | None]:
    """The roll-ups right above the key results ``ids``; built once, the ids bound at run."""
    return (
        select(Objective.parent_key_result_id)
        .join(KeyResult, KeyResult.objective_id == Objective.id)
        .where(
            among_bound(dialect, KeyResult.id, "ids"),
            Objective.parent_key_result_id.is_not(None),
        )
    )


def _with_rollups(session: Session, kr_ids: Iterable[int]) -> list[int]:
    """The key results and every roll-up above them: one statement per level of alignment."""
    found = set(kr_ids)
    frontier = set(found)
    while frontier:
        parents = set(session.scalars(_parents_of(_dialect(session)), {"ids": sorted(frontier)}))
        frontier = {p for p in parents if p is not None} - found
        found |= frontier
    return sorted(found)


def _kr_data(kr: KeyResult, obj: Objective) -> dict[str, Any]:
    return {
        "key_result": {
            "id": kr.id,
            "title": kr.title,
            "owner": kr.owner,
            "unit": kr.unit,
            "kind": kr.kind,
        },
        "objective": {"id": obj.id, "title": obj.title, "team": obj.team, "owner": obj.owner},
        "cycle": {"id": obj.cycle.id, "name": obj.cycle.name},
    }


def _kr_scope(kr: KeyResult, obj: Objective, *, owner_only: bool = False) -> dict[str, Any]:
    owners = [kr.owner] if owner_only else [o for o in dict.fromkeys((kr.owner, obj.owner)) if o]
    return {
        "cycle_id": obj.cycle_id,
        "objective_id": obj.id,
        "team": obj.team or None,
        "owner": [o for o in owners if o],
    }


def _progress_data(p: Progress) -> dict[str, Any]:
    return {
        "progress": p.progress,
        "current_value": p.current_value,
        "start_value": p.start_value,
        "target_value": p.target_value,
        "expected_progress": p.expected_progress,
        "as_of": p.as_of.isoformat(),
        "stale": p.stale,
    }


@dataclass
class StatusReport:
    evaluated: int = 0
    changed: int = 0
    held: int = 0
    done: int = 0


def key_results_changed(session: Session, kr_ids: Iterable[int]) -> StatusReport:
    """After a write that moves these key results (a check-in, an edit, a sync): their statuses,
    and those of the roll-ups above them, evaluated in the writer's transaction."""
    ids = list(dict.fromkeys(kr_ids))
    if not ids:
        return StatusReport()
    return evaluate_statuses(session, _with_rollups(session, ids))[0]


@functools.cache
def _objectives_of(dialect: str, *, every: bool) -> Select[Objective]:
    """The objectives of the key results ``ids`` (or every one), with their key results (in
    the relationship's order, by id) and cycle joined; built once, the ids bound at execution."""
    query = select(Objective).options(
        joinedload(Objective.key_results), joinedload(Objective.cycle)
    )
    if not every:
        query = query.where(
            Objective.id.in_(
                select(KeyResult.objective_id).where(among_bound(dialect, KeyResult.id, "ids"))
            )
        )
    return query.order_by(Objective.id)


@functools.cache
def _states_of(dialect: str) -> Select[KeyResultEventState]:
    """The last announced states of the key results ``ids``, locked on PostgreSQL so that two
    evaluations at once (a check-in and the hourly job) never both announce one change."""
    return (
        select(KeyResultEventState)
        .where(among_bound(dialect, KeyResultEventState.key_result_id, "ids"))
        .order_by(KeyResultEventState.key_result_id)
        .with_for_update()
    )


def evaluate_statuses(
    session: Session, kr_ids: Sequence[int] | None = None, now: datetime | None = None
) -> tuple[StatusReport, dict[int, Progress], dict[int, KeyResult]]:
    """Every key result's status (or those named), compared with the last announced one.

    Progress is computed batched (a fixed number of statements per cycle, as the dashboard
    does); the states are read in one statement, locked on PostgreSQL so that two evaluations
    at once (a check-in and the hourly job) never both announce one change.
    """
    now = now or clock.utcnow()
    as_of = local_now(now).date()
    if kr_ids is not None and not kr_ids:
        return StatusReport(), {}, {}
    dialect = _dialect(session)
    # One statement: the key results and the cycle joined to their objectives (a run's commit
    # evaluates its source's key results, a statement per relation was a round trip each).
    objectives = list(
        session.scalars(
            _objectives_of(dialect, every=kr_ids is None),
            {} if kr_ids is None else {"ids": list(kr_ids)},
        ).unique()
    )
    krs = {kr.id: kr for obj in objectives for kr in obj.key_results}
    by_obj = {obj.id: obj for obj in objectives}
    wanted = sorted(krs) if kr_ids is None else [k for k in kr_ids if k in krs]
    # A definition the API would refuse (written around it) has no status: it must not keep
    # every other key result's events back.
    wanted = [k for k in wanted if validate_definition(definition(krs[k])) is None]
    calc = ProgressCalculator(session, as_of)
    try:
        calc.run(objectives, only=wanted)
    except ValueError as exc:  # a roll-up over such a definition
        log.warning("key result statuses not evaluated: %s", exc)
        return StatusReport(), {}, krs
    results = {k: calc.kr_results[k] for k in wanted if k in calc.kr_results}
    report = StatusReport(evaluated=len(results))
    states = {
        s.key_result_id: s for s in session.scalars(_states_of(dialect), {"ids": list(results)})
    }
    fresh = [
        {
            "key_result_id": k,
            "status": p.status,
            "evaluated_at": now,
            "done_at": now if p.status == "done" else None,
        }
        for k, p in results.items()
        if k not in states
    ]
    if fresh:
        # Recorded silently; another evaluation that got there first keeps its row.
        insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(insert_fn(KeyResultEventState).on_conflict_do_nothing(), fresh)
    due: list[tuple[EventType, dict[str, Any], dict[str, Any] | None]] = []
    for kr_id, state in states.items():
        p = results[kr_id]
        new = p.status
        if new == state.status:
            continue
        if (
            state.changed_at is not None
            and now - state.changed_at < FLAP_WINDOW
            and new == state.previous_status
        ):
            report.held += 1
            continue
        kr = krs[kr_id]
        obj = by_obj[kr.objective_id]
        data = {
            **_kr_data(kr, obj),
            "old_status": state.status,
            "new_status": new,
            "progress": _progress_data(p),
            "forecast": {"value": p.forecast_value, "progress": p.forecast_progress},
        }
        scope = _kr_scope(kr, obj)
        due.append(("key_result.status_changed", data, scope))
        report.changed += 1
        state.previous_status, state.status = state.status, new
        state.changed_at = state.evaluated_at = now
        if new == "done" and state.done_at is None:
            due.append(("key_result.done", data, scope))
            state.done_at = now
            report.done += 1
    # In the order they were found, in one statement each for the events and the deliveries.
    emit_many(session, due)
    session.flush()
    return report, results, krs


# --- reminders ---------------------------------------------------------------------------------


def remind_check_ins(session: Session, now: datetime | None = None) -> int:
    """Manual key results of running cycles whose owner has been silent for 7 days or more."""
    now = now or clock.utcnow()
    today = local_now(now).date()
    has_mapping = select(Mapping.id).where(Mapping.key_result_id == KeyResult.id).exists()
    last_check_in = (
        select(CheckIn.key_result_id, func.max(CheckIn.created_at).label("at"))
        .group_by(CheckIn.key_result_id)
        .subquery()
    )
    rows = session.execute(
        select(KeyResult, last_check_in.c.at, KeyResultEventState)
        .join(Objective, Objective.id == KeyResult.objective_id)
        .join(Cycle, Cycle.id == Objective.cycle_id)
        .outerjoin(last_check_in, last_check_in.c.key_result_id == KeyResult.id)
        .outerjoin(KeyResultEventState, KeyResultEventState.key_result_id == KeyResult.id)
        .where(
            KeyResult.kind != "rollup",
            ~has_mapping,
            Cycle.start_date <= today,
            Cycle.end_date >= today,
            Cycle.closed_at.is_(None),  # a closed cycle is final: no check-in is asked for
        )
        .options(selectinload(KeyResult.objective).selectinload(Objective.cycle))
        .order_by(KeyResult.id)
    ).all()
    sent = 0
    for kr, last_at, state in rows:
        last = _aware(last_at) if last_at is not None else None
        since = max(x for x in (last, kr.created_at) if x is not None)
        reference = max(since, state.reminded_at) if state and state.reminded_at else since
        if now - reference < REMINDER_AFTER:
            continue
        obj = kr.objective
        data = {
            **_kr_data(kr, obj),
            "days_since_check_in": (now - since).days,
            "last_check_in_at": last.isoformat() if last else None,
        }
        emit(session, "check_in.reminder", data, _kr_scope(kr, obj, owner_only=True))
        if state is None:
            state = KeyResultEventState(key_result_id=kr.id, status="no_data", evaluated_at=now)
            session.add(state)
        state.reminded_at = now
        sent += 1
    session.flush()
    return sent


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- the weekly digest -------------------------------------------------------------------------


def digest_due(now: datetime | None = None) -> tuple[str, datetime] | None:
    """This week's name and its Monday 09:00 (local) once that moment has passed, else None."""
    local = local_now(now)
    monday = local.date() - timedelta(days=local.isoweekday() - DIGEST_WEEKDAY)
    start = datetime.combine(monday, DIGEST_AT, tzinfo=local.tzinfo)
    if local < start:
        return None
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}", start


def send_weekly_digest(
    session: Session, progress: dict[int, Progress], now: datetime | None = None
) -> bool:
    """The week's digest unless it went out already; the caller commits (or rolls back on the
    IntegrityError another replica's digest of the same week raises)."""
    now = now or clock.utcnow()
    due = digest_due(now)
    if due is None:
        return False
    week, start = due
    if session.get(DigestSent, week) is not None:
        return False
    session.execute(insert(DigestSent).values(week=week, sent_at=now))
    session.flush()
    krs = {
        kr.id: kr
        for kr in session.scalars(
            select(KeyResult).options(
                selectinload(KeyResult.objective).selectinload(Objective.cycle)
            )
        )
    }
    since = start - timedelta(days=7)
    today = local_now(now).date()
    moved = session.execute(
        select(KeyResultEventState, KeyResult.title)
        .join(KeyResult, KeyResult.id == KeyResultEventState.key_result_id)
        .where(KeyResultEventState.changed_at >= since)
        .order_by(KeyResultEventState.changed_at)
    ).all()
    running: dict[int, Cycle] = {}
    for kr in krs.values():
        cycle = kr.objective.cycle
        if cycle.start_date <= today <= cycle.end_date and cycle.closed_at is None:
            running[kr.id] = cycle
    at_risk = [
        {"id": k, "title": krs[k].title, "status": p.status, "progress": p.progress}
        for k, p in sorted(progress.items())
        if k in running and p.status in ("at_risk", "off_track")
    ]
    stale = [
        {"id": k, "title": krs[k].title}
        for k, p in sorted(progress.items())
        if k in running and p.stale
    ]
    unhealthy = [
        {"id": s.id, "name": s.name, "health": health_of(s, now)}
        for s in session.scalars(select(DataSource).order_by(DataSource.id))
        if health_of(s, now) != "healthy"
    ]
    data = {
        "week": week,
        "from": since.isoformat(),
        "to": start.isoformat(),
        "moved": [
            {
                "id": state.key_result_id,
                "title": title,
                "old_status": state.previous_status,
                "new_status": state.status,
            }
            for state, title in moved
        ],
        "at_risk": at_risk,
        "stale": stale,
        "unhealthy_sources": unhealthy,
    }
    # A channel narrowed to a running cycle gets the digest; one narrowed further (a team, an
    # owner) does not: the digest is about everyone.
    cycles = sorted({cycle.id for cycle in running.values()})
    emit(session, "digest.weekly", data, {"cycle_id": cycles})
    return True


# --- all of it, for the scheduler and the CLI --------------------------------------------------


@dataclass
class EvaluationReport:
    statuses: StatusReport
    sources: int = 0
    reminders: int = 0
    digest: bool = False
    seconds: float = 0.0


def evaluate_all(now: datetime | None = None) -> EvaluationReport:
    """Everything time moves, each in its own transaction so one failing keeps no other back."""
    import time as _time

    started = _time.monotonic()
    now = now or clock.utcnow()
    maker = get_sessionmaker()
    with maker() as session, session.begin():
        statuses, progress, _ = evaluate_statuses(session, None, now)
        report = EvaluationReport(statuses)
        report.reminders = remind_check_ins(session, now)
    with maker() as session, session.begin():
        report.sources = evaluate_sources(session, now)
    if digest_due(now) is not None:
        try:
            with maker() as session, session.begin():
                report.digest = send_weekly_digest(session, progress, now)
        except IntegrityError:
            log.info("the weekly digest went out from another process")
    report.seconds = _time.monotonic() - started
    return report
