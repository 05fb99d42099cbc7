"""Notification channels in the browser: list, create, edit, delete, send a test, the delivery log.

The same schemas and service as `/api/v1/notification-channels`, so a refusal reads as the API
words it, beside the field it names. A channel's URL is a secret (Slack's and Teams' webhooks
carry their credential in it): it is never sent back to the browser, not even on a refusal, and
left blank on a change the stored one is kept (the API's PATCH leaves out `config` likewise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from app.core.errors import DomainError, NotFound, reason
from app.models import Cycle, NotificationChannel, NotificationDelivery, Objective
from app.notify import service
from app.notify.events import EVENT_TYPES
from app.notify.schemas import URL_KINDS, ChannelCreate, ChannelRead, ChannelUpdate
from app.web.forms import FormState, render_form, shown_once, submit
from app.web.pages import AdminPage, Page, path_id

router = APIRouter(include_in_schema=False)


KINDS = ("slack", "teams", "email", "webhook")
KIND_HELP = {
    "slack": "Slack incoming webhook: a Block Kit message in the channel the webhook was made "
    "for. Paste the https://hooks.slack.com/services/… URL Slack gives.",
    "teams": "Microsoft Teams incoming webhook or Workflows (“Post to a channel when a webhook "
    "request is received”): an Adaptive Card. Paste the URL Teams gives.",
    "email": "Email over SMTP: a plain-text and an HTML part to the addresses below, sent "
    "through the server in KRSYNC_SMTP_URL, from KRSYNC_MAIL_FROM.",
    "webhook": "Signed webhook: the event's JSON posted to your URL, signed per the Standard "
    "Webhooks specification with a secret shown once when the channel is created.",
}
EVENT_HELP = {
    "key_result.status_changed": "A key result's status changes (on track, at risk, off track…).",
    "key_result.done": "A key result reaches its target.",
    "source.failing": "A data source's sync run fails.",
    "source.needs_reauth": (
        "A source's token is refused, or its refresh token expires within 7 days."
    ),
    "source.paused": "A source is paused after too many failed runs in a row.",
    "source.recovered": "A failing or paused source syncs well again.",
    "source.api_version_sunset": "A source's platform retires its API version within 60 days.",
    "check_in.reminder": "A manual key result has had no check-in for 7 days.",
    "digest.weekly": "Mondays 09:00 (KRSYNC_TIMEZONE): what moved, what is at risk, what is stale.",
    "cycle.closed": "A cycle is closed.",
}
STATUSES = ("pending", "delivered", "failed")
SCOPE_FIELDS = ("cycle_id", "objective_id", "team", "owner")
#: The form's fields; a refusal naming none of them is shown at the top of the form.
FIELDS = ("name", "kind", "url", "to", "events", *SCOPE_FIELDS, "enabled")
FORM = "form"
_MAX_ROWS = 500


@dataclass(frozen=True)
class ChannelView:
    channel: ChannelRead
    last_status: str | None
    last_at: datetime | None


@dataclass(frozen=True)
class SentTest:
    channel_id: int
    ok: bool
    message: str


def _field(loc: tuple[Any, ...] | list[Any] | str | None) -> str:
    """The form field an API location names: `config.url` is `url`, `scope.team` is `team`."""
    parts = [str(p) for p in loc] if isinstance(loc, tuple | list) else str(loc or "").split(".")
    if not parts or not parts[0]:
        return FORM
    if parts[0] in ("config", "scope") and len(parts) > 1:
        return parts[1] if parts[1] in FIELDS else FORM
    return parts[0] if parts[0] in FIELDS else FORM


class ChannelFields:
    """A refusal beside the box it names: `config.url` is the URL box, `scope.team` the team's."""

    def validation_errors(self, exc: ValidationError) -> dict[str, str]:
        found: dict[str, str] = {}
        for err in exc.errors(include_input=False):
            found.setdefault(_field(err.get("loc")), reason(str(err.get("msg"))))
        return found

    def domain_errors(self, exc: DomainError) -> dict[str, str]:
        return {_field(exc.field): exc.message}


@dataclass(frozen=True)
class KindFields(ChannelFields):
    """On a change, "config needs the channel's url or addresses" goes beside the one box
    this kind of channel shows."""

    kind: str

    def domain_errors(self, exc: DomainError) -> dict[str, str]:
        if exc.field == "config":
            return {"url" if self.kind in URL_KINDS else "to": exc.message}
        return super().domain_errors(exc)


def _form_values(form: FormData) -> dict[str, Any]:
    """What the person typed, to parse and to show again (the URL only to parse)."""
    text = {f: str(form.get(f) or "") for f in ("name", "kind", "url", "to", *SCOPE_FIELDS)}
    return {
        **text,
        "events": [str(e) for e in form.getlist("events")],
        "enabled": form.get("enabled") is not None,
    }


def _addresses(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def _scope(values: dict[str, Any]) -> dict[str, Any]:
    return {f: values[f].strip() or None for f in SCOPE_FIELDS}


def _config(kind: str, values: dict[str, Any], *, keep_url: bool) -> dict[str, Any] | None:
    """`url` for the kinds that take one, `to` for email; None leaves a stored URL as it is."""
    if kind in URL_KINDS:
        url = values["url"].strip()
        if not url and keep_url:
            return None
        return {"url": url or None}
    return {"to": _addresses(values["to"]) or None}


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    return {**values, "url": ""}  # write-only: never sent back, not even on a refusal


def _choices(session: Session) -> dict[str, Any]:
    cycles = list(session.scalars(select(Cycle).order_by(Cycle.start_date.desc(), Cycle.id)))
    names = {c.id: c.name for c in cycles}
    objectives = list(
        session.scalars(select(Objective).order_by(Objective.cycle_id.desc(), Objective.id))
    )
    return {
        "cycles": cycles,
        "objectives": [(o, names.get(o.cycle_id, "")) for o in objectives],
        "kinds": KINDS,
        "kind_help": KIND_HELP,
        "event_types": EVENT_TYPES,
        "event_help": EVENT_HELP,
    }


def _views(session: Session) -> list[ChannelView]:
    rows, _ = service.list_channels(session, _MAX_ROWS, 0)
    latest = (
        select(NotificationDelivery.channel_id, func.max(NotificationDelivery.id).label("last"))
        .group_by(NotificationDelivery.channel_id)
        .subquery()
    )
    last = {
        d.channel_id: d
        for d in session.scalars(
            select(NotificationDelivery).join(latest, latest.c.last == NotificationDelivery.id)
        )
    }
    views = []
    for row in rows:
        d = last.get(row.id)
        at = None if d is None else d.delivered_at or d.last_attempt_at or d.created_at
        views.append(ChannelView(service.channel_read(row), d.status if d else None, at))
    return views


def _new_form() -> FormState:
    blank = dict.fromkeys(("name", "url", "to", *SCOPE_FIELDS), "")
    return FormState({**blank, "kind": "slack", "events": list(EVENT_TYPES), "enabled": True})


def _index(page: Page, form: FormState | None = None, tested: SentTest | None = None) -> Response:
    context: dict[str, Any] = {
        "channels": _views(page.session),
        "tested": tested,
        "url_kinds": URL_KINDS,
        "scope_keys": SCOPE_FIELDS,
        **_choices(page.session),
    }
    shown = FormState(_shown(form.values), form.errors, form.status_code) if form else None
    return render_form(page, "notifications/index.html", shown or _new_form(), context)


def _channel_or_404(page: Page, channel_id: str) -> NotificationChannel:
    get = partial(service.get_channel, page.session)
    gone = "That notification channel does not exist (any more)."
    return page.found_or_404("channel", channel_id, get, gone)


@router.get("/notifications")
def notifications_page(page: AdminPage) -> Response:
    """The channels, how each last delivery went, and the form for a new one."""
    return _index(page)


@router.post("/notifications")
async def create_channel(page: AdminPage) -> Response:
    """Create a channel; a webhook channel's signing secret is shown this once."""
    values = _form_values(await page.request.form())
    # The service checks the URL's host with asyncio.run: off the event loop.
    return await run_in_threadpool(_create, page, values)


def _create(page: Page, values: dict[str, Any]) -> Response:
    kind = values["kind"]
    body = {
        "name": values["name"],
        "kind": kind,
        "config": _config(kind, values, keep_url=False) if kind in KINDS else {},
        "events": values["events"],
        "scope": _scope(values),
        "enabled": values["enabled"],
    }

    def write() -> str | Response:
        data = ChannelCreate.model_validate(body).model_dump()
        channel, secret = service.create_channel(page.session, data, page.principal.name)
        if secret is None:
            return f"/notifications#channel-{channel.id}"
        made = {"channel": service.channel_read(channel)}
        return shown_once(page, "notifications/created.html", secret, made)

    again = partial(_index, page)
    return submit(page.session, ChannelFields(), values, write, again)


def _edit_page(page: Page, channel: NotificationChannel, form: FormState) -> Response:
    context: dict[str, Any] = {
        "channel": service.channel_read(channel),
        "url_kinds": URL_KINDS,
        **_choices(page.session),
    }
    shown = FormState(_shown(form.values), form.errors, form.status_code)
    return render_form(page, "notifications/edit.html", shown, context)


@router.get("/notifications/deliveries")
def deliveries_page(
    page: AdminPage,
    channel_id: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query()] = None,
) -> Response:
    """Each event's delivery to each channel, newest first, with its last error (no URL)."""
    problems = []
    cid: int | None = None
    if channel_id:
        cid = path_id(channel_id) or None
        if cid is None:
            problems.append("The channel must be picked from the list.")
    wanted = status or None
    if wanted is not None and wanted not in STATUSES:
        problems.append("The status is pending, delivered or failed.")
        wanted = None
    items, total = service.list_deliveries(page.session, cid, wanted, _MAX_ROWS, 0)
    rows, _ = service.list_channels(page.session, _MAX_ROWS, 0)
    context: dict[str, Any] = {
        "principal": page.principal,
        "deliveries": items,
        "total": total,
        "channels": rows,
        "names": {c.id: c.name for c in rows},
        "channel_id": cid,
        "status": wanted,
        "statuses": STATUSES,
        "problem": " ".join(problems) or None,
    }
    return page.render("notifications/deliveries.html", context, 422 if problems else 200)


@router.get("/notifications/{channel_id}/edit")
def edit_channel_page(page: AdminPage, channel_id: str) -> Response:
    """The channel's form: every field but the URL filled in (blank keeps the stored one)."""
    channel = _channel_or_404(page, channel_id)
    scope = channel.scope or {}
    values = {
        "name": channel.name,
        "kind": channel.kind,
        "url": "",
        "to": "\n".join((channel.config or {}).get("to") or []),
        "events": list(channel.events or []),
        "enabled": channel.enabled,
        **{f: "" if scope.get(f) is None else str(scope[f]) for f in SCOPE_FIELDS},
    }
    return _edit_page(page, channel, FormState(values))


@router.post("/notifications/{channel_id}/edit")
async def edit_channel(page: AdminPage, channel_id: str) -> Response:
    """Change a channel; a blank URL keeps the stored one, a new one replaces it."""
    form = await page.request.form()
    return await run_in_threadpool(_edit, page, channel_id, form)


def _edit(page: Page, channel_id: str, form: FormData) -> Response:
    channel = _channel_or_404(page, channel_id)
    values = {**_form_values(form), "kind": channel.kind}
    body: dict[str, Any] = {
        "name": values["name"],
        "events": values["events"],
        "scope": _scope(values),
        "enabled": values["enabled"],
    }
    config = _config(channel.kind, values, keep_url=True)
    if config is not None:
        body["config"] = config

    def write() -> str:
        changes = ChannelUpdate.model_validate(body).model_dump(exclude_unset=True)
        service.update_channel(page.session, channel.id, changes, page.principal.name)
        return f"/notifications#channel-{channel.id}"

    def again(form: FormState) -> Response:
        channel = _channel_or_404(page, channel_id)
        return _edit_page(page, channel, form)

    return submit(page.session, KindFields(channel.kind), values, write, again)


@router.post("/notifications/{channel_id}/test")
def test_channel(page: AdminPage, channel_id: str) -> Response:
    """Send a `notification.test` message now; the page says how it went (the error redacted)."""
    channel = _channel_or_404(page, channel_id)
    outcome, message = service.send_test(page.session, channel.id)
    tested = SentTest(channel.id, outcome.ok, message)
    return _index(page, tested=tested)


@router.get("/notifications/{channel_id}/delete")
def confirm_delete_channel(page: AdminPage, channel_id: str) -> Response:
    """Ask first: its deliveries, sent or still pending, go with it."""
    channel = _channel_or_404(page, channel_id)
    pending = (
        page.session.scalar(
            select(func.count())
            .select_from(NotificationDelivery)
            .where(
                NotificationDelivery.channel_id == channel.id,
                NotificationDelivery.status == "pending",
            )
        )
        or 0
    )
    context = {
        "principal": page.principal,
        "channel": service.channel_read(channel),
        "pending": pending,
    }
    return page.render("notifications/delete.html", context)


@router.post("/notifications/{channel_id}/delete")
def delete_channel(page: AdminPage, channel_id: str) -> Response:
    cid = path_id(channel_id)
    try:
        service.delete_channel(page.session, cid, page.principal.name)
    except NotFound:
        pass  # already gone: the page the admin wanted is the same
    return RedirectResponse("/notifications", status_code=303)
