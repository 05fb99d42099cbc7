"""The Mailchimp connector: the catalogue, authentication headers, the ``check`` and ``fetch``
hooks, the paged list-activity and reports endpoints with the fields each metric reads of them,
and Mailchimp's problem documents read into errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, timedelta
from typing import Any

from connectors.base import (
    CheckResult,
    Connector,
    FetchResult,
    Filter,
    HttpOptions,
    MetricQuery,
    MetricSpec,
    Window,
    as_number,
    basic_auth,
)
from connectors.errors import Classifier, Hints
from connectors.mailchimp.models import (
    MAX_CONNECTIONS,
    MAX_PAGES,
    MailchimpConfig,
    MailchimpCredentials,
    _metric,
    api_root,
)
from connectors.paginate import OffsetPaginator, Request, pages
from connectors.series import (
    Sums,
    daily,
    iso_day,
    local_day,
    midnight,
    passes,
    rows_of,
    snapshot,
    zone_name,
)

#: Audience metric -> its field in a list-activity day.
ACTIVITY_FIELDS = {
    "audience.subscribed": "subs",
    "audience.unsubscribed": "unsubs",
    "audience.emails_sent": "emails_sent",
    "audience.unique_opens": "unique_opens",
    "audience.clicks": "recipient_clicks",
}
#: Campaign metric -> its path in a campaign report. In the report's ``clicks`` object
#: ``unique_clicks`` is "the total number of unique clicks for links across a campaign" and
#: ``unique_subscriber_clicks`` "the total number of subscribers who clicked on a campaign"
#: (https://mailchimp.com/developer/marketing/api/reports/).
CAMPAIGN_FIELDS = {
    "campaigns.emails_sent": ("emails_sent",),
    "campaigns.unique_opens": ("opens", "unique_opens"),
    "campaigns.unique_clicks": ("clicks", "unique_clicks"),
    "campaigns.unique_subscriber_clicks": ("clicks", "unique_subscriber_clicks"),
}
MEMBERS = "audience.members"
#: ``fields`` trims each answer to what the metrics read.
ACTIVITY_TRIM = ",".join(
    ["total_items", *(f"activity.{f}" for f in ("day", *ACTIVITY_FIELDS.values()))]
)
REPORT_FIELDS = ",".join(
    [
        "total_items",
        *(f"reports.{f}" for f in ("id", "list_id", "campaign_title", "type", "send_time")),
        *(f"reports.{'.'.join(path)}" for path in CAMPAIGN_FIELDS.values()),
    ]
)
_FILTER_KEYS = {"campaign_title": "campaign_title", "campaign_type": "type"}

_ERRORS = Classifier(
    "Mailchimp",
    {
        401: "Mailchimp refused the API key ({said}): check `api_key`, a live key from Profile > "
        "Extras > API keys that ends in its own data centre (`-us21`)",
        403: "Mailchimp refused access ({said}): the credentials' user needs access to audience "
        "`{config.list_id}` and its reports, and the account must be active",
        429: f"Mailchimp asks to slow down (it allows {MAX_CONNECTIONS} connections at once): "
        "{said}",
    },
)
_OAUTH_REFUSED: Hints = {
    401: "Mailchimp refused the OAuth access token ({said}): reconnect Mailchimp and store the "
    "new `access_token` with its `data_center`"
}
_NO_AUDIENCE: Hints = {
    404: "Mailchimp has no audience `{config.list_id}` in this account ({said}): check "
    "`list_id` (Audience > Settings > Audience name and defaults)"
}


class MailchimpConnector(Connector[MailchimpConfig, MailchimpCredentials]):
    """One audience: its daily activity, its size, and the campaigns sent to it by send day."""

    key = "mailchimp"
    name = "Mailchimp"
    category = "email"
    config_model = MailchimpConfig
    credentials_model = MailchimpCredentials
    metrics = (
        _metric("audience.subscribed", "Contacts who subscribed to the audience", "contacts"),
        _metric("audience.unsubscribed", "Contacts who unsubscribed", "contacts"),
        _metric("audience.emails_sent", "Emails sent to the audience", "emails"),
        _metric("audience.unique_opens", "Unique opens of the audience's emails", "opens"),
        _metric("audience.clicks", "Clicks by recipients in the audience's emails", "clicks"),
        MetricSpec(
            name=MEMBERS,
            description="Subscribed contacts in the audience now (recorded on the sync's day)",
            unit="contacts",
            history="snapshot",
            additive=False,
        ),
        _metric(
            "campaigns.emails_sent",
            "Emails sent by campaigns, by send day",
            "emails",
            campaign=True,
        ),
        _metric(
            "campaigns.unique_opens",
            "Unique opens of campaigns, on their send day",
            "opens",
            campaign=True,
        ),
        _metric(
            "campaigns.unique_clicks",
            "Unique clicks on campaigns' links, on their send day: Mailchimp's `unique_clicks`, "
            "each link's unique clickers summed, so a person who clicks two links counts twice; "
            "for people who clicked, use `campaigns.unique_subscriber_clicks`",
            "clicks",
            campaign=True,
        ),
        _metric(
            "campaigns.unique_subscriber_clicks",
            "People who clicked a link in campaigns, on their send day: Mailchimp's "
            "`unique_subscriber_clicks`, each person once however many links they clicked "
            "(the numerator of a click rate)",
            "contacts",
            campaign=True,
        ),
    )
    #: Opens and clicks keep coming in for days after a campaign is sent.
    recommended_lookback_days = 7
    #: Marketing API 3.0, the root every path hangs from; Mailchimp dates no sunset.
    api_version = "3.0"
    #: A campaign's opens and clicks keep arriving for about a week after its send day.
    settle_days = 7

    @classmethod
    def http_options(
        cls, config: MailchimpConfig, credentials: MailchimpCredentials
    ) -> HttpOptions:
        authorization = (
            basic_auth("krsync", credentials.api_key)
            if credentials.api_key is not None
            else f"Bearer {credentials.access_token}"
        )
        return HttpOptions(
            base_url=api_root(config, credentials),
            # Per source: sources sharing an account share Mailchimp's 10 but not this cap.
            max_concurrency=MAX_CONNECTIONS,
            headers={"Authorization": authorization, "Accept": "application/json"},
        )

    async def check(self) -> CheckResult:
        account = await self._get("", {"fields": "account_name,account_timezone"})
        audience = await self._get(
            f"lists/{self.config.list_id}", {"fields": "id,name,stats.member_count"}
        )
        members = as_number(_dig(audience, ("stats", "member_count")))
        size = f" has {members:,.0f} members" if members is not None else ""
        return CheckResult(
            f"Connected to Mailchimp account {account.get('account_name', '?')}: audience "
            f"{audience.get('name', self.config.list_id)}{size}",
            timezone=zone_name(account.get("account_timezone")),
            details={"list_id": self.config.list_id, "member_count": members},
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        activity = [q for q in queries if q.metric in ACTIVITY_FIELDS]
        campaigns = [q for q in queries if q.metric in CAMPAIGN_FIELDS]
        members = [q for q in queries if q.metric == MEMBERS]
        if activity:
            days = await self._activity(window, result.warnings)
            for query in activity:
                field = ACTIVITY_FIELDS[query.metric]
                figures = {day: as_number(row.get(field)) for day, row in days.items()}
                result.values += daily(
                    query.id, {d: v for d, v in figures.items() if v is not None}
                )
        if campaigns:
            reports = await self._reports(window, result)
            for query in campaigns:
                sums = Sums()
                for day, report in reports:
                    value = as_number(_dig(report, CAMPAIGN_FIELDS[query.metric]))
                    if value is not None and _matches(report, query.filters):
                        sums.add(day, value)
                result.values += sums.values(query.id)
        if members:
            audience = await self._get(
                f"lists/{self.config.list_id}", {"fields": "stats.member_count"}
            )
            count = as_number(_dig(audience, ("stats", "member_count")))
            if count is None:
                result.warnings.append("Mailchimp's audience answered without stats.member_count")
            else:
                result.values += snapshot(members, count, window)
        return result

    # --- endpoints -------------------------------------------------------------------------------

    async def _activity(self, window: Window, warnings: list[str]) -> dict[date, dict[str, Any]]:
        """The window's days of list activity, by day."""
        found: dict[date, dict[str, Any]] = {}
        oldest: date | None = None
        unreadable = 0
        paginator = self._paginator()
        params = {"fields": ACTIVITY_TRIM}
        path = f"lists/{self.config.list_id}/activity"
        async for rows in self._paged(paginator, path, params, "activity", warnings):
            days: list[date] = []
            for row in rows:
                day = iso_day(row.get("day")) if isinstance(row, dict) else None
                if day is None:
                    unreadable += 1
                    continue
                days.append(day)
                if day in window:
                    found[day] = row
            if days:
                oldest = min(days) if oldest is None else min(oldest, *days)
            if paginator.has_next and days and days[0] >= days[-1] and days[-1] < window.start:
                break  # newest first, and this page already reaches before the window
        reached_end = not paginator.has_next
        if unreadable:
            warnings.append(
                f"{unreadable} day(s) of Mailchimp's list activity had no readable `day`"
            )
        if reached_end and oldest is not None and oldest > window.start:
            warnings.append(await self._history_starts(window, oldest))
        return found

    async def _history_starts(self, window: Window, oldest: date) -> str:
        """Why the activity starts after the window: a young audience has no older days, an old
        one has outlived Mailchimp's 180 days; only the second is history gone missing."""
        audience = await self._get(f"lists/{self.config.list_id}", {"fields": "date_created"})
        created = local_day(audience.get("date_created"), self.zone)
        if created is not None and created > window.start:
            return (
                f"Mailchimp audience `{self.config.list_id}` was created on {created}: it has "
                f"no activity before that day, so nothing was written from {window.start} to "
                f"{min(created - timedelta(days=1), window.end)}"
            )
        last_missing = min(oldest - timedelta(days=1), window.end)
        return (
            f"Mailchimp keeps list activity for about the last 180 days and its oldest day is "
            f"{oldest}: audience figures from {window.start} to {last_missing} don't exist "
            "and were not written"
        )

    async def _reports(
        self, window: Window, result: FetchResult
    ) -> list[tuple[date, dict[str, Any]]]:
        """Reports of campaigns sent to the audience in the window, with their send day."""
        since = midnight(window.start, self.zone).astimezone(UTC)
        before = midnight(window.end + timedelta(days=1), self.zone).astimezone(UTC)
        reports: list[tuple[date, dict[str, Any]]] = []
        read = 0
        params = {
            "since_send_time": since.isoformat(),
            "before_send_time": before.isoformat(),
            "fields": REPORT_FIELDS,
        }
        async for page in self._paged(
            self._paginator(), "reports", params, "reports", result.warnings
        ):
            read += len(page)
            for report in page:
                day = local_day(
                    report.get("send_time") if isinstance(report, dict) else None, self.zone
                )
                if day is None or day not in window:
                    continue
                list_id = report.get("list_id")
                if list_id and list_id != self.config.list_id:
                    continue  # a campaign to another audience of the account
                reports.append((day, report))
        result.details["campaigns"] = {"read": read, "sent_to_audience": len(reports)}
        return reports

    # --- HTTP ------------------------------------------------------------------------------------

    def _paginator(self) -> OffsetPaginator:
        """Mailchimp's ``count``/``offset`` paging, to ``total_items`` where it is sent."""
        size = self.config.page_size
        return OffsetPaginator(limit_param="count", limit=size, total="$.total_items")

    async def _paged(
        self,
        paginator: OffsetPaginator,
        path: str,
        params: dict[str, str],
        key: str,
        warnings: list[str],
    ) -> AsyncIterator[list[Any]]:
        """Each page's ``key`` list; past :data:`MAX_PAGES` pages a warning, and no more."""
        what = f"Mailchimp's {'list activity' if key == 'activity' else key}"
        async for body in pages(
            paginator,
            Request("GET", path, params),
            lambda r: self._get(r.url, r.params),
            count=lambda body: len(rows_of(body, key, what)),
            max_pages=MAX_PAGES,
            what=what,
            warnings=warnings,
        ):
            yield rows_of(body, key, what)

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        hints = {
            **({} if self.credentials.api_key is not None else _OAUTH_REFUSED),
            **(_NO_AUDIENCE if path.startswith("lists/") else {}),
        }
        return await _ERRORS.get(  # type: ignore[no-any-return]
            self.http, path, params, obj=True, hints=hints, config=self.config
        )


def _dig(record: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        record = record.get(part) if isinstance(record, dict) else None
    return record


def _matches(report: dict[str, Any], filters: Sequence[Filter]) -> bool:
    """Filters on report text; ``contains`` ignores case, the rest compare exactly."""
    texts = {f: "" if report.get(k) is None else str(report[k]) for f, k in _FILTER_KEYS.items()}
    return all(passes(texts[f.field], f.op, list(map(str, f.values)), fold=True) for f in filters)
