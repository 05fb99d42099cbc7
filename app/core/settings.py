"""Settings from the environment (SPEC section 5)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("krsync.db")


def normalize_database_url(url: str) -> str:
    """Pick krsync's own driver, so users may paste the URL their platform hands out."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Every knob lives here so the app, the CLI and the scheduler read one source of truth."""

    model_config = SettingsConfigDict(env_prefix="KRSYNC_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
        validation_alias=AliasChoices("DATABASE_URL", "KRSYNC_DATABASE_URL"),
    )
    secret_key: SecretStr | None = None
    admin_key: SecretStr | None = None
    allow_private_networks: bool = False
    files_dir: Path | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    scheduler_enabled: bool = True
    #: Failed runs in a row after which the scheduler pauses a source until someone resumes it
    #: (SPEC section 7); 0 never pauses.
    pause_after_failures: int = Field(default=10, ge=0)
    sql_echo: bool = False
    #: Where people reach krsync (`https://okr.example.com`): the base of OAuth redirect URIs and
    #: links; when it is https, the browser's cookies are `Secure` whatever the proxy says.
    public_url: str | None = None
    #: Proxies whose `X-Forwarded-Proto`/`X-Forwarded-For` are believed: IPs or CIDRs, comma
    #: separated. None by default, so a client can't claim https or another address by a header.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    #: Where mail goes out: `smtp://user:pass@host:587` (STARTTLS when offered) or
    #: `smtps://user:pass@host:465` (TLS from the start). A secret: it holds the password.
    smtp_url: SecretStr | None = None
    #: The sender of krsync's mail, `krsync <okr@example.com>`.
    mail_from: str | None = None
    #: Requests the notification dispatcher has in flight at once, across channels.
    notify_concurrency: int = Field(default=20, ge=1, le=200)
    #: The calendar of events (SPEC section 7): the daily evaluation's today and the weekly
    #: digest's Monday 09:00 are read in this IANA time zone.
    timezone: str = "UTC"

    @field_validator("database_url")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        value = value.strip() or "UTC"
        try:
            ZoneInfo(value)
        except (ValueError, LookupError):
            raise ValueError(
                f"KRSYNC_TIMEZONE must be an IANA time zone such as Europe/Paris, not {value!r}"
            ) from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "KRSYNC_PUBLIC_URL must be an http(s) URL such as https://okr.example.com"
            )
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError("KRSYNC_PUBLIC_URL takes no query or fragment")
        if parts.username or parts.password:
            raise ValueError("KRSYNC_PUBLIC_URL takes no user name or password")
        return value.rstrip("/")

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parts = urlsplit(value.get_secret_value().strip())
        try:
            parts.port  # noqa: B018  (raises on a port that is not a number)
        except ValueError:
            parts = parts._replace(netloc="")  # a password with a raw "/" or "@" lands here
        # The message never quotes the URL: it holds the password.
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                "KRSYNC_SMTP_URL must be smtp://user:password@host:587 or "
                "smtps://user:password@host:465, with the password percent-encoded"
            )
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("KRSYNC_TRUSTED_PROXIES is a comma-separated list of IPs or CIDRs")
        found: list[str] = []
        for item in items:
            text = str(item).strip()
            if not text:
                continue
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(
                    f"KRSYNC_TRUSTED_PROXIES: {text!r} is not an IP address or CIDR"
                ) from None
            found.append(str(network))
        return tuple(found)

    @property
    def secure_cookies(self) -> bool:
        """Behind an https public URL every cookie is Secure, even if a hop spoke plain http."""
        return self.public_url is not None and self.public_url.startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
