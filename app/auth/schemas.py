from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from app.core.schemas import Name, StrictModel


class ApiKeyCreate(StrictModel):
    name: Name
    role: Literal["viewer", "editor", "admin"]


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str


class AuditEventRead(BaseModel):
    """`changes` is `{field: [old, new]}` for an update, the fields given for a create, and what
    went with a delete; a credential shows only as `"changed"`."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    actor: str
    action: str
    entity: str
    entity_id: int | None
    changes: dict[str, Any]
    at: datetime
