"""Named role guards: a route's signature says who may call it."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.auth.service import (
    LAST_USED_RESOLUTION,
    ROLE_RANK,
    Principal,
    Role,
    authenticate,
    bootstrap_principal,
    hash_key,
)
from app.core import fastread
from app.core.clock import utcnow
from app.core.db import SessionDep, get_sessionmaker
from app.core.errors import Forbidden, Unauthorized
from app.core.settings import get_settings
from app.web import session as web_session
from app.web.session import BrowserSession

_bearer = HTTPBearer(auto_error=False, description="An API key, or KRSYNC_ADMIN_KEY")


async def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # async: the bootstrap key needs no database, so it costs no thread-pool trip.
    token = credentials.credentials if credentials else None
    if not token:
        web = await _cookie_session(request, session)
        if web is not None:
            return web.principal
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    admin = get_settings().admin_key
    admin_key = admin.get_secret_value() if admin else None
    principal = (
        bootstrap_principal(token, admin_key)
        or await _known_key(session, token)
        or await run_in_threadpool(authenticate, session, token, admin_key)
    )
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    return principal


async def _known_key(session: Session, token: str) -> Principal | None:
    """A live key read on the event loop; None leaves it to `authenticate` (which also records
    `last_used_at` when due, and refuses unknown or revoked keys)."""
    fresh_after = utcnow() - LAST_USED_RESOLUTION
    found = await fastread.api_key(session.get_bind().engine.url, hash_key(token), fresh_after)
    if found is None:
        return None
    key_id, name, role = found
    if role not in ROLE_RANK:
        return None
    return Principal(name=f"key:{name}", role=cast(Role, role), key_id=key_id)


async def _cookie_session(request: Request, session: Session) -> BrowserSession | None:
    """The browser's session, for reads only: the API's forms carry no CSRF token, so a write
    made with the cookie alone could be another site's doing. The dashboard's CSV links read."""
    if request.method not in ("GET", "HEAD") or web_session.COOKIE not in request.cookies:
        return None
    return await run_in_threadpool(web_session.browser_session, request, session)


def _check_role(principal: Principal, role: Role) -> Principal:
    if ROLE_RANK[principal.role] < ROLE_RANK[role]:
        raise Forbidden(f"this needs the {role} role; your key has {principal.role}")
    return principal


#: The role each guard asks for, so a route's requirement can be read off its dependencies.
_GUARD_ROLES: dict[Any, Role] = {}


def require(role: Role) -> object:
    # async: a pure check needs no trip through the thread pool on every request.
    async def guard(
        request: Request, principal: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        request.state.principal = _check_role(principal, role)
        return principal

    _GUARD_ROLES[guard] = role
    return Depends(guard)


def route_role(route: object) -> Role | None:
    """The role a route's guard asks for; None when it checks no API key (probes, push)."""
    dependant = getattr(route, "dependant", None)
    pending = [dependant] if dependant is not None else []
    while pending:
        current = pending.pop()
        role = _GUARD_ROLES.get(current.call)
        if role is not None:
            return role
        pending.extend(current.dependencies)
    return None


async def authorize_unchecked(request: Request) -> None:
    """Raise what the route's guard would, when the request failed before the guard ran.

    FastAPI decodes a JSON body before it resolves a route's dependencies, so a malformed body
    would answer a caller with no key, or too weak a role, with the route's validation error
    (and tell them what it takes). The error handlers call this first: nobody learns anything
    of a route before they may call it.
    """
    if getattr(request.state, "principal", None) is not None:
        return
    role = route_role(request.scope.get("route"))
    if role is None:
        return
    session = get_sessionmaker()()
    try:
        principal = await current_principal(request, session, await _bearer(request))
    finally:
        # A refused or failed request records no use of the key.
        await run_in_threadpool(session.close)
    _check_role(principal, role)


Viewer = Annotated[Principal, require("viewer")]
Editor = Annotated[Principal, require("editor")]
Admin = Annotated[Principal, require("admin")]
