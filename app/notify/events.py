"""The events of SPEC section 7, and `emit`: an event into the outbox, in the caller's transaction.

Whatever changes a key result or a source calls :func:`emit` in the transaction that writes the
change. The event and one delivery row per channel that wants it are then committed with the
change or rolled back with it, so no event is sent for a change that did not happen and none is
lost for one that did, whatever happens to the process afterwards: the dispatcher
(:mod:`app.notify.dispatch`) sends what the table holds.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.core import clock
from app.models import NotificationChannel, NotificationDelivery, NotificationEvent

EventType = Literal[
    "key_result.status_changed",
    "key_result.done",
    "source.failing",
    "source.needs_reauth",
    "source.paused",
    "source.recovered",
    "source.api_version_sunset",
    "check_in.reminder",
    "digest.weekly",
    "cycle.closed",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
#: What a channel's test sends; not an event a channel subscribes to.
TEST_EVENT = "notification.test"
#: What a channel may be narrowed to; an event names the values it concerns.
SCOPE_KEYS = ("cycle_id", "objective_id", "team", "owner")


def message_id() -> str:
    """A `webhook-id`: unique per event, the same on every retry (Standard Webhooks' `msg_…`)."""
    return f"msg_{secrets.token_urlsafe(18)}"


def event_body(type_: str, data: Mapping[str, Any], at: datetime) -> str:
    """The JSON every channel is built from, and what a webhook receives byte for byte."""
    stamp = at.isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"type": type_, "timestamp": stamp, "data": dict(data)},
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )


def _values(value: Any) -> set[Any]:
    if value is None:
        return set()
    if isinstance(value, list | tuple | set | frozenset):
        return {v for v in value if v is not None}
    return {value}


def matches(channel_scope: Mapping[str, Any] | None, event_scope: Mapping[str, Any]) -> bool:
    """Whether an event concerns what the channel is narrowed to.

    Each key the channel sets must be among the event's values for it (an event about a source
    feeding two teams names both). An event that says nothing of a key the channel narrows on
    does not match it: a team's channel hears of its team, not of everything.
    """
    for key, wanted in (channel_scope or {}).items():
        if wanted is None:
            continue
        if wanted not in _values(event_scope.get(key)):
            return False
    return True


def emit(
    session: Session,
    type: EventType,
    data: Mapping[str, Any],
    scope: Mapping[str, Any] | None = None,
) -> NotificationEvent | None:
    """Write an event and its deliveries to every enabled channel that wants it; flush only.

    ``scope`` holds what the event concerns (``cycle_id``, ``objective_id``, ``team``,
    ``owner``; a value or a list of values). The caller commits, with the change that caused
    the event. Returns the event, or None when no channel wants it (nothing is written then).
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}; one of {', '.join(EVENT_TYPES)}")
    event_scope = {k: v for k, v in (scope or {}).items() if k in SCOPE_KEYS}
    channels = session.execute(
        select(NotificationChannel.id, NotificationChannel.events, NotificationChannel.scope)
        .where(NotificationChannel.enabled.is_(True))
        .order_by(NotificationChannel.id)
    ).all()
    wanted = [
        row.id for row in channels if type in (row.events or ()) and matches(row.scope, event_scope)
    ]
    if not wanted:
        return None
    now = clock.utcnow()
    event = NotificationEvent(
        type=type,
        message_id=message_id(),
        body=event_body(type, data, now),
        scope=_jsonable_scope(event_scope),
        created_at=now,
    )
    session.add(event)
    session.flush()
    _queue(session, [(event.id, channel_id) for channel_id in wanted], now)
    return event


def _queue(session: Session, pairs: list[tuple[int, int]], now: datetime) -> None:
    """One pending delivery per (event, channel), due now."""
    session.execute(
        insert(NotificationDelivery),
        [
            {
                "event_id": event_id,
                "channel_id": channel_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "attempt_log": [],
                "created_at": now,
            }
            for event_id, channel_id in pairs
        ],
    )


def emit_many(
    session: Session,
    events: Sequence[tuple[EventType, Mapping[str, Any], Mapping[str, Any] | None]],
) -> int:
    """:func:`emit` for many events at once (an evaluation that finds many changes): the
    channels read once, the events and their deliveries written in one statement each.

    Returns how many events were written (those no channel wants are not).
    """
    for type_, _, _ in events:
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}; one of {', '.join(EVENT_TYPES)}")
    if not events:
        return 0
    channels = session.execute(
        select(NotificationChannel.id, NotificationChannel.events, NotificationChannel.scope)
        .where(NotificationChannel.enabled.is_(True))
        .order_by(NotificationChannel.id)
    ).all()
    now = clock.utcnow()
    rows: list[dict[str, Any]] = []
    wanted: list[list[int]] = []
    for type_, data, scope in events:
        event_scope = {k: v for k, v in (scope or {}).items() if k in SCOPE_KEYS}
        ids = [
            row.id
            for row in channels
            if type_ in (row.events or ()) and matches(row.scope, event_scope)
        ]
        if not ids:
            continue
        wanted.append(ids)
        rows.append(
            {
                "type": type_,
                "message_id": message_id(),
                "body": event_body(type_, data, now),
                "scope": _jsonable_scope(event_scope),
                "created_at": now,
            }
        )
    if not rows:
        return 0
    event_ids = session.scalars(
        insert(NotificationEvent).returning(NotificationEvent.id, sort_by_parameter_order=True),
        rows,
    ).all()
    pairs = [
        (event_id, channel_id)
        for event_id, ids in zip(event_ids, wanted, strict=True)
        for channel_id in ids
    ]
    _queue(session, pairs, now)
    return len(rows)


def _jsonable_scope(scope: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: sorted(v, key=str) if isinstance(v, set | frozenset) else v for k, v in scope.items()
    }
