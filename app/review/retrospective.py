"""Retrospective entries of a cycle: the look back, in either format (SPEC section 8)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import audit
from app.core.changes import apply_changes, require_not_null
from app.core.db import child_or_404, equal_to, paged
from app.core.errors import InvalidInput
from app.models import Objective, RetrospectiveEntry
from app.okr.service import get_cycle
from app.review.schemas import CATEGORIES, CATEGORY_LABELS, FORMAT_LABELS


def _fits(fmt: str, category: str) -> None:
    """A category belongs to one format: "liked" on a Start/Stop/Continue board is a typo."""
    allowed = CATEGORIES[fmt]
    if category not in allowed:
        names = ", ".join(f"`{c}`" for c in allowed)
        raise InvalidInput(
            f"category `{category}` is not part of the {FORMAT_LABELS[fmt]} format "
            f"(`{fmt}`): use {names}, or format "
            f"`{next(f for f, cats in CATEGORIES.items() if category in cats)}`",
            field="category",
        )


def _objective_of_cycle(session: Session, cycle_id: int, objective_id: int) -> None:
    found = session.scalar(select(Objective.cycle_id).where(Objective.id == objective_id))
    if found is None:
        raise InvalidInput(f"objective {objective_id} does not exist", field="objective_id")
    if found != cycle_id:
        raise InvalidInput(
            f"objective {objective_id} belongs to another cycle ({found}): a retrospective "
            "entry is about an objective of its own cycle",
            field="objective_id",
        )


def get_entry(session: Session, cycle_id: int, entry_id: int) -> RetrospectiveEntry:
    get_cycle(session, cycle_id)
    what = f"retrospective entry {entry_id} of cycle {cycle_id}"
    return child_or_404(session, RetrospectiveEntry, entry_id, ("cycle_id", cycle_id), what)


def create_entry(
    session: Session, cycle_id: int, data: dict[str, Any], actor: str
) -> RetrospectiveEntry:
    get_cycle(session, cycle_id)
    _fits(data["format"], data["category"])
    if data.get("objective_id") is not None:
        _objective_of_cycle(session, cycle_id, data["objective_id"])
    entry = RetrospectiveEntry(cycle_id=cycle_id, author=actor, **data)
    session.add(entry)
    session.flush()
    audit(session, actor, "create", "retrospective_entry", entry.id, {"cycle_id": cycle_id, **data})
    return entry


def list_entries(
    session: Session,
    cycle_id: int,
    objective_id: int | None = None,
    limit: int = 500,
    offset: int = 0,
) -> tuple[list[RetrospectiveEntry], int]:
    """Entries in the order a board shows them: format, category, then as they were written."""
    get_cycle(session, cycle_id)
    where = [
        RetrospectiveEntry.cycle_id == cycle_id,
        *equal_to((RetrospectiveEntry.objective_id, objective_id)),
    ]
    query = select(RetrospectiveEntry)
    return paged(session, query, where, RetrospectiveEntry.id, limit=limit, offset=offset)


def board_order(entries: list[RetrospectiveEntry]) -> list[RetrospectiveEntry]:
    rank = {c: i for i, c in enumerate(CATEGORY_LABELS)}
    return sorted(entries, key=lambda e: (rank.get(e.category, len(rank)), e.id))


def update_entry(
    session: Session, cycle_id: int, entry_id: int, changes: dict[str, Any], actor: str
) -> RetrospectiveEntry:
    require_not_null(changes, ["format", "category", "text"])
    entry = get_entry(session, cycle_id, entry_id)
    _fits(changes.get("format", entry.format), changes.get("category", entry.category))
    if changes.get("objective_id") is not None:
        _objective_of_cycle(session, cycle_id, changes["objective_id"])
    diff = apply_changes(entry, changes)
    session.flush()
    audit(session, actor, "update", "retrospective_entry", entry.id, diff)
    return entry


def delete_entry(session: Session, cycle_id: int, entry_id: int, actor: str) -> None:
    entry = get_entry(session, cycle_id, entry_id)
    gone = {
        "cycle_id": cycle_id,
        "objective_id": entry.objective_id,
        "format": entry.format,
        "category": entry.category,
        "text": entry.text,
    }
    session.delete(entry)
    session.flush()
    audit(session, actor, "delete", "retrospective_entry", entry_id, gone)
