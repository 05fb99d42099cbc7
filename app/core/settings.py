"""Settings from the environment (SPEC section 5)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    # Where browsers reach krsync (`https://krsync.example.com`): OAuth redirect URIs and links.
    public_url: str | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    scheduler_enabled: bool = True
    sql_echo: bool = False

    @field_validator("database_url")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_database_url(value)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
