"""Named role guards: a route's signature says who may call it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.auth.service import ROLE_RANK, Principal, Role, authenticate
from app.core.db import get_session
from app.core.errors import Forbidden, Unauthorized
from app.core.settings import get_settings

# "function" scope commits before the response is sent: a 201 means the write is stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An API key, or KRSYNC_ADMIN_KEY")


def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = credentials.credentials if credentials else request.cookies.get("krsync_key")
    if not token:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    admin = get_settings().admin_key
    principal = authenticate(session, token, admin.get_secret_value() if admin else None)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    return principal


def require(role: Role) -> object:
    # async: a pure check needs no trip through the thread pool on every request.
    async def guard(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if ROLE_RANK[principal.role] < ROLE_RANK[role]:
            raise Forbidden(f"this needs the {role} role; your key has {principal.role}")
        return principal

    return Depends(guard)


Viewer = Annotated[Principal, require("viewer")]
Editor = Annotated[Principal, require("editor")]
Admin = Annotated[Principal, require("admin")]
