"""The toolkit's reader of ``{prefix}limit`` / ``-remaining`` / ``-reset`` headers
(connectors/pacing.py): the hold a spent window asks for, the wait before a retry, the figures
a run keeps, with the reset in seconds from now (Pipedrive) or as a Unix instant (X)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from connectors.pacing import RateHeaders

RELATIVE = RateHeaders("x-ratelimit-", "spent", unnamed=2.0, cap=10.0, successes_only=True)
EPOCH = RateHeaders("x-rate-limit-", "used up until {until}", epoch=True)


def _answer(status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_a_spent_window_holds_until_its_reset_in_seconds() -> None:
    hold = RELATIVE.pace(_answer(x_ratelimit_remaining="0", x_ratelimit_reset="3"))
    assert hold is not None
    assert (hold.seconds, hold.reason) == (3.0, "spent")
    assert RELATIVE.pace(_answer(x_ratelimit_remaining="1", x_ratelimit_reset="3")) is None
    assert RELATIVE.pace(_answer(x_ratelimit_reset="3")) is None


def test_a_hold_without_a_reset_takes_the_default_and_never_passes_the_cap() -> None:
    hold = RELATIVE.pace(_answer(x_ratelimit_remaining="0"))
    assert hold is not None
    assert hold.seconds == 2.0
    hold = RELATIVE.pace(_answer(x_ratelimit_remaining="0", x_ratelimit_reset="60"))
    assert hold is not None
    assert hold.seconds == 10.0
    assert EPOCH.pace(_answer(x_rate_limit_remaining="0")) is None  # no default: no hold


def test_a_refusal_holds_only_where_the_platform_says_so() -> None:
    refused = _answer(429, x_ratelimit_remaining="0", x_ratelimit_reset="3")
    assert RELATIVE.pace(refused) is None
    reset = int(time.time()) + 30
    hold = EPOCH.pace(_answer(429, x_rate_limit_remaining="0", x_rate_limit_reset=str(reset)))
    assert hold is not None
    assert 28 < hold.seconds <= 30


def test_an_epoch_reset_is_counted_from_now_and_named_in_the_reason() -> None:
    reset = int(time.time()) + 30
    hold = EPOCH.pace(_answer(x_rate_limit_remaining="0", x_rate_limit_reset=str(reset)))
    assert hold is not None
    assert hold.reason == f"used up until {datetime.fromtimestamp(reset, UTC).isoformat()}"
    past = _answer(x_rate_limit_remaining="0", x_rate_limit_reset=str(reset - 60))
    assert EPOCH.reset_in(past) == 0.0


def test_the_wait_is_retry_after_when_sent_else_the_reset() -> None:
    assert RELATIVE.wait(_answer(429, retry_after="1", x_ratelimit_reset="7")) == 1.0
    assert RELATIVE.wait(_answer(429, x_ratelimit_reset="7")) == 7.0
    assert RELATIVE.wait(_answer(429, x_ratelimit_reset="soon")) is None
    reset = int(time.time()) + 30
    wait = EPOCH.wait(_answer(429, x_rate_limit_reset=str(reset)))
    assert wait is not None
    assert 28 < wait <= 30


def test_the_figures_kept_leave_a_relative_reset_out_and_date_an_epoch_one() -> None:
    figures = {"limit": "20", "remaining": "19", "reset": "2"}
    answer = _answer(**{f"x_ratelimit_{k}": v for k, v in figures.items()})
    assert RELATIVE.figures(answer) == {"limit": 20, "remaining": 19}
    answer = _answer(x_rate_limit_limit="300", x_rate_limit_reset="1783000000")
    assert EPOCH.figures(answer) == {"limit": 300, "reset": "2026-07-02T13:46:40+00:00"}
