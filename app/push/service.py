"""Receiving a push: check the signature, read the figures, write them like a sync would.

The order of the checks is deliberate: nothing about a source (whether it exists, is a push
source, is enabled) nor about the body's content is told to a caller who can't sign with its
secret. An unknown id, a source of another connector and a wrong signature get the same 401,
after the same HMAC work (against a throwaway key when there is no secret to check with).

Everything a push writes (its observations, a ``SyncRun`` recording it, trigger ``manual``, and
its signature, so that a replay is refused) is one transaction, through the same idempotent
upsert as the sync engine: pushing the same figures twice, each signed when sent, leaves the
same observations.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core import clock
from app.core.db import session_scope
from app.core.errors import Conflict, DomainError, InvalidInput, Unauthorized
from app.core.schemas import iso_date
from app.core.secrets import SecretKeyError
from app.core.values import value_problem
from app.core.vault import decrypt_credentials
from app.models import DataSource, Mapping, PushSignature, SyncRun
from app.sync.store import Row, upsert
from connectors.push import METRIC_NAME

MAX_BODY_BYTES = 1024 * 1024
MAX_ITEMS = 10_000
#: How far a timestamp may be from now, either way (seconds).
MAX_SKEW_SECONDS = 5 * 60
MAX_GROUP_CHARS = 200
CONNECTOR_KEY = "push"
_SIGNATURE = re.compile(r"^sha256=([0-9a-fA-F]{64})$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_FIELDS = frozenset({"date", "metric", "value", "group"})
#: What the HMAC is computed with when there is no secret to check against, so that an unknown
#: source costs the same work as a known one; random, so nothing can be signed with it.
_NO_SECRET = secrets.token_bytes(32)
#: Accepted signatures are kept twice as long as a timestamp stays valid: replicas whose
#: clocks differ a little must not forget one another's while it could still be replayed.
_REMEMBER = timedelta(seconds=2 * MAX_SKEW_SECONDS)


class PayloadTooLarge(DomainError, status_code=413, code="too_large"): ...


class Unavailable(DomainError, status_code=503, code="unavailable"): ...


class Unreadable(DomainError, status_code=400, code="bad_request"):
    """A body JSON can't even be read into values (nested too deep): 400, as on other routes."""


@dataclass(frozen=True)
class Item:
    date: date
    metric: str
    value: float
    group: str | None


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes; push in smaller parts")


def _bad_signature() -> Unauthorized:
    return Unauthorized("bad signature: sign '{timestamp}.{body}' with the source's secret")


def check_headers(timestamp: str | None, signature: str | None, now: float) -> tuple[int, str]:
    """The timestamp (seconds) and the signature's hex digest, or a 401 saying what's wrong."""
    if not timestamp or not signature:
        raise Unauthorized(
            "missing X-Krsync-Timestamp or X-Krsync-Signature: sign each push "
            'as sha256=<hex HMAC-SHA256 of "{timestamp}.{body}"> with the source\'s secret'
        )
    if not _TIMESTAMP.match(timestamp.strip()):
        raise Unauthorized("malformed X-Krsync-Timestamp: send the Unix time in seconds")
    found = _SIGNATURE.match(signature.strip())
    if found is None:
        raise Unauthorized("malformed X-Krsync-Signature: send sha256=<64 hex digits>")
    stamp = int(timestamp.strip())
    if abs(now - stamp) > MAX_SKEW_SECONDS:
        raise Unauthorized(
            "stale timestamp: X-Krsync-Timestamp must be within 5 minutes of now; "
            "sign each push when it is sent"
        )
    return stamp, found.group(1).lower()


def _secret(source: DataSource | None) -> str | None:
    """The push source's secret; None for no source, another connector's, or no secret set."""
    if source is None or source.connector != CONNECTOR_KEY:
        return None
    try:
        secret = decrypt_credentials(source.credentials_encrypted).get("secret")
    except SecretKeyError as exc:
        raise Unavailable(
            "the source's secret can't be read: check KRSYNC_SECRET_KEY on the server"
        ) from exc
    return secret if isinstance(secret, str) and secret else None


def _verify(secret: str | None, timestamp: str, body: bytes, digest: str) -> None:
    """Without a secret the HMAC is still computed, and the answer is a wrong signature's."""
    message = timestamp.strip().encode() + b"." + body
    key = secret.encode() if secret is not None else _NO_SECRET
    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, digest) or secret is None:
        raise _bad_signature()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_items(body: bytes) -> list[Item]:
    """The body's figures, or a 422 naming the first bad item by its index."""
    try:
        raw = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InvalidInput(f"the body is not valid UTF-8 JSON: {reason}", field="body") from None
    except RecursionError:
        # The decoder gives up cleanly past Python's recursion limit; a push is two levels deep.
        raise Unreadable(
            "the body is nested too deeply: send a flat JSON list of {date, metric, value, group?}",
            field="body",
        ) from None
    if not isinstance(raw, list):
        raise InvalidInput(
            "the body must be a JSON list of {date, metric, value, group?}", field="body"
        )
    if len(raw) > MAX_ITEMS:
        raise InvalidInput(
            f"{len(raw)} items in one push; at most {MAX_ITEMS}: push in smaller parts",
            field="body",
        )
    return [_item(i, entry) for i, entry in enumerate(raw)]


def _item(i: int, raw: Any) -> Item:
    def bad(part: str, reason: str) -> InvalidInput:
        where = f"[{i}].{part}" if part else f"[{i}]"
        return InvalidInput(f"item {i}{'.' + part if part else ''}: {reason}", field=where)

    if not isinstance(raw, dict):
        raise bad("", "must be an object {date, metric, value, group?}")
    extra = sorted(set(raw) - _FIELDS)
    if extra:
        raise bad(extra[0], "unknown field; accepted: `date`, `metric`, `value`, `group`")
    for required in ("date", "metric", "value"):
        if required not in raw:
            raise bad(required, "is required")
    day = raw["date"]
    if not isinstance(day, str) or len(day) != 10:
        raise bad("date", "must be an ISO date, YYYY-MM-DD")
    try:
        parsed = iso_date(day)
    except ValueError:
        raise bad("date", "must be an ISO date, YYYY-MM-DD") from None
    metric = raw["metric"]
    if not isinstance(metric, str) or not METRIC_NAME.match(metric):
        raise bad("metric", "must be 1 to 100 of letters, digits, `_`, `.`, `:` or `-`")
    value = raw["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad("value", "must be a number")
    try:
        number = float(value)
    except OverflowError:
        number = float("inf") if value > 0 else float("-inf")
    problem = value_problem(number)
    if problem is not None:
        raise bad("value", problem)
    group = raw.get("group")
    if group is not None and (not isinstance(group, str) or not 1 <= len(group) <= 200):
        raise bad("group", f"must be a text of 1 to {MAX_GROUP_CHARS} characters, or absent")
    return Item(parsed, metric, number, group)


def _check_scaled(index: int, item: Item, mapping: Mapping) -> None:
    """Reads multiply a value by its mapping's scale: the product obeys the bound too."""
    problem = value_problem(item.value * mapping.scale)
    if problem is not None:
        raise InvalidInput(
            f"item {index}.value: {item.value:g} times the scale of mapping {mapping.id} "
            f"({mapping.scale:g}) {problem}",
            field=f"[{index}].value",
        )


def _matches(filters: Sequence[Any], group: str | None) -> bool:
    """Whether an item's group passes a mapping's filters (all of them, on `group` only)."""
    for flt in filters:
        if not isinstance(flt, dict) or flt.get("field") != "group":
            return False  # the catalogue allows no other field: match nothing rather than all
        raw = flt.get("value")
        values = {str(v) for v in (raw if isinstance(raw, list) else [raw])}
        inside = group is not None and group in values
        op = flt.get("op")
        if op in ("eq", "in"):
            if not inside:
                return False
        elif op in ("neq", "not_in"):
            if inside:
                return False
        else:
            return False
    return True


def receive(
    source_id: int, timestamp: str | None, signature: str | None, body: bytes
) -> dict[str, Any]:
    """Check, parse and store one push; the 202 body."""
    stamp, digest = check_headers(timestamp, signature, clock.utcnow().timestamp())
    with session_scope() as session:
        source = session.get(DataSource, source_id)
        _verify(_secret(source), timestamp or "", body, digest)
        assert source is not None  # a verified signature needs the source's secret
        if not source.enabled:
            raise Conflict(f"push source {source_id} is disabled; enable it to accept figures")
        items = parse_items(body)
        _remember(session, source.id, stamp, digest)
        return _store(session, source, items)


def _remember(session: Session, source_id: int, stamp: int, digest: str) -> None:
    """Record the signature in the push's transaction, or refuse it as a replay.

    The primary key decides: of two copies arriving together, the second waits for the first
    to commit and then fails to insert. Signatures too old to pass the timestamp check are
    pruned here, so the table holds minutes of pushes, never their history.
    """
    now = clock.utcnow()
    session.execute(delete(PushSignature).where(PushSignature.signed_at < now - _REMEMBER))
    session.add(
        PushSignature(
            data_source_id=source_id,
            digest=digest,
            signed_at=datetime.fromtimestamp(stamp, UTC),
            accepted_at=now,
        )
    )
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            "this signed push was already accepted; a replay is refused: "
            "sign each push with the time it is sent"
        ) from None


def _store(session: Session, source: DataSource, items: list[Item]) -> dict[str, Any]:
    mappings = list(
        session.scalars(
            select(Mapping).where(Mapping.data_source_id == source.id).order_by(Mapping.id)
        )
    )
    by_metric: dict[str, list[Mapping]] = {}
    for mapping in mappings:
        by_metric.setdefault(mapping.metric, []).append(mapping)
    rows: list[Row] = []
    unmatched: set[str] = set()
    unmatched_count = 0
    for index, item in enumerate(items):
        candidates = by_metric.get(item.metric)
        if not candidates:
            unmatched.add(item.metric)
            unmatched_count += 1
            continue
        for mapping in candidates:
            if _matches(mapping.filters or [], item.group):
                _check_scaled(index, item, mapping)
                rows.append(
                    Row(
                        key_result_id=mapping.key_result_id,
                        mapping_id=mapping.id,
                        group=item.group if item.group is not None else mapping.group,
                        role=mapping.role,
                        date=item.date,
                        value=item.value,
                    )
                )
    now = clock.utcnow()
    run = SyncRun(
        data_source_id=source.id,
        trigger="manual",
        status="running",
        window_from=min((i.date for i in items), default=None),
        window_to=max((i.date for i in items), default=None),
        started_at=now,
        prepared_at=now,
        warnings=[],
        details={"push": True, "items": len(items), "unmatched": unmatched_count},
    )
    session.add(run)
    session.flush()
    written = upsert(session, rows, run.id)
    run.status = "succeeded"
    run.finished_at = now
    run.observations_written = written
    source.last_success_at = now
    # A push is a run: the statuses it moves are announced with its figures (SPEC section 7).
    from app.notify.evaluate import key_results_changed

    key_results_changed(session, sorted({row.key_result_id for row in rows}))
    return {
        "accepted": len(items),
        "observations_written": written,
        "unmatched_metrics": sorted(unmatched),
        "sync_run_id": run.id,
    }
