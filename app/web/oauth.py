"""The browser's half of "Connect with OAuth" (SPEC section 6): off to the platform and back.

`GET /oauth/{provider}/authorize` sends the admin's browser to the platform's consent page;
`GET /oauth/callback` is where the platform sends it back. Both answer a person, so every
refusal is a page that says why (never a secret), and nothing is stored unless all went well.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.auth.service import Principal
from app.core.db import SessionDep
from app.sources import oauth
from app.web.pages import PageUser, page_user, path_id, render

router = APIRouter(include_in_schema=False)

_SIGN_IN = "Sign in to krsync as an admin in this browser first, then start again."
_ADMIN_ONLY = "Connecting a data source needs the admin role; your key has {role}."


def _browser_binding(user: PageUser) -> str | None:
    """Which browser an authorization belongs to: the callback must come back to it.

    The browser session's id; a script signed with a Bearer header has no browser to come
    back to, so it gets none and the authorization is refused with a message saying so.
    """
    return None if user.web is None else f"session:{user.web.id}"


def _refusal(
    request: Request, message: str, status_code: int, principal: Principal | None = None
) -> Response:
    context = {
        "heading": "The data source was not connected",
        "message": message,
        "principal": principal,
    }
    return render(request, "oauth_result.html", context, status_code)


def _admin(request: Request, session: SessionDep) -> tuple[Response | None, PageUser | None]:
    user = page_user(request, session)
    if user is None:
        return _refusal(request, _SIGN_IN, 401), None
    if user.principal.role != "admin":
        message = _ADMIN_ONLY.format(role=user.principal.role)
        return _refusal(request, message, 403, user.principal), None
    return None, user


@router.get("/oauth/{provider}/authorize")
def oauth_authorize(
    request: Request,
    session: SessionDep,
    provider: str,
    data_source_id: Annotated[str | None, Query()] = None,
) -> Response:
    """302 to the platform's consent page, with a fresh single-use state for this browser."""
    refused, user = _admin(request, session)
    if user is None:
        assert refused is not None
        return refused
    raw = (data_source_id or "").strip()
    source_id = path_id(raw)
    if not source_id:
        return _refusal(
            request, "Say which data source to connect: ?data_source_id=N.", 422, user.principal
        )
    binding = _browser_binding(user)
    try:
        url = oauth.start(session, provider, source_id, binding, user.principal.name)
    except oauth.OAuthRefused as exc:
        return _refusal(request, exc.message, exc.status_code, user.principal)
    return RedirectResponse(
        url,
        status_code=302,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.get("/oauth/callback")
def oauth_callback(request: Request, session: SessionDep) -> Response:
    """Where the platform returns: the tokens are stored, or a page says why not."""
    refused, user = _admin(request, session)
    if user is None:
        assert refused is not None
        return refused
    query = {
        name: request.query_params[name]
        for name in ("state", "code", "error")
        if name in request.query_params
    }
    try:
        done = oauth.complete(session, query, _browser_binding(user), user.principal.name)
    except oauth.OAuthRefused as exc:
        return _refusal(request, exc.message, exc.status_code, user.principal)
    return RedirectResponse(
        f"/sources/{done.source_id}",
        status_code=303,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
