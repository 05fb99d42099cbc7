"""Counts and sums of a platform's records, object by object: what CRMs (HubSpot, Salesforce)
and any plugin for a platform of typed records share.

Such a platform names its records by object (``deals``, ``Opportunity``) and its metrics follow:
``<object>.count`` and ``<object>.sum`` (:class:`ObjectMetrics`), a count's params naming the
date that places a record on a day, a sum's adding the field summed. One request answers the
queries of one object, date and filters together, and one object the user can't read, or one
statement the platform refuses, costs those queries only (:class:`ObjectRefused`,
:class:`~connectors.errors.RequestRefused`, :func:`read_groups`)::

    METRICS = ObjectMetrics(
        re.compile(r"[A-Za-z]\\w*"), "{} records per day", "The sum of `field` of the {}",
        CountParams, SumParams, summed="field",
    )

    class MyCrm(Connector[Config, Credentials]):
        metrics = METRICS.specs("Lead", "Deal")
        metric_spec = staticmethod(METRICS.metric_spec)  # any object's, not only the examples

        async def fetch(self, queries, window):
            result = FetchResult()
            await read_groups(result, queries, self._statement, partial(self._read, window))
            return result
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from re import Pattern
from typing import Generic, Literal, TypeVar, cast

from pydantic import BaseModel

from connectors.base import (
    ANY_FIELD,
    FILTER_OPS,
    ConnectorAuthError,
    DailyValue,
    FetchResult,
    MetricQuery,
    MetricSpec,
)
from connectors.errors import RequestRefused

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Kind = Literal["count", "sum"]


class ObjectRefused(ConnectorAuthError):
    """The platform won't let the source read one object or some of its fields (a scope, a
    permission, field-level security): the queries of that object fail, the others go on."""


#: The most specs an :class:`ObjectMetrics` keeps built (a workspace maps a few dozen objects).
KEPT_SPECS = 1024

#: The refusals that cost their own queries, not the fetch: an object's, and one request's
#: (:class:`~connectors.errors.RequestRefused`: a field that isn't there, a bad value).
REFUSED_ALONE = (ObjectRefused, RequestRefused)


@dataclass(frozen=True)
class ObjectMetrics:
    """``<object>.count`` and ``<object>.sum``: each object's specs, built from its name.

    ``count`` and ``sum`` word the descriptions (``{}`` is the object), ``count_unit`` the
    count's unit (``{}`` too); ``summed`` names the sum params' field holding what is summed.
    """

    object_name: Pattern[str]
    count: str
    sum: str
    count_params: type[BaseModel]
    sum_params: type[BaseModel]
    summed: str
    count_unit: str = "records"
    _built: dict[str, MetricSpec] = field(default_factory=dict, compare=False, repr=False)

    def spec(self, obj: str, kind: Kind) -> MetricSpec:
        counts = kind == "count"
        return MetricSpec(
            name=f"{obj}.{kind}",
            description=(self.count if counts else self.sum).format(obj),
            unit=self.count_unit.format(obj) if counts else "value",
            params_model=self.count_params if counts else self.sum_params,
            filters={ANY_FIELD: frozenset(FILTER_OPS)},
        )

    def specs(self, *objects: str) -> tuple[MetricSpec, ...]:
        """The catalogue's examples (or the whole of it): each object's count, then its sum."""
        return tuple(self.spec(obj, kind) for obj in objects for kind in ("count", "sum"))

    def object_of(self, metric: str) -> str | None:
        """The object a metric counts or sums, None for a name of another shape."""
        obj, dot, kind = metric.rpartition(".")
        named = dot and kind in ("count", "sum") and self.object_name.fullmatch(obj)
        return obj if named else None

    def metric_spec(self, name: str) -> MetricSpec | None:
        """Any object's ``.count`` or ``.sum`` (a connector's ``metric_spec``), built once.

        The names come from whoever writes a mapping, so only well-formed ones are kept, and
        at most :data:`KEPT_SPECS` of them."""
        built = self._built.get(name)
        if built is None:
            obj = self.object_of(name)
            if obj is None:
                return None
            if len(self._built) >= KEPT_SPECS:
                self._built.clear()
            built = self._built[name] = self.spec(obj, cast(Kind, name.rpartition(".")[2]))
        return built

    def summed_of(self, query: MetricQuery) -> str | None:
        """The field a query sums; None for a count."""
        params = query.params
        return getattr(params, self.summed) if isinstance(params, self.sum_params) else None

    def sums(self, queries: Iterable[MetricQuery]) -> list[str]:
        """The fields the queries sum, each once however many ask it (they share the figure)."""
        return sorted({s for q in queries if (s := self.summed_of(q)) is not None})


async def read_groups(
    result: FetchResult,
    queries: Iterable[MetricQuery],
    key: Callable[[MetricQuery], K | Awaitable[K]],
    read: Callable[[K, list[MetricQuery]], Awaitable[Sequence[DailyValue]]],
) -> list[ObjectRefused]:
    """Read ``queries`` a group at a time: those ``key`` gives one value (a statement, a
    search) share one ``read``.

    A query whose key is refused (``key`` may call the platform, to learn a field's type), and
    a group whose read is refused (:data:`REFUSED_ALONE`), go to ``result.query_errors`` with
    the refusal's message; the other groups' values are added and marked complete, since a
    read answers for every record of the window (a day without one has none any more). Returns
    the object refusals, so a connector whose every query was refused for want of access can
    raise one: then the credentials, not a mapping, need fixing.
    """
    groups: dict[K, list[MetricQuery]] = {}
    for query in queries:
        try:
            got = key(query)
            group = await got if inspect.isawaitable(got) else got
        except REFUSED_ALONE as exc:
            result.query_errors[query.id] = exc.message
            continue
        groups.setdefault(group, []).append(query)
    lost: list[ObjectRefused] = []
    for group, members in groups.items():
        try:
            values = await read(group, members)
        except REFUSED_ALONE as exc:
            lost += [exc] if isinstance(exc, ObjectRefused) else []
            result.fail(members, exc.message)
            continue
        result.values += values
        result.complete.update(q.id for q in members)
    return lost


class Described(Generic[K, V]):
    """An object's metadata (its fields and their types, as a describe call says them), asked
    once per connector instance: a fetch's statements and a mapping's checks share it."""

    def __init__(self, load: Callable[[K], Awaitable[V]]) -> None:
        self._load = load
        self._known: dict[K, V] = {}

    async def __call__(self, key: K) -> V:
        if key not in self._known:
            self._known[key] = await self._load(key)
        return self._known[key]
