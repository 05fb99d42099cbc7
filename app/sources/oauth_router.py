"""The OAuth apps an organisation registered with each platform (SPEC section 6)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.auth.deps import Admin
from app.core.changes import same_named
from app.core.db import SessionDep
from app.core.schemas import ERROR_RESPONSES, StrictModel
from app.core.settings import get_settings
from app.models import OAuthApp
from app.sources import oauth
from app.sources.oauth_providers import PROVIDERS

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["oauth apps"])

ProviderPath = Annotated[
    str, Path(max_length=40, description=f"One of: {', '.join(sorted(PROVIDERS))}")
]


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.match(r"(?i)^https?://[^/\s?#]+[^\s]*$", value) or "\x00" in value:
        raise ValueError("must be an http:// or https:// address")
    return value


def _clean(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Url = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, max_length=1000),
    AfterValidator(_http_url),
]
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(_clean),
]


class OAuthAppWrite(StrictModel):
    client_id: Text = Field(description="The client id the platform gave the app.")
    client_secret: Text = Field(
        description="The app's client secret; stored encrypted, never read back."
    )
    authorize_url: Url = Field(None, description="Replaces the platform's authorization endpoint.")
    token_url: Url = Field(None, description="Replaces the platform's token endpoint.")


class OAuthAppRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    provider: str
    client_id: str
    client_secret_set: bool
    authorize_url: str | None
    token_url: str | None
    default_authorize_url: str
    default_token_url: str
    redirect_uri: str | None = Field(
        description="What to register with the platform: KRSYNC_PUBLIC_URL + /oauth/callback "
        "(null while KRSYNC_PUBLIC_URL is unset)"
    )
    connectors: list[str]
    created_at: datetime
    updated_at: datetime


def _read(app: OAuthApp) -> OAuthAppRead:
    p = PROVIDERS[app.provider]
    public = get_settings().public_url
    return OAuthAppRead(
        **same_named(app, "provider client_id authorize_url token_url created_at updated_at"),
        client_secret_set=bool(app.client_secret_encrypted),
        default_authorize_url=p.authorize_url,
        default_token_url=p.token_url,
        redirect_uri=public.strip().rstrip("/") + oauth.CALLBACK_PATH if public else None,
        connectors=list(p.connectors),
    )


@router.put("/oauth-apps/{provider}")
def put_oauth_app(
    provider: ProviderPath, body: OAuthAppWrite, session: SessionDep, who: Admin
) -> OAuthAppRead:
    """Register (or replace) the provider's OAuth app; the secret is stored encrypted."""
    return _read(oauth.put_app(session, provider, body.model_dump(), who.name))


@router.get("/oauth-apps/{provider}")
def get_oauth_app(provider: ProviderPath, session: SessionDep, who: Admin) -> OAuthAppRead:
    """The provider's OAuth app (`client_secret_set` says a secret is stored)."""
    return _read(oauth.get_app(session, provider))


@router.delete("/oauth-apps/{provider}", status_code=status.HTTP_204_NO_CONTENT)
def delete_oauth_app(provider: ProviderPath, session: SessionDep, who: Admin) -> None:
    """Forget the provider's OAuth app; connected sources keep their tokens."""
    oauth.delete_app(session, provider, who.name)
