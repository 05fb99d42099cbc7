"""The dashboard page and the sign-in: server-rendered, readable without JavaScript.

The key is entered once and starts a browser session (app.web.session); the API accepts its
cookie for reads, so the page's CSV links work as they are. Figures come from the same service
calls as `GET /api/v1/dashboard`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.auth.service import ROLE_RANK
from app.core import clock
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.core.schemas import iso_date
from app.core.settings import get_settings
from app.models import Cycle, KeyResult, Objective
from app.okr import service
from app.okr.progress_service import span
from app.progress import ObjectiveProgress, Progress, expected_progress, window
from app.review import service as review_service
from app.review.findings import Finding
from app.web import service as web_service
from app.web import session as web_session
from app.web.pages import (
    CSRF_REFUSED,
    CSS,
    STATUS_LABELS,
    check_key,
    csrf_ok,
    page_user,
    refusal,
    render,
    same_origin,
)
from app.web.retrospective import REVIEW_FORMATS
from app.web.service import SourceView, Sparkline
from app.web.session import COOKIE

router = APIRouter(include_in_schema=False)

#: One message for every refusal: unknown, revoked, malformed or empty keys look alike.
LOGIN_REFUSED = "That key was not accepted."
_MAX_CYCLES = 200
_VIEW_PARAMS = ("cycle_id", "as_of")
#: Where krsync before browser sessions kept the raw key; it opens nothing now.
LEGACY_COOKIE = "krsync_key"


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
    #: Quality findings (SPEC section 8), shown while the cycle runs or is being set up.
    findings: list[Finding]


def _view_query(query: str) -> str:
    """Only the page's own filters survive the sign-in round trip: never a redirect elsewhere."""
    kept = [(k, v) for k, v in parse_qsl(query) if k in _VIEW_PARAMS and len(v) <= 40]
    return urlencode(kept)


def _login_form(
    request: Request, message: str | None = None, status_code: int = 200, view: str = ""
) -> Response:
    context = {"message": message, "view": view, "principal": None}
    return render(request, "login.html", context, status_code)


def _parse_filters(cycle_id: str | None, as_of: str | None) -> tuple[int | None, date, str | None]:
    """Bad query values become a message on the page, not a JSON error."""
    today = clock.today()
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
    # Findings help while objectives can still change; once the cycle is over, its review
    # lists them (linked from the page).
    findings = (
        review_service.dashboard_findings(
            session, objectives, {k for k, p in kr_progress.items() if p.stale}, as_of
        )
        if as_of <= cycle.end_date
        else {}
    )
    return [
        ObjectiveView(
            objective=obj,
            progress=obj_progress.get(obj.id),
            key_results=[
                KeyResultView(kr, kr_progress.get(kr.id), lines.get(kr.id))
                for kr in obj.key_results
            ],
            findings=findings.get(obj.id, []),
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
    user = page_user(request, session)
    if user is None:
        response = _login_form(request, view=_view_query(request.url.query))
        if COOKIE in request.cookies:  # ended since it was made (revoked, expired): forget it
            web_session.clear_cookie(request, response)
        if LEGACY_COOKIE in request.cookies:  # an API key kept by an older krsync: drop it
            response.delete_cookie(LEGACY_COOKIE, path="/")
        return response
    principal = user.principal
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
        "attention": [],
        "now": now,
        "problem": problem,
        "review_formats": REVIEW_FORMATS,
        "can_edit": ROLE_RANK[principal.role] >= ROLE_RANK["editor"],
    }
    status_code = 422 if problem else 200
    # Before the cycle: a page about a cycle that isn't there still shows the sources that are.
    sources: list[SourceView] = web_service.sources(session, now)
    context["sources"] = sources
    # Admins are the ones who can fix a source: they see which need them, first thing.
    context["attention"] = (
        [s for s in sources if s.needs_attention] if principal.role == "admin" else []
    )
    if cycles:
        try:
            cycle = service.resolve_cycle(session, cid, day)
        except NotFound:
            context["problem"] = f"There is no cycle {cid} (any more); pick one from the list."
            return render(request, "dashboard/index.html", context, 404)
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
    return render(request, "dashboard/index.html", context, status_code)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    key: Annotated[str, Form()] = "",
    view: Annotated[str, Form()] = "",
) -> Response:
    """Check the key once and start a browser session; every refusal reads the same.

    The cookie carries the session's own random token, never the key: a stolen cookie dies with
    its session (sign-out, revocation, 12 h idle, 30 days), and the key is not in the browser.
    The form has no session yet to carry a CSRF token, so another site's post is refused by
    where the browser says it comes from.
    """
    view = _view_query(view)
    if not same_origin(request):
        return _login_form(request, LOGIN_REFUSED, 403, view)
    principal = check_key(session, key.strip())
    if principal is None:
        return _login_form(request, LOGIN_REFUSED, 401, view)
    # A session cookie this browser already had is ended: each sign-in gets a token of its own.
    web_session.end(session, request.cookies.get(COOKIE, ""))
    admin = get_settings().admin_key
    token = web_session.start(session, principal, admin.get_secret_value() if admin else None)
    response = RedirectResponse(f"/?{view}" if view else "/", status_code=303)
    web_session.set_cookie(request, response, token)
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    """End this browser's session; its token opens nothing afterwards."""
    response = RedirectResponse("/", status_code=303)
    user = await run_in_threadpool(page_user, request, session)
    if user is not None and user.web is not None:
        if not await csrf_ok(request, user):
            raise refusal(request, 403, "Form refused", CSRF_REFUSED, user.principal)
        token = request.cookies.get(COOKIE, "")
        await run_in_threadpool(web_session.end, session, token)
    if COOKIE in request.cookies:
        web_session.clear_cookie(request, response)
    return response


@router.get("/static/krsync.css")
def stylesheet() -> Response:
    """The page's one stylesheet; its URL carries a hash of its content, so it can be cached."""
    return FileResponse(
        CSS,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
