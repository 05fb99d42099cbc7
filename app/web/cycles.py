"""The cycles page: every cycle with its dates and objectives; editors create, edit, delete and
close a cycle, admins reopen one.

The same schemas and service calls as `/api/v1/cycles`: an edit is the API's PATCH (only what
changed is written and audited), and a delete is refused as the API refuses it: with 409 while
the cycle holds objectives unless the person asks for everything to go (`?cascade=true`), and
with 403 when that would take an admin's mappings along and the person is an editor.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.core.errors import Conflict
from app.models import Cycle
from app.okr import freeze, service
from app.okr.schemas import CycleCreate, CycleUpdate
from app.web.forms import (
    DeleteTarget,
    Deletion,
    FormState,
    Placed,
    cycle_or_404,
    delete_routes,
    render_form,
    submit,
)
from app.web.pages import (
    AdminPage,
    EditorPage,
    Page,
    ViewerPage,
)
from app.web.retrospective import REVIEW_FORMATS

router = APIRouter(include_in_schema=False)

_MAX_CYCLES = 200
FIELDS = Placed(("name", "start_date", "end_date"))


class CycleFields(BaseModel):
    """The form's boxes as the browser posts them (blank when left out)."""

    name: str = ""
    start_date: str = ""
    end_date: str = ""

    def typed(self) -> dict[str, str]:
        """What the person typed, to parse and to show again; the dates without spaces."""
        return {
            "name": self.name,
            "start_date": self.start_date.strip(),
            "end_date": self.end_date.strip(),
        }


CycleForm = Annotated[CycleFields, Form()]


def _cycles_page(page: Page, form: FormState | None = None) -> Response:
    cycles, total = service.list_cycles(page.session, _MAX_CYCLES, 0)
    context: dict[str, Any] = {
        "cycles": cycles,
        "total": total,
        "counts": service.cycle_objective_counts(page.session),
        "can_edit": page.at_least("editor"),
        "is_admin": page.principal.role == "admin",
        "review_formats": REVIEW_FORMATS,
    }
    form = form or FormState(CycleFields().typed())
    return render_form(page, "cycles/index.html", form, context)


@router.get("/cycles")
def cycles_page(page: ViewerPage) -> Response:
    """Every cycle, latest first, each a way into its OKRs."""
    return _cycles_page(page)


@router.post("/cycles")
def create_cycle(page: EditorPage, posted: CycleForm) -> Response:
    """Create a cycle as `POST /api/v1/cycles` does."""
    values = posted.typed()

    def write() -> str:
        body = CycleCreate.model_validate(values)
        cycle = service.create_cycle(page.session, body.model_dump(), page.principal.name)
        return f"/cycles#cycle-{cycle.id}"

    return submit(page.session, FIELDS, values, write, partial(_cycles_page, page))


def _edit_page(page: Page, cycle: Cycle, form: FormState | None = None) -> Response:
    shown = form or FormState(
        {
            "name": cycle.name,
            "start_date": cycle.start_date.isoformat(),
            "end_date": cycle.end_date.isoformat(),
        }
    )
    return render_form(page, "cycles/edit.html", shown, {"cycle": cycle})


@router.get("/cycles/{cycle_id}/edit")
def edit_cycle_page(page: EditorPage, cycle_id: str) -> Response:
    """The form to rename a cycle or move its dates."""
    return _edit_page(page, cycle_or_404(page, cycle_id))


@router.post("/cycles/{cycle_id}/edit")
def edit_cycle(page: EditorPage, cycle_id: str, posted: CycleForm) -> Response:
    """Change a cycle as `PATCH /api/v1/cycles/{id}` does: only what changed is written."""
    cycle = cycle_or_404(page, cycle_id)
    values = posted.typed()

    def write() -> str:
        changes = CycleUpdate.model_validate(values).model_dump(exclude_unset=True)
        service.update_cycle(page.session, cycle.id, changes, page.principal.name)
        return f"/cycles#cycle-{cycle.id}"

    def again(form: FormState) -> Response:
        return _edit_page(page, cycle_or_404(page, cycle_id), form)

    return submit(page.session, FIELDS, values, write, again)


def _delete_target(page: Page, cycle_id: str) -> DeleteTarget:
    cycle = cycle_or_404(page, cycle_id)
    return DeleteTarget(
        cycle.id,
        "cycle",
        cycle.name,
        f"From {cycle.start_date} to {cycle.end_date}",
        f"/cycles/{cycle.id}/delete",
        "/cycles",
        "/cycles",
    )


delete_routes(
    router,
    "/cycles/{cycle_id}",
    Deletion("cycle", _delete_target, lambda held: held.objectives > 0, service.delete_cycle),
)


# --- closing and reopening (SPEC section 8) ------------------------------------------------------


def _close_page(page: Page, cycle: Cycle, refused: Conflict | None = None) -> Response:
    held = service.holdings(page.session, "cycle", cycle.id)
    context = {
        "principal": page.principal,
        "cycle": cycle,
        "held": held,
        "as_of": freeze.close_as_of(cycle),
        "error": refused.message if refused else "",
    }
    return page.render("cycles/close.html", context, refused.status_code if refused else 200)


@router.get("/cycles/{cycle_id}/close")
def close_cycle_page(page: EditorPage, cycle_id: str) -> Response:
    """Ask before closing, saying what freezing means: the figures stop moving."""
    return _close_page(page, cycle_or_404(page, cycle_id))


def _freeze_step(
    page: Page,
    cycle_id: str,
    step: Callable[[Session, int, str], object],
    refused: Callable[[Conflict], Response],
) -> Response:
    """Close or reopen as the API does: its rule decides, and a refusal rolls the write back."""
    cycle = cycle_or_404(page, cycle_id)
    try:
        step(page.session, cycle.id, page.principal.name)
    except Conflict as exc:
        page.session.rollback()
        return refused(exc)
    return RedirectResponse(f"/cycles#cycle-{cycle.id}", status_code=303)


@router.post("/cycles/{cycle_id}/close")
def close_cycle(page: EditorPage, cycle_id: str) -> Response:
    """Close a cycle as `POST /api/v1/cycles/{id}/close` does (409 when already closed)."""

    def refused(exc: Conflict) -> Response:
        return _close_page(page, cycle_or_404(page, cycle_id), exc)

    return _freeze_step(page, cycle_id, freeze.close_cycle, refused)


@router.post("/cycles/{cycle_id}/reopen")
def reopen_cycle(page: AdminPage, cycle_id: str) -> Response:
    """Reopen a cycle as `POST /api/v1/cycles/{id}/reopen` does (409 when it is open)."""

    def refused(exc: Conflict) -> Response:
        raise page.refuse(409, "The cycle is open", exc.message) from None

    return _freeze_step(page, cycle_id, freeze.reopen_cycle, refused)
