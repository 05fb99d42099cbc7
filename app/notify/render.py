"""What each kind of channel receives for an event: Slack Block Kit, a Teams Adaptive Card, a mail.

Every message is built from one :class:`Message` read off the event body, so Slack, Teams and
mail say the same thing: a title, a few facts (the key result, its change, its progress), and a
link into krsync starting with ``KRSYNC_PUBLIC_URL`` (left out when that is not set: a link to
the wrong host is worse than none). Values come from the event's data, written by krsync from
user input (titles, owners), so they are escaped for each format and cut to the platforms'
limits.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

__all__ = ["Message", "describe", "email_message", "slack_payload", "teams_payload"]

#: Slack refuses a section text over 3,000 characters and a header over 150.
_SLACK_TEXT_MAX = 3000
_SLACK_HEADER_MAX = 150
_STATUS_WORDS = {
    "on_track": "on track",
    "at_risk": "at risk",
    "off_track": "off track",
    "done": "done",
    "not_started": "not started",
}


@dataclass(frozen=True)
class Message:
    title: str
    summary: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    link: str | None = None
    link_label: str = "Open in krsync"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _status(value: Any) -> str:
    return _STATUS_WORDS.get(str(value), str(value).replace("_", " ")) if value else "unknown"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _percent(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return f"{value * 100:.0f}%"


def _progress_fact(data: dict[str, Any], unit: str) -> str | None:
    """ "42% (1,260 of 3,000 sessions; 50% expected by now)" from what the event carries."""
    raw = data.get("progress")
    progress = _dict(raw)
    share = _percent(progress.get("progress") if progress else raw)
    if share is None:
        return None
    parts = []
    current, target = progress.get("current_value"), progress.get("target_value")
    if current is not None and target is not None:
        parts.append(f"{_number(current)} of {_number(target)}{' ' + unit if unit else ''}")
    expected = _percent(progress.get("expected_progress"))
    if expected is not None:
        parts.append(f"{expected} expected by now")
    return f"{share} ({'; '.join(parts)})" if parts else share


def _forecast_fact(data: dict[str, Any], unit: str) -> str | None:
    raw = data.get("forecast")
    forecast = _dict(raw)
    value = forecast.get("value", forecast.get("forecast_value")) if forecast else raw
    share = _percent(forecast.get("progress", forecast.get("forecast_progress")))
    if value is None and share is None:
        return None
    text = f"{_number(value)}{' ' + unit if unit else ''}" if value is not None else ""
    if share is not None:
        text = f"{text} ({share} of target)" if text else f"{share} of target"
    return f"{text} by the cycle's end"


def _link(public_url: str | None, path: str) -> str | None:
    return f"{public_url.rstrip('/')}{path}" if public_url else None


def describe(event: dict[str, Any], public_url: str | None) -> Message:
    """The one message every channel kind renders, for an event body ``{type, timestamp, data}``."""
    type_ = str(event.get("type", ""))
    data = _dict(event.get("data"))
    kr = _dict(data.get("key_result"))
    objective = _dict(data.get("objective"))
    source = _dict(data.get("source"))
    cycle = _dict(data.get("cycle"))
    unit = str(kr.get("unit") or "")
    facts: list[tuple[str, str]] = []
    if kr:
        kr_title = str(kr.get("title") or f"key result {kr.get('id')}")
        if objective.get("title"):
            facts.append(("Objective", str(objective["title"])))
        if data.get("old_status") or data.get("new_status"):
            facts.append(
                ("Status", f"{_status(data.get('old_status'))} → {_status(data.get('new_status'))}")
            )
        change = _dict(data.get("change"))
        if change.get("from") is not None or change.get("to") is not None:
            facts.append(("Change", f"{_number(change.get('from'))} → {_number(change.get('to'))}"))
        if (progress := _progress_fact(data, unit)) is not None:
            facts.append(("Progress", progress))
        if (forecast := _forecast_fact(data, unit)) is not None:
            facts.append(("Forecast", forecast))
        if kr.get("owner"):
            facts.append(("Owner", str(kr["owner"])))
        link = _link(public_url, f"/key-results/{kr['id']}") if kr.get("id") else None
        if type_ == "key_result.done":
            title = f"Key result done: {kr_title}"
        elif type_ == "check_in.reminder":
            days = data.get("days_since_check_in")
            since = f" for {days} days" if days else ""
            title = f"Check-in due: {kr_title}"
            return Message(title, f"No check-in on “{kr_title}”{since}.", facts, link)
        else:
            title = f"{kr_title}: {_status(data.get('new_status'))}"
        return Message(
            title, f"Key result “{kr_title}” is {_status(data.get('new_status'))}.", facts, link
        )
    if source:
        name = str(source.get("name") or f"source {source.get('id')}")
        for key, label in (
            ("health", "Health"),
            ("consecutive_failures", "Failed runs in a row"),
            ("api_version_sunset", "API version retires on"),
            ("error", "Last error"),
        ):
            if data.get(key) is not None:
                facts.append((label, str(data[key])))
        what = {
            "source.failing": "is failing",
            "source.needs_reauth": "needs to be reconnected",
            "source.paused": "was paused after repeated failures",
            "source.recovered": "has recovered",
            "source.api_version_sunset": "uses an API version that retires soon",
        }.get(type_, "changed")
        link = _link(public_url, f"/sources/{source['id']}") if source.get("id") else None
        return Message(f"Data source {name} {what}", f"Data source “{name}” {what}.", facts, link)
    if type_ == "digest.weekly":
        for key, label in (
            ("moved", "Moved"),
            ("at_risk", "At risk"),
            ("stale", "Stale"),
            ("unhealthy_sources", "Unhealthy sources"),
        ):
            items = data.get(key)
            if isinstance(items, list) and items:
                names = [str(_dict(i).get("title") or _dict(i).get("name") or i) for i in items]
                facts.append((label, ", ".join(names[:20])))
        return Message("Weekly OKR digest", "What moved this week.", facts, _link(public_url, "/"))
    if type_ == "cycle.closed":
        name = str(cycle.get("name") or "a cycle")
        if cycle.get("status") == "open":  # SPEC section 8: a reopen raises the event too
            return Message(
                f"Cycle {name} reopened",
                f"Cycle “{name}” was reopened: its figures are live again.",
                facts,
                _link(public_url, "/okrs"),
            )
        return Message(
            f"Cycle {name} closed", f"Cycle “{name}” was closed.", facts, _link(public_url, "/okrs")
        )
    if type_ == "notification.test":
        channel = _dict(data.get("channel"))
        name = str(channel.get("name") or "this channel")
        return Message(
            "krsync test message",
            f"Notifications to “{name}” work.",
            facts,
            _link(public_url, "/"),
        )
    return Message(
        type_ or "krsync event", json.dumps(data, default=str)[:500], facts, _link(public_url, "/")
    )


# --- Slack ---------------------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn takes &, < and > as control characters; everything else is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(message: Message) -> dict[str, Any]:
    """An incoming-webhook message: `text` for notifications and screen readers, `blocks` shown.

    Blocks: a header, a section with the summary and the facts as fields (Slack shows up to
    ten), and a button linking into krsync when there is a link.
    """
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(message.title, _SLACK_HEADER_MAX)},
        },
    ]
    section: dict[str, Any] = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _cut(_slack_escape(message.summary), _SLACK_TEXT_MAX)},
    }
    if message.facts:
        section["fields"] = [
            {
                "type": "mrkdwn",
                "text": _cut(f"*{_slack_escape(label)}*\n{_slack_escape(value)}", 2000),
            }
            for label, value in message.facts[:10]
        ]
    blocks.append(section)
    if message.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": message.link_label},
                        "url": message.link,
                    }
                ],
            }
        )
    return {"text": _cut(f"{message.title}: {message.summary}", _SLACK_TEXT_MAX), "blocks": blocks}


# --- Microsoft Teams ---------------------------------------------------------------------------


def teams_payload(message: Message) -> dict[str, Any]:
    """A message with one Adaptive Card attachment, as Teams incoming webhooks and Workflows
    ("post to a channel when a webhook request is received") take it."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": message.title,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
        {"type": "TextBlock", "text": message.summary, "wrap": True},
    ]
    if message.facts:
        body.append(
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in message.facts]}
        )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if message.link:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": message.link_label, "url": message.link}
        ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


# --- mail --------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def email_message(message: Message, *, sender: str, to: list[str]) -> EmailMessage:
    """A multipart/alternative mail: plain text first, HTML second (clients show the last they
    can render). The subject is one line whatever a title holds."""
    mail = EmailMessage()
    mail["Subject"] = _CONTROL.sub(" ", f"[krsync] {message.title}")[:200]
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    lines = [message.summary, ""]
    lines += [f"{label}: {value}" for label, value in message.facts]
    if message.link:
        lines += ["", f"{message.link_label}: {message.link}"]
    mail.set_content("\n".join(lines) + "\n")
    esc = html.escape
    rows = "".join(
        f'<tr><th align="left">{esc(label)}</th><td>{esc(value)}</td></tr>'
        for label, value in message.facts
    )
    link = (
        f'<p><a href="{esc(message.link)}">{esc(message.link_label)}</a></p>'
        if message.link
        else ""
    )
    mail.add_alternative(
        f"<!doctype html><html><body><h2>{esc(message.title)}</h2><p>{esc(message.summary)}</p>"
        f"<table>{rows}</table>{link}</body></html>",
        subtype="html",
    )
    return mail
