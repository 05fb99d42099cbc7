from __future__ import annotations

from fastapi import APIRouter, status

from app.auth import service
from app.auth.deps import Admin, SessionDep
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from app.core.schemas import ERROR_RESPONSES, IdPath, KnownQueryOnly, Limit, Offset, Page

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"], responses=ERROR_RESPONSES)


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
