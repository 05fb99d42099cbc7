"""The process's SecretBox, built from KRSYNC_SECRET_KEY; shared by the API and the sync engine."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from app.core.errors import InvalidInput
from app.core.secrets import SecretBox, SecretKeyError
from app.core.settings import get_settings


@lru_cache(maxsize=4)
def _box(keys: str) -> SecretBox:
    return SecretBox.from_keys(keys)


def get_secret_box() -> SecretBox | None:
    """None when no key is configured; a bad key raises SecretKeyError with a clear message."""
    secret = get_settings().secret_key
    if secret is None or not secret.get_secret_value().strip():
        return None
    return _box(secret.get_secret_value())


def encrypt_secret(values: dict[str, Any], what: str, field: str) -> str:
    """``values`` sealed for storing; without a usable key they are refused (InvalidInput on
    ``field``), never stored in clear."""
    try:
        box = get_secret_box()
    except SecretKeyError as exc:
        raise InvalidInput(f"KRSYNC_SECRET_KEY is unusable: {exc}", field=field) from exc
    if box is None:
        raise InvalidInput(
            f"krsync refuses to store {what} without KRSYNC_SECRET_KEY: set it to one or "
            "more comma-separated Fernet keys (generate one with `krsync keys generate-secret`)",
            field=field,
        )
    return box.encrypt_json(values)


def encrypt_credentials(credentials: dict[str, Any]) -> str | None:
    """Empty credentials need no key (the demo); anything else refuses to be stored in clear."""
    if not credentials:
        return None
    return encrypt_secret(credentials, "credentials", "credentials")


def decrypt_credentials(token: str | None) -> dict[str, Any]:
    """Raises SecretKeyError (never with key material) when the token can't be opened."""
    if not token:
        return {}
    box = get_secret_box()
    if box is None:
        raise SecretKeyError("credentials are stored encrypted but KRSYNC_SECRET_KEY is not set")
    return box.decrypt_json(token)
