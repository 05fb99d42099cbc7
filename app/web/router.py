"""The dashboard page: server-rendered, readable without JavaScript, behind the same API keys.

The key is entered once and kept in an HttpOnly cookie that the API also accepts, so the page's
CSV links work as they are. Figures come from the same service calls as `GET /api/v1/dashboard`.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jinja2
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from app.auth.deps import SessionDep
from app.auth.service import Principal, authenticate
from app.core.errors import NotFound
from app.core.schemas import iso_date
from app.core.settings import get_settings
from app.models import Cycle, KeyResult, Objective
from app.okr import service
from app.okr.progress_service import span
from app.progress import ObjectiveProgress, Progress, expected_progress, window
from app.sync import clock
from app.web import service as web_service
from app.web.service import SourceView, Sparkline

router = APIRouter(include_in_schema=False)

COOKIE = "krsync_key"
COOKIE_MAX_AGE = 30 * 24 * 3600
#: One message for every refusal: unknown, revoked, malformed or empty keys look alike.
LOGIN_REFUSED = "That key was not accepted."
_MAX_KEY_LENGTH = 512
_MAX_CYCLES = 200
_VIEW_PARAMS = ("cycle_id", "as_of")

_HERE = Path(__file__).parent
_CSS = _HERE / "static" / "krsync.css"
_CSS_VERSION = hashlib.sha256(_CSS.read_bytes()).hexdigest()[:10]

_SECURITY_HEADERS = {
    # No script runs on this page; styles come from our file plus the bars' inline widths.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

STATUS_LABELS = {
    "done": "Done",
    "on_track": "On track",
    "at_risk": "At risk",
    "off_track": "Off track",
    "no_data": "No data",
    "no_baseline": "No baseline",
}


def _num(value: float | None) -> str:
    """A figure as a reader wants it: thousands separated, no noise decimals."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{value:,.0f}"
    size = abs(value)
    digits = 0 if size >= 1000 else 1 if size >= 100 else 2 if size >= 1 else 3
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _amount(value: float | None, unit: str | None) -> str:
    """A figure with its unit. Beside a target of "0.24 %", a bare "0.215" reads as a fraction;
    the space is a no-break one, so a narrow card never leaves the unit alone on a line."""
    text = _num(value)
    return f"{text}\u00a0{unit}" if unit and value is not None else text


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _width(value: float | None) -> str:
    """A CSS percentage of a clamped share; the exact float, so the bar is the API's figure."""
    share = 0.0 if value is None else min(max(value, 0.0), 1.0)
    return f"{share * 100}%"


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max((now - moment).total_seconds(), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def _environment() -> jinja2.Environment:
    # Autoescape on for every template, whatever its name: nothing user-written is marked safe.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, amount=_amount, pct=_pct, width=_width, when=_when)
    env.globals.update(
        ago=_ago, status_label=lambda s: STATUS_LABELS.get(s, s), css_version=_CSS_VERSION
    )
    return env


templates = Jinja2Templates(env=_environment())


@dataclass(frozen=True)
class KeyResultView:
    kr: KeyResult
    progress: Progress | None
    spark: Sparkline | None

    @property
    def grouped(self) -> bool:
        groups = self.progress.groups if self.progress else ()
        return len(groups) > 1 or any(g.group for g in groups)


@dataclass(frozen=True)
class ObjectiveView:
    objective: Objective
    progress: ObjectiveProgress | None
    key_results: list[KeyResultView]


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=_SECURITY_HEADERS
    )


def _principal(request: Request, session: Session) -> Principal | None:
    """The page takes the key as the API does: a Bearer header, else the cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    presented = token.strip() if scheme.lower() == "bearer" else request.cookies.get(COOKIE, "")
    return _check_key(session, presented)


def _check_key(session: Session, presented: str) -> Principal | None:
    if not presented or len(presented) > _MAX_KEY_LENGTH:
        return None
    admin = get_settings().admin_key
    return authenticate(session, presented, admin.get_secret_value() if admin else None)


def _same_origin(request: Request) -> bool:
    """A form posted from another site is refused (SameSite covers the cookie, not the login).

    Browsers say where a request comes from in `Sec-Fetch-Site`, and older ones in `Origin`
    ("null" when privacy settings hide it, which is not evidence of another site).
    """
    if request.headers.get("sec-fetch-site", "same-origin") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _view_query(query: str) -> str:
    """Only the page's own filters survive the sign-in round trip: never a redirect elsewhere."""
    kept = [(k, v) for k, v in parse_qsl(query) if k in _VIEW_PARAMS and len(v) <= 40]
    return urlencode(kept)


def _login_form(
    request: Request, message: str | None = None, status_code: int = 200, view: str = ""
) -> Response:
    return _page(request, "login.html", {"message": message, "view": view}, status_code)


def _parse_filters(cycle_id: str | None, as_of: str | None) -> tuple[int | None, date, str | None]:
    """Bad query values become a message on the page, not a JSON error."""
    today = date.today()  # noqa: DTZ011 - "today" is the server's calendar day, as in the API
    problems = []
    cid: int | None = None
    if cycle_id:
        if cycle_id.isascii() and cycle_id.isdigit() and 0 < int(cycle_id) <= 2_147_483_647:
            cid = int(cycle_id)
        else:
            problems.append("The cycle must be picked from the list.")
    day = today
    if as_of:
        try:
            day = iso_date(as_of)
        except ValueError:
            problems.append("The date must look like 2026-08-15; showing today instead.")
    return cid, day, " ".join(problems) or None


def _dashboard(session: Session, cycle: Cycle, as_of: date) -> list[ObjectiveView]:
    objectives = service.cycle_objectives(session, cycle.id)
    obj_progress, kr_progress = service.objectives_progress(session, objectives, as_of)
    krs = [kr for obj in objectives for kr in obj.key_results]
    w = window(span(cycle), as_of)
    lines = web_service.sparklines(session, krs, w[0], w[1]) if w else {}
    return [
        ObjectiveView(
            objective=obj,
            progress=obj_progress.get(obj.id),
            key_results=[
                KeyResultView(kr, kr_progress.get(kr.id), lines.get(kr.id))
                for kr in obj.key_results
            ],
        )
        for obj in objectives
    ]


@router.get("/")
def dashboard_page(
    request: Request,
    session: SessionDep,
    cycle_id: Annotated[str | None, Query()] = None,
    as_of: Annotated[str | None, Query()] = None,
) -> Response:
    """The dashboard, or the key form when no valid key came with the request."""
    principal = _principal(request, session)
    if principal is None:
        response = _login_form(request, view=_view_query(request.url.query))
        if COOKIE in request.cookies:  # revoked since it was entered: forget it
            response.delete_cookie(COOKIE, path="/")
        return response
    cid, day, problem = _parse_filters(cycle_id, as_of)
    cycles, _ = service.list_cycles(session, _MAX_CYCLES, 0)
    now = clock.utcnow()
    context: dict[str, Any] = {
        "principal": principal,
        "cycles": cycles,
        "cycle": None,
        "as_of": day,
        "expected": None,
        "days_elapsed": 0,
        "days_total": 0,
        "objectives": [],
        "counts": {},
        "sources": [],
        "now": now,
        "problem": problem,
    }
    status_code = 422 if problem else 200
    # Before the cycle: a page about a cycle that isn't there still shows the sources that are.
    sources: list[SourceView] = web_service.sources(session, now)
    context["sources"] = sources
    if cycles:
        try:
            cycle = service.resolve_cycle(session, cid, day)
        except NotFound:
            context["problem"] = f"There is no cycle {cid} (any more); pick one from the list."
            return _page(request, "dashboard.html", context, 404)
        objectives = _dashboard(session, cycle, day)
        counts = Counter[str](
            kv.progress.status for o in objectives for kv in o.key_results if kv.progress
        )
        cycle_span = span(cycle)
        w = window(cycle_span, day)
        context.update(
            cycle=cycle,
            expected=expected_progress(cycle_span, day),
            days_elapsed=(w[1] - w[0]).days + 1 if w else 0,
            days_total=cycle_span.total_days,
            objectives=objectives,
            counts={s: counts[s] for s in STATUS_LABELS if counts[s]},
        )
    return _page(request, "dashboard.html", context, status_code)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    key: Annotated[str, Form()] = "",
    view: Annotated[str, Form()] = "",
) -> Response:
    """Check the key once and keep it in an HttpOnly cookie; every refusal reads the same."""
    view = _view_query(view)
    if not _same_origin(request):
        return _login_form(request, LOGIN_REFUSED, 403, view)
    principal = _check_key(session, key.strip())
    if principal is None:
        return _login_form(request, LOGIN_REFUSED, 401, view)
    response = RedirectResponse(f"/?{view}" if view else "/", status_code=303)
    response.set_cookie(
        COOKIE,
        key.strip(),
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Forget the key on this browser."""
    response = RedirectResponse("/", status_code=303)
    if _same_origin(request):
        response.delete_cookie(
            COOKIE,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


@router.get("/static/krsync.css")
def stylesheet() -> Response:
    """The page's one stylesheet; its URL carries a hash of its content, so it can be cached."""
    return FileResponse(
        _CSS,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
