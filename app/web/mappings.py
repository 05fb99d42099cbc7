"""The mapping builder, for admins: a key result, a source, a metric from its catalogue, its
params and filters, then a preview of the last 28 days before anything is saved.

No script runs on the page, so each step is a submit that re-renders the form with everything
it holds (no draft is kept on the server): "Use this source", "Show this metric", "Add a filter
row", "Preview" and "Save". Preview and save go through `MappingCreate` / `MappingUpdate` and
the same service functions as `/api/v1/mappings`, so a refusal reads as the API words it,
beside the field it names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.core.clock import today_in
from app.core.errors import DomainError, NotFound, reason
from app.models import DataSource, KeyResult, Mapping
from app.okr import service as okr_service
from app.sources import service
from app.sources.schemas import MAX_FILTERS, MappingCreate, MappingUpdate
from app.sync.settle import first_provisional_day
from app.web import kr_chart
from app.web.pages import AdminPage, Page, num, path_id
from connectors.base import ANY_FIELD, FILTER_MEANINGS, FILTER_OPS, LIST_OPS

router = APIRouter(include_in_schema=False)

PREVIEW_DAYS = 28
BLANK_ROWS = 3
_MAX_SOURCES = 500
_MAPPINGS_READ = 50
FORM = "form"
#: What the builder shows beside the metric: the key result's aggregation is refused there.
_AT_METRIC = {"metric", "aggregation"}
_OWN_FIELDS = {"data_source_id", "group", "role", "scale", "params", "filters"}
_ORDER_OPS = frozenset({"gt", "gte", "lt", "lte"})
#: A param whose text runs over lines (SQL's query) gets a text area; the rest are one line.
_MULTILINE_PARAMS = frozenset({"query"})
AGGREGATION_WORDS = {
    "sum": "its daily values are added up over the cycle",
    "last": "the value of the latest day counts (a level, such as a follower count)",
    "avg": "the average of its daily values counts",
    "min": "the lowest daily value counts",
    "max": "the highest daily value counts",
    "ratio": "the sum of the numerator over the sum of the denominator counts",
}


async def _form(request: Request) -> FormData:
    # Read once here (page_principal may have read it for the CSRF check: it is cached), so
    # the route itself can stay synchronous like every other page route.
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]


# --- what the form holds ----------------------------------------------------------------------


@dataclass
class FilterRow:
    field: str = ""
    op: str = "eq"
    value: str = ""

    @property
    def blank(self) -> bool:
        return not self.field.strip() and not self.value.strip()

    def as_filter(self) -> dict[str, Any]:
        """As the API's JSON carries it: `in` takes a list (the box separates with commas),
        an order comparison takes a number when the box holds one."""
        text = self.value.strip()
        value: Any = text
        if self.op in LIST_OPS:
            value = [part.strip() for part in text.split(",") if part.strip()]
        elif self.op in _ORDER_OPS:
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                value = int(number) if number.is_integer() and abs(number) < 2**53 else number
        return {"field": self.field.strip(), "op": self.op, "value": value}


@dataclass
class Draft:
    """The builder's state, carried whole by the form between submits."""

    data_source_id: str = ""
    metric: str = ""
    metric_other: str = ""
    params: dict[str, str] = field(default_factory=dict)
    filters: list[FilterRow] = field(default_factory=list)
    group: str = ""
    role: str = "value"
    scale: str = "1"
    #: The source and metric whose options the page showed, so a change is noticed.
    shown_source: str = ""
    shown_metric: str = ""
    #: How many filter rows the page had: "Add a filter row" makes one more, and they stay.
    row_count: int = 0

    @property
    def chosen_metric(self) -> str:
        return self.metric_other.strip() or self.metric.strip()

    @classmethod
    def from_form(cls, form: FormData) -> Draft:
        def text(name: str, default: str = "") -> str:
            value = form.get(name)
            return value if isinstance(value, str) else default

        rows_text = text("rows", "0")
        rows = int(rows_text) if rows_text.isascii() and rows_text.isdigit() else 0
        return cls(
            data_source_id=text("data_source_id").strip(),
            metric=text("metric").strip(),
            metric_other=text("metric_other"),
            params={
                key.removeprefix("param."): value
                for key, value in form.multi_items()
                if key.startswith("param.") and isinstance(value, str)
            },
            # Empty rows are dropped here, so a filter's index in the API's body (and in its
            # refusal, `filters[1].field`) is its row on the page that answers.
            filters=[
                row
                for row in (
                    FilterRow(
                        text(f"filter_field_{i}"), text(f"filter_op_{i}"), text(f"filter_value_{i}")
                    )
                    for i in range(min(rows, MAX_FILTERS))
                )
                if not row.blank
            ],
            group=text("group"),
            role=text("role", "value"),
            scale=text("scale", "1"),
            shown_source=text("shown_source"),
            shown_metric=text("shown_metric"),
            row_count=rows,
        )

    @classmethod
    def from_mapping(cls, mapping: Mapping) -> Draft:
        return cls(
            data_source_id=str(mapping.data_source_id),
            metric=mapping.metric,
            params={k: _shown(v) for k, v in (mapping.params or {}).items() if v is not None},
            filters=[
                FilterRow(str(f.get("field", "")), str(f.get("op", "eq")), _shown(f.get("value")))
                for f in mapping.filters or []
            ],
            group=mapping.group,
            role=mapping.role,
            scale=_shown(mapping.scale),
            shown_source=str(mapping.data_source_id),
            shown_metric=mapping.metric,
        )

    def body(self, kr: KeyResult, ratio_roles: bool) -> dict[str, Any]:
        """The API's JSON body."""
        return {
            "key_result_id": kr.id,
            "data_source_id": self.data_source_id,
            "metric": self.chosen_metric,
            # An empty box is no value: the connector's default applies.
            "params": {k: v for k, v in self.params.items() if v.strip()},
            "filters": [row.as_filter() for row in self.filters if not row.blank],
            "group": self.group,
            "role": self.role if ratio_roles else "value",
            "scale": self.scale.strip() or "1",
        }


def _shown(value: Any) -> str:
    """A stored value as the form's box shows it (lists as the `in` box takes them)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- the catalogue as form fields -------------------------------------------------------------


@dataclass(frozen=True)
class ParamField:
    name: str
    label: str
    hint: str
    kind: str  # "text", "textarea" or "select"
    options: list[str]
    required: bool
    default: str


def param_fields(schema: dict[str, Any]) -> list[ParamField]:
    """The metric's params from the JSON Schema `GET /api/v1/connectors` gives: a list of
    choices becomes a <select>, the rest a box; an empty box keeps the connector's default."""
    required = set(schema.get("required", []))
    fields: list[ParamField] = []
    for name, prop in (schema.get("properties") or {}).items():
        branches = prop.get("anyOf") or [prop]
        choices: list[str] = []
        types: set[str] = set()
        for branch in branches:
            choices += [_shown(v) for v in branch.get("enum", [])]
            if "const" in branch:
                choices.append(_shown(branch["const"]))
            if branch.get("type"):
                types.add(str(branch["type"]))
        if "boolean" in types:
            choices = ["true", "false"]
        kind = "select" if choices else "textarea" if name in _MULTILINE_PARAMS else "text"
        default = prop.get("default")
        fields.append(
            ParamField(
                name=name,
                label=str(prop.get("title") or name),
                hint=str(prop.get("description") or ""),
                kind=kind,
                options=choices,
                required=name in required,
                default="" if default is None else _shown(default),
            )
        )
    return fields


@dataclass(frozen=True)
class Catalogue:
    connector: dict[str, Any]
    open_ended: bool
    metric: dict[str, Any] | None

    @property
    def metric_names(self) -> list[str]:
        return [str(m["name"]) for m in self.connector["metrics"]]


def _catalogue(source: DataSource | None, metric: str) -> Catalogue | None:
    if source is None:
        return None
    described = service.describe_connector(source.connector)
    if described is None:
        return None
    connector, open_ended = described
    return Catalogue(connector, open_ended, service.describe_metric(source.connector, metric))


# --- the page ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the last submit gave: errors by slot, a note, or a preview."""

    errors: dict[str, str] = field(default_factory=dict)
    note: str = ""
    preview: dict[str, Any] | None = None
    preview_error: str = ""
    previewing: bool = False


def _slot(where: str | None, rows: int, params: set[str]) -> str:
    """Where on the page a message that names `where` goes (API names, e.g. `filters[0].op`)."""
    if not where:
        return FORM
    if where in _AT_METRIC:
        return "metric"
    if where.startswith("params"):
        name = where.removeprefix("params.").split(".")[0]
        return f"params.{name}" if name in params else "params"
    if where.startswith("filters["):
        index, _, rest = where.removeprefix("filters[").partition("]")
        part = rest.removeprefix(".").split(".")[0]
        if index.isdigit() and int(index) < rows:
            return (
                f"filter.{index}.{part}" if part in ("field", "op", "value") else f"filter.{index}"
            )
        return "filters"
    head = where.split(".")[0].split("[")[0]
    return head if head in _OWN_FIELDS else FORM


def _pydantic_errors(exc: ValidationError, rows: int, params: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        where = ""
        for part in err.get("loc") or ():
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        found.setdefault(_slot(where, rows, params), reason(str(err.get("msg"))))
    return found


def _kr(page: Page, kr_id: int) -> KeyResult:
    try:
        if not kr_id:
            raise NotFound("no such key result")
        return okr_service.get_key_result(page.session, kr_id)
    except NotFound:
        raise page.refuse(404, "No such key result", "It may have been deleted.") from None


def _mapping(page: Page, mapping_id: int) -> Mapping:
    try:
        if not mapping_id:
            raise NotFound("no such mapping")
        return service.get_mapping(page.session, mapping_id)
    except NotFound:
        raise page.refuse(404, "No such mapping", "It may have been deleted.") from None


def _source(session: Session, text: str) -> DataSource | None:
    sid = path_id(text)
    return session.get(DataSource, sid) if sid else None


def _connector_names(sources: list[DataSource]) -> dict[str, str]:
    names: dict[str, str] = {}
    for key in {s.connector for s in sources}:
        described = service.describe_connector(key)
        names[key] = str(described[0]["name"]) if described else key
    return names


def _others(session: Session, kr: KeyResult, own_id: int | None) -> list[Mapping]:
    rows, _ = service.list_mappings(session, kr.id, None, _MAPPINGS_READ, 0)
    return [m for m in rows if m.id != own_id]


def _settle(draft: Draft, catalogue: Catalogue | None, *, fresh_source: bool) -> None:
    """Bring the draft to the source and metric now chosen: another source's metric, params
    and filter rows mean nothing here; another metric's params neither."""
    if catalogue is None:
        return
    names = catalogue.metric_names
    if fresh_source:
        draft.filters = []
        draft.metric_other = ""
        if draft.metric not in names:
            draft.metric = names[0] if names else ""
    if draft.chosen_metric != draft.shown_metric:
        draft.params = {}
    draft.shown_source = draft.data_source_id
    draft.shown_metric = draft.chosen_metric


def _builder(
    page: Page,
    kr: KeyResult,
    draft: Draft,
    *,
    mapping: Mapping | None = None,
    outcome: Outcome | None = None,
    status_code: int = 200,
    extra_rows: int = 0,
) -> Response:
    outcome = outcome or Outcome()
    source = _source(page.session, draft.data_source_id)
    catalogue = _catalogue(source, draft.chosen_metric)
    sources, _ = service.list_sources(page.session, _MAX_SOURCES, 0)
    connectors = _connector_names(sources)
    others = _others(page.session, kr, mapping.id if mapping else None)
    ratio = kr.aggregation == "ratio"
    show_group = (
        kr.group_rule == "each"
        or bool(draft.group)
        or "group" in outcome.errors
        or (not ratio and bool(others))
    )
    metric = catalogue.metric if catalogue else None
    filters = (metric or {}).get("filters", {})
    filter_ops = [op for op in FILTER_OPS if any(op in ops for ops in filters.values())]
    count = max(draft.row_count, len(draft.filters) + 1, BLANK_ROWS) + extra_rows
    rows = draft.filters + [FilterRow() for _ in range(count - len(draft.filters))]
    objective = okr_service.get_objective(page.session, kr.objective_id)
    context: dict[str, Any] = {
        "principal": page.principal,
        "kr": kr,
        "objective": objective,
        "mapping": mapping,
        "action": f"/mappings/{mapping.id}/edit"
        if mapping
        else f"/key-results/{kr.id}/mappings/new",
        "draft": draft,
        "source": source,
        "sources": sources,
        "connector_names": connectors,
        "catalogue": catalogue,
        "metric": metric,
        "params": param_fields(metric["params"]) if metric else [],
        "filter_fields": sorted(f for f in filters if f != ANY_FIELD),
        "any_field": ANY_FIELD in filters,
        "filter_ops": filter_ops,
        "filter_meanings": {
            op: (catalogue.connector.get("filter_meanings") or {}).get(op, FILTER_MEANINGS[op])
            for op in filter_ops
        }
        if catalogue
        else {},
        "rows": rows[:MAX_FILTERS] if filters else [],
        "max_rows": MAX_FILTERS,
        "ratio": ratio,
        "show_group": show_group,
        "others": others,
        "aggregation_words": AGGREGATION_WORDS,
        "fits": metric is None or kr.aggregation in metric.get("aggregations", []),
        "errors": outcome.errors,
        "note": outcome.note,
        "preview": outcome.preview,
        "preview_error": outcome.preview_error,
        "preview_days": PREVIEW_DAYS,
        "previewing": outcome.previewing,
    }
    return page.render("mappings/builder.html", context, status_code)


def _initial(session: Session, kr: KeyResult, source: DataSource) -> Draft:
    """A first metric picked and, on a ratio key result, the side not yet mapped."""
    draft = Draft(data_source_id=str(source.id))
    if kr.aggregation == "ratio":
        taken = {m.role for m in _others(session, kr, None)}
        draft.role = "denominator" if "numerator" in taken else "numerator"
    _settle(draft, _catalogue(source, ""), fresh_source=True)
    return draft


def _preview(
    session: Session, kr: KeyResult, source: DataSource, body: dict[str, Any]
) -> dict[str, Any]:
    """The last 28 full days in the source's calendar, as a chart and a table."""
    today = today_in(source.timezone)
    start, end = today - timedelta(days=PREVIEW_DAYS), today - timedelta(days=1)
    values = service.preview_draft_mapping(session, body, start, end)
    described = service.describe_metric(source.connector, body["metric"]) or {}
    first = first_provisional_day(int(described.get("settle_days") or 0), today)
    days: dict[date, float] = {}
    groups: dict[str, float] = {}
    for day, group, _, value in values:
        days[day] = days.get(day, 0.0) + value
        groups[group] = groups.get(group, 0.0) + value
    line = [(d, v, first is not None and d >= first) for d, v in sorted(days.items())]
    low, high = min([start, *days]), max([end, *days])
    charts = [
        kr_chart.build(
            start=low,
            end=high,
            as_of=today,
            line=line,
            aggregation="last",  # the daily values themselves, not the key result's total
            direction=kr.direction,
            start_value=None,
            target_value=None,
            forecast_value=None,
            provisional_from=first,
            number=num,
            size=size,
            # Each week's first day on a wide chart, every other one on a phone's.
            x_days=[low + timedelta(days=n) for n in range(0, (high - low).days + 1, step)],
        )
        for size, step in ((kr_chart.WIDE, 7), (kr_chart.NARROW, 14))
    ]
    return {
        "start": start,
        "end": end,
        "charts": charts,
        "days": [{"date": d, "value": v, "provisional": p} for d, v, p in line][::-1],
        "groups": sorted(groups.items()) if len(groups) > 1 or any(groups) else [],
        "total": sum(days.values()),
        "count": len(values),
        "snapshot": described.get("history") == "snapshot",
    }


def _submit(
    page: Page, background: BackgroundTasks, kr: KeyResult, form: FormData, mapping: Mapping | None
) -> Response:
    """One submit of the builder: re-render with a change, preview, or save."""
    draft = Draft.from_form(form)
    action = form.get("action")
    source = _source(page.session, draft.data_source_id)
    fresh_source = draft.data_source_id != draft.shown_source
    moved = fresh_source or draft.chosen_metric != draft.shown_metric
    if source is None:
        if mapping is None and not draft.data_source_id:
            return _step_one(page, kr)
        outcome = Outcome(errors={"data_source_id": "pick a data source from the list"})
        return _builder(page, kr, draft, mapping=mapping, outcome=outcome, status_code=422)
    _settle(draft, _catalogue(source, draft.chosen_metric), fresh_source=fresh_source)
    if action not in ("preview", "save") or moved:
        note = ""
        if action in ("preview", "save") and moved:
            what = "source" if fresh_source else "metric"
            label = "Preview" if action == "preview" else "Save"
            note = (
                f"Nothing was {'previewed' if action == 'preview' else 'saved'}: the options "
                f"below are now those of this {what}. Check them, then press {label} again."
            )
        extra = 1 if action == "add_filter" else 0
        return _builder(
            page,
            kr,
            draft,
            mapping=mapping,
            outcome=Outcome(note=note),
            extra_rows=extra,
        )
    ratio = kr.aggregation == "ratio"
    body = draft.body(kr, ratio)
    rows = len(draft.filters)
    metric = service.describe_metric(source.connector, draft.chosen_metric)
    params = set((metric or {}).get("params", {}).get("properties", {}))
    outcome = Outcome(previewing=action == "preview")
    status_code = 422
    try:
        created = MappingCreate.model_validate(body)
        if action == "preview":
            outcome.preview = _preview(page.session, kr, source, created.model_dump())
            status_code = 200
        elif mapping is None:
            service.create_mapping(
                page.session, background, created.model_dump(), page.principal.name
            )
        else:
            changes = MappingUpdate.model_validate(
                {k: v for k, v in body.items() if k != "key_result_id"}
            )
            service.update_mapping(
                page.session,
                background,
                mapping.id,
                changes.model_dump(exclude_unset=True),
                page.principal.name,
            )
    except ValidationError as exc:
        outcome.errors = _pydantic_errors(exc, rows, params)
    except NotFound:
        return _gone(page, kr)
    except DomainError as exc:
        page.session.rollback()
        status_code = exc.status_code if 400 <= exc.status_code < 600 else 422
        where = _slot(exc.field, rows, params)
        if action == "preview" and where == FORM:
            outcome.preview_error = exc.message  # the platform's words, redacted by the engine
        else:
            outcome.errors = {where: exc.message}
    else:
        if action == "save":
            return RedirectResponse(f"/key-results/{kr.id}#mappings", status_code=303)
    return _builder(page, kr, draft, mapping=mapping, outcome=outcome, status_code=status_code)


def _gone(page: Page, kr: KeyResult) -> Response:
    return page.refuse(
        404, "No such mapping", "It may have been deleted since the page was read."
    ).response


def _step_one(page: Page, kr: KeyResult, error: str = "", status_code: int = 200) -> Response:
    sources, _ = service.list_sources(page.session, _MAX_SOURCES, 0)
    context: dict[str, Any] = {
        "principal": page.principal,
        "kr": kr,
        "objective": okr_service.get_objective(page.session, kr.objective_id),
        "sources": sources,
        "connector_names": _connector_names(sources),
        "error": error,
        "others": _others(page.session, kr, None),
        "aggregation_words": AGGREGATION_WORDS,
    }
    return page.render("mappings/pick_source.html", context, status_code)


# --- routes -----------------------------------------------------------------------------------


@router.get("/key-results/{kr_id}/mappings/new")
def new_mapping_page(
    page: AdminPage, kr_id: str, data_source_id: Annotated[str, Query()] = ""
) -> Response:
    """Step 1 picks the source; with `data_source_id`, step 2 picks metric, params, filters."""
    kr = _kr(page, path_id(kr_id))
    if not data_source_id:
        return _step_one(page, kr)
    source = _source(page.session, data_source_id)
    if source is None:
        return _step_one(page, kr, "pick a data source from the list", 422)
    return _builder(page, kr, _initial(page.session, kr, source))


@router.post("/key-results/{kr_id}/mappings/new")
def new_mapping_submit(
    page: AdminPage, background: BackgroundTasks, form: FormDep, kr_id: str
) -> Response:
    """Re-render, preview (written nowhere) or save as `POST /api/v1/mappings` does."""
    kr = _kr(page, path_id(kr_id))
    return _submit(page, background, kr, form, None)


@router.get("/mappings/{mapping_id}/edit")
def edit_mapping_page(page: AdminPage, mapping_id: str) -> Response:
    """The builder on a saved mapping."""
    mapping = _mapping(page, path_id(mapping_id))
    kr = _kr(page, mapping.key_result_id)
    return _builder(page, kr, Draft.from_mapping(mapping), mapping=mapping)


@router.post("/mappings/{mapping_id}/edit")
def edit_mapping_submit(
    page: AdminPage, background: BackgroundTasks, form: FormDep, mapping_id: str
) -> Response:
    """Re-render, preview, or save as `PATCH /api/v1/mappings/{id}` does (history refetched)."""
    mapping = _mapping(page, path_id(mapping_id))
    kr = _kr(page, mapping.key_result_id)
    return _submit(page, background, kr, form, mapping)


@router.get("/mappings/{mapping_id}/delete")
def delete_mapping_page(page: AdminPage, mapping_id: str) -> Response:
    """Ask first: deleting a mapping takes the values it wrote with it."""
    mapping = _mapping(page, path_id(mapping_id))
    kr = _kr(page, mapping.key_result_id)
    context: dict[str, Any] = {
        "principal": page.principal,
        "kr": kr,
        "mapping": mapping,
        "source": page.session.get(DataSource, mapping.data_source_id),
        "observations": service.mapping_observations(page.session, mapping.id),
    }
    return page.render("mappings/delete.html", context)


@router.post("/mappings/{mapping_id}/delete")
def delete_mapping(page: AdminPage, mapping_id: str) -> Response:
    """Delete as `DELETE /api/v1/mappings/{id}` does: with every value the mapping wrote."""
    mapping = _mapping(page, path_id(mapping_id))
    kr_id = mapping.key_result_id
    service.delete_mapping(page.session, mapping.id, page.principal.name)
    return RedirectResponse(f"/key-results/{kr_id}#mappings", status_code=303)
