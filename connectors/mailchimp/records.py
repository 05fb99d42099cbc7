"""Mailchimp's answers as the metrics read them: which field of a list-activity day or campaign
report each metric takes, the ``fields`` trims that ask for only those, and reading the records
(numbers, days, nested paths, the campaign filters)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from connectors.base import Filter

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


def _day(raw: Any) -> date | None:
    """A list-activity ``day``: a date, sometimes with a time after it."""
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        return None


def _dig(record: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        record = record.get(part) if isinstance(record, dict) else None
    return record


def _matches(report: dict[str, Any], filters: Sequence[Filter]) -> bool:
    """Filters on report text; ``contains`` ignores case, the rest compare exactly."""
    for flt in filters:
        raw = report.get(_FILTER_KEYS[flt.field])
        text = "" if raw is None else str(raw)
        wanted = [str(v) for v in flt.values]
        if flt.op == "eq":
            ok = text == wanted[0]
        elif flt.op == "neq":
            ok = text != wanted[0]
        elif flt.op == "in":
            ok = text in wanted
        elif flt.op == "not_in":
            ok = text not in wanted
        else:
            ok = wanted[0].casefold() in text.casefold()
        if not ok:
            return False
    return True
