"""API keys and the audit trail: admins only."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import Field

from app.auth import service
from app.auth.deps import Admin
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, AuditEventRead
from app.core.db import SessionDep
from app.core.schemas import (
    ERROR_RESPONSES,
    IdPath,
    IdQuery,
    IsoDate,
    KnownQueryOnly,
    Limit,
    Offset,
    Page,
    Short,
)

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"], responses=ERROR_RESPONSES)
audit_router = APIRouter(prefix="/api/v1/audit-events", tags=["audit"], responses=ERROR_RESPONSES)

#: A day of the audit trail, in UTC; bounded so the day after `to` is always a date.
AuditDay = Annotated[IsoDate, Field(ge=date(1900, 1, 1), le=date(2999, 12, 31))]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_api_key(body: ApiKeyCreate, session: SessionDep, who: Admin) -> ApiKeyCreated:
    """Create an API key; its secret is shown in `key` this once and never again."""
    row, secret = service.create_api_key(session, name=body.name, role=body.role, actor=who.name)
    return ApiKeyCreated(**ApiKeyRead.model_validate(row).model_dump(), key=secret)


@router.get("", response_model=Page[ApiKeyRead], dependencies=[KnownQueryOnly])
def list_api_keys(
    session: SessionDep, who: Admin, limit: Limit = 50, offset: Offset = 0
) -> Page[ApiKeyRead]:
    """List API keys (never their secrets)."""
    rows, total = service.list_api_keys(session, limit, offset)
    return Page(items=[ApiKeyRead.model_validate(r) for r in rows], total=total)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_api_key(key_id: IdPath, session: SessionDep, who: Admin) -> None:
    """Revoke an API key; requests with it answer 401 from now on."""
    service.revoke_api_key(session, key_id, actor=who.name)


@audit_router.get("", response_model=Page[AuditEventRead], dependencies=[KnownQueryOnly])
def list_audit_events(
    session: SessionDep,
    who: Admin,
    entity: Annotated[
        service.AuditEntity | None, Query(description="What was written: `key_result`, …")
    ] = None,
    entity_id: IdQuery = None,
    actor: Annotated[
        Short | None, Query(description="Who wrote it: `key:<name>`, `bootstrap-admin`, `cli`")
    ] = None,
    from_: Annotated[
        AuditDay | None, Query(alias="from", description="First day (UTC), inclusive")
    ] = None,
    to: Annotated[AuditDay | None, Query(description="Last day (UTC), inclusive")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AuditEventRead]:
    """Who changed what and when, newest first (never a secret: credentials read `changed`)."""
    where = service.AuditFilter(entity, entity_id, actor, from_, to)
    rows, total = service.list_audit_events(session, where, limit, offset)
    return Page(items=[AuditEventRead.model_validate(r) for r in rows], total=total)
