"""The ``mailchimp`` connector against a fake Marketing API 3.0 built from the documented shapes.

Pages cited per test; the fake itself is described in ``kit_mailchimp.py``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import respx
import sync_factories
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.vault import encrypt_credentials
from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    Filter,
    MappingError,
    MetricQuery,
    RateLimited,
    RetriableError,
    Window,
)
from connectors.mailchimp.connector import (
    MAX_CONNECTIONS,
    MailchimpConfig,
    MailchimpConnector,
    MailchimpCredentials,
)
from tests.connectors import (
    engine_client,
    kits,  # noqa: F401  (loads every kit first: they import kits)
)
from tests.connectors.kit_mailchimp import (
    API_KEY,
    BASE_URL,
    ERRORS_DOC,
    LAST_DAY,
    LIST_ID,
    FakeMailchimp,
    activity_day,
    days_until,
)

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
LIST_ACTIVITY = "https://mailchimp.com/developer/marketing/api/list-activity/"
REPORTS = "https://mailchimp.com/developer/marketing/api/reports/"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with engine_client.engine_env(monkeypatch, attempts=1):
        yield


@pytest.fixture
def fake() -> Iterator[FakeMailchimp]:
    with engine_client.mocked(FakeMailchimp(activity_days=days_until(LAST_DAY, 180))) as mailchimp:
        yield mailchimp


@asynccontextmanager
async def connected(timezone: str = "UTC", **config: Any) -> AsyncIterator[MailchimpConnector]:
    async with engine_client.connected(
        MailchimpConnector,
        {"list_id": LIST_ID, "base_url": BASE_URL, **config},
        {"api_key": API_KEY},
        timezone=timezone,
    ) as (c, _):
        assert isinstance(c, MailchimpConnector)
        yield c


def query(metric: str, qid: str = "1", filters: list[dict[str, Any]] | None = None) -> MetricQuery:
    flts = [Filter.model_validate(f) for f in filters or []]
    params = MailchimpConnector.validate_query(metric, {}, flts, "sum")
    return MetricQuery(qid, metric, params, tuple(flts))


def report(
    rid: str,
    send_time: str,
    *,
    title: str = "Newsletter",
    kind: str = "regular",
    sent: int = 100,
    opens: int = 40,
    clicks: int = 8,
    clickers: int | None = None,
    list_id: str = LIST_ID,
) -> dict[str, Any]:
    """A campaign report as ``GET /reports`` lists it (REPORTS): ``clicks`` unique clicks on
    its links, each link's unique clickers summed, by ``clickers`` people (each link one click
    of each of them when not given)."""
    return {
        "id": rid,
        "campaign_title": title,
        "type": kind,
        "list_id": list_id,
        "list_name": "Newsletter",
        "subject_line": "News",
        "emails_sent": sent,
        "send_time": send_time,
        "opens": {"opens_total": opens * 2, "unique_opens": opens, "open_rate": opens / sent},
        "clicks": {
            "clicks_total": clicks * 3,
            "unique_clicks": clicks,
            "unique_subscriber_clicks": clicks if clickers is None else clickers,
            "click_rate": clicks / sent,
        },
    }


# --- list activity ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_list_activity_is_paged_newest_first_until_it_passes_the_window(
    fake: FakeMailchimp,
) -> None:
    """GET /lists/{id}/activity pages with count/offset, newest day first (cited: LIST_ACTIVITY).

    With three days a page, 07-11..07-09, 07-08..07-06, 07-05..07-03 and 07-02..06-30 cover the
    window; the fifth page would be older still and is not asked.
    """
    async with connected(page_size=3) as c:
        result = await c.fetch([query("audience.subscribed")], WINDOW)

    assert engine_client.by_query(result)["1"] == {d: float(d.day) for d in WINDOW.days()}
    calls = fake.calls["activity"]
    assert [r.url.params["offset"] for r in calls] == ["0", "3", "6", "9"]
    assert {r.url.params["count"] for r in calls} == {"3"}
    fields = calls[0].url.params["fields"].split(",")
    assert {"total_items", "activity.day", "activity.subs", "activity.recipient_clicks"} <= set(
        fields
    )
    assert not result.warnings


@pytest.mark.anyio
async def test_every_audience_metric_comes_from_the_same_pages(fake: FakeMailchimp) -> None:
    """Five audience metrics, one paging of the activity (documented fields, LIST_ACTIVITY)."""
    metrics = [
        "audience.subscribed",
        "audience.unsubscribed",
        "audience.emails_sent",
        "audience.unique_opens",
        "audience.clicks",
    ]
    async with connected() as c:
        result = await c.fetch([query(m, str(i)) for i, m in enumerate(metrics)], WINDOW)

    assert len(fake.calls["activity"]) == 1  # count=1000 holds all 180 days
    got = engine_client.by_query(result)
    day = date(2026, 7, 4)
    record = activity_day(day)
    assert [got[str(i)][day] for i in range(5)] == [
        record["subs"],
        record["unsubs"],
        record["emails_sent"],
        record["unique_opens"],
        record["recipient_clicks"],
    ]
    assert got["1"][date(2026, 7, 3)] == 0.0  # a real zero (3 % 3) stays a zero


@pytest.mark.anyio
async def test_a_backfill_past_180_days_says_so_instead_of_inventing_days(
    fake: FakeMailchimp,
) -> None:
    """List activity reaches back about 180 days (LIST_ACTIVITY): older days stay absent."""
    oldest = LAST_DAY - timedelta(days=179)
    window = Window(date(2025, 12, 1), date(2026, 1, 31))
    async with connected(page_size=100) as c:
        result = await c.fetch([query("audience.subscribed")], window)

    got = engine_client.by_query(result)["1"]
    assert min(got) == oldest
    assert max(got) == window.end
    assert len(got) == (window.end - oldest).days + 1
    assert len(fake.calls["activity"]) == 2  # paged to total_items
    [warning] = result.warnings
    assert "180 days" in warning
    assert f"from {window.start} to {oldest - timedelta(days=1)}" in warning
    [created] = fake.calls["list"]  # the audience is older than the window: history is gone
    assert created.url.params["fields"] == "date_created"


@pytest.mark.anyio
async def test_a_young_audience_has_no_days_before_it_was_created(fake: FakeMailchimp) -> None:
    """An audience created 40 days ago has 40 days of activity (LIST_ACTIVITY): the days before
    it never existed, and the warning says so instead of blaming Mailchimp's 180 days.

    ``date_created``: https://mailchimp.com/developer/marketing/api/lists/ (get list info).
    """
    fake.activity_days = days_until(LAST_DAY, 40)
    fake.date_created = "2026-06-01T22:15:00+00:00"  # 2 June in Berlin, the account's timezone
    window = Window(date(2026, 3, 1), LAST_DAY)
    async with connected("Europe/Berlin") as c:
        result = await c.fetch([query("audience.subscribed")], window)

    assert min(engine_client.by_query(result)["1"]) == LAST_DAY - timedelta(days=39)
    [warning] = result.warnings
    assert f"audience `{LIST_ID}` was created on 2026-06-02" in warning
    assert "from 2026-03-01 to 2026-06-01" in warning
    assert "180 days" not in warning
    assert "don't exist" not in warning


@pytest.mark.anyio
async def test_days_missing_from_the_activity_are_absent_not_zero() -> None:
    """A day the activity doesn't list is not a zero; a ``day`` with a time is read as its date.

    Shapes: LIST_ACTIVITY ("day": the date for the activity summary).
    """
    records = [activity_day(d) for d in (date(2026, 7, 5), date(2026, 7, 3), date(2026, 7, 2))]
    records[0]["day"] = "2026-07-05 00:00:00"
    body = {"activity": records, "total_items": 3}
    with respx.mock() as router:
        router.get(f"{BASE_URL}/lists/{LIST_ID}/activity").mock(
            return_value=httpx.Response(200, json=body)
        )
        # The activity starts after the window does: the connector asks when the audience began.
        router.get(f"{BASE_URL}/lists/{LIST_ID}").mock(
            return_value=httpx.Response(200, json={"date_created": "2026-07-02T08:00:00+00:00"})
        )
        async with connected() as c:
            result = await c.fetch([query("audience.subscribed")], WINDOW)

    assert engine_client.by_query(result)["1"] == {date(2026, 7, d): float(d) for d in (2, 3, 5)}


# --- campaign reports ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_campaigns_land_on_their_send_day_in_the_source_timezone(
    fake: FakeMailchimp,
) -> None:
    """GET /reports by send time, paged by count/offset to total_items (REPORTS).

    23:30 UTC on 07-02 is already 07-03 in Berlin; a campaign to another audience doesn't count.
    """
    fake.reports = [
        report("a", "2026-06-30T21:59:00+00:00", sent=1),  # 06-30 23:59 in Berlin: outside
        report("b", "2026-06-30T22:00:00+00:00", sent=10),  # 07-01 00:00 in Berlin
        report("c", "2026-07-02T23:30:00+00:00", sent=200),
        report("d", "2026-07-03T08:00:00+00:00", sent=300),
        report("e", "2026-07-03T09:00:00+00:00", sent=999, list_id="otheraudience"),
        report("f", "2026-07-10T21:00:00+00:00", sent=50),  # 07-10 23:00 in Berlin
    ]
    async with connected("Europe/Berlin", page_size=2) as c:
        result = await c.fetch([query("campaigns.emails_sent")], WINDOW)

    assert engine_client.by_query(result)["1"] == {
        date(2026, 7, 1): 10.0,
        date(2026, 7, 3): 500.0,
        date(2026, 7, 10): 50.0,
    }
    calls = fake.calls["reports"]
    assert [r.url.params["offset"] for r in calls] == ["0", "2", "4"]  # 5 in the span, 2 a page
    first = calls[0].url.params
    assert first["since_send_time"] == "2026-06-30T22:00:00+00:00"
    assert first["before_send_time"] == "2026-07-10T22:00:00+00:00"
    assert "reports.opens.unique_opens" in first["fields"].split(",")
    assert result.details["campaigns"] == {"read": 5, "sent_to_audience": 4}


@pytest.mark.anyio
async def test_campaign_filters_apply_per_mapping_on_shared_pages(fake: FakeMailchimp) -> None:
    """campaign_title and campaign_type filter the report list client-side (REPORTS fields)."""
    fake.reports = [
        report("a", "2026-07-02T10:00:00+00:00", title="July Newsletter", opens=40),
        report("b", "2026-07-02T12:00:00+00:00", title="Flash sale", kind="plaintext", opens=5),
        report("c", "2026-07-04T10:00:00+00:00", title="Weekly NEWSLETTER", kind="rss", opens=7),
    ]
    queries = [
        query(
            "campaigns.unique_opens",
            "news",
            [{"field": "campaign_title", "op": "contains", "value": "newsletter"}],
        ),
        query(
            "campaigns.unique_opens",
            "typed",
            [{"field": "campaign_type", "op": "in", "value": ["regular", "plaintext"]}],
        ),
        query(
            "campaigns.unique_clicks",
            "not-rss",
            [{"field": "campaign_type", "op": "neq", "value": "rss"}],
        ),
        query("campaigns.unique_opens", "all"),
    ]
    async with connected() as c:
        result = await c.fetch(queries, WINDOW)

    got = engine_client.by_query(result)
    assert got["news"] == {date(2026, 7, 2): 40.0, date(2026, 7, 4): 7.0}
    assert got["typed"] == {date(2026, 7, 2): 45.0}
    assert got["not-rss"] == {date(2026, 7, 2): 16.0}
    assert got["all"] == {date(2026, 7, 2): 45.0, date(2026, 7, 4): 7.0}
    assert len(fake.calls["reports"]) == 1


@pytest.mark.anyio
async def test_unique_clicks_count_links_and_subscriber_clicks_count_people(
    fake: FakeMailchimp,
) -> None:
    """A campaign report's ``clicks`` holds ``unique_clicks``, "the total number of unique
    clicks for links across a campaign", and ``unique_subscriber_clicks``, "the total number of
    subscribers who clicked on a campaign" (REPORTS). Five people clicking, one of them two links
    and one three, make 8 unique link clicks: ``campaigns.unique_clicks`` reads 8,
    ``campaigns.unique_subscriber_clicks`` 5, and the catalogue says which is which.
    """
    fake.reports = [report("a", "2026-07-02T10:00:00+00:00", clicks=8, clickers=5)]
    queries = [
        query("campaigns.unique_clicks", "links"),
        query("campaigns.unique_subscriber_clicks", "people"),
    ]
    async with connected() as c:
        result = await c.fetch(queries, WINDOW)

    got = engine_client.by_query(result)
    assert got == {"links": {date(2026, 7, 2): 8.0}, "people": {date(2026, 7, 2): 5.0}}
    [call] = fake.calls["reports"]
    trimmed = call.url.params["fields"].split(",")
    assert {"reports.clicks.unique_clicks", "reports.clicks.unique_subscriber_clicks"} <= set(
        trimmed
    )
    described = {m.name: m for m in MailchimpConnector.metrics}
    assert "counts twice" in described["campaigns.unique_clicks"].description
    assert "People who clicked" in described["campaigns.unique_subscriber_clicks"].description


def test_only_campaign_metrics_take_campaign_filters() -> None:
    """Audience activity has no campaigns to filter: such a mapping is refused (422 part).

    A list-activity day has no campaign fields (LIST_ACTIVITY); ``campaign_title`` and ``type``
    are fields of a campaign report (REPORTS), and ``type`` is one of regular, plaintext,
    absplit, rss, variate: a set, so ``contains`` is refused for it.
    """
    flt = [{"field": "campaign_title", "op": "eq", "value": "x"}]
    with pytest.raises(MappingError) as refused:
        MailchimpConnector.validate_query("audience.subscribed", {}, flt, "sum")
    assert refused.value.part == "filters[0].field"
    with pytest.raises(MappingError) as bad_op:
        MailchimpConnector.validate_query(
            "campaigns.emails_sent",
            {},
            [{"field": "campaign_type", "op": "contains", "value": "r"}],
            "sum",
        )
    assert bad_op.value.part == "filters[0].op"


# --- the audience size --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_audience_members_is_a_snapshot_of_member_count(fake: FakeMailchimp) -> None:
    """GET /lists/{id} -> stats.member_count (https://mailchimp.com/developer/marketing/api/lists/)."""
    spec = MailchimpConnector.metric_spec("audience.members")
    assert spec is not None
    assert (spec.history, spec.additive) == ("snapshot", False)
    with pytest.raises(MappingError, match="can't be summed"):
        MailchimpConnector.validate_query("audience.members", {}, [], "sum")

    members = MetricQuery(
        "m",
        "audience.members",
        MailchimpConnector.validate_query("audience.members", {}, [], "last"),
    )
    async with connected() as c:
        result = await c.fetch([members], WINDOW)

    assert engine_client.by_query(result) == {"m": {WINDOW.end: 1234.0}}
    assert fake.calls["list"][0].url.params["fields"] == "stats.member_count"
    assert "activity" not in fake.calls


def test_a_snapshot_backfill_writes_nothing_for_past_days(
    fake: FakeMailchimp, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the engine: the member count lands on the sync's day, never on the window's days.

    Shapes: https://mailchimp.com/developer/marketing/api/lists/ (stats.member_count).
    """
    freeze_today(monkeypatch, LAST_DAY)
    src = make_source(
        name="mailchimp",
        connector="mailchimp",
        config={"list_id": LIST_ID, "base_url": BASE_URL},
        credentials_encrypted=encrypt_credentials({"api_key": API_KEY}),
    )
    kr = make_kr(aggregation="last")
    make_mapping(kr, src, "audience.members")

    june = (date(2026, 6, 1), date(2026, 6, 30))
    sync_factories.sync_source(src, trigger="backfill", window=june)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert [(r[0], r[3]) for r in observations(kr)] == [(LAST_DAY, 1234.0)]
    assert "activity" not in fake.calls
    assert "reports" not in fake.calls


# --- credentials, data centres, errors ----------------------------------------------------------


def test_the_data_centre_comes_from_the_key_or_from_data_center() -> None:
    """Root https://{dc}.api.mailchimp.com/3.0; Basic auth with any user name and the key, or an
    OAuth Bearer token (https://mailchimp.com/developer/marketing/guides/quick-start/)."""
    config = MailchimpConfig(list_id=LIST_ID)
    keyed = MailchimpConnector.http_options(config, MailchimpCredentials(api_key=API_KEY))
    assert keyed.base_url == "https://us21.api.mailchimp.com/3.0"
    assert keyed.max_concurrency == 10
    user, _, password = (
        base64.b64decode(keyed.headers["Authorization"].removeprefix("Basic "))
        .decode()
        .partition(":")
    )
    assert user
    assert password == API_KEY

    token = MailchimpCredentials(access_token="oauth-token", data_center="us6")
    oauth = MailchimpConnector.http_options(config, token)
    assert oauth.base_url == "https://us6.api.mailchimp.com/3.0"
    assert oauth.headers["Authorization"] == "Bearer oauth-token"
    in_config = MailchimpConfig(list_id=LIST_ID, data_center="us19")
    bare = MailchimpCredentials(access_token="oauth-token")
    assert MailchimpConnector.http_options(in_config, bare).base_url.startswith("https://us19.")
    overridden = MailchimpConfig(list_id=LIST_ID, base_url="https://proxy.example.test/mc/3.0/")
    assert (
        MailchimpConnector.http_options(overridden, bare).base_url
        == "https://proxy.example.test/mc/3.0"
    )

    with pytest.raises(ConnectorConfigError, match="data_center"):
        MailchimpConnector.http_options(config, bare)
    with pytest.raises(ConnectorConfigError, match="data centre"):
        MailchimpConnector.http_options(config, MailchimpCredentials(api_key="no-suffix-key"))
    with pytest.raises(ValueError, match="api_key"):
        MailchimpCredentials(api_key=API_KEY, access_token="both")


@pytest.mark.anyio
async def test_no_more_than_ten_requests_are_in_flight_at_once() -> None:
    """ "Each user account is permitted up to 10 simultaneous connections"; an 11th is a 429
    "You have exceeded the limit of 10 simultaneous connections" (ERRORS_DOC and
    https://mailchimp.com/developer/marketing/docs/fundamentals/ , Throttling).

    30 requests at once through the client the engine builds for the source: the fake holds
    each answer a moment and counts the requests it is answering; 10 at most, and 10 reached.
    """
    in_flight, peak = 0, 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return httpx.Response(200, json={"activity": [], "total_items": 0})

    with respx.mock() as router:
        route = router.get(f"{BASE_URL}/lists/{LIST_ID}/activity").mock(side_effect=slow)
        async with connected() as c:
            answers = await asyncio.gather(
                *(c.http.get(f"lists/{LIST_ID}/activity") for _ in range(30))
            )

    assert [a.status_code for a in answers] == [200] * 30
    assert route.call_count == 30
    assert peak == MAX_CONNECTIONS == 10


@pytest.mark.anyio
async def test_an_invalid_key_is_an_auth_error_quoting_the_problem(fake: FakeMailchimp) -> None:
    """401 {"title": "API Key Invalid", "detail": "...wrong datacenter."} (ERRORS_DOC)."""
    fake.api_key = "another-key-us21"
    async with connected() as c:
        with pytest.raises(ConnectorAuthError) as refused:
            await c.fetch([query("audience.subscribed")], WINDOW)

    message = refused.value.message
    assert "API Key Invalid" in message
    assert "wrong datacenter" in message
    assert "`api_key`" in message
    assert API_KEY not in message


@pytest.mark.anyio
async def test_an_unknown_audience_is_a_config_error_naming_list_id() -> None:
    """404 "Resource Not Found" for /lists/{id} (ERRORS_DOC) -> check `list_id`."""
    problem = {
        "type": ERRORS_DOC,
        "title": "Resource Not Found",
        "status": 404,
        "detail": "The requested resource could not be found.",
        "instance": "x",
    }
    with respx.mock() as router:
        router.get(f"{BASE_URL}/lists/{LIST_ID}").mock(
            return_value=httpx.Response(404, json=problem)
        )
        router.get(f"{BASE_URL}/").mock(
            return_value=httpx.Response(200, json={"account_name": "Co"})
        )
        async with connected() as c:
            with pytest.raises(ConnectorConfigError) as missing:
                await c.check()

    assert not isinstance(missing.value, ConnectorAuthError)
    assert f"`{LIST_ID}`" in missing.value.message
    assert "`list_id`" in missing.value.message


@pytest.mark.anyio
async def test_a_forbidden_answer_says_which_access_is_missing(fake: FakeMailchimp) -> None:
    """403 "Forbidden" (ERRORS_DOC): the user behind the key can't read this audience."""
    problem = {
        "type": ERRORS_DOC,
        "title": "Forbidden",
        "status": 403,
        "detail": "You don't have permission to access this resource",
        "instance": "y",
    }
    fake.failures["reports"] = [httpx.Response(403, json=problem)]
    async with connected() as c:
        with pytest.raises(ConnectorAuthError) as refused:
            await c.fetch([query("campaigns.emails_sent")], WINDOW)

    assert "Forbidden" in refused.value.message
    assert f"audience `{LIST_ID}`" in refused.value.message


@pytest.mark.anyio
async def test_too_many_connections_is_rate_limited_with_retry_after(fake: FakeMailchimp) -> None:
    """429 "Too Many Requests": more than 10 simultaneous connections (ERRORS_DOC)."""
    problem = {
        "type": ERRORS_DOC,
        "title": "Too Many Requests",
        "status": 429,
        "detail": "You have exceeded the limit of 10 simultaneous connections.",
        "instance": "z",
    }
    fake.failures["activity"] = [httpx.Response(429, headers={"Retry-After": "120"}, json=problem)]
    async with connected() as c:
        with pytest.raises(RateLimited) as limited:
            await c.fetch([query("audience.clicks")], WINDOW)

    assert limited.value.retry_after == 120.0
    assert "10 simultaneous connections" in limited.value.message


@pytest.mark.anyio
async def test_a_server_error_is_retriable(fake: FakeMailchimp) -> None:
    """5xx are Mailchimp's own trouble (ERRORS_DOC): the next run tries again."""
    fake.failures["activity"] = [
        httpx.Response(503, json={"title": "Service Unavailable", "status": 503})
    ]
    async with connected() as c:
        with pytest.raises(RetriableError, match="Service Unavailable"):
            await c.fetch([query("audience.clicks")], WINDOW)


@pytest.mark.anyio
async def test_check_names_the_audience_and_adopts_the_account_timezone(
    fake: FakeMailchimp,
) -> None:
    """GET / -> account_timezone (https://mailchimp.com/developer/marketing/api/root/)."""
    async with connected() as c:
        checked = await c.check()

    assert checked.timezone == "Europe/Berlin"
    assert "Newsletter" in checked.message
    assert "1,234 members" in checked.message
