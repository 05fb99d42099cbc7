"""The browser session: what the sign-in cookie stands for, checked on every request.

Signing in with an API key stores a session row and gives the browser a random token in an
HttpOnly, SameSite=Lax cookie (Secure behind HTTPS). The row keeps the token's hash, the key
it came from and a CSRF secret; the API key itself never leaves the sign-in form. A session
ends when its key is revoked (checked on each request, not cached), when KRSYNC_ADMIN_KEY
changes (for the bootstrap admin), after 12 hours idle, 30 days after sign-in, or at sign-out.

Other parts of the browser bind their own state to a session with :func:`browser_session`
(OAuth's `state`, for one): it answers the live session of a request, or None.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from fastapi import Request, Response
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.auth.service import ROLE_RANK, Principal, Role, hash_key
from app.core.clock import utcnow
from app.core.settings import get_settings
from app.models import ApiKey, WebSession

COOKIE = "krsync_session"
IDLE_TIMEOUT = timedelta(hours=12)
MAX_AGE = timedelta(days=30)
# Writing last_seen_at on every page would turn each read into a write; a minute is enough.
SEEN_RESOLUTION = timedelta(minutes=1)
_MAX_TOKEN_LENGTH = 128


@dataclass(frozen=True)
class BrowserSession:
    """A live session: who signed in, and the token its forms must carry."""

    id: int
    principal: Principal
    csrf_token: str
    expires_at: datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _csrf_token(secret: str) -> str:
    # Derived, not the secret itself: the page shows the token, the table keeps the secret.
    return hmac.new(secret.encode(), b"krsync-csrf-v1", hashlib.sha256).hexdigest()


def start(session: Session, principal: Principal, admin_key: str | None) -> str:
    """Store a session for a principal just authenticated; the answer is the cookie's token."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    # Sessions nobody came back to are swept here, on the (rare) write every session starts with.
    session.execute(
        delete(WebSession).where(
            (WebSession.expires_at <= now) | (WebSession.last_seen_at <= now - IDLE_TIMEOUT)
        )
    )
    session.add(
        WebSession(
            token_hash=_token_hash(token),
            api_key_id=principal.key_id,
            admin_key_hash=hash_key(admin_key) if principal.key_id is None and admin_key else None,
            name=principal.name,
            role=principal.role,
            csrf_secret=secrets.token_hex(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + MAX_AGE,
        )
    )
    session.flush()
    return token


def _live(session: Session, token: str) -> tuple[WebSession, datetime] | None:
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    found = session.execute(
        select(WebSession, ApiKey.revoked_at)
        .outerjoin(ApiKey, ApiKey.id == WebSession.api_key_id)
        .where(WebSession.token_hash == _token_hash(token))
    ).first()
    if found is None:
        return None
    row, revoked_at = found
    now = utcnow()
    expired = now >= row.expires_at or now - row.last_seen_at >= IDLE_TIMEOUT
    if expired or revoked_at is not None or row.role not in ROLE_RANK:
        session.delete(row)
        return None
    if row.api_key_id is None:
        admin = get_settings().admin_key
        current = hash_key(admin.get_secret_value()) if admin else None
        if current is None or row.admin_key_hash is None:
            session.delete(row)
            return None
        if not hmac.compare_digest(current, row.admin_key_hash):
            session.delete(row)
            return None
    return row, now


def resolve(session: Session, token: str) -> BrowserSession | None:
    """The live session a cookie's token names; a dead one is deleted on the way."""
    live = _live(session, token)
    if live is None:
        return None
    row, now = live
    if now - row.last_seen_at >= SEEN_RESOLUTION:
        row.last_seen_at = now
        if row.api_key_id is not None:  # the keys page's "last used" counts the browser too
            session.execute(
                update(ApiKey).where(ApiKey.id == row.api_key_id).values(last_used_at=now)
            )
    principal = Principal(name=row.name, role=cast(Role, row.role), key_id=row.api_key_id)
    return BrowserSession(row.id, principal, _csrf_token(row.csrf_secret), row.expires_at)


def end(session: Session, token: str) -> None:
    """Sign-out: the session's row goes, so the token opens nothing even if it was copied."""
    if token and len(token) <= _MAX_TOKEN_LENGTH:
        session.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


def csrf_matches(web: BrowserSession, presented: str) -> bool:
    return bool(presented) and hmac.compare_digest(web.csrf_token.encode(), presented.encode())


def browser_session(request: Request, session: Session) -> BrowserSession | None:
    """The request's live browser session, or None (no cookie, or one that has ended).

    This is what other browser flows bind their state to: `BrowserSession.id` names the
    session (OAuth's `state` is stored against it, so a state made in one browser is refused in
    another), and `principal` says who signed in. The answer is cached on the request, so a
    page and its dependencies check the cookie once; `session` is the request's database
    session (`SessionDep`), whose commit records the session's last use.
    """
    cached = getattr(request.state, "web_session", _UNSET)
    if cached is not _UNSET:
        return cast(BrowserSession | None, cached)
    found = resolve(session, request.cookies.get(COOKIE, ""))
    request.state.web_session = found
    return found


_UNSET = object()


def is_https(request: Request) -> bool:
    """HTTPS as the browser sees it: the request's own scheme (a trusted proxy's word for it,
    see KRSYNC_TRUSTED_PROXIES) or an https KRSYNC_PUBLIC_URL."""
    return request.url.scheme == "https" or get_settings().secure_cookies


def public_base(request: Request) -> str:
    """The base of links and redirect URIs: KRSYNC_PUBLIC_URL, else what the request used."""
    return get_settings().public_url or str(request.base_url).rstrip("/")


def set_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(MAX_AGE.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )
