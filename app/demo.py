"""The workspace of `krsync demo`: a quarter of marketing OKRs fed by `demo` data sources.

Everything goes through the services behind the API, so the demo obeys the rules a user's own
workspace does: a key result's definition is checked by the progress engine, a mapping's metric,
filters and aggregation by the connector's catalogue. It is idempotent: every piece is looked up
by name (the cycle "Demo 2026-Q3"; the sources `demo-web`, `demo-crm`, `demo-social`,
`demo-email`; objectives by title in that cycle; key results by title in their objective;
mappings by key result, role and group) and only what is missing is created.

Targets are set the way marketing teams set them, from last quarter's figures plus a stretch, so
the demo looks plausible whichever quarter it starts in although the synthetic figures trend up.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import KEY_PREFIX
from app.core.errors import Conflict
from app.core.secrets import SecretBox
from app.core.settings import get_settings
from app.models import Cycle, DataSource, KeyResult, Mapping, Objective
from app.okr import service as okr
from app.okr.schemas import CheckInCreate, CycleCreate, KeyResultCreate, Level, ObjectiveCreate
from app.progress import Cycle as CycleSpan
from app.progress import baseline_window
from app.sources import service as sources
from app.sources.schemas import DataSourceCreate, MappingCreate, Role
from connectors.base import Filter, Window
from connectors.demo import SHAPES, figure
from connectors.demo import select as select_segments

ACTOR = "demo"
SEED = 42
#: Where `krsync demo` keeps the admin key it generated, next to its SQLite database.
ADMIN_KEY_FILE = "krsync-demo-admin.key"
#: And the KRSYNC_SECRET_KEY it generated, which encrypts the credentials a user gives it.
SECRET_KEY_FILE = "krsync-demo-secret.key"
#: On last quarter's figures: ambitious, as OKRs are meant to be (about 0.7-0.9 is a good score).
STRETCH = 1.15
#: Stand-ins for website analytics (GA4), the CRM (HubSpot), social platforms and the newsletter
#: tool (Mailchimp): one `demo` source each, as a team would have one account on each platform.
SOURCES = ("demo-web", "demo-crm", "demo-social", "demo-email")
#: The channels marketing runs: what isolates its contribution from direct and organic search.
MARKETING_CHANNELS = ["Paid Search", "Paid Social", "Organic Social", "Email"]
NEW_MARKETS = ["DE", "FR", "NL", "ES"]
HOME_MARKETS = ["US", "GB"]
PLATFORMS = ("linkedin", "instagram", "youtube")


# --- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingPlan:
    source: str
    metric: str
    filters: tuple[dict[str, Any], ...] = ()
    role: Role = "value"
    group: str = ""
    scale: float = 1.0


@dataclass(frozen=True)
class CheckInPlan:
    day: int  # days after the cycle's start; seeded only once that day has come
    value: float
    note: str
    confidence: int
    author: str


@dataclass(frozen=True)
class KeyResultPlan:
    title: str
    fields: dict[str, Any]
    mappings: tuple[MappingPlan, ...] = ()
    check_ins: tuple[CheckInPlan, ...] = ()


@dataclass(frozen=True)
class ObjectivePlan:
    title: str
    description: str
    owner: str
    team: str
    key_results: tuple[KeyResultPlan, ...]
    level: Level = "team"


def _filter(field_name: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field_name, "op": op, "value": value}


def _figures(metric: str, filters: Sequence[dict[str, Any]], window: Window) -> list[float]:
    """What the `demo` connector will report for these days (it depends on nothing else)."""
    shape = SHAPES[metric]
    selection = select_segments(shape.dims, [Filter.model_validate(f) for f in filters])
    values = (figure(SEED, metric, shape, selection, day) for day in window.days())
    return [v for v in values if v is not None]


def _nice(value: float) -> float:
    """Two significant figures, as people write targets: 3,890 becomes 3,900."""
    if value <= 0:
        return 0.0
    return float(round(value, 1 - math.floor(math.log10(value))))


def quarter(day: date) -> tuple[str, date, date]:
    """The calendar quarter holding `day`: its label ("2026-Q3"), first and last day."""
    index = (day.month - 1) // 3
    start = date(day.year, 3 * index + 1, 1)
    following = date(day.year + 1, 1, 1) if index == 3 else date(day.year, 3 * index + 4, 1)
    return f"{day.year}-Q{index + 1}", start, following - timedelta(days=1)


def plan(start: date, end: date) -> tuple[ObjectivePlan, list[ObjectivePlan]]:
    """The company objective and the team objectives aligned to its roll-up key result."""
    last = Window(*baseline_window(CycleSpan(start=start, end=end)))

    def stretched(metric: str, *filters: dict[str, Any]) -> float:
        return _nice(sum(_figures(metric, filters, last)) * STRETCH)

    marketing = _filter("channel", "in", MARKETING_CHANNELS)
    deals = stretched("deals_won", marketing)
    pipeline = stretched("pipeline_value", marketing)
    subscribers = stretched("newsletter_subscribers")
    per_platform = min(stretched("new_followers", _filter("platform", "eq", p)) for p in PLATFORMS)
    linkedin = _filter("platform", "eq", "linkedin")
    followers = _figures("followers", [linkedin], last)
    li_start = math.floor(followers[-1] / 100) * 100
    li_target = li_start + _nice((followers[-1] - followers[0]) * STRETCH)

    company = ObjectivePlan(
        title="Grow marketing-sourced revenue",
        description="Marketing's share of the company's growth this quarter, counted from the "
        "channels marketing runs (paid search, paid and organic social, email).",
        owner="Maya Chen (CMO)",
        team="Marketing",
        level="company",
        key_results=(
            KeyResultPlan(
                "Every marketing team delivers its objectives",
                {"kind": "rollup", "unit": "%", "owner": "Maya Chen (CMO)"},
            ),
            KeyResultPlan(
                f"{deals:,.0f} deals won from marketing channels",
                {"target_value": deals, "unit": "deals", "owner": "Maya Chen (CMO)"},
                (MappingPlan("demo-crm", "deals_won", (marketing,)),),
            ),
            KeyResultPlan(
                f"{pipeline / 1e6:.1f} M USD of marketing-sourced pipeline",
                {"target_value": pipeline, "unit": "USD", "owner": "Maya Chen (CMO)"},
                (MappingPlan("demo-crm", "pipeline_value", (marketing,)),),
            ),
        ),
    )
    lena, tom, aisha, jonas = "Lena Vogel", "Tom Baker", "Aisha Khan", "Jonas Berg"
    teams = [
        ObjectivePlan(
            title="Make the brand visible in the new markets",
            description="Germany, France, the Netherlands and Spain: traffic from there, a "
            "partner program and local partners to carry the brand.",
            owner=lena,
            team="Brand",
            key_results=(
                KeyResultPlan(
                    "Sessions from the new markets +25 % on last quarter",
                    {"target_change_pct": 25, "unit": "sessions", "owner": lena},
                    (
                        MappingPlan(
                            "demo-web", "sessions", (_filter("country", "in", NEW_MARKETS),)
                        ),
                    ),
                ),
                KeyResultPlan(
                    "Launch the partner program",
                    {"kind": "milestone", "aggregation": "last", "owner": lena},
                    check_ins=(
                        CheckInPlan(7, 0, "Partner terms drafted; legal review under way", 7, lena),
                        CheckInPlan(49, 1, "Live, with four launch partners", 10, lena),
                    ),
                ),
                KeyResultPlan(
                    "3 local partnerships signed",
                    {
                        "direction": "at_least",
                        "target_value": 3,
                        "aggregation": "last",
                        "unit": "partnerships",
                        "owner": lena,
                    },
                    check_ins=(
                        CheckInPlan(20, 1, "Signed a Berlin co-working network", 6, lena),
                        CheckInPlan(41, 2, "Madrid agency signed; Paris in legal review", 7, lena),
                    ),
                ),
            ),
        ),
        ObjectivePlan(
            title="Turn the newsletter into a growth channel",
            description="More readers, and readers who click through.",
            owner=tom,
            team="Lifecycle",
            key_results=(
                KeyResultPlan(
                    f"{subscribers:,.0f} new newsletter subscribers",
                    {"target_value": subscribers, "unit": "subscribers", "owner": tom},
                    (MappingPlan("demo-email", "newsletter_subscribers"),),
                ),
                KeyResultPlan(
                    "Newsletter click rate of at least 5.5 %",
                    {
                        "direction": "at_least",
                        "target_value": 5.5,
                        "aggregation": "ratio",
                        "unit": "%",
                        "owner": tom,
                    },
                    (
                        MappingPlan("demo-email", "unique_clicks", role="numerator", scale=100),
                        MappingPlan("demo-email", "emails_sent", role="denominator"),
                    ),
                ),
            ),
        ),
        ObjectivePlan(
            title="Build an engaged audience on social",
            description="Followers on the three platforms our buyers use.",
            owner=aisha,
            team="Social",
            key_results=(
                KeyResultPlan(
                    f"{per_platform:,.0f} new followers on each platform",
                    {
                        "target_value": per_platform,
                        "group_rule": "each",
                        "unit": "followers",
                        "owner": aisha,
                    },
                    tuple(
                        MappingPlan(
                            "demo-social",
                            "new_followers",
                            (_filter("platform", "eq", p),),
                            group=p,
                        )
                        for p in PLATFORMS
                    ),
                ),
                KeyResultPlan(
                    f"Grow LinkedIn to {li_target:,.0f} followers",
                    {
                        "start_value": li_start,
                        "target_value": li_target,
                        "aggregation": "last",
                        "unit": "followers",
                        "owner": aisha,
                    },
                    (MappingPlan("demo-social", "followers", (linkedin,)),),
                ),
            ),
        ),
        ObjectivePlan(
            title="Convert more of the traffic we already have",
            description="Deals per visit, landing pages that hold paid visitors, and search "
            "rankings in our home markets.",
            owner=jonas,
            team="Web",
            key_results=(
                KeyResultPlan(
                    "Website conversion rate from 0.20 % to 0.24 %",
                    {
                        "start_value": 0.2,
                        "target_value": 0.24,
                        "aggregation": "ratio",
                        "unit": "%",
                        "owner": jonas,
                    },
                    (
                        MappingPlan("demo-crm", "deals_created", role="numerator", scale=100),
                        MappingPlan("demo-web", "sessions", role="denominator"),
                    ),
                ),
                KeyResultPlan(
                    "Bounce rate of paid traffic down from 52 % to 45 %",
                    {
                        "direction": "decrease",
                        "start_value": 52,
                        "target_value": 45,
                        "aggregation": "avg",
                        "unit": "%",
                        "owner": jonas,
                    },
                    (
                        MappingPlan(
                            "demo-web",
                            "bounce_rate",
                            (_filter("channel", "in", ["Paid Search", "Paid Social"]),),
                        ),
                    ),
                ),
                KeyResultPlan(
                    "Average search position of 8 or better in the US and UK",
                    {
                        "direction": "at_most",
                        "target_value": 8,
                        "aggregation": "avg",
                        "unit": "position",
                        "owner": jonas,
                    },
                    (
                        MappingPlan(
                            "demo-web",
                            "search_position",
                            (_filter("country", "in", HOME_MARKETS),),
                        ),
                    ),
                ),
            ),
        ),
    ]
    return company, teams


# --- making it so -----------------------------------------------------------------------------


@dataclass
class Workspace:
    cycle: Cycle
    sources: list[DataSource]
    objectives: list[Objective]
    #: What this call added, by kind ("cycle", "objective", "key result"...); empty on a rerun.
    created: dict[str, int] = field(default_factory=dict)


class _Builder:
    def __init__(self, session: Session, today: date) -> None:
        self.session = session
        self.today = today
        self.created: dict[str, int] = {}

    def _made(self, kind: str) -> None:
        self.created[kind] = self.created.get(kind, 0) + 1

    def cycle(self, name: str, start: date, end: date) -> Cycle:
        found = self.session.scalar(select(Cycle).where(Cycle.name == name).order_by(Cycle.id))
        if found is not None:
            return found
        self._made("cycle")
        body = CycleCreate(name=name, start_date=start, end_date=end)
        return okr.create_cycle(self.session, body.model_dump(), ACTOR)

    def source(self, name: str) -> DataSource:
        found = self.session.scalar(select(DataSource).where(DataSource.name == name))
        if found is not None:
            if found.connector != "demo":
                raise Conflict(
                    f"a data source named {name!r} already exists and uses the "
                    f"`{found.connector}` connector: rename it to run the demo",
                    field="name",
                )
            return found
        self._made("data source")
        body = DataSourceCreate(
            name=name,
            connector="demo",
            config={"seed": SEED},
            lookback_days=0,  # synthetic figures are never revised after the fact
        )
        return sources.create_source(self.session, body.model_dump(), ACTOR)

    def objective(self, spec: ObjectivePlan, cycle: Cycle, parent: int | None) -> Objective:
        found = self.session.scalar(
            select(Objective)
            .where(Objective.cycle_id == cycle.id, Objective.title == spec.title)
            .order_by(Objective.id)
        )
        if found is None:
            self._made("objective")
            body = ObjectiveCreate(
                title=spec.title,
                description=spec.description,
                cycle_id=cycle.id,
                owner=spec.owner,
                level=spec.level,
                team=spec.team,
                parent_key_result_id=parent,
            )
            found = okr.create_objective(self.session, body.model_dump(), ACTOR)
        return found

    def key_result(
        self, spec: KeyResultPlan, obj: Objective, cycle: Cycle, by_name: dict[str, DataSource]
    ) -> KeyResult:
        kr = self.session.scalar(
            select(KeyResult)
            .where(KeyResult.objective_id == obj.id, KeyResult.title == spec.title)
            .order_by(KeyResult.id)
        )
        if kr is None:
            self._made("key result")
            body = KeyResultCreate(objective_id=obj.id, title=spec.title, **spec.fields)
            kr = okr.create_key_result(self.session, body.model_dump(), ACTOR)
            # Seeded with the key result only: a rerun must not repeat someone's check-in.
            for c in spec.check_ins:
                day = cycle.start_date + timedelta(days=c.day)
                if day > self.today:
                    continue
                self._made("check-in")
                check_in = CheckInCreate(
                    date=day, value=c.value, note=c.note, confidence=c.confidence, author=c.author
                )
                okr.add_check_in(self.session, kr.id, check_in.model_dump(), ACTOR)
        for m in spec.mappings:
            self.mapping(m, kr, by_name[m.source])
        return kr

    def mapping(self, spec: MappingPlan, kr: KeyResult, source: DataSource) -> None:
        found = self.session.scalar(
            select(Mapping.id).where(
                Mapping.key_result_id == kr.id,
                Mapping.role == spec.role,
                Mapping.group == spec.group,
            )
        )
        if found is not None:
            return
        self._made("mapping")
        body = MappingCreate(
            key_result_id=kr.id,
            data_source_id=source.id,
            metric=spec.metric,
            filters=list(spec.filters),
            role=spec.role,
            group=spec.group,
            scale=spec.scale,
        )
        # The source is held disabled (see `_backfill_deferred`), so no task is ever added.
        sources.create_mapping(self.session, BackgroundTasks(), body.model_dump(), ACTOR)


@contextmanager
def _backfill_deferred(held: Iterable[DataSource]) -> Iterator[None]:
    """Hold the sources disabled while their mappings are created, in this transaction only.

    Creating a mapping on an enabled source commits and starts a backfill of that source at once:
    a dozen runs for a dozen mappings. A disabled source's new mappings wait, pending, for its
    next run instead, so `krsync demo` backfills each source once, behind its progress bar.
    """
    enabled = [s for s in held if s.enabled]
    for source in enabled:
        source.enabled = False
    try:
        yield
    finally:
        for source in enabled:
            source.enabled = True


def ensure_workspace(session: Session, today: date) -> Workspace:
    """The demo workspace of the quarter holding `today`, created where it is missing.

    Nothing is committed here (the caller's transaction holds it all) and no sync starts: the
    caller backfills the sources (`backfill_runs`).
    """
    label, start, end = quarter(today)
    build = _Builder(session, today)
    cycle = build.cycle(f"Demo {label}", start, end)
    by_name = {name: build.source(name) for name in SOURCES}
    company, teams = plan(start, end)
    objectives: list[Objective] = []
    with _backfill_deferred(by_name.values()):
        top = build.objective(company, cycle, None)
        objectives.append(top)
        krs = [build.key_result(spec, top, cycle, by_name) for spec in company.key_results]
        rollup = krs[0].id
        for spec in teams:
            obj = build.objective(spec, cycle, rollup)
            objectives.append(obj)
            for kr_spec in spec.key_results:
                build.key_result(kr_spec, obj, cycle, by_name)
    session.flush()
    return Workspace(cycle, list(by_name.values()), objectives, build.created)


def backfill_runs(session: Session, workspace: Workspace) -> list[tuple[int, str]]:
    """One run per enabled demo source, for the caller to commit and execute: (run id, name).

    A source with pending mappings backfills them (the cycle, and last quarter for a relative
    target); one without asks for its incremental window, so a rerun of the demo is quick.
    """
    from app.sync.engine import create_run

    runs: list[tuple[int, str]] = []
    for source in workspace.sources:
        if not source.enabled:
            continue  # someone switched it off; the demo leaves it so
        pending = session.scalar(
            select(Mapping.id)
            .where(Mapping.data_source_id == source.id, Mapping.backfill_pending.is_(True))
            .limit(1)
        )
        trigger = "backfill" if pending is not None else "cli"
        runs.append((create_run(session, source, trigger=trigger).id, source.name))
    return runs


# --- the demo's keys --------------------------------------------------------------------------


def admin_key(data_dir: Path) -> tuple[str, Path | None]:
    """KRSYNC_ADMIN_KEY when set; else the demo's own key, made once and kept in `data_dir`.

    Returns the key and the file it is kept in (None when it came from the environment).
    """
    configured = get_settings().admin_key
    if configured is not None and configured.get_secret_value().strip():
        return configured.get_secret_value().strip(), None
    path = data_dir / ADMIN_KEY_FILE
    return _kept(path, KEY_PREFIX + secrets.token_urlsafe(32)), path


def secret_key(data_dir: Path) -> tuple[str, Path | None]:
    """KRSYNC_SECRET_KEY when set; else a Fernet key made once and kept in `data_dir`.

    Without one, a credential (a `push` source's secret, a platform's token) can't be stored,
    so the demo could show every connector but the ones that need an account. Returns the key
    and its file (None when it came from the environment).
    """
    configured = get_settings().secret_key
    if configured is not None and configured.get_secret_value().strip():
        return configured.get_secret_value().strip(), None
    path = data_dir / SECRET_KEY_FILE
    return _kept(path, SecretBox.generate_key()), path


def _kept(path: Path, fresh: str) -> str:
    """The value stored at `path`, or `fresh` written there first, readable by its owner only."""
    try:
        # O_EXCL so two demos starting at once agree on one value.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        stored = path.read_text(encoding="utf-8").strip()
        if stored:
            return stored
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(fresh + "\n")
    return fresh
