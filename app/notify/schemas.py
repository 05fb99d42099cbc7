"""Request and response shapes of notification channels and their deliveries (SPEC section 7)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.schemas import MAX_ID, Name, Short, StrictModel
from app.notify.events import EVENT_TYPES, EventType

ChannelKind = Literal["slack", "teams", "email", "webhook"]
DeliveryStatus = Literal["pending", "delivered", "failed"]
#: Kinds whose `config.url` is a secret: stored encrypted, never shown.
URL_KINDS = frozenset({"slack", "teams", "webhook"})
MAX_URL = 2000
MAX_ADDRESSES = 50
RefId = Annotated[int, Field(ge=1, le=MAX_ID)]

# An address as SMTP takes it, without a display name; nothing that could end a header.
_ADDRESS = re.compile(
    r"[^@\s<>,;:\"()\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
)


def _url(value: str) -> str:
    # The messages never quote the value: it is a secret.
    value = value.strip()
    if any(ord(c) < 33 or ord(c) == 127 for c in value):
        raise ValueError("must be a URL without spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise ValueError("is not a URL krsync can read") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "must be an http or https URL, such as the one Slack, Teams or the receiver gave"
        )
    return value


def _address(value: str) -> str:
    value = value.strip()
    if not _ADDRESS.fullmatch(value):
        raise ValueError("must be an email address such as okr-team@example.com")
    return value


def _unique_addresses(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Url = Annotated[str, Field(min_length=1, max_length=MAX_URL), AfterValidator(_url)]
Address = Annotated[str, Field(max_length=320), AfterValidator(_address)]
Addresses = Annotated[
    list[Address],
    Field(min_length=1, max_length=MAX_ADDRESSES),
    AfterValidator(_unique_addresses),
]


def _unique_events(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Events = Annotated[
    list[EventType],
    Field(min_length=1, description="The event types the channel wants; default all"),
    AfterValidator(_unique_events),
]


class ChannelConfig(StrictModel):
    """`url` for `slack`, `teams` and `webhook` (write-only, a secret); `to` for `email`."""

    url: Url | None = None
    to: Addresses | None = None


class ChannelScope(StrictModel):
    """The channel hears only of events about these (every one that is set)."""

    cycle_id: RefId | None = None
    objective_id: RefId | None = None
    team: Short | None = None
    owner: Short | None = None


class ChannelCreate(StrictModel):
    name: Name
    kind: ChannelKind
    config: ChannelConfig
    events: Events = Field(default_factory=lambda: cast(list[EventType], list(EVENT_TYPES)))
    scope: ChannelScope | None = None
    enabled: bool = True


class ChannelUpdate(StrictModel):
    """A new `config.url` replaces the stored one; `scope: null` widens the channel to all."""

    name: Name | None = None
    config: ChannelConfig | None = None
    events: Events | None = None
    scope: ChannelScope | None = None
    enabled: bool | None = None


class ChannelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: ChannelKind
    config: dict[str, Any] = Field(
        description="`url_set` (and `signing_secret_set` for a webhook) instead of the secrets; "
        "`to` for email"
    )
    events: list[str]
    scope: dict[str, Any] | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class ChannelCreated(ChannelRead):
    signing_secret: str | None = Field(
        None,
        description="A webhook channel's signing secret (`whsec_…`), shown this once: the "
        "receiver verifies each delivery's `webhook-signature` with it",
    )


class ChannelTestRead(BaseModel):
    ok: bool
    message: str
    response_status: int | None = None


class AttemptRead(BaseModel):
    at: datetime
    response_status: int | None
    error: str | None
    duration_ms: int


class DeliveryRead(BaseModel):
    id: int
    event_id: int
    event_type: str
    webhook_id: str = Field(description="The event's `webhook-id`, the same on every attempt")
    channel_id: int
    status: DeliveryStatus
    attempts: int
    response_status: int | None = Field(description="The receiver's status at the last attempt")
    next_attempt_at: datetime | None = Field(description="When it is tried next (pending only)")
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    created_at: datetime
    attempt_log: list[AttemptRead]
