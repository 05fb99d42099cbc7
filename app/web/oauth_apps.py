"""The OAuth apps page: register krsync's app with each platform, so "Connect" can work.

An admin registers an app once per platform (the client id and secret the platform issued) and
every source of that platform's connectors connects through it. The same schema and service as
`PUT /api/v1/oauth-apps/{provider}`, so a refusal reads as the API words it; the secret is
write-only: left blank on a change, the stored one is kept (the API's PUT always takes one).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from app.core.errors import DomainError, NotFound
from app.models import OAuthApp
from app.sources import oauth
from app.sources.oauth_providers import PROVIDERS, Provider
from app.sources.oauth_router import OAuthAppWrite
from app.web.forms import Exact, FormState, render_form
from app.web.pages import AdminPage, Page

router = APIRouter(include_in_schema=False)

FIELDS = ("client_id", "client_secret", "authorize_url", "token_url")
#: A refusal that names no field of the form shows beside the client id.
_REFUSALS = Exact(FIELDS, "client_id")


def _redirect_uri() -> str | None:
    try:
        return oauth.redirect_uri()
    except oauth.OAuthRefused:
        return None


def _page(page: Page, editing: str | None = None, form: FormState | None = None) -> Response:
    apps = {a.provider: a for a in page.session.scalars(select(OAuthApp))}
    context: dict[str, Any] = {
        "providers": sorted(PROVIDERS.values(), key=lambda p: p.name),
        "apps": apps,
        "redirect_uri": _redirect_uri(),
        "editing": editing,
    }
    return render_form(page, "oauth_apps/index.html", form or FormState({}), context)


def _provider(page: Page, key: str) -> Provider:
    found = PROVIDERS.get(key)
    if found is None:
        names = ", ".join(sorted(PROVIDERS))
        message = f"krsync connects with OAuth to {names}; “{key[:40]}” is none of them."
        raise page.refuse(404, "No such platform", message)
    return found


@router.get("/oauth-apps")
def oauth_apps_page(page: AdminPage) -> Response:
    """Each platform: its app (client id, whether a secret is stored) and what to register."""
    return _page(page)


@router.post("/oauth-apps/{provider}")
async def save_oauth_app(page: AdminPage, provider: str) -> Response:
    """Register or change the platform's app; a blank secret keeps the stored one."""
    p = _provider(page, provider)
    form = await page.request.form()
    values = {f: str(form.get(f) or "").strip() for f in FIELDS}
    body: dict[str, Any] = {f: values[f] or None for f in FIELDS}
    stored = page.session.scalar(select(OAuthApp).where(OAuthApp.provider == p.key))
    values["client_secret"] = ""  # write-only: never sent back, not even on a refusal

    def again(errors: dict[str, str], status_code: int) -> Response:
        return _page(page, p.key, FormState(values, errors, status_code))

    if body["client_secret"] is None and stored is not None:
        try:
            body["client_secret"] = oauth.stored_client_secret(stored)
        except oauth.OAuthRefused as exc:
            return again({"client_secret": exc.message}, 409)
    try:
        data = OAuthAppWrite.model_validate(body).model_dump()
    except ValidationError as exc:
        return again(_REFUSALS.validation_errors(exc), 422)
    try:
        oauth.put_app(page.session, p.key, data, page.principal.name)
    except DomainError as exc:
        return again(_REFUSALS.domain_errors(exc), 422)
    return RedirectResponse(f"/oauth-apps#app-{p.key}", status_code=303)


@router.get("/oauth-apps/{provider}/delete")
def confirm_delete_oauth_app(page: AdminPage, provider: str) -> Response:
    """Ask first: sources already connected keep their tokens, new connections stop."""
    p = _provider(page, provider)
    app = page.session.scalar(select(OAuthApp).where(OAuthApp.provider == p.key))
    if app is None:
        return RedirectResponse("/oauth-apps", status_code=303)
    context = {"principal": page.principal, "provider": p, "app": app}
    return page.render("oauth_apps/delete.html", context)


@router.post("/oauth-apps/{provider}/delete")
def delete_oauth_app(page: AdminPage, provider: str) -> Response:
    p = _provider(page, provider)
    try:
        oauth.delete_app(page.session, p.key, page.principal.name)
    except NotFound:
        pass  # already gone: the page the admin wanted is the same
    return RedirectResponse("/oauth-apps", status_code=303)
