"""A cycle whose review is worked out by hand (see each figure's comment)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from app.core.settings import get_settings
from factories import check_in, create, cycle, key_result, mapping, objective

PUSH_SECRET = "review-push-secret-0123456789abcdef"


@dataclass(frozen=True)
class Seeded:
    cycle: int
    growth: int
    brand: int
    solo: int
    followers: int
    signups: int
    website: int
    press: int
    pushed: int


def seed(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    """2026-Q3 (92 days), read on 2026-10-15 (after its end: expected progress 1):

    - Growth / company / ana: "3,000 new followers" 1000 + 1100 = 2100 of 3000 → 0.7, off
      track; "500 newsletter sign-ups" 500 of 500 → 1.0, done; "Pushed revenue" mapped to a
      push source with no data → no data, no score.
    - Brand / team / no owner, aligned to the followers: "Launch the new website" milestone
      never reached → 0.0, off track; "40 press mentions" 12 of 40 → 0.3, off track.
    - Brand / individual / bo, aligned to nothing, no key results.
    """
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    c = cycle(client)["id"]
    growth = objective(
        client, c, title="Grow the audience", level="company", team="Growth", owner="ana"
    )["id"]
    followers = key_result(client, growth, title="3,000 new followers", owner="ana")["id"]
    check_in(client, followers, "2026-07-10", 1000, confidence=6)  # week of Mon 07-06
    check_in(client, followers, "2026-08-10", 1100, confidence=8)  # week of Mon 08-10
    signups = key_result(
        client, growth, title="500 newsletter sign-ups", owner="ana", target_value=500
    )["id"]
    check_in(client, signups, "2026-08-12", 500, confidence=10)  # week of Mon 08-10
    pushed = key_result(client, growth, title="Pushed revenue", owner="ana", target_value=1000)[
        "id"
    ]
    source = create(
        client,
        "data-sources",
        name="Pushed figures",
        connector="push",
        config={},
        credentials={"secret": PUSH_SECRET},
    )
    mapping(client, pushed, source["id"], metric="revenue")
    brand = objective(
        client, c, title="Be known for craft", team="Brand", parent_key_result_id=followers
    )["id"]
    website = key_result(
        client,
        brand,
        title="Launch the new website",
        owner="cy",
        kind="milestone",
        target_value=None,
    )["id"]
    press = key_result(client, brand, title="40 press mentions", owner="cy", target_value=40)["id"]
    check_in(client, press, "2026-07-15", 12)
    solo = objective(
        client, c, title="Speak at two events", level="individual", team="Brand", owner="bo"
    )["id"]
    return Seeded(c, growth, brand, solo, followers, signups, website, press, pushed)
