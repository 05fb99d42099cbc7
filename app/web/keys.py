"""The API keys page: create (the secret shown once), list and revoke, for admins.

The same service functions and the same pydantic schema as `/api/v1/api-keys`, so a name the
API refuses is refused here with the same words, beside the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth import service
from app.auth.schemas import ApiKeyCreate, ApiKeyRead
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.models import ApiKey
from app.web.pages import PageUser, field_errors, page_principal, path_id, refusal, render

router = APIRouter(include_in_schema=False)

AdminPage = Annotated[PageUser, Depends(page_principal("admin"))]
ROLES = ("viewer", "editor", "admin")
ROLE_HELP = {
    "viewer": "reads everything but data sources and keys",
    "editor": "also writes OKRs and check-ins",
    "admin": "everything: sources, mappings, syncs and keys",
}
_MAX_KEYS = 500


def _keys_page(
    request: Request,
    session: Session,
    user: PageUser,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rows, total = service.list_api_keys(session, _MAX_KEYS, 0)
    context: dict[str, Any] = {
        "principal": user.principal,
        "keys": [ApiKeyRead.model_validate(r) for r in rows],
        "total": total,
        "roles": ROLES,
        "role_help": ROLE_HELP,
        "errors": errors or {},
        "values": values or {"name": "", "role": "viewer"},
    }
    return render(request, "keys/index.html", context, status_code)


def _key(session: Session, key_id: str) -> ApiKey | None:
    kid = path_id(key_id)
    return session.get(ApiKey, kid) if kid else None


@router.get("/keys")
def keys_page(request: Request, session: SessionDep, user: AdminPage) -> Response:
    """The API keys: who may call krsync, with which role, and when they last did."""
    return _keys_page(request, session, user)


@router.post("/keys")
def create_key(
    request: Request,
    session: SessionDep,
    user: AdminPage,
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
) -> Response:
    """Create a key and show its secret this once."""
    values = {"name": name, "role": role}
    try:
        body = ApiKeyCreate.model_validate(values)
    except ValidationError as exc:
        return _keys_page(
            request, session, user, errors=field_errors(exc, "name"), values=values, status_code=422
        )
    row, secret = service.create_api_key(
        session, name=body.name, role=body.role, actor=user.principal.name
    )
    context = {"principal": user.principal, "key": ApiKeyRead.model_validate(row), "secret": secret}
    return render(request, "keys/created.html", context, 201)


def _not_found(request: Request, user: PageUser) -> Response:
    return refusal(
        request, 404, "No such key", "That API key does not exist.", user.principal
    ).response


@router.get("/keys/{key_id}/revoke")
def confirm_revoke(request: Request, session: SessionDep, user: AdminPage, key_id: str) -> Response:
    """Ask before revoking: every script and browser using the key stops at once."""
    row = _key(session, key_id)
    if row is None:
        return _not_found(request, user)
    context = {"principal": user.principal, "key": ApiKeyRead.model_validate(row)}
    return render(request, "keys/revoke.html", context)


@router.post("/keys/{key_id}/revoke")
def revoke_key(request: Request, session: SessionDep, user: AdminPage, key_id: str) -> Response:
    """Revoke a key; its requests and its browser sessions are refused from now on."""
    row = _key(session, key_id)
    if row is None:
        return _not_found(request, user)
    try:
        service.revoke_api_key(session, row.id, actor=user.principal.name)
    except NotFound:  # gone between the two reads
        return _not_found(request, user)
    return RedirectResponse("/keys", status_code=303)
