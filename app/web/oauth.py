"""The browser's half of "Connect with OAuth" (SPEC section 6): off to the platform and back.

`GET /oauth/{provider}/authorize` sends the admin's browser to the platform's consent page;
`GET /oauth/callback` is where the platform sends it back. Both answer a person, so every
refusal is a page that says why (never a secret), and nothing is stored unless all went well.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.auth.deps import SessionDep
from app.sources import oauth
from app.web.router import COOKIE, _page, _principal

router = APIRouter(include_in_schema=False)

_SIGN_IN = "Sign in to krsync as an admin in this browser first, then start again."
_ADMIN_ONLY = "Connecting a data source needs the admin role; your key has {role}."
_MAX_ID = 2_147_483_647


def _browser_binding(request: Request) -> str | None:
    """Which browser an authorization belongs to: the callback must come back to it.

    A hash of the sign-in cookie, so the stored value can't be replayed as the key itself.
    """
    key = request.cookies.get(COOKIE)
    if not key:
        return None
    return hashlib.sha256(b"krsync oauth binding\x00" + key.encode("utf-8")).hexdigest()


def _refusal(request: Request, message: str, status_code: int) -> Response:
    context = {"heading": "The data source was not connected", "message": message}
    return _page(request, "oauth_result.html", context, status_code)


def _admin_refusal(request: Request, session: SessionDep) -> tuple[Response | None, str]:
    principal = _principal(request, session)
    if principal is None:
        return _refusal(request, _SIGN_IN, 401), ""
    if principal.role != "admin":
        return _refusal(request, _ADMIN_ONLY.format(role=principal.role), 403), ""
    return None, principal.name


@router.get("/oauth/{provider}/authorize")
def oauth_authorize(
    request: Request,
    session: SessionDep,
    provider: str,
    data_source_id: Annotated[str | None, Query()] = None,
) -> Response:
    """302 to the platform's consent page, with a fresh single-use state for this browser."""
    refused, actor = _admin_refusal(request, session)
    if refused is not None:
        return refused
    raw = (data_source_id or "").strip()
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= _MAX_ID):
        return _refusal(request, "Say which data source to connect: ?data_source_id=N.", 422)
    try:
        url = oauth.start(session, provider, int(raw), _browser_binding(request), actor)
    except oauth.OAuthRefused as exc:
        return _refusal(request, exc.message, exc.status_code)
    return RedirectResponse(
        url,
        status_code=302,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.get("/oauth/callback")
def oauth_callback(request: Request, session: SessionDep) -> Response:
    """Where the platform returns: the tokens are stored, or a page says why not."""
    refused, actor = _admin_refusal(request, session)
    if refused is not None:
        return refused
    query = {
        name: request.query_params[name]
        for name in ("state", "code", "error")
        if name in request.query_params
    }
    try:
        done = oauth.complete(session, query, _browser_binding(request), actor)
    except oauth.OAuthRefused as exc:
        return _refusal(request, exc.message, exc.status_code)
    return RedirectResponse(
        f"/sources/{done.source_id}",
        status_code=303,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
