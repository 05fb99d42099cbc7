"""What every page shares: templates, security headers, the signed-in user, roles and CSRF.

A page route names who may open it with its role's page — ``page: AdminPage`` — and gets a
:class:`Page`: the request, its session and who signed in, with what every page does with them
(render, refuse, find the row its path names). Without a live key or session the browser is sent
to sign in; with too weak a role it gets a 403 page; a form that writes must carry the session's
CSRF token (templates put it in with ``{{ csrf_field() }}``), else a 403 page and nothing done.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import jinja2
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.auth.service import ROLE_RANK, Principal, Role, authenticate
from app.core.db import SessionDep
from app.core.errors import NotFound, reason
from app.core.schemas import MAX_ID
from app.core.settings import get_settings
from app.web import session as web_session
from app.web.session import BrowserSession

T = TypeVar("T")
_HERE = Path(__file__).parent
CSS = _HERE / "static" / "krsync.css"
_CSS_VERSION = hashlib.sha256(CSS.read_bytes()).hexdigest()[:10]
_MAX_KEY_LENGTH = 512
CSRF_FIELD = "csrf_token"

SECURITY_HEADERS = {
    # No script and no inline style anywhere: the bars' widths are classes of the stylesheet.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
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


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    role: Role


#: The workspace's pages in the order the top bar lists them; each shows to its role and up.
NAV: tuple[NavItem, ...] = (
    NavItem("Dashboard", "/", "viewer"),
    NavItem("OKRs", "/okrs", "viewer"),
    NavItem("Cycles", "/cycles", "viewer"),
    NavItem("Data sources", "/sources", "admin"),
    NavItem("Notifications", "/notifications", "admin"),
    NavItem("API keys", "/keys", "admin"),
)


def nav_items(principal: Principal | None) -> list[NavItem]:
    if principal is None:
        return []
    return [item for item in NAV if ROLE_RANK[principal.role] >= ROLE_RANK[item.role]]


# --- formatting ------------------------------------------------------------------------------


def num(value: float | None) -> str:
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
    text = num(value)
    return f"{text}\u00a0{unit}" if unit and value is not None else text


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def step(value: float | None) -> int:
    """A clamped share in whole percent: the stylesheet has a width class for each step, so
    no page needs an inline style (the CSP allows none). The exact figure is in data-progress."""
    share = 0.0 if value is None or not math.isfinite(value) else min(max(value, 0.0), 1.0)
    return round(share * 100)


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


_TICKS = re.compile(r"``(.+?)``|`([^`]+)`")


def _ticks(text: str) -> Markup:
    """Docstrings and schema descriptions mark names with backticks: shown as code."""
    out = Markup()
    last = 0
    for found in _TICKS.finditer(text):
        out += text[last : found.start()]
        out += Markup("<code>{}</code>").format(found.group(1) or found.group(2))
        last = found.end()
    return out + text[last:]


@jinja2.pass_context
def _csrf_token(context: Any) -> str:
    web = getattr(context["request"].state, "web_session", None)
    return web.csrf_token if isinstance(web, BrowserSession) else ""


@jinja2.pass_context
def _csrf_field(context: Any) -> Markup:
    token = _csrf_token(context)
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)


def _environment() -> jinja2.Environment:
    # Autoescape on for every template, whatever its name: nothing user-written is marked safe.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=num, amount=_amount, pct=_pct, step=step, when=_when, ticks=_ticks)
    env.globals.update(
        ago=_ago,
        status_label=lambda s: STATUS_LABELS.get(s, s),
        css_version=_CSS_VERSION,
        nav_items=nav_items,
        csrf_field=_csrf_field,
        csrf_token=_csrf_token,
    )
    return env


templates = Jinja2Templates(env=_environment())


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=SECURITY_HEADERS
    )


# --- what a form or a path said --------------------------------------------------------------


def path_id(text: str) -> int:
    """An id from a page's path, or 0 when it can't name a row (so the page answers 404)."""
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID else 0


def field_errors(
    exc: ValidationError, default: str, fields: Collection[str] | None = None
) -> dict[str, str]:
    """Each message as the API words it (`reason`), under the field it names; a message about
    no field (or one the form doesn't show) goes under ``default``."""
    found: dict[str, str] = {}
    for err in exc.errors():
        loc = err.get("loc") or ()
        field = str(loc[0]) if loc else default
        if fields is not None and field not in fields:
            field = default
        found.setdefault(field, reason(str(err.get("msg"))))
    return found


# --- who is asking ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PageUser:
    principal: Principal
    #: The browser session, when the cookie signed the request in (None for a Bearer header).
    web: BrowserSession | None


class PageRefused(Exception):
    """A page's answer before its route ran: sign in first, or not with this role."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def check_key(session: Session, presented: str) -> Principal | None:
    if not presented or len(presented) > _MAX_KEY_LENGTH:
        return None
    admin = get_settings().admin_key
    return authenticate(session, presented, admin.get_secret_value() if admin else None)


def page_user(request: Request, session: Session) -> PageUser | None:
    """A Bearer header as the API takes it (scripts, tests), else the browser's session."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer":
        principal = check_key(session, token.strip())
        return None if principal is None else PageUser(principal, None)
    web = web_session.browser_session(request, session)
    return None if web is None else PageUser(web.principal, web)


def same_origin(request: Request) -> bool:
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


def refusal(
    request: Request,
    status_code: int,
    title: str,
    message: str,
    principal: Principal | None = None,
) -> PageRefused:
    context = {"title": title, "message": message, "principal": principal}
    return PageRefused(render(request, "refused.html", context, status_code))


CSRF_REFUSED = (
    "This form could not be trusted: it came without this browser's sign-in token, or from "
    "another site. Nothing was changed. Go back, reload the page and try again."
)


async def csrf_ok(request: Request, user: PageUser) -> bool:
    """A write made with the cookie carries the session's token and comes from this site.

    A Bearer header is never sent by a browser on its own, so a request signed with one
    can't be forged by another site and needs no token.
    """
    if user.web is None:
        return True
    if not same_origin(request):
        return False
    form = await request.form()
    presented = form.get(CSRF_FIELD)
    return isinstance(presented, str) and web_session.csrf_matches(user.web, presented)


@dataclass(frozen=True)
class Page:
    """One page request as its route and helpers see it: the request, the transaction the
    request owns, and who signed in (with at least the role the route asked for).

    Every page answers with the same few moves (render a template, refuse with a page, find
    the row its path names or answer 404), each needing all three: one value carries them.
    """

    request: Request
    session: Session
    user: PageUser

    @property
    def principal(self) -> Principal:
        return self.user.principal

    def at_least(self, role: Role) -> bool:
        """Whether who signed in has ``role`` or a stronger one (what a page offers them)."""
        return ROLE_RANK[self.principal.role] >= ROLE_RANK[role]

    def render(self, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
        return render(self.request, name, context, status_code)

    def refuse(self, status_code: int, title: str, message: str) -> PageRefused:
        """The refusal page (to raise), with the top bar of who signed in."""
        return refusal(self.request, status_code, title, message, self.principal)

    def found_or_404(
        self,
        what: str,
        path_text: str,
        get: Callable[[int], T | None],
        message: str = "It may have been deleted.",
    ) -> T:
        """The row a page's path names, or the 404 page ("No such cycle")."""
        row_id = path_id(path_text)
        try:
            row = get(row_id) if row_id else None
        except NotFound:
            row = None
        if row is None:
            raise self.refuse(404, f"No such {what}", message)
        return row


def page_principal(min_role: Role) -> Callable[..., Awaitable[Page]]:
    """The dependency of a page route: sign-in, role and (for writes) CSRF, in that order; the
    route gets its :class:`Page`."""

    async def guard(request: Request, session: SessionDep) -> Page:
        user = await run_in_threadpool(page_user, request, session)
        if user is None:
            raise PageRefused(RedirectResponse("/", status_code=303))
        if ROLE_RANK[user.principal.role] < ROLE_RANK[min_role]:
            raise refusal(
                request,
                403,
                "Not with this key",
                f"This page needs the {min_role} role; you signed in with a "
                f"{user.principal.role} key.",
                user.principal,
            )
        if request.method not in ("GET", "HEAD") and not await csrf_ok(request, user):
            raise refusal(request, 403, "Form refused", CSRF_REFUSED, user.principal)
        request.state.principal = user.principal
        return Page(request, session, user)

    return guard


#: A page route's signature says who may open it, as the API's `Viewer`, `Editor`, `Admin` do.
ViewerPage = Annotated[Page, Depends(page_principal("viewer"))]
EditorPage = Annotated[Page, Depends(page_principal("editor"))]
AdminPage = Annotated[Page, Depends(page_principal("admin"))]
