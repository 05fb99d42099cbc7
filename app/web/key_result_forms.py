"""Creating, editing and deleting a key result, with every field the API takes explained.

The same schemas and service as `POST`, `PATCH` and `DELETE /api/v1/key-results`, so a
definition the progress engine can't measure ("a metric key result needs target_value or
target_change_pct") is refused in the API's words, beside the field it names. A delete is
refused as the API refuses it: 409 while the key result holds check-ins or mappings unless the
person asks for them to go too, and 403 when an editor's delete would take an admin's mappings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import Response
from pydantic import BaseModel

from app.models import KeyResult, Objective
from app.okr import service
from app.okr.schemas import KeyResultCreate, KeyResultUpdate
from app.web.forms import (
    DeleteTarget,
    Deletion,
    FormState,
    Placed,
    blank_none,
    delete_routes,
    plain_number,
    render_form,
    submit,
)
from app.web.objectives import objective_or_404
from app.web.pages import EditorPage, Page

router = APIRouter(include_in_schema=False)


TEXT_FIELDS = ("title", "owner", "unit", "kind", "direction", "aggregation", "group_rule")
NUMBER_FIELDS = ("start_value", "target_value", "target_change_pct", "weight")
FIELDS = Placed(("objective_id", *TEXT_FIELDS, *NUMBER_FIELDS))


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    help: str


#: Each choice of the enums, in plain words, with an example a marketing team would set.
KINDS = (
    Choice(
        "metric",
        "Metric",
        "A number that moves: sessions, sign-ups, a conversion rate. It comes from a data "
        "source or from check-ins, and needs a target (a value or a relative change).",
    ),
    Choice(
        "milestone",
        "Milestone",
        "Reached or not, e.g. “partner programme launched”. A check-in of 1 means reached; "
        "with a target, reached when the figure gets there (“10 region-specific posts "
        "published”). Direction and start value play no part.",
    ),
    Choice(
        "rollup",
        "Roll-up",
        "No figure of its own: its progress is the weighted average of the objectives "
        "aligned to it (align team objectives to it from their own form). It takes no "
        "check-in values and needs no start or target.",
    ),
)
AGGREGATIONS = (
    Choice(
        "sum",
        "Sum",
        "Adds the daily figures over the cycle. For things that happen every day: new "
        "subscribers, leads, sessions, deals won. “3,000 new subscribers” is the sum of each "
        "day's new subscribers.",
    ),
    Choice(
        "last",
        "Last",
        "Takes the figure of the latest day. For a level you read off a counter: a follower "
        "count, the size of the newsletter audience. 9,000 followers on Monday and 9,050 on "
        "Tuesday are 9,050, not 18,050.",
    ),
    Choice(
        "avg",
        "Average",
        "The average of the days that have a figure. For rates: engagement per post, "
        "average search position, bounce rate.",
    ),
    Choice(
        "min", "Minimum", "The lowest day's figure, e.g. “the weekly audience never below 5,000”."
    ),
    Choice("max", "Maximum", "The highest day's figure, e.g. “a webinar with 500 attendees”."),
    Choice(
        "ratio",
        "Ratio",
        "Numerator summed over denominator summed (times the mapping's scale, e.g. 100 for "
        "a %). Site conversion rate = deals created ÷ sessions; click rate = unique clicks ÷ "
        "emails sent. Its figures come from two mappings an admin adds (numerator and "
        "denominator), not from check-in values.",
    ),
)
DIRECTIONS = (
    Choice(
        "increase",
        "Increase",
        "Move up from the start to the target: progress is (current - start) ÷ (target - "
        "start). “From 0 to 3,000 new subscribers”.",
    ),
    Choice(
        "decrease",
        "Decrease",
        "Move down from the start to the target, same formula. “Bounce rate from 55 % down "
        "to 45 %” (start 55, target 45).",
    ),
    Choice(
        "at_least",
        "At least",
        "A floor to reach and hold: met while current ≥ target; below it, progress is "
        "current ÷ target. “Click rate at least 4 %”. The start value is not used.",
    ),
    Choice(
        "at_most",
        "At most",
        "A ceiling to stay under: met while current ≤ target. “Average search position "
        "better than 8” is at most 8. The start value is not used.",
    ),
)
GROUP_RULES = (
    Choice(
        "combine",
        "Combine",
        "All groups are added into one figure (followers on LinkedIn + Instagram + YouTube). "
        "The usual choice; with a single source or check-ins only, it makes no difference.",
    ),
    Choice(
        "each",
        "Each",
        "Every group must reach the target on its own: “3,000 new followers on each "
        "platform”. Progress is that of the weakest group. The groups are the labels of "
        "its mappings (one per platform), which an admin adds.",
    ),
)


#: The form's labels, for the list of refused fields at its top (a phone shows one at a time).
LABELS = {
    "title": "Title",
    "objective_id": "Objective",
    "owner": "Owner",
    "unit": "Unit",
    "weight": "Weight",
    "kind": "Kind",
    "aggregation": "Aggregation",
    "group_rule": "Groups",
    "direction": "Direction",
    "target_value": "Target value",
    "start_value": "Start value",
    "target_change_pct": "Relative target",
}


def _values_of(kr: KeyResult) -> dict[str, str]:
    shown = {name: str(getattr(kr, name)) for name in TEXT_FIELDS}
    shown.update({name: plain_number(getattr(kr, name)) for name in NUMBER_FIELDS})
    shown["objective_id"] = str(kr.objective_id)
    return shown


def _defaults(objective: Objective) -> dict[str, str]:
    return {
        "objective_id": str(objective.id),
        "title": "",
        "owner": objective.owner,
        "unit": "",
        "kind": "metric",
        "direction": "increase",
        "aggregation": "sum",
        "group_rule": "combine",
        "start_value": "",
        "target_value": "",
        "target_change_pct": "",
        "weight": "1",
    }


def _body(values: dict[str, str]) -> dict[str, Any]:
    """The JSON the API would get: numbers as typed (the schema parses them), blanks as null."""
    body: dict[str, Any] = {name: values[name] for name in TEXT_FIELDS}
    for name in (*NUMBER_FIELDS, "objective_id"):
        body[name] = blank_none(values[name])
    return body


class KeyResultFields(BaseModel):
    """The form's boxes as the browser posts them (blank when left out)."""

    objective_id: str = ""
    title: str = ""
    owner: str = ""
    unit: str = ""
    kind: str = ""
    direction: str = ""
    aggregation: str = ""
    group_rule: str = ""
    start_value: str = ""
    target_value: str = ""
    target_change_pct: str = ""
    weight: str = ""

    def typed(self, objective_id: str) -> dict[str, str]:
        """What the person typed, to parse and to show again; numbers without their spaces."""
        values = {name: str(getattr(self, name)) for name in TEXT_FIELDS}
        values.update({name: str(getattr(self, name)).strip() for name in NUMBER_FIELDS})
        values["objective_id"] = objective_id
        return values


KeyResultForm = Annotated[KeyResultFields, Form()]


def _form_page(
    page: Page, objective: Objective, kr: KeyResult | None, form: FormState | None = None
) -> Response:
    # Without script the highlighted explanation can't follow the select: it says whose it is.
    chosen_label = "as sent" if form is not None else "saved" if kr is not None else "default"
    if form is None:
        form = FormState(_values_of(kr) if kr is not None else _defaults(objective))
    context: dict[str, Any] = {
        "kr": kr,
        "objective": objective,
        "cycle": objective.cycle,
        "objectives": service.cycle_objectives(page.session, objective.cycle_id),
        "kinds": KINDS,
        "aggregations": AGGREGATIONS,
        "directions": DIRECTIONS,
        "group_rules": GROUP_RULES,
        "chosen_label": chosen_label,
        "labels": LABELS,
        "action": (
            f"/key-results/{kr.id}/edit"
            if kr is not None
            else f"/okrs/objectives/{objective.id}/key-results"
        ),
        "cancel": (
            f"/key-results/{kr.id}"
            if kr is not None
            else f"/okrs?cycle_id={objective.cycle_id}#objective-{objective.id}"
        ),
    }
    return render_form(page, "key_results/form.html", form, context)


def _kr_or_404(page: Page, kr_id: str) -> KeyResult:
    return page.found_or_404("key result", kr_id, partial(page.session.get, KeyResult))


def _again(page: Page, objective_id: str, kr_id: str | None) -> Callable[[FormState], Response]:
    """The form once more, with the rows read again after the refused write's rollback."""

    def again(form: FormState) -> Response:
        kr = _kr_or_404(page, kr_id) if kr_id is not None else None
        which = str(kr.objective_id) if kr is not None else objective_id
        objective = objective_or_404(page, which)
        return _form_page(page, objective, kr, form)

    return again


@router.get("/okrs/objectives/{objective_id}/key-results/new")
def new_key_result_page(page: EditorPage, objective_id: str) -> Response:
    """The form for a new key result under an objective, each choice explained."""
    objective = objective_or_404(page, objective_id)
    return _form_page(page, objective, None)


@router.post("/okrs/objectives/{objective_id}/key-results")
def create_key_result(page: EditorPage, objective_id: str, form: KeyResultForm) -> Response:
    """Create a key result as `POST /api/v1/key-results` does; a blank weight is the API's
    default of 1."""
    objective = objective_or_404(page, objective_id)
    values = form.typed(form.objective_id.strip() or str(objective.id))
    body = _body(values)
    if body["weight"] is None:
        del body["weight"]

    def write() -> str:
        made = KeyResultCreate.model_validate(body)
        kr = service.create_key_result(page.session, made.model_dump(), page.principal.name)
        return f"/key-results/{kr.id}"

    again = _again(page, objective_id, None)
    return submit(page.session, FIELDS, values, write, again)


@router.get("/key-results/{kr_id}/edit")
def edit_key_result_page(page: EditorPage, kr_id: str) -> Response:
    """The form to change a key result's definition, each choice explained."""
    kr = _kr_or_404(page, kr_id)
    objective = objective_or_404(page, str(kr.objective_id))
    return _form_page(page, objective, kr)


@router.post("/key-results/{kr_id}/edit")
def edit_key_result(page: EditorPage, kr_id: str, form: KeyResultForm) -> Response:
    """Change a key result as `PATCH /api/v1/key-results/{id}` does; an emptied start,
    target or relative target is taken out (null)."""
    kr = _kr_or_404(page, kr_id)
    values = form.typed(form.objective_id.strip())

    def write() -> str:
        changes = KeyResultUpdate.model_validate(_body(values)).model_dump(exclude_unset=True)
        service.update_key_result(page.session, kr.id, changes, page.principal.name)
        return f"/key-results/{kr.id}"

    return submit(page.session, FIELDS, values, write, _again(page, "", kr_id))


def _delete_target(page: Page, kr_id: str) -> DeleteTarget:
    kr = _kr_or_404(page, kr_id)
    objective = page.session.get(Objective, kr.objective_id)
    assert objective is not None  # the foreign keys cascade deletes
    return DeleteTarget(
        kr.id,
        "key result",
        kr.title,
        f"in “{objective.title}”",
        f"/key-results/{kr.id}/delete",
        f"/key-results/{kr.id}",
        f"/okrs?cycle_id={objective.cycle_id}#objective-{objective.id}",
    )


delete_routes(
    router,
    "/key-results/{kr_id}",
    Deletion(
        "key_result",
        _delete_target,
        lambda held: held.check_ins > 0 or held.mappings > 0,
        service.delete_key_result,
    ),
)
