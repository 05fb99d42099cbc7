"""Every notification test has a secret key (channel URLs are stored encrypted), a public URL for
the links, and may reach receivers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from app.core.settings import get_settings

PUBLIC_URL = "https://okr.example.com"


@pytest.fixture(autouse=True)
def notify_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("KRSYNC_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
