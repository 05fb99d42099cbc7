"""End to end: "3,000 new followers on *each* social platform this quarter", from three platforms.

One key result with ``group_rule: each`` (SPEC section 2: every group is scored on its own
against the same target and the key result's progress is the weakest group's), fed by three
mappings, one group each, all made over the API as an admin would. The platforms are the fakes
of the connector kits behind one respx router, each reproducing its vendor's documented API:

- LinkedIn, ``followers.organic_gain``: ``organizationalEntityFollowerStatistics`` with a DAY
  ``timeIntervals``, one element a UTC day with ``followerGains{organicFollowerGain,
  paidFollowerGain}``, a gain negative when more members unfollow than follow
  (https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/follower-statistics);
- Instagram, ``instagram.follower_count`` through Meta's Graph API, the new followers of each
  day (https://developers.facebook.com/docs/instagram-platform/api-reference/instagram-user/insights),
  each value dated by an ``end_time`` at the Pacific midnight that closes its day
  (https://developers.facebook.com/docs/platforminsights/page);
- YouTube, ``subscribersGained`` (https://developers.google.com/youtube/analytics/metrics) from
  ``reports.query`` with ``dimensions=day``, rows dated ``YYYY-MM-DD`` as the report gives them
  (https://developers.google.com/youtube/analytics/reference/reports/query), behind Google's
  OAuth2 refresh (https://developers.google.com/identity/protocols/oauth2/web-server#offline).

LinkedIn's paid gain can't join the LinkedIn group: a key result has at most one mapping per
(role, group) (SPEC section 1), so the organic gain alone is the LinkedIn figure, and the paid
gain the fake also reports must not leak into it.

Time is frozen at 03:00 UTC on 25 July 2026, which is still 24 July (20:00) in Pacific time.
The LinkedIn source reports UTC days, so its backfill ends on 24 July; the Meta source reports
Pacific days, and the admin set the YouTube channel's source to Pacific time too, so theirs end
on 23 July, a day that has ended there. The fakes would answer 24 July on every platform if
asked: a source read in the wrong timezone would change the sums below. Every figure is worked
out by hand in the comments.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import respx
import stamina
from fastapi.testclient import TestClient

from app.core import clock
from app.core.settings import get_settings

# kits.py imports every kit_*.py: loaded first, it finds each kit's KIT defined.
from tests.connectors import kits  # noqa: F401
from tests.connectors.acme import configure_engine
from tests.connectors.kit_linkedin import CONFIG as LINKEDIN_CONFIG
from tests.connectors.kit_linkedin import TOKEN as LINKEDIN_TOKEN
from tests.connectors.kit_linkedin import FakeLinkedIn
from tests.connectors.kit_meta import CONFIG as META_CONFIG
from tests.connectors.kit_meta import INSTAGRAM, FakeGraph
from tests.connectors.kit_meta import TOKEN as META_TOKEN
from tests.connectors.kit_youtube import CONFIG as YOUTUBE_CONFIG
from tests.connectors.kit_youtube import CREDENTIALS as YOUTUBE_CREDENTIALS
from tests.connectors.kit_youtube import FakeYouTube

#: 03:00 UTC on 25 July is 20:00 on 24 July in Los Angeles (PDT, UTC-7).
NOW = datetime(2026, 7, 25, 3, 0, tzinfo=UTC)
PACIFIC = "America/Los_Angeles"
START = date(2026, 7, 1)
EARLY = date(2026, 7, 10)  # the first ten days of the quarter
AS_OF = date(2026, 7, 24)  # yesterday in UTC, today in Pacific time
UNFOLLOWS = date(2026, 7, 15)  # LinkedIn loses more followers than it gains that day
TARGET = 3000.0


def linkedin_gains(day: date) -> dict[str, float]:
    """30 organic followers a UTC day, -60 on 15 July; 100 paid a day, which must not count."""
    organic = -60.0 if day == UNFOLLOWS else 30.0
    return {"organicFollowerGain": organic, "paidFollowerGain": 100.0}


def instagram_followers(_object: str, name: str, day: date) -> float | None:
    """New Instagram followers a Pacific day: 36 until 10 July, 15 a day after."""
    if name != "follower_count":
        return None
    return 36.0 if day <= EARLY else 15.0


def youtube_figure(metric: str, day: date) -> int:
    """Subscribers gained a day: 24 until 10 July, 45 a day after (other metrics unused)."""
    if metric != "subscribersGained":
        return 0
    return 24 if day <= EARLY else 45


@pytest.fixture(autouse=True)
def engine_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_engine(monkeypatch)  # *.test names resolve to a public address
    monkeypatch.setattr(clock, "utcnow", lambda: NOW)
    # FakeYouTube reads its figures from the module's ``figure``: these are the channel's.
    monkeypatch.setattr("tests.connectors.kit_youtube.figure", youtube_figure)
    with stamina.set_testing(True, attempts=100, cap=True):
        yield
    get_settings.cache_clear()


@pytest.fixture
def platforms() -> Iterator[tuple[FakeLinkedIn, FakeGraph, FakeYouTube]]:
    linkedin = FakeLinkedIn(followers=linkedin_gains)
    meta = FakeGraph(figures=instagram_followers)
    youtube = FakeYouTube()
    with respx.mock(assert_all_called=False) as router:
        linkedin.install(router)
        meta.install(router)
        youtube.install(router)
        yield linkedin, meta, youtube


def created(client: TestClient, path: str, body: dict[str, Any]) -> int:
    response = client.post(f"/api/v1/{path}", json=body)
    assert response.status_code == 201, response.text
    ident: int = response.json()["id"]
    return ident


def runs(client: TestClient, source: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/sync-runs?data_source_id={source}")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return sorted(items, key=lambda r: r["id"])


def progress(client: TestClient, kr: int, as_of: date) -> dict[str, Any]:
    response = client.get(f"/api/v1/key-results/{kr}?as_of={as_of.isoformat()}")
    assert response.status_code == 200, response.text
    block: dict[str, Any] = response.json()["progress"]
    return block


def groups(block: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Each group's (current value, progress), by label."""
    return {g["group"]: (g["current_value"], g["progress"]) for g in block["groups"]}


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def test_each_platform_is_scored_and_the_key_result_is_the_weakest(
    client: TestClient, platforms: tuple[FakeLinkedIn, FakeGraph, FakeYouTube]
) -> None:
    """Three sources, three groups, one ``each`` key result: per-platform progress, and the key
    result's progress and value are the weakest platform's, which changes over the quarter.

    The platforms play the pages in the module docstring: LinkedIn's follower statistics
    (https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/follower-statistics),
    Instagram's user insights and YouTube's reports.query.
    """
    linkedin, meta, youtube = platforms
    cycle = created(
        client, "cycles", {"name": "2026-Q3", "start_date": "2026-07-01", "end_date": "2026-09-30"}
    )
    objective = created(
        client, "objectives", {"title": "Grow our social audience", "cycle_id": cycle}
    )
    kr = created(
        client,
        "key-results",
        {
            "objective_id": objective,
            "title": "3,000 new followers on each social platform this quarter",
            "unit": "followers",
            "target_value": TARGET,
            "aggregation": "sum",
            "group_rule": "each",
        },
    )
    linkedin_source = created(
        client,
        "data-sources",
        {
            "name": "LinkedIn page",
            "connector": "linkedin",
            "config": LINKEDIN_CONFIG,
            "credentials": {"access_token": LINKEDIN_TOKEN},
            "timezone": "UTC",  # LinkedIn's statistics are UTC days
        },
    )
    meta_source = created(
        client,
        "data-sources",
        {
            "name": "Meta",
            "connector": "meta",
            "config": {**META_CONFIG, "instagram_user_id": INSTAGRAM},
            "credentials": {"access_token": META_TOKEN},
            "timezone": PACIFIC,  # Meta closes its days at midnight Pacific time
        },
    )
    youtube_source = created(
        client,
        "data-sources",
        {
            "name": "YouTube channel",
            "connector": "youtube",
            "config": YOUTUBE_CONFIG,
            "credentials": YOUTUBE_CREDENTIALS,
            "timezone": PACIFIC,  # the channel's reporting days, as the admin set them
        },
    )
    for source, metric, group in (
        (linkedin_source, "followers.organic_gain", "LinkedIn"),
        (meta_source, "instagram.follower_count", "Instagram"),
        (youtube_source, "subscribersGained", "YouTube"),
    ):
        created(
            client,
            "mappings",
            {"key_result_id": kr, "data_source_id": source, "metric": metric, "group": group},
        )

    # Paid followers as a second mapping of the LinkedIn group: one mapping per (role, group).
    paid = client.post(
        "/api/v1/mappings",
        json={
            "key_result_id": kr,
            "data_source_id": linkedin_source,
            "metric": "followers.paid_gain",
            "group": "LinkedIn",
        },
    )
    assert paid.status_code == 409, paid.text

    # Each new mapping backfilled its source: the quarter so far, to yesterday in its timezone.
    for source, last_day in (
        (linkedin_source, "2026-07-24"),
        (meta_source, "2026-07-23"),
        (youtube_source, "2026-07-23"),
    ):
        [backfill] = runs(client, source)
        assert backfill["status"] == "succeeded", backfill["error"]
        assert (backfill["trigger"], backfill["window_from"], backfill["window_to"]) == (
            "backfill",
            "2026-07-01",
            last_day,
        )
    # One statistics call for LinkedIn (not paged), a Graph page per 4 days for Instagram
    # (23 days: 6 pages; the mapping's online check made one more), one report for YouTube.
    assert len(linkedin.calls("organizationalEntityFollowerStatistics")) == 1
    assert len([r for r in meta.insight_calls() if INSTAGRAM in r.url.path]) == 1 + 6
    assert len(youtube.reports) == 1

    # The nightly job's run re-reads the lookback days: nothing changes.
    for source in (linkedin_source, meta_source, youtube_source):
        response = client.post(f"/api/v1/data-sources/{source}/sync")
        assert response.status_code == 202, response.text
        assert runs(client, source)[-1]["status"] == "succeeded"

    series = client.get(f"/api/v1/key-results/{kr}/series?from=2026-07-01&to=2026-07-31")
    assert series.status_code == 200, series.text
    by_group: dict[str, dict[str, float]] = {}
    for point in series.json()["points"]:
        by_group.setdefault(point["group"], {})[point["date"]] = point["value"]
    # The unfollows keep their sign; the day lands where each platform dated it.
    assert by_group["LinkedIn"] == {
        d.isoformat(): (-60.0 if d == UNFOLLOWS else 30.0) for d in days(START, AS_OF)
    }
    assert by_group["Instagram"] == {
        d.isoformat(): (36.0 if d <= EARLY else 15.0) for d in days(START, AS_OF - timedelta(1))
    }
    assert by_group["YouTube"] == {
        d.isoformat(): (24.0 if d <= EARLY else 45.0) for d in days(START, AS_OF - timedelta(1))
    }

    # 10 July, ten days in, every platform against 3,000 from 0:
    #   LinkedIn  10 days x 30 = 300 -> 0.10
    #   Instagram 10 days x 36 = 360 -> 0.12
    #   YouTube   10 days x 24 = 240 -> 0.08   <- the weakest: the key result is YouTube's
    early = progress(client, kr, EARLY)
    assert groups(early) == {
        "LinkedIn": (pytest.approx(300.0), pytest.approx(0.10)),
        "Instagram": (pytest.approx(360.0), pytest.approx(0.12)),
        "YouTube": (pytest.approx(240.0), pytest.approx(0.08)),
    }
    assert early["current_value"] == pytest.approx(240.0)
    assert early["progress"] == pytest.approx(0.08)

    # 24 July: LinkedIn has UTC days to 24 July, Instagram and YouTube Pacific days to 23 July.
    #   LinkedIn  23 days x 30 + (-60 on 15 July) = 690 - 60 = 630 -> 0.21
    #             (the paid 100 a day would make it 3,030; unfollows read as +60, 750)
    #   Instagram 10 x 36 + 13 days (11-23 July) x 15 = 360 + 195 = 555 -> 0.185  <- weakest
    #   YouTube   10 x 24 + 13 days (11-23 July) x 45 = 240 + 585 = 825 -> 0.275
    # The key result is Instagram's 555 of 3,000: 0.185. 24 of the quarter's 92 days are gone,
    # so 24 / 92 = 0.261 was expected; 0.185 is within 0.10 of it: on track.
    now = progress(client, kr, AS_OF)
    assert groups(now) == {
        "LinkedIn": (pytest.approx(630.0), pytest.approx(0.21)),
        "Instagram": (pytest.approx(555.0), pytest.approx(0.185)),
        "YouTube": (pytest.approx(825.0), pytest.approx(0.275)),
    }
    assert now["current_value"] == pytest.approx(555.0)
    assert now["progress"] == pytest.approx(0.185)
    assert now["attainment"] == pytest.approx(0.185)
    assert now["target_value"] == TARGET
    assert now["expected_progress"] == pytest.approx(24 / 92)
    assert now["status"] == "on_track"
    assert now["last_observation_date"] == AS_OF.isoformat()
