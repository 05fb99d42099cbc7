"""The retrospective page of a cycle: its entries on a board by format and category; editors
add, correct and delete entries, viewers read.

The same schemas and service as `/api/v1/cycles/{id}/retrospective`, so a refusal (a category
that is not part of the format, an objective of another cycle) reads as the API words it,
beside the field it names.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from app.core.errors import NotFound
from app.models import Cycle
from app.okr import service as okr_service
from app.review import retrospective
from app.review.schemas import (
    CATEGORIES,
    CATEGORY_LABELS,
    FORMAT_LABELS,
    RetrospectiveCreate,
    RetrospectiveUpdate,
)
from app.web.forms import FormState, Placed, cycle_or_404, render_form, submit
from app.web.pages import EditorPage, Page, ViewerPage, path_id

router = APIRouter(include_in_schema=False)

FIELDS = Placed(("format", "category", "text", "objective_id"))
_ENTRIES_SHOWN = 2000
REVIEW_FORMATS = (("xlsx", "Excel"), ("csv", "CSV"), ("md", "Markdown"), ("json", "JSON"))


class EntryFields(BaseModel):
    """The form's boxes as the browser posts them (blank when left out)."""

    format: str = ""
    category: str = ""
    text: str = ""
    objective_id: str = ""


EntryForm = Annotated[EntryFields, Form()]


def _body(values: dict[str, str]) -> dict[str, Any]:
    """A form's strings as the API's JSON: "whole cycle" is no objective."""
    return {**values, "objective_id": values["objective_id"].strip() or None}


def _page(
    page: Page,
    cycle: Cycle,
    form: FormState | None = None,
    edited: tuple[int, FormState] | None = None,
) -> Response:
    """The board; a refused new entry in ``form``, a refused correction in ``edited``."""
    entries, total = retrospective.list_entries(page.session, cycle.id, limit=_ENTRIES_SHOWN)
    objectives = okr_service.cycle_objectives(page.session, cycle.id)
    board = {
        fmt: {cat: [e for e in entries if e.format == fmt and e.category == cat] for cat in cats}
        for fmt, cats in CATEGORIES.items()
    }
    context: dict[str, Any] = {
        "cycle": cycle,
        "board": board,
        "total": total,
        "objectives": objectives,
        "objective_titles": {o.id: o.title for o in objectives},
        "format_labels": FORMAT_LABELS,
        "category_labels": CATEGORY_LABELS,
        "categories": CATEGORIES,
        "review_formats": REVIEW_FORMATS,
        "can_edit": page.at_least("editor"),
        "edit_errors": {edited[0]: edited[1].errors} if edited else {},
        "edit_values": {edited[0]: edited[1].values} if edited else {},
    }
    form = form or FormState(
        EntryFields(format="start_stop_continue", category="start").model_dump(),
        status_code=edited[1].status_code if edited else 200,
    )
    return render_form(page, "cycles/retrospective.html", form, context)


@router.get("/cycles/{cycle_id}/retrospective")
def retrospective_page(page: ViewerPage, cycle_id: str) -> Response:
    """The cycle's look back, by format and category."""
    return _page(page, cycle_or_404(page, cycle_id))


@router.post("/cycles/{cycle_id}/retrospective")
def add_entry(page: EditorPage, cycle_id: str, posted: EntryForm) -> Response:
    """Add an entry as `POST /api/v1/cycles/{id}/retrospective` does."""
    cycle = cycle_or_404(page, cycle_id)
    values = posted.model_dump()

    def write() -> str:
        body = RetrospectiveCreate.model_validate(_body(values)).model_dump()
        entry = retrospective.create_entry(page.session, cycle.id, body, page.principal.name)
        return f"/cycles/{cycle.id}/retrospective#entry-{entry.id}"

    def again(form: FormState) -> Response:
        return _page(page, cycle_or_404(page, cycle_id), form)

    return submit(page.session, FIELDS, values, write, again)


def _gone(page: Page) -> Response:
    return page.refuse(
        404, "No such entry", "It may have been deleted since the page was read."
    ).response


@router.post("/cycles/{cycle_id}/retrospective/{entry_id}")
def edit_entry(page: EditorPage, cycle_id: str, entry_id: str, posted: EntryForm) -> Response:
    """Correct an entry as `PATCH /api/v1/cycles/{id}/retrospective/{entry_id}` does."""
    cycle = cycle_or_404(page, cycle_id)
    eid = path_id(entry_id)
    values = posted.model_dump()

    def write() -> str:
        body = RetrospectiveUpdate.model_validate(_body(values)).model_dump()
        if not eid:
            raise NotFound("no such entry")
        retrospective.update_entry(page.session, cycle.id, eid, body, page.principal.name)
        return f"/cycles/{cycle.id}/retrospective#entry-{eid}"

    def again(form: FormState) -> Response:
        cycle = cycle_or_404(page, cycle_id)
        return _page(page, cycle, edited=(eid, form))

    return submit(page.session, FIELDS, values, write, again, gone=partial(_gone, page))


@router.post("/cycles/{cycle_id}/retrospective/{entry_id}/delete")
def delete_entry(page: EditorPage, cycle_id: str, entry_id: str) -> Response:
    """Delete an entry as `DELETE /api/v1/cycles/{id}/retrospective/{entry_id}` does."""
    cycle = cycle_or_404(page, cycle_id)
    eid = path_id(entry_id)
    try:
        if not eid:
            raise NotFound("no such entry")
        retrospective.delete_entry(page.session, cycle.id, eid, page.principal.name)
    except NotFound:
        return _gone(page)
    return RedirectResponse(f"/cycles/{cycle.id}/retrospective", status_code=303)
