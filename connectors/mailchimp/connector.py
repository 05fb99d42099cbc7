"""Audience and campaign figures from Mailchimp's Marketing API 3.0, each endpoint asked once a
fetch however many mappings need it:

- ``GET /lists/{list_id}/activity``: the audience's daily aggregates for up to the previous 180
  days, paged with ``count``/``offset`` and trimmed with ``fields``. Mailchimp lists the newest
  day first, so paging stops at the first page that reaches before the window. Days Mailchimp no
  longer keeps are not invented: a warning says from which day the figures start, or, for an
  audience created after the window's start (its ``date_created``), that it has no older days.
- ``GET /lists/{list_id}``: ``stats.member_count``, the audience's size now (a snapshot), and
  ``date_created`` when the activity starts after the window.
- ``GET /reports``: one report per sent campaign, asked for the window's send times
  (``since_send_time``/``before_send_time``), paged to ``total_items``. A campaign's figures
  land on the day of its ``send_time`` in the source's timezone, and only campaigns sent to
  ``list_id`` count. The ``campaign_title``/``campaign_type`` filters are applied here, per
  mapping, so mappings with different filters still share the pages.

The API root is ``https://{dc}.api.mailchimp.com/3.0``: ``dc`` is the API key's suffix
(``…-us21``) or, with an OAuth access token, ``data_center``; ``base_url`` replaces the root.
Errors are problem documents (``type``, ``title``, ``status``, ``detail``, ``instance``) whose
title and detail make the message.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, timedelta
from typing import Any

from pydantic import Field, model_validator

from connectors.base import (
    BaseUrl,
    CheckResult,
    Connector,
    ConnectorConfigError,
    FetchResult,
    Filter,
    FilterOp,
    HttpOptions,
    MetricQuery,
    Window,
    as_number,
    basic_auth,
)
from connectors.errors import Classifier, Hint
from connectors.models import Strict, catalogue, root_field
from connectors.paginate import OffsetPaginator, Request, getter, pages
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

ROOT = "https://{dc}.api.mailchimp.com/3.0"
#: Mailchimp's largest ``count``.
MAX_COUNT = 1000
#: Pages one endpoint may take before paging is called broken.
MAX_PAGES = 200
#: Connections Mailchimp allows one account at once. The client's cap (``max_concurrency``) is
#: per source, so two sources on one account can together go past it: Mailchimp's 429 then slows
#: them like any rate limit.
MAX_CONNECTIONS = 10
_DATA_CENTER = r"^[a-z]{2,4}\d{1,3}$"
_DC_SUFFIX = re.compile(r"-([a-z]{2,4}\d{1,3})$")
MEMBERS = "audience.members"
_MEMBER_COUNT = getter("stats.member_count")
#: Audience metric -> its field in a list-activity day, its description and unit.
ACTIVITY = {
    "audience.subscribed": ("subs", "Contacts who subscribed to the audience", "contacts"),
    "audience.unsubscribed": ("unsubs", "Contacts who unsubscribed", "contacts"),
    "audience.emails_sent": ("emails_sent", "Emails sent to the audience", "emails"),
    "audience.unique_opens": ("unique_opens", "Unique opens of the audience's emails", "opens"),
    "audience.clicks": (
        "recipient_clicks",
        "Clicks by recipients in the audience's emails",
        "clicks",
    ),
}
#: Campaign metric -> its path in a campaign report, its description and unit. In the report's
#: ``clicks`` object ``unique_clicks`` is "the total number of unique clicks for links across a
#: campaign" and ``unique_subscriber_clicks`` "the total number of subscribers who clicked on a
#: campaign" (https://mailchimp.com/developer/marketing/api/reports/).
CAMPAIGNS = {
    "campaigns.emails_sent": ("emails_sent", "Emails sent by campaigns, by send day", "emails"),
    "campaigns.unique_opens": (
        "opens.unique_opens",
        "Unique opens of campaigns, on their send day",
        "opens",
    ),
    "campaigns.unique_clicks": (
        "clicks.unique_clicks",
        "Unique clicks on campaigns' links, on their send day: Mailchimp's `unique_clicks`, each "
        "link's unique clickers summed, so a person who clicks two links counts twice; for "
        "people who clicked, use `campaigns.unique_subscriber_clicks`",
        "clicks",
    ),
    "campaigns.unique_subscriber_clicks": (
        "clicks.unique_subscriber_clicks",
        "People who clicked a link in campaigns, on their send day: Mailchimp's "
        "`unique_subscriber_clicks`, each person once however many links they clicked (the "
        "numerator of a click rate)",
        "contacts",
    ),
}
#: ``fields`` trims each answer to what the metrics read.
ACTIVITY_TRIM = ",".join(
    ["total_items", *(f"activity.{f}" for f in ("day", *(a[0] for a in ACTIVITY.values())))]
)
REPORT_FIELDS = ",".join(
    [
        "total_items",
        *(f"reports.{f}" for f in ("id", "list_id", "campaign_title", "type", "send_time")),
        *(f"reports.{c[0]}" for c in CAMPAIGNS.values()),
    ]
)
_FILTER_KEYS = {"campaign_title": "campaign_title", "campaign_type": "type"}
_TEXT_OPS: frozenset[FilterOp] = frozenset({"eq", "neq", "in", "not_in", "contains"})

_ERRORS = Classifier(
    "Mailchimp",
    {
        401: "Mailchimp refused the API key ({said}): check `api_key`, a live key from Profile > "
        "Extras > API keys that ends in its own data centre (`-us21`)",
        403: "Mailchimp refused access ({said}): the credentials' user needs access to audience "
        "`{config.list_id}` and its reports, and the account must be active",
        404: Hint(
            "Mailchimp has no audience `{config.list_id}` in this account ({said}): check "
            "`list_id` (Audience > Settings > Audience name and defaults)",
            path="/lists/",
        ),
        429: f"Mailchimp asks to slow down (it allows {MAX_CONNECTIONS} connections at once): "
        "{said}",
    },
)
#: With an OAuth access token, the table's 401 (the API key's) says this instead.
_OAUTH_REFUSED = {
    401: "Mailchimp refused the OAuth access token ({said}): reconnect Mailchimp and store the "
    "new `access_token` with its `data_center`"
}


class MailchimpConfig(Strict):
    list_id: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9]+$",
        description="The audience id (Audience > Settings > Audience name and defaults).",
    )
    data_center: str | None = Field(
        None,
        pattern=_DATA_CENTER,
        description="The data centre (`us21`) of an OAuth access token; an API key names its own.",
    )
    base_url: BaseUrl | None = root_field(ROOT, unset=True)
    page_size: int = Field(
        MAX_COUNT,
        ge=1,
        le=MAX_COUNT,
        description="Records asked per page (`count`); lower it only for a proxy that caps pages.",
    )


class MailchimpCredentials(Strict):
    """An API key (Basic auth), or an OAuth access token (Bearer) and its data centre."""

    api_key: str | None = Field(
        None, description="An API key (Profile > Extras > API keys), e.g. `0123…cdef-us21`."
    )
    access_token: str | None = Field(None, description="An OAuth2 access token.")
    data_center: str | None = Field(
        None,
        pattern=_DATA_CENTER,
        description="The `dc` of the OAuth metadata endpoint (`us21`), with `access_token`.",
    )

    @model_validator(mode="after")
    def _one_way_in(self) -> MailchimpCredentials:
        if (self.api_key is None) == (self.access_token is None):
            raise ValueError("give `api_key`, or an OAuth `access_token` with its `data_center`")
        return self


class MailchimpConnector(Connector[MailchimpConfig, MailchimpCredentials]):
    """One audience: its daily activity, its size, and the campaigns sent to it by send day."""

    key = "mailchimp"
    name = "Mailchimp"
    category = "email"
    metrics = (
        *catalogue(
            {m: entry[1:] for m, entry in ACTIVITY.items()}
            | {
                MEMBERS: (
                    "Subscribed contacts in the audience now (recorded on the sync's day)",
                    "contacts",
                    {"history": "snapshot", "additive": False},
                )
            }
        ),
        *catalogue(
            {m: entry[1:] for m, entry in CAMPAIGNS.items()},
            filters={"campaign_title": _TEXT_OPS, "campaign_type": _TEXT_OPS - {"contains"}},
        ),
    )
    #: A campaign's opens and clicks keep arriving for about a week after its send day.
    recommended_lookback_days = settle_days = 7
    #: Marketing API 3.0, the root every path hangs from; Mailchimp dates no sunset.
    api_version = "3.0"

    @classmethod
    def http_options(
        cls, config: MailchimpConfig, credentials: MailchimpCredentials
    ) -> HttpOptions:
        key = credentials.api_key
        suffix = _DC_SUFFIX.search(key or "")
        dc = suffix.group(1) if suffix else credentials.data_center or config.data_center
        if not config.base_url and dc is None:
            raise ConnectorConfigError(
                "the Mailchimp API key doesn't end in its data centre (`-us21`): copy the whole "
                "key from Profile > Extras > API keys, or set `data_center`"
                if key is not None
                else "an OAuth access token needs its `data_center` (the `dc` the OAuth metadata "
                "endpoint gave, e.g. `us21`)"
            )
        authorization = (
            basic_auth("krsync", key) if key is not None else f"Bearer {credentials.access_token}"
        )
        return HttpOptions(
            base_url=(config.base_url or ROOT.format(dc=dc)).rstrip("/"),
            max_concurrency=MAX_CONNECTIONS,
            headers={"Authorization": authorization, "Accept": "application/json"},
        )

    async def check(self) -> CheckResult:
        account = await self._get("", {"fields": "account_name,account_timezone"})
        audience = await self._get(
            f"lists/{self.config.list_id}", {"fields": "id,name,stats.member_count"}
        )
        members = as_number(_MEMBER_COUNT(audience))
        size = f" has {members:,.0f} members" if members is not None else ""
        return CheckResult(
            f"Connected to Mailchimp account {account.get('account_name', '?')}: audience "
            f"{audience.get('name', self.config.list_id)}{size}",
            timezone=zone_name(account.get("account_timezone")),
            details={"list_id": self.config.list_id, "member_count": members},
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        activity = [q for q in queries if q.metric in ACTIVITY]
        campaigns = [q for q in queries if q.metric in CAMPAIGNS]
        members = [q for q in queries if q.metric == MEMBERS]
        if activity:
            days = await self._activity(window, result.warnings)
            for q in activity:
                figures = {d: as_number(row.get(ACTIVITY[q.metric][0])) for d, row in days.items()}
                result.values += daily(q.id, {d: v for d, v in figures.items() if v is not None})
        if campaigns:
            reports = await self._reports(window, result)
            for q in campaigns:
                sums, figure = Sums(), getter(CAMPAIGNS[q.metric][0])
                for day, report in reports:
                    value = as_number(figure(report))
                    if value is not None and _matches(report, q.filters):
                        sums.add(day, value)
                result.values += sums.values(q.id)
        if members:
            audience = await self._get(
                f"lists/{self.config.list_id}", {"fields": "stats.member_count"}
            )
            count = as_number(_MEMBER_COUNT(audience))
            if count is None:
                result.warnings.append("Mailchimp's audience answered without stats.member_count")
            else:
                result.values += snapshot(members, count, window)
        return result

    async def _activity(self, window: Window, warnings: list[str]) -> dict[date, dict[str, Any]]:
        """The window's days of list activity, by day."""
        found: dict[date, dict[str, Any]] = {}
        seen: list[date] = []
        unreadable = 0
        path = f"lists/{self.config.list_id}/activity"
        async for rows, more in self._paged(path, {"fields": ACTIVITY_TRIM}, warnings):
            dated = [
                (iso_day(row.get("day")) if isinstance(row, dict) else None, row) for row in rows
            ]
            days = [day for day, _ in dated if day is not None]
            unreadable += len(rows) - len(days)
            found |= {day: row for day, row in dated if day is not None and day in window}
            seen += days
            if more and days and days[0] >= days[-1] and days[-1] < window.start:
                break  # newest first, and this page already reaches before the window
        if unreadable:
            warnings.append(
                f"{unreadable} day(s) of Mailchimp's list activity had no readable `day`"
            )
        if not more and seen and min(seen) > window.start:
            warnings.append(await self._history_starts(window, min(seen)))
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
        return (
            f"Mailchimp keeps list activity for about the last 180 days and its oldest day is "
            f"{oldest}: audience figures from {window.start} to "
            f"{min(oldest - timedelta(days=1), window.end)} don't exist and were not written"
        )

    async def _reports(
        self, window: Window, result: FetchResult
    ) -> list[tuple[date, dict[str, Any]]]:
        """Reports of campaigns sent to the audience in the window, with their send day."""
        since, before = (
            midnight(day, self.zone).astimezone(UTC).isoformat()
            for day in (window.start, window.end + timedelta(days=1))
        )
        params = {"since_send_time": since, "before_send_time": before, "fields": REPORT_FIELDS}
        reports: list[tuple[date, dict[str, Any]]] = []
        read, audience = 0, self.config.list_id
        async for page, _ in self._paged("reports", params, result.warnings):
            read += len(page)
            for report in page:
                sent = report.get("send_time") if isinstance(report, dict) else None
                day = local_day(sent, self.zone)
                # A campaign to another audience of the account doesn't count.
                if day and day in window and (report.get("list_id") or audience) == audience:
                    reports.append((day, report))
        result.details["campaigns"] = {"read": read, "sent_to_audience": len(reports)}
        return reports

    async def _paged(
        self, path: str, params: dict[str, str], warnings: list[str]
    ) -> AsyncIterator[tuple[list[Any], bool]]:
        """Each page's list (the path's last part names it) and whether another follows; past
        :data:`MAX_PAGES` pages, a warning and no more."""
        key = path.rsplit("/", 1)[-1]
        what = f"Mailchimp's {'list activity' if key == 'activity' else key}"
        paginator = OffsetPaginator(
            limit_param="count", limit=self.config.page_size, total="$.total_items"
        )
        async for body in pages(
            paginator,
            Request("GET", path, params),
            lambda r: self._get(r.url, r.params),
            count=lambda body: len(rows_of(body, key, what)),
            max_pages=MAX_PAGES,
            what=what,
            warnings=warnings,
        ):
            yield rows_of(body, key, what), paginator.has_next

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        hints = _OAUTH_REFUSED if self.credentials.api_key is None else None
        return await _ERRORS.get(  # type: ignore[no-any-return]
            self.http, path, params, obj=True, hints=hints, config=self.config
        )


def _matches(report: dict[str, Any], filters: Sequence[Filter]) -> bool:
    """Filters on report text; ``contains`` ignores case, the rest compare exactly."""
    texts = {f: "" if report.get(k) is None else str(report[k]) for f, k in _FILTER_KEYS.items()}
    return all(passes(texts[f.field], f.op, list(map(str, f.values)), fold=True) for f in filters)
