"""OAuth apps registered with the platforms, and the authorizations under way."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin


class OAuthApp(TimestampMixin, Base):
    """The client an organisation registered with one platform, for every source on it."""

    __tablename__ = "oauth_apps"

    provider: Mapped[str] = mapped_column(String(32), unique=True)
    client_id: Mapped[str] = mapped_column(String(500))
    # Fernet token of {"client_secret": ...}; never leaves the process in clear.
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    authorize_url: Mapped[str | None] = mapped_column(String(1000))
    token_url: Mapped[str | None] = mapped_column(String(1000))


class OAuthState(Base):
    """One authorization sent to a platform and not yet come back.

    Keyed by a hash of the `state`, so a database read gives nothing a callback could replay;
    the row is deleted when the callback consumes it, which makes the state single-use.
    """

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    data_source_id: Mapped[int] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), index=True
    )
    # Fernet token of the PKCE verifier (empty when the platform takes no PKCE).
    verifier_encrypted: Mapped[str | None] = mapped_column(Text)
    # Which browser asked: the callback must come back to the same one.
    binding: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column()
