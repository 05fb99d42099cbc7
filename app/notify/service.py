"""Notification channels and the delivery log: the rules behind the routes.

A channel's URL (Slack's and Teams' incoming webhooks carry their credential in the URL; a
webhook receiver's may too) and a webhook channel's signing secret are stored encrypted with
``KRSYNC_SECRET_KEY``, like a data source's credentials, and never shown again: a read says
``url_set``. The audit trail records that a URL was set or replaced, never the URL.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import audit
from app.core import clock
from app.core.changes import same_named
from app.core.db import count, equal_to, paged
from app.core.errors import Conflict, InvalidInput, found
from app.core.http import PrivateNetworkError, check_public_host
from app.core.secrets import SecretKeyError
from app.core.settings import get_settings
from app.core.vault import encrypt_secret, get_secret_box
from app.models import NotificationChannel, NotificationDelivery, NotificationEvent
from app.notify.dispatch import target_of
from app.notify.events import TEST_EVENT, event_body, message_id
from app.notify.schemas import URL_KINDS, ChannelRead, DeliveryRead
from app.notify.send import Outcome, Sender

#: Standard Webhooks: a secret of 24 to 64 random bytes, base64, prefixed `whsec_`.
_SECRET_BYTES = 32


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


# --- reading -------------------------------------------------------------------------------------


def channel_read(channel: NotificationChannel) -> ChannelRead:
    config: dict[str, Any]
    if channel.kind in URL_KINDS:
        config = {"url_set": bool(channel.secrets_encrypted)}
        if channel.kind == "webhook":
            config["signing_secret_set"] = bool(channel.secrets_encrypted)
    else:
        config = {"to": list((channel.config or {}).get("to") or [])}
    return ChannelRead(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        config=config,
        events=list(channel.events or []),
        scope=channel.scope,
        enabled=channel.enabled,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def get_channel(session: Session, channel_id: int) -> NotificationChannel:
    return found(session.get(NotificationChannel, channel_id), f"notification channel {channel_id}")


def list_channels(
    session: Session, limit: int, offset: int
) -> tuple[list[NotificationChannel], int]:
    query = select(NotificationChannel)
    return paged(session, query, [], NotificationChannel.id, limit=limit, offset=offset)


# --- writing -------------------------------------------------------------------------------------


def _name_free(session: Session, name: str, channel_id: int | None = None) -> None:
    clash = session.scalar(
        select(NotificationChannel.id).where(
            NotificationChannel.name == name, NotificationChannel.id != (channel_id or 0)
        )
    )
    if clash is not None:
        raise Conflict(f"a notification channel named {name!r} exists already", field="name")


def _guard(url: str) -> None:
    """The private-network guard of SPEC section 5, at the door; each delivery checks again.

    A host that does not resolve yet is let in (the receiver may be set up after its channel);
    one that resolves to a loopback, private or link-local address is refused. The message names
    the host and its address, never the URL, whose path is the secret.
    """
    if get_settings().allow_private_networks:
        return
    try:
        asyncio.run(check_public_host(httpx.URL(url)))
    except PrivateNetworkError as exc:
        raise InvalidInput(f"the URL is refused: {exc}", field="config.url") from None
    except httpx.HTTPError:
        return


def _encrypt(values: dict[str, str]) -> str:
    return encrypt_secret(values, "a channel's URL", "config.url")


def _decrypt(channel: NotificationChannel) -> dict[str, Any]:
    if not channel.secrets_encrypted:
        return {}
    box = get_secret_box()
    if box is None:
        raise InvalidInput(
            "the channel's URL is stored encrypted but KRSYNC_SECRET_KEY is not set",
            field="config.url",
        )
    try:
        return box.decrypt_json(channel.secrets_encrypted)
    except SecretKeyError as exc:
        raise InvalidInput(f"the channel's URL can't be read: {exc}", field="config.url") from None


def _check_config(kind: str, config: dict[str, Any]) -> None:
    if kind in URL_KINDS:
        if config.get("to") is not None:
            raise InvalidInput(f"a {kind} channel takes a url, not addresses", field="config.to")
        if not config.get("url"):
            raise InvalidInput(f"a {kind} channel needs its url", field="config.url")
    else:
        if config.get("url") is not None:
            raise InvalidInput(
                "an email channel takes addresses in `to`, not a url", field="config.url"
            )
        if not config.get("to"):
            raise InvalidInput("an email channel needs addresses in `to`", field="config.to")


def _scope(value: dict[str, Any] | None) -> dict[str, Any] | None:
    kept = {k: v for k, v in (value or {}).items() if v is not None}
    return kept or None


def create_channel(
    session: Session, data: dict[str, Any], actor: str
) -> tuple[NotificationChannel, str | None]:
    """The channel, and a webhook channel's signing secret (shown this once)."""
    kind, config = data["kind"], data["config"] or {}
    _check_config(kind, config)
    _name_free(session, data["name"])
    signing_secret = None
    encrypted = None
    if kind in URL_KINDS:
        _guard(config["url"])
        stored = {"url": config["url"]}
        if kind == "webhook":
            signing_secret = stored["signing_secret"] = new_signing_secret()
        encrypted = _encrypt(stored)
    channel = NotificationChannel(
        name=data["name"],
        kind=kind,
        config={} if kind in URL_KINDS else {"to": config["to"]},
        secrets_encrypted=encrypted,
        events=data["events"],
        scope=_scope(data.get("scope")),
        enabled=data["enabled"],
    )
    session.add(channel)
    session.flush()
    audit(session, actor, "create", "notification_channel", channel.id, _audited(channel))
    return channel, signing_secret


def _audited(channel: NotificationChannel) -> dict[str, Any]:
    config = (
        {"url": "set"} if channel.kind in URL_KINDS else {"to": (channel.config or {}).get("to")}
    )
    return {
        "name": channel.name,
        "kind": channel.kind,
        "config": config,
        "events": channel.events,
        "scope": channel.scope,
        "enabled": channel.enabled,
    }


def update_channel(
    session: Session, channel_id: int, changes: dict[str, Any], actor: str
) -> NotificationChannel:
    channel = get_channel(session, channel_id)
    diff: dict[str, Any] = {}
    for name in ("name", "events", "enabled"):
        if name in changes:
            if changes[name] is None:
                raise InvalidInput(f"{name} can't be null", field=name)
            if name == "name" and changes[name] != channel.name:
                _name_free(session, changes[name], channel.id)
            if getattr(channel, name) != changes[name]:
                diff[name] = [getattr(channel, name), changes[name]]
                setattr(channel, name, changes[name])
    if "scope" in changes:
        scope = _scope(changes["scope"])
        if scope != channel.scope:
            diff["scope"] = [channel.scope, scope]
            channel.scope = scope
    if "config" in changes:
        config = {k: v for k, v in (changes["config"] or {}).items() if v is not None}
        if not config:
            raise InvalidInput("config needs the channel's url or addresses", field="config")
        _check_config(channel.kind, config)
        if channel.kind in URL_KINDS:
            _guard(config["url"])
            stored = _decrypt(channel)
            if stored.get("url") != config["url"]:
                stored["url"] = config["url"]
                channel.secrets_encrypted = _encrypt(stored)
                diff["config.url"] = "replaced"
        elif config["to"] != (channel.config or {}).get("to"):
            diff["config.to"] = [(channel.config or {}).get("to"), config["to"]]
            channel.config = {"to": config["to"]}
    if diff:
        session.flush()
        audit(session, actor, "update", "notification_channel", channel.id, diff)
    return channel


def delete_channel(session: Session, channel_id: int, actor: str) -> None:
    """Its deliveries go with it, sent or not."""
    channel = get_channel(session, channel_id)
    session.delete(channel)
    session.flush()
    audit(session, actor, "delete", "notification_channel", channel_id, {"name": channel.name})


# --- a test message --------------------------------------------------------------------------


def send_test(session: Session, channel_id: int) -> tuple[Outcome, str]:
    """Sends a `notification.test` event now, outside the outbox, and says how it went."""
    channel = get_channel(session, channel_id)
    target, problem = target_of(channel)
    if problem is not None:
        return Outcome(False, error=problem), problem
    now = clock.utcnow()
    body = event_body(
        TEST_EVENT,
        {"channel": {"id": channel.id, "name": channel.name, "kind": channel.kind}},
        now,
    )
    settings = get_settings()

    async def send() -> Outcome:
        sender = Sender(
            public_url=settings.public_url,
            smtp_url=settings.smtp_url.get_secret_value() if settings.smtp_url else None,
            mail_from=settings.mail_from,
            allow_private=settings.allow_private_networks,
        )
        async with sender:
            return await sender.send(target, message_id(), body, now)

    outcome = asyncio.run(send())
    if outcome.ok:
        return outcome, f"the test message was delivered to {channel.name!r}"
    return outcome, f"the test message was not delivered: {outcome.error}"


# --- the delivery log ------------------------------------------------------------------------


def list_deliveries(
    session: Session,
    channel_id: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[DeliveryRead], int]:
    where = equal_to(
        (NotificationDelivery.channel_id, channel_id), (NotificationDelivery.status, status)
    )
    total = count(session, NotificationDelivery, *where)
    rows = session.execute(
        select(NotificationDelivery, NotificationEvent.type, NotificationEvent.message_id)
        .join(NotificationEvent, NotificationEvent.id == NotificationDelivery.event_id)
        .where(*where)
        .order_by(NotificationDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    items = [
        DeliveryRead(
            **same_named(
                d,
                "id event_id channel_id status attempts response_status last_attempt_at"
                " delivered_at last_error created_at",
            ),
            event_type=type_,
            webhook_id=msg_id,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            attempt_log=d.attempt_log or [],
        )
        for d, type_, msg_id in rows
    ]
    return items, total
