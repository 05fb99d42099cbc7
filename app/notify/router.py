"""Notification channels, their test message and the delivery log: admins only (SPEC section 7)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.deps import Admin
from app.core.db import SessionDep
from app.core.schemas import ERROR_RESPONSES, IdPath, IdQuery, KnownQueryOnly, Limit, Offset, Page
from app.notify import service
from app.notify.schemas import (
    ChannelCreate,
    ChannelCreated,
    ChannelRead,
    ChannelTestRead,
    ChannelUpdate,
    DeliveryRead,
    DeliveryStatus,
)

router = APIRouter(prefix="/api/v1", tags=["notifications"], responses=ERROR_RESPONSES)


@router.post("/notification-channels", status_code=status.HTTP_201_CREATED)
def create_channel(body: ChannelCreate, session: SessionDep, who: Admin) -> ChannelCreated:
    """Add a channel; its URL is stored encrypted and never returned (`url_set: true`).

    A `webhook` channel gets a `signing_secret` (`whsec_…`), shown in this answer only.
    """
    channel, signing_secret = service.create_channel(session, body.model_dump(), who.name)
    read = service.channel_read(channel)
    return ChannelCreated(**read.model_dump(), signing_secret=signing_secret)


@router.get("/notification-channels", dependencies=[KnownQueryOnly])
def list_channels(
    session: SessionDep, who: Admin, limit: Limit = 50, offset: Offset = 0
) -> Page[ChannelRead]:
    """List the notification channels (without their URLs)."""
    rows, total = service.list_channels(session, limit, offset)
    return Page(items=[service.channel_read(r) for r in rows], total=total)


@router.get("/notification-channels/{channel_id}")
def get_channel(channel_id: IdPath, session: SessionDep, who: Admin) -> ChannelRead:
    """Read a notification channel (`url_set` says whether it holds a URL)."""
    return service.channel_read(service.get_channel(session, channel_id))


@router.patch("/notification-channels/{channel_id}")
def update_channel(
    channel_id: IdPath, body: ChannelUpdate, session: SessionDep, who: Admin
) -> ChannelRead:
    """Change a channel: its name, URL or addresses, events, scope, or whether it is enabled."""
    changes = body.model_dump(exclude_unset=True)
    return service.channel_read(service.update_channel(session, channel_id, changes, who.name))


@router.delete("/notification-channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_channel(channel_id: IdPath, session: SessionDep, who: Admin) -> None:
    """Delete a channel and its deliveries, sent or pending."""
    service.delete_channel(session, channel_id, who.name)


@router.post("/notification-channels/{channel_id}/test")
def test_channel(channel_id: IdPath, session: SessionDep, who: Admin) -> ChannelTestRead:
    """Send a `notification.test` message to the channel now and say how it went."""
    outcome, message = service.send_test(session, channel_id)
    return ChannelTestRead(ok=outcome.ok, message=message, response_status=outcome.response_status)


StatusQuery = Annotated[DeliveryStatus | None, Query(description="pending, delivered or failed")]


@router.get("/notification-deliveries", dependencies=[KnownQueryOnly])
def list_deliveries(
    session: SessionDep,
    who: Admin,
    channel_id: IdQuery = None,
    status: StatusQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[DeliveryRead]:
    """Each event's delivery to each channel, newest first: status, attempts, the receiver's
    answer, the next attempt and the last error (never a URL)."""
    items, total = service.list_deliveries(session, channel_id, status, limit, offset)
    return Page(items=items, total=total)
