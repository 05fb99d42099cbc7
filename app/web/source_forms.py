"""Creating, editing, testing, syncing and deleting data sources in the browser, for admins.

The gallery lists the connectors `GET /api/v1/connectors` lists; each one's form is generated
from its `config` and `credentials` JSON Schemas (app.web.schema_form), so a connector installed
as a plugin gets a form too. What the form sends is the body `POST /api/v1/data-sources` (or
`PATCH`) takes, checked by the same schema and service, so a refusal reads in the API's words,
beside the field it names. Credentials are write-only here as in the API: a page never shows
one, and on edit a blank field keeps the stored value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any
from zoneinfo import available_timezones

from fastapi import APIRouter, BackgroundTasks
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.core.errors import DomainError, InvalidInput, reason
from app.models import DataSource
from app.sources import service
from app.sources.oauth_providers import Provider, provider_for_connector
from app.sources.schemas import (
    CheckRead,
    DataSourceCreate,
    DataSourceRead,
    DataSourceUpdate,
    SyncRequest,
)
from app.web import schema_form
from app.web.forms import Exact, FormState, render_form, shown_once, submit
from app.web.pages import AdminPage, Page
from app.web.schema_form import FormField
from app.web.sources import render_source, source_row
from connectors.registry import get_connector

router = APIRouter(include_in_schema=False)


CATEGORIES = {
    "analytics": "Analytics",
    "crm": "CRM",
    "email": "Email",
    "social": "Social",
    "generic": "Generic: your own files, APIs and databases",
    "demo": "Demo",
}
#: The source's own fields, as `DataSourceCreate` names them; the rest are config/credentials.
SOURCE_FIELDS = ("name", "timezone", "schedule", "lookback_days", "enabled")
_MAX_CONNECTORS = 1000
_DEFAULT_LOOKBACK = 3
#: The sync form's days; a refusal about neither shows above the form.
_SYNC_FIELDS = Exact(("from", "to"), "sync")


@dataclass(frozen=True)
class ConnectorCard:
    key: str
    name: str
    category: str
    description: str
    oauth: Provider | None
    recommended_lookback_days: int | None
    config: dict[str, Any]
    credentials: dict[str, Any]


def _summary(key: str) -> str:
    """A line on what the connector reads: its `summary` if it has one, else its docstring's
    first paragraph (a plugin author writes that anyway)."""
    cls = get_connector(key)
    text = getattr(cls, "summary", None) or cls.__doc__ or ""
    if not isinstance(text, str):
        return ""
    return " ".join(text.strip().split("\n\n")[0].split())


def connectors() -> list[ConnectorCard]:
    items, _ = service.list_connectors(_MAX_CONNECTORS, 0)
    return [
        ConnectorCard(
            key=item["key"],
            name=item["name"],
            category=item["category"],
            description=_summary(item["key"]),
            oauth=provider_for_connector(item["key"]),
            recommended_lookback_days=item.get("recommended_lookback_days"),
            config=item["config"],
            credentials=item["credentials"],
        )
        for item in items
    ]


def _card(key: str) -> ConnectorCard | None:
    return next((c for c in connectors() if c.key == key), None)


def gallery() -> list[tuple[str, list[ConnectorCard]]]:
    """The connectors by category, in the order the SPEC lists categories, unknown ones last."""
    groups: dict[str, list[ConnectorCard]] = {}
    for card in connectors():
        groups.setdefault(card.category, []).append(card)
    order = [*CATEGORIES, *sorted(set(groups) - set(CATEGORIES))]
    return [(CATEGORIES.get(c, c.title()), groups[c]) for c in order if c in groups]


# --- the form ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceForm:
    card: ConnectorCard
    config: list[FormField]
    credentials: list[FormField]

    @classmethod
    def of(cls, card: ConnectorCard) -> SourceForm:
        return cls(
            card,
            schema_form.form_fields(card.config, "config"),
            schema_form.form_fields(card.credentials, "credentials", secret=True),
        )

    @property
    def secret_names(self) -> set[str]:
        fields = [*self.config, *self.credentials]
        return {f.name for f in schema_form.walk(fields) if f.secret}

    def where(self, location: str) -> str:
        """The field a refusal's location names; what no field shows goes to the form's top."""
        head = location.split(".", 1)[0]
        if head in SOURCE_FIELDS:
            return head
        if head == "config":
            return schema_form.locate(self.config, "config", location)
        if head == "credentials":
            return schema_form.locate(self.credentials, "credentials", location)
        return "form"

    def validation_errors(self, exc: ValidationError) -> dict[str, str]:
        errors: dict[str, str] = {}
        for err in exc.errors(include_url=False, include_input=False, include_context=False):
            location = ".".join(str(p) for p in err["loc"])
            errors.setdefault(self.where(location), reason(err["msg"]))
        return errors

    def domain_errors(self, exc: DomainError) -> dict[str, str]:
        errors: dict[str, str] = {}
        for location, why in (exc.problems or {"form": exc.message}).items():
            errors.setdefault(self.where(location), why)
        return errors

    def typed_credentials(self, form: dict[str, str]) -> bool:
        return any(form.get(f.name, "").strip() for f in schema_form.walk(self.credentials))


def _form_dict(form: Any) -> dict[str, str]:
    """The submitted fields as text (a repeated name keeps its last value; files are dropped)."""
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def _source_body(form: dict[str, str]) -> dict[str, Any]:
    """The source's own fields: a blank one is left out, so the API's default (or its
    "Field required") applies; a number that is not one goes through for the schema to name."""
    body: dict[str, Any] = {}
    for name in ("name", "timezone", "schedule"):
        text = form.get(name, "")
        if text.strip():
            body[name] = text
    lookback = form.get("lookback_days", "").strip()
    if lookback:
        body["lookback_days"] = int(lookback) if lookback.isdigit() else lookback
    body["enabled"] = form.get("enabled", "") not in ("", "off", "false")
    return body


def _render_form(
    page: Page,
    sf: SourceForm,
    form: FormState,
    source: DataSourceRead | None = None,
    secrets_set: dict[str, bool] | None = None,
) -> Response:
    # A secret never goes back into a page, whatever was typed into it.
    shown = {k: v for k, v in form.values.items() if k not in sf.secret_names}
    known = schema_form.sections_of([*sf.config, *sf.credentials], "config", "credentials")
    known |= set(SOURCE_FIELDS)
    unplaced = [msg for name, msg in form.errors.items() if name not in known]
    context: dict[str, Any] = {
        "card": sf.card,
        "config_fields": sf.config,
        "credential_fields": sf.credentials,
        "unplaced": unplaced,
        "source": source,
        "secrets_set": secrets_set or {},
        "zones": _zone_names(),
    }
    sent = FormState(shown, form.errors, form.status_code)
    return render_form(page, "sources/form.html", sent, context)


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    """The timezone field's suggestions: the names the API's `Timezone` accepts."""
    return tuple(sorted(available_timezones() - {"localtime"}))


def _new_values(sf: SourceForm) -> dict[str, str]:
    lookback = sf.card.recommended_lookback_days or _DEFAULT_LOOKBACK
    values = {
        "name": "",
        "timezone": "UTC",
        "schedule": "0 3 * * *",
        "lookback_days": str(lookback),
        "enabled": "on",
    }
    values.update(schema_form.form_values(sf.config, None))
    return values


def _unknown_connector(page: Page, key: str) -> Response:
    return page.refuse(
        404,
        "No such connector",
        f"No connector `{key[:100]}` is installed; pick one from the gallery at /sources/new.",
    ).response


# --- routes -----------------------------------------------------------------------------------


@router.get("/sources/new")
def connector_gallery(page: AdminPage) -> Response:
    """Every installed connector, by category: pick one to create a source of it."""
    context = {"principal": page.principal, "categories": gallery()}
    return page.render("sources/gallery.html", context)


@router.get("/sources/new/{connector_key}")
def new_source_form(page: AdminPage, connector_key: str) -> Response:
    """The form for a new source of one connector, built from its JSON Schemas."""
    card = _card(connector_key)
    if card is None:
        return _unknown_connector(page, connector_key)
    sf = SourceForm.of(card)
    return _render_form(page, sf, FormState(_new_values(sf)))


def _create(page: Page, sf: SourceForm, form: dict[str, str]) -> Response:
    config, errors = schema_form.parse(sf.config, form)
    credentials, credential_errors = schema_form.parse(sf.credentials, form)
    errors |= credential_errors
    body = {
        **_source_body(form),
        "connector": sf.card.key,
        "config": config,
        # Nothing typed: no credentials yet (a "Connect" button or an edit fills them later).
        "credentials": credentials or None,
    }
    again = partial(_render_form, page, sf)
    if errors:
        return again(FormState(form, errors, 422))

    def write() -> str | Response:
        made = DataSourceCreate.model_validate(body)
        row, generated = service.register_source(
            page.session, made.model_dump(), page.principal.name
        )
        if generated is None:
            return f"/sources/{row.id}"
        shown = {"source": DataSourceRead.model_validate(row)}
        return shown_once(page, "sources/created.html", generated, shown)

    return submit(page.session, sf, form, write, again, own_status=True)


@router.post("/sources/new/{connector_key}")
async def create_source(page: AdminPage, connector_key: str) -> Response:
    """Create a source as `POST /api/v1/data-sources` does; a refusal shows by its field."""
    card = await run_in_threadpool(_card, connector_key)
    if card is None:
        return _unknown_connector(page, connector_key)
    form = _form_dict(await page.request.form())
    return await run_in_threadpool(_create, page, SourceForm.of(card), form)


def _edit_form(page: Page, source_id: str) -> tuple[DataSource, SourceForm] | Response:
    row = source_row(page, source_id)
    card = _card(row.connector)
    if card is None:
        return page.refuse(
            404,
            "Connector not installed",
            f"This source's connector `{row.connector}` is not installed any more, so its form "
            "can't be built; reinstall it, or change the source over the API.",
        ).response
    return row, SourceForm.of(card)


def _secrets_set(sf: SourceForm, row: DataSource) -> dict[str, bool]:
    """Which credentials are stored ("set" / "not set"), read without showing any."""
    try:
        stored = service.stored_credentials(row)
    except InvalidInput:
        return {}
    return schema_form.secret_state(sf.credentials, stored) | schema_form.secret_state(
        [f for f in sf.config if f.secret], row.config
    )


@router.get("/sources/{source_id}/edit")
def edit_source_form(page: AdminPage, source_id: str) -> Response:
    """The source's form with its stored values; credentials are never shown, only whether set."""
    found = _edit_form(page, source_id)
    if isinstance(found, Response):
        return found
    row, sf = found
    values = {
        "name": row.name,
        "timezone": row.timezone,
        "schedule": row.schedule,
        "lookback_days": str(row.lookback_days),
        "enabled": "on" if row.enabled else "",
    }
    values.update(schema_form.form_values(sf.config, row.config))
    source = DataSourceRead.model_validate(row)
    return _render_form(page, sf, FormState(values), source, _secrets_set(sf, row))


def _update(
    page: Page, background: BackgroundTasks, source_id: str, form: dict[str, str]
) -> Response:
    found = _edit_form(page, source_id)
    if isinstance(found, Response):
        return found
    row, sf = found
    config, errors = schema_form.parse(sf.config, form, row.config)
    body: dict[str, Any] = {**_source_body(form), "config": config}

    def again(sent: FormState) -> Response:
        source = DataSourceRead.model_validate(row)
        return _render_form(page, sf, sent, source, _secrets_set(sf, row))

    def write() -> str | Response:
        if form.get("credentials_clear"):
            body["credentials"] = None
        elif sf.typed_credentials(form):
            # The API replaces credentials whole: what was typed, over what is stored.
            stored = service.stored_credentials(row)
            credentials, credential_errors = schema_form.parse(sf.credentials, form, stored)
            errors.update(credential_errors)
            body["credentials"] = credentials
        if errors:
            return again(FormState(form, errors, 422))
        changes = DataSourceUpdate.model_validate(body).model_dump(exclude_unset=True)
        service.update_source(page.session, background, row.id, changes, page.principal.name)
        return f"/sources/{row.id}"

    return submit(page.session, sf, form, write, again, own_status=True)


@router.post("/sources/{source_id}/edit")
async def update_source(page: AdminPage, background: BackgroundTasks, source_id: str) -> Response:
    """Change a source as `PATCH /api/v1/data-sources/{id}` does; blank secrets stay as stored."""
    form = _form_dict(await page.request.form())
    return await run_in_threadpool(_update, page, background, source_id, form)


def _delete_page(page: Page, row: DataSource, refused: DomainError | None = None) -> Response:
    context = {
        "principal": page.principal,
        "source": DataSourceRead.model_validate(row),
        "impact": service.deletion_impact(page.session, row.id),
        "error": refused.message if refused else None,
    }
    return page.render("sources/delete.html", context, refused.status_code if refused else 200)


@router.get("/sources/{source_id}/delete")
def confirm_delete(page: AdminPage, source_id: str) -> Response:
    """Ask before deleting, saying what goes with the source (as `?cascade=true` would)."""
    row = source_row(page, source_id)
    return _delete_page(page, row)


@router.post("/sources/{source_id}/delete")
async def delete_source(page: AdminPage, source_id: str) -> Response:
    """Delete as `DELETE /api/v1/data-sources/{id}` does: with mappings, only when confirmed."""
    form = await page.request.form()
    cascade = form.get("cascade") in ("yes", "true", "on")

    def delete() -> Response:
        row = source_row(page, source_id)
        try:
            service.delete_source(page.session, row.id, cascade, page.principal.name)
        except DomainError as exc:
            page.session.rollback()
            return _delete_page(page, row, exc)
        return RedirectResponse("/sources", status_code=303)

    return await run_in_threadpool(delete)


@router.post("/sources/{source_id}/test")
def test_source(page: AdminPage, source_id: str) -> Response:
    """Check the connection as `POST /api/v1/data-sources/{id}/test` does; the answer shows on
    the source's page (its message is redacted by the engine: no secret in it)."""
    row = source_row(page, source_id)
    ok, message = service.check_source(page.session, row.id, page.principal.name)
    check = CheckRead(ok=ok, message=message, notices=service.source_notices(row))
    return render_source(page, row, check=check)


@router.post("/sources/{source_id}/sync")
async def sync_source(page: AdminPage, background: BackgroundTasks, source_id: str) -> Response:
    """Start a sync as `POST /api/v1/data-sources/{id}/sync` does: the usual window, or the days
    from..to; back to the source's page, where the run shows in the history."""
    form = _form_dict(await page.request.form())
    values = {"from": form.get("from", "").strip(), "to": form.get("to", "").strip()}

    def start() -> Response:
        row = source_row(page, source_id)

        def write() -> str:
            body = SyncRequest.model_validate({k: v or None for k, v in values.items()})
            run = service.start_sync(
                page.session, background, row.id, body.window, page.principal.name
            )
            return f"/sources/{row.id}?started={run.id}#runs"

        def again(sync: FormState) -> Response:
            return render_source(page, row, sync=sync)

        return submit(page.session, _SYNC_FIELDS, values, write, again, own_status=True)

    return await run_in_threadpool(start)


@router.post("/sources/{source_id}/resume")
def resume_source(page: AdminPage, background: BackgroundTasks, source_id: str) -> Response:
    """Resume a paused source as `POST /api/v1/data-sources/{id}/resume` does."""
    row = source_row(page, source_id)
    service.resume_source(page.session, background, row.id, page.principal.name)
    return RedirectResponse(f"/sources/{row.id}", status_code=303)
