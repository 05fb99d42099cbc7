"""API keys (stored hashed, shown once) and the audit trail every write leaves."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db import paged
from app.core.errors import InvalidInput, found
from app.models import ApiKey, AuditEvent

Role = Literal["viewer", "editor", "admin"]
#: What the audit trail records writes to; typed, so a new kind of write must be named here
#: (and becomes a filter value of `GET /api/v1/audit-events`).
AuditEntity = Literal[
    "cycle",
    "objective",
    "key_result",
    "check_in",
    "data_source",
    "mapping",
    "api_key",
    "oauth_app",
    "notification_channel",
    "retrospective_entry",
]
AUDIT_ENTITIES: tuple[str, ...] = get_args(AuditEntity)
ROLE_RANK: dict[str, int] = {"viewer": 0, "editor": 1, "admin": 2}
KEY_PREFIX = "krs_"
# Writing last_used_at on every request would turn each read into a write; a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    key_id: int | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, *, name: str, role: Role, actor: str) -> tuple[ApiKey, str]:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, role=role, key_hash=hash_key(secret), prefix=secret[:10])
    session.add(row)
    session.flush()
    audit(session, actor, "create", "api_key", row.id, {"name": name, "role": role})
    return row, secret


def list_api_keys(session: Session, limit: int, offset: int) -> tuple[list[ApiKey], int]:
    return paged(session, select(ApiKey), [], ApiKey.id, limit=limit, offset=offset)


def revoke_api_key(session: Session, key_id: int, *, actor: str) -> None:
    row = found(session.get(ApiKey, key_id), f"API key {key_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    audit(session, actor, "revoke", "api_key", key_id, {})


def bootstrap_principal(presented: str, admin_key: str | None) -> Principal | None:
    """The ``KRSYNC_ADMIN_KEY`` holder, compared in constant time; None for any other key."""
    if admin_key and hmac.compare_digest(presented.encode(), admin_key.encode()):
        return Principal(name="bootstrap-admin", role="admin", key_id=None)
    return None


def authenticate(session: Session, presented: str, admin_key: str | None) -> Principal | None:
    """The bootstrap key first; stored keys are found by their hash."""
    if (bootstrap := bootstrap_principal(presented, admin_key)) is not None:
        return bootstrap
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(presented)))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    role: Role = row.role  # type: ignore[assignment]
    return Principal(name=f"key:{row.name}", role=role, key_id=row.id)


def audit(
    session: Session,
    actor: str,
    action: str,
    entity: AuditEntity,
    entity_id: int | None,
    changes: dict[str, Any],
) -> None:
    session.add(
        AuditEvent(actor=actor, action=action, entity=entity, entity_id=entity_id, changes=changes)
    )


@dataclass(frozen=True)
class AuditFilter:
    """`start`/`end` are calendar days in UTC, both inclusive."""

    entity: AuditEntity | None = None
    entity_id: int | None = None
    actor: str | None = None
    start: date | None = None
    end: date | None = None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def list_audit_events(
    session: Session, where: AuditFilter, limit: int, offset: int
) -> tuple[list[AuditEvent], int]:
    """Newest first."""
    if where.start is not None and where.end is not None and where.end < where.start:
        raise InvalidInput("'to' must be on or after 'from'", field="to")
    conditions = []
    if where.entity is not None:
        conditions.append(AuditEvent.entity == where.entity)
    if where.entity_id is not None:
        conditions.append(AuditEvent.entity_id == where.entity_id)
    if where.actor is not None:
        conditions.append(AuditEvent.actor == where.actor)
    if where.start is not None:
        conditions.append(AuditEvent.at >= _midnight(where.start))
    if where.end is not None:
        conditions.append(AuditEvent.at < _midnight(where.end + timedelta(days=1)))
    newest = (AuditEvent.at.desc(), AuditEvent.id.desc())
    return paged(session, select(AuditEvent), conditions, *newest, limit=limit, offset=offset)
