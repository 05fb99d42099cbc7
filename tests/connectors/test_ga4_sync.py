"""``ga4`` end to end: a key result fed by GA4 through the API, the engine and the real client.

"Sessions from the Email channel, +25 % on last quarter" (SPEC section 2, a relative target with a
``sum`` baseline). The fake Google on 127.0.0.1 (:mod:`google_fake`) answers the official client;
the source, the key result and the mapping are made over the API, whose mapping creation
backfills the cycle and the baseline window; progress is read back over the API.

Cycle 2026-Q3, 1 July to 30 September: 92 days. Its baseline window is the 92 days before it,
31 March to 30 June. Today is 1 August, so the backfill reads 31 March to 31 July.

- Email sessions: 100 a day in the baseline window, 150 a day in July; 999 a day outside both
  (March before the 31st, August), which a wrong window would pick up. Organic Search: 1,000 a
  day, which a missing filter would pick up.
- baseline = 92 x 100 = 9,200; target = 9,200 x 1.25 = 11,500; start = 0 (a ``sum`` restarts
  every cycle).
- as of 31 July: current = 31 x 150 = 4,650; progress = 4,650 / 11,500 = 0.4043...;
  expected = 31 / 92 = 0.3370 -> on track; score 0.4; forecast = 4,650 x 92 / 31 = 13,800,
  forecast progress = 13,800 / 11,500 = 1.2.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import stamina
from fastapi.testclient import TestClient
from sync_factories import freeze_today, make_kr, make_mapping, make_source, runs

from app.core.db import session_scope
from app.core.settings import get_settings
from app.core.vault import encrypt_credentials
from app.models import DataSource
from app.sync.engine import sync_now
from factories import cycle, data_source, key_result, mapping, objective
from tests.connectors.acme import configure_engine
from tests.connectors.google_fake import (
    GA4_DAILY,
    GA4_HOURLY,
    PROPERTY_ID,
    FakeGoogle,
    Record,
    service_account,
)

TODAY = date(2026, 8, 1)
EMAIL = {"field": "sessionDefaultChannelGroup", "op": "eq", "value": "Email"}


def email_sessions(day: date) -> int:
    if date(2026, 3, 31) <= day <= date(2026, 6, 30):
        return 100
    if date(2026, 7, 1) <= day <= date(2026, 7, 31):
        return 150
    return 999


@pytest.fixture(autouse=True)
def engine_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_engine(monkeypatch, allow_private=True)  # the fake listens on 127.0.0.1
    freeze_today(monkeypatch, TODAY)
    with stamina.set_testing(True, attempts=4, cap=True):
        yield
    get_settings.cache_clear()


@pytest.fixture
def google() -> Iterator[tuple[FakeGoogle, str]]:
    first = date(2026, 3, 1)
    records = []
    for offset in range(170):
        day = first + timedelta(days=offset)
        channel = {"sessionDefaultChannelGroup": "Email"}
        records.append(Record(day, channel, {"sessions": email_sessions(day)}))
        organic = {"sessionDefaultChannelGroup": "Organic Search"}
        records.append(Record(day, organic, {"sessions": 1000}))
    fake = FakeGoogle(records=records)
    with fake.serving() as served:
        yield served


def test_an_email_sessions_key_result_synced_from_ga4(
    client: TestClient, google: tuple[FakeGoogle, str]
) -> None:
    """The hand-worked figure of the module docstring, read over the API.

    Docs: https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/batchRunReports
    (the one call the backfill makes) and SPEC section 2 (baseline, relative target, progress).
    """
    fake, base = google
    source = data_source(
        client,
        name="GA4 website",
        connector="ga4",
        config={"property_id": PROPERTY_ID, "base_url": base},
        credentials={"service_account_info": service_account(f"{base}/token")},
        timezone="Europe/Paris",
    )
    tested = client.post(f"/api/v1/data-sources/{source['id']}/test").json()
    assert tested["ok"] is True, tested
    assert "Europe/Paris" in tested["message"]

    c = cycle(client)
    o = objective(client, c["id"], title="Grow the newsletter's audience")
    kr = key_result(
        client,
        o["id"],
        title="Sessions from the Email channel, +25 % on last quarter",
        unit="sessions",
        target_value=None,
        target_change_pct=25,
        aggregation="sum",
    )
    mapping(client, kr["id"], source["id"], "sessions", filters=[EMAIL])  # backfills

    runs_read = client.get("/api/v1/sync-runs", params={"data_source_id": source["id"]}).json()
    [run] = runs_read["items"]
    assert run["status"] == "succeeded", run["error"]
    assert (run["window_from"], run["window_to"]) == ("2026-03-31", "2026-07-31")
    assert run["api_calls"] == 2  # the token and one batchRunReports
    quota = run["details"]["platform"]["quota"]
    assert quota["tokens_per_hour"]["consumed"] == fake.tokens_per_report
    [batch] = fake.of("batchRunReports")
    [report] = batch.body["requests"]
    assert report["dateRanges"] == [{"startDate": "2026-03-31", "endDate": "2026-07-31"}]

    read = client.get(f"/api/v1/key-results/{kr['id']}", params={"as_of": "2026-07-31"})
    progress: dict[str, Any] = read.json()["progress"]
    assert progress["start_value"] == 0.0
    assert progress["target_value"] == pytest.approx(11_500.0)
    assert progress["current_value"] == pytest.approx(4_650.0)
    assert progress["progress"] == pytest.approx(4_650 / 11_500)
    assert progress["expected_progress"] == pytest.approx(31 / 92)
    assert progress["status"] == "on_track"
    assert progress["score"] == 0.4
    assert progress["forecast_value"] == pytest.approx(13_800.0)
    assert progress["forecast_progress"] == pytest.approx(1.2)
    assert progress["last_observation_date"] == "2026-07-31"


def test_a_mapping_ga4_cant_answer_is_refused_with_422(
    client: TestClient, google: tuple[FakeGoogle, str]
) -> None:
    """An operator GA4 can't express, and a sum of a distinct count, are refused on creation.

    Docs: https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/Filter
    and SPEC section 4 (a non-additive metric summed is refused with what to use instead).
    """
    _, base = google
    source = data_source(
        client,
        name="GA4 website",
        connector="ga4",
        config={"property_id": PROPERTY_ID, "base_url": base},
        credentials={"service_account_info": service_account(f"{base}/token")},
    )
    o = objective(client, cycle(client)["id"])
    kr = key_result(client, o["id"], aggregation="sum")
    body = {"key_result_id": kr["id"], "data_source_id": source["id"], "metric": "sessions"}

    gt = {**EMAIL, "op": "gt"}
    refused = client.post("/api/v1/mappings", json={**body, "filters": [gt]})
    assert refused.status_code == 422, refused.text
    assert "filters[0].op" in refused.text

    users = client.post("/api/v1/mappings", json={**body, "metric": "activeUsers"})
    assert users.status_code == 422, users.text
    assert "ratio" in users.text


def _source(base: str) -> int:
    src = make_source(
        name="GA4 engine",
        connector="ga4",
        config={"property_id": PROPERTY_ID, "base_url": base},
        credentials_encrypted=encrypt_credentials(
            {"service_account_info": service_account(f"{base}/token")}
        ),
        timezone="Europe/Paris",
    )
    make_mapping(make_kr(), src, "sessions", filters=[EMAIL])
    return src


def _sync(source_id: int) -> None:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        sync_now(s, src, trigger="cli")


def test_an_hourly_quota_429_defers_the_run(google: tuple[FakeGoogle, str]) -> None:
    """Hourly tokens exhausted: the run ends rate limited and the next run tries again.

    Docs: https://developers.google.com/analytics/devguides/reporting/data/v1/quotas (tokens per
    property per hour "return in under an hour": longer than a run waits).
    """
    fake, base = google
    fake.fail("batchRunReports", 429, GA4_HOURLY, times=100)
    src = _source(base)
    _sync(src)

    [run] = runs(src)
    assert run.status == "failed"
    assert run.error is not None
    assert run.error.startswith("rate limited:")
    assert "the next run tries again" in run.error
    # One call: the client doesn't retry tokens that return within the hour, and 3,600 s is
    # past the run's budget, so the engine doesn't fetch again either.
    assert len(fake.of("batchRunReports")) == 1


def test_a_daily_quota_429_fails_the_run_and_says_so(google: tuple[FakeGoogle, str]) -> None:
    """Daily tokens exhausted: no retry in the run, and the message says why.

    Docs: https://developers.google.com/analytics/devguides/reporting/data/v1/quotas (tokens per
    property per day).
    """
    fake, base = google
    fake.fail("batchRunReports", 429, GA4_DAILY, times=100)
    src = _source(base)
    _sync(src)

    [run] = runs(src)
    assert run.status == "failed"
    assert run.error is not None
    assert "all its tokens for today" in run.error
    assert "rate limited" not in run.error
    # One call: neither the engine's client nor the engine spends more on tomorrow's tokens.
    assert len(fake.of("batchRunReports")) == 1
    assert run.api_calls == 2  # the token exchange and the refused batch, failed or not


def test_a_check_gives_a_utc_source_the_propertys_timezone(
    client: TestClient, google: tuple[FakeGoogle, str]
) -> None:
    """A source left at UTC takes the property's zone; one set to another zone keeps it, told.

    GA4 dates every row by the property's own timezone, which ``runReport`` answers in
    ``metadata.timeZone``. Docs:
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/ResponseMetaData
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/runReport
    """
    fake, base = google
    fake.time_zone = "America/Los_Angeles"
    ga4 = {
        "connector": "ga4",
        "config": {"property_id": PROPERTY_ID, "base_url": base},
        "credentials": {"service_account_info": service_account(f"{base}/token")},
    }

    fresh = data_source(client, name="GA4 default zone", **ga4)
    assert fresh["timezone"] == "UTC"
    tested = client.post(f"/api/v1/data-sources/{fresh['id']}/test").json()
    assert tested["ok"] is True, tested
    assert "reports days in America/Los_Angeles" in tested["message"]
    assert tested["notices"] == []
    read = client.get(f"/api/v1/data-sources/{fresh['id']}").json()
    assert read["timezone"] == "America/Los_Angeles"
    assert read["notices"] == []

    chosen = data_source(client, name="GA4 Berlin", timezone="Europe/Berlin", **ga4)
    tested = client.post(f"/api/v1/data-sources/{chosen['id']}/test").json()
    assert tested["ok"] is True, tested
    advice = (
        f"GA4 property {PROPERTY_ID} reports days in America/Los_Angeles, but the source is set "
        "to Europe/Berlin: set the source's timezone to America/Los_Angeles, so a day is read "
        "once it is over there"
    )
    assert tested["message"] == f"GA4 property {PROPERTY_ID} answered; {advice}"
    assert tested["notices"] == [advice]
    read = client.get(f"/api/v1/data-sources/{chosen['id']}").json()
    assert read["timezone"] == "Europe/Berlin"
    assert read["notices"] == [advice]

    # Following the advice clears it at the next check.
    patched = client.patch(
        f"/api/v1/data-sources/{chosen['id']}", json={"timezone": "America/Los_Angeles"}
    )
    assert patched.status_code == 200, patched.text
    tested = client.post(f"/api/v1/data-sources/{chosen['id']}/test").json()
    assert tested["notices"] == []
    assert client.get(f"/api/v1/data-sources/{chosen['id']}").json()["notices"] == []
