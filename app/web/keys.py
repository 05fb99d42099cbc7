"""The API keys page: create (the secret shown once), list and revoke, for admins.

The same service functions and the same pydantic schema as `/api/v1/api-keys`, so a name the
API refuses is refused here with the same words, beside the field.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from app.auth import service
from app.auth.schemas import ApiKeyCreate, ApiKeyRead
from app.core.errors import NotFound
from app.models import ApiKey
from app.web.forms import FormState, render_form, shown_once
from app.web.pages import (
    AdminPage,
    Page,
    field_errors,
)

router = APIRouter(include_in_schema=False)

ROLES = ("viewer", "editor", "admin")
ROLE_HELP = {
    "viewer": "reads everything but data sources and keys",
    "editor": "also writes OKRs and check-ins",
    "admin": "everything: sources, mappings, syncs and keys",
}
_MAX_KEYS = 500
_GONE = "That API key does not exist."


class KeyFields(BaseModel):
    """The form's boxes as the browser posts them (blank when left out)."""

    name: str = ""
    role: str = ""


def _keys_page(page: Page, form: FormState | None = None) -> Response:
    rows, total = service.list_api_keys(page.session, _MAX_KEYS, 0)
    context: dict[str, Any] = {
        "keys": [ApiKeyRead.model_validate(r) for r in rows],
        "total": total,
        "roles": ROLES,
        "role_help": ROLE_HELP,
    }
    form = form or FormState(KeyFields(role="viewer").model_dump())
    return render_form(page, "keys/index.html", form, context)


def _key(page: Page, key_id: str) -> ApiKey:
    get = partial(page.session.get, ApiKey)
    return page.found_or_404("key", key_id, get, _GONE)


@router.get("/keys")
def keys_page(page: AdminPage) -> Response:
    """The API keys: who may call krsync, with which role, and when they last did."""
    return _keys_page(page)


@router.post("/keys")
def create_key(page: AdminPage, posted: Annotated[KeyFields, Form()]) -> Response:
    """Create a key and show its secret this once."""
    values = posted.model_dump()
    try:
        body = ApiKeyCreate.model_validate(values)
    except ValidationError as exc:
        return _keys_page(page, FormState(values, field_errors(exc, "name"), 422))
    row, secret = service.create_api_key(
        page.session, name=body.name, role=body.role, actor=page.principal.name
    )
    made = {"key": ApiKeyRead.model_validate(row)}
    return shown_once(page, "keys/created.html", secret, made)


@router.get("/keys/{key_id}/revoke")
def confirm_revoke(page: AdminPage, key_id: str) -> Response:
    """Ask before revoking: every script and browser using the key stops at once."""
    row = _key(page, key_id)
    context = {"principal": page.principal, "key": ApiKeyRead.model_validate(row)}
    return page.render("keys/revoke.html", context)


@router.post("/keys/{key_id}/revoke")
def revoke_key(page: AdminPage, key_id: str) -> Response:
    """Revoke a key; its requests and its browser sessions are refused from now on."""
    row = _key(page, key_id)
    try:
        service.revoke_api_key(page.session, row.id, actor=page.principal.name)
    except NotFound:  # gone between the two reads
        raise page.refuse(404, "No such key", _GONE) from None
    return RedirectResponse("/keys", status_code=303)
