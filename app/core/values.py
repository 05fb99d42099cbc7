"""The one rule every stored figure obeys: a finite number no larger than ``MAX_ABS_VALUE``.

Check-ins, pushed values, connector values (as fetched and once the mapping's ``scale`` is
applied), key-result starts and targets and mapping scales all obey it, so no figure can make a
progress read overflow. The bound is far above any marketing figure (10^15 is a quadrillion
sessions, or dollars) and far below what the reads need: observations are ``double precision``
on PostgreSQL and ``REAL`` on SQLite, and the reads' SUMs (of ``value * scale``, and of those
times a day number for the forecast) are double precision too, overflowing only past ~1.8e308.
The largest term is a bounded value times a bounded scale (10^30; a scale changed after its
figures were stored can reach it) times a day number (under 10^6), so some 10^270 rows would be
needed to overflow, where a read adds up one row per mapping, group and day of a window.
"""

from __future__ import annotations

import math

from sqlalchemy import ColumnElement, func
from sqlalchemy.orm import InstrumentedAttribute

#: The largest magnitude of any figure krsync stores or reads.
MAX_ABS_VALUE = 1e15
#: The bound as messages say it: ±1e15.
BOUND_TEXT = f"±{MAX_ABS_VALUE:.0e}".replace("+", "")


def value_problem(value: float) -> str | None:
    """Why this figure can't be stored, or None when it can."""
    if not math.isfinite(value):
        return "must be a finite number"
    if abs(value) > MAX_ABS_VALUE:
        return f"must lie within {BOUND_TEXT}"
    return None


def storable(value: float) -> bool:
    return value_problem(value) is None


def readable(column: ColumnElement[float] | InstrumentedAttribute[float]) -> ColumnElement[bool]:
    """The SQL condition a stored figure must meet to be read.

    Figures stored before the bound existed (a push of 1e308, a NaN from a connector) stay in the
    database, untouched, but reads leave them out: summing them would overflow (PostgreSQL
    raises, SQLite yields NaN) and every progress read of their key result would fail. NaN
    and infinity fail the test on PostgreSQL too (NaN sorts above every number).
    """
    return func.abs(column) <= MAX_ABS_VALUE
