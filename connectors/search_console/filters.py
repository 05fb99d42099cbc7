"""A mapping's filters in Search Console's terms: one ``and`` group of dimension filters, with
``in``/``not_in`` written as anchored RE2 alternations and codes in the case the API expects."""

from __future__ import annotations

import re
from collections.abc import Sequence

from connectors.base import Filter

_OPERATORS = {"eq": "equals", "neq": "notEquals", "contains": "contains"}
#: RE2 metacharacters; escaping only these keeps the expression valid RE2.
_RE2_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


def _re2_alternatives(values: Sequence[str]) -> str:
    return "^(" + "|".join(_RE2_SPECIAL.sub(r"\\\1", v) for v in values) + ")$"


def _expression(field: str, value: str) -> str:
    """Countries are lower-case ISO 3166-1 alpha-3 in Search Console, devices upper-case."""
    if field == "country":
        return value.lower()
    if field == "device":
        return value.upper()
    return value


def dimension_filters(filters: Sequence[Filter]) -> list[dict[str, str]]:
    """One ``and`` group's filters; ``in`` and ``not_in`` become anchored RE2 alternations."""
    out: list[dict[str, str]] = []
    for flt in sorted(filters, key=lambda f: (f.field, f.op, str(f.value))):
        values = [_expression(flt.field, str(v)) for v in flt.values]
        if flt.op in ("in", "not_in"):
            operator = "includingRegex" if flt.op == "in" else "excludingRegex"
            out.append(
                {
                    "dimension": flt.field,
                    "operator": operator,
                    "expression": _re2_alternatives(values),
                }
            )
        else:
            out.append(
                {"dimension": flt.field, "operator": _OPERATORS[flt.op], "expression": values[0]}
            )
    return out
