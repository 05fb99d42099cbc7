"""Figures another system pushes to krsync, signed with a secret shared with it.

A ``push`` source has nothing to call: the pushing system sends ``POST /api/v1/push/{id}`` with
a JSON list of ``{date, metric, value, group?}`` (see ``app.push``), signed with the source's
``secret``. The metric catalogue is open-ended: any name the pushing system sends is accepted
by shape, is additive and has a daily history, and can be filtered on ``group``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import (
    SET_OPS,
    CheckResult,
    Connector,
    FetchResult,
    MetricQuery,
    MetricSpec,
    Window,
)

#: What a pushed metric name may look like.
METRIC_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")

#: The catalogue's example entry; any other name of the same shape is accepted too.
_EXAMPLE = MetricSpec(
    name="any_metric",
    description="Any metric name the pushing system sends (letters, digits, _ . : -)",
    unit="",
    filters={"group": SET_OPS},
    history="daily",
    additive=True,
)


class PushConfig(BaseModel):
    """A push source needs no configuration: the figures come to it."""

    model_config = ConfigDict(extra="forbid")


class PushCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: str = Field(
        min_length=16,
        description="The HMAC-SHA256 key shared with the pushing system (at least 16 characters).",
    )


class PushConnector(Connector[PushConfig, PushCredentials]):
    """Receives figures from other systems through ``POST /api/v1/push/{data_source_id}``."""

    key = "push"
    name = "Push (signed webhook)"
    category = "generic"
    metrics = (_EXAMPLE,)
    recommended_lookback_days = 0

    @classmethod
    def metric_spec(cls, name: str) -> MetricSpec | None:
        if not METRIC_NAME.match(name):
            return None
        return _EXAMPLE.model_copy(update={"name": name})

    async def check(self) -> CheckResult:
        return CheckResult("push sources receive figures; nothing to call")

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        """Nothing: the figures arrive by push and are written as they come.

        A scheduled or manual sync of a push source therefore finds no values, and the
        observations the pushes wrote stay as they are (an upsert only replaces what it writes).
        """
        return FetchResult()
