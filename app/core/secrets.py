"""Encryption of data-source credentials at rest.

Credentials are stored as Fernet tokens made with ``KRSYNC_SECRET_KEY``: one or more
comma-separated Fernet keys. The first key encrypts and every key decrypts
(:class:`cryptography.fernet.MultiFernet`), so an operator rotates by putting a new key first,
re-encrypting the stored tokens with :meth:`SecretBox.rotate`, and finally dropping the old key.

This module takes the key string as a parameter instead of reading settings, so that the
sync engine, the API and the CLI can share it without importing each other.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["SecretBox", "SecretKeyError"]

_STALE_KEY_MESSAGE = "credentials were encrypted with a key that is no longer configured"


class SecretKeyError(Exception):
    """The secret key is missing or unusable, or a token cannot be decrypted with it.

    Messages never contain key material: they end up in API responses, logs and sync runs.
    """


class SecretBox:
    """Encrypts credential dictionaries to opaque strings and back."""

    __slots__ = ("_fernet",)

    def __init__(self, fernet: MultiFernet) -> None:
        self._fernet = fernet

    @classmethod
    def from_keys(cls, keys: str) -> SecretBox:
        """Build a box from the comma-separated ``KRSYNC_SECRET_KEY`` value.

        Raises :class:`SecretKeyError` naming the position of a bad key (never its value),
        because the operator needs to know which entry to fix without the key being echoed
        into a log or terminal scrollback.
        """
        parts = [part.strip() for part in keys.split(",")]
        parts = [part for part in parts if part]
        if not parts:
            raise SecretKeyError(
                "KRSYNC_SECRET_KEY is empty: set it to one or more comma-separated Fernet keys "
                "(generate one with SecretBox.generate_key())"
            )
        fernets: list[Fernet] = []
        for position, part in enumerate(parts, start=1):
            try:
                fernets.append(Fernet(part.encode("utf-8")))
            except (ValueError, TypeError, binascii.Error):
                # `from None`: the chained exception is harmless today, but the key must not
                # ride along in a traceback if a future cryptography release quotes it.
                raise SecretKeyError(
                    f"KRSYNC_SECRET_KEY entry #{position} of {len(parts)} is not a valid Fernet "
                    "key (expected 32 url-safe base64-encoded bytes)"
                ) from None
        return cls(MultiFernet(fernets))

    @staticmethod
    def generate_key() -> str:
        """A fresh Fernet key, for setup docs, the demo and tests."""
        return Fernet.generate_key().decode("ascii")

    def encrypt_json(self, obj: Mapping[str, Any]) -> str:
        """Encrypt a JSON-serialisable mapping with the first (current) key."""
        payload = json.dumps(dict(obj), separators=(",", ":"), sort_keys=True)
        return self._fernet.encrypt(payload.encode("utf-8")).decode("ascii")

    def decrypt_json(self, token: str) -> dict[str, Any]:
        """Decrypt a token made by :meth:`encrypt_json` with any configured key."""
        try:
            payload = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise SecretKeyError(_STALE_KEY_MESSAGE) from None
        value = json.loads(payload)
        if not isinstance(value, dict):
            raise SecretKeyError("decrypted credentials are not a JSON object")
        return value

    def rotate(self, token: str) -> str:
        """Re-encrypt a token with the current first key (after a key rotation)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise SecretKeyError(_STALE_KEY_MESSAGE) from None
