"""All tables, imported in one place so Alembic and the app see the same metadata."""

from app.models.auth import ApiKey, AuditEvent, WebSession
from app.models.base import Base
from app.models.event_state import DigestSent, KeyResultEventState, SourceEventState
from app.models.notify import NotificationChannel, NotificationDelivery, NotificationEvent
from app.models.oauth import OAuthApp, OAuthState
from app.models.okr import (
    CheckIn,
    Cycle,
    KeyResult,
    KeyResultMonth,
    Objective,
    Observation,
    SeriesMonth,
)
from app.models.review import RetrospectiveEntry
from app.models.revision import Revision
from app.models.sources import DataSource, Mapping, PushSignature, SyncRun

# After the tables: its session hooks keep the monthly reductions exact on every write path.
from app.models import months  # noqa: F401  isort: skip

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "CheckIn",
    "Cycle",
    "DataSource",
    "DigestSent",
    "KeyResult",
    "KeyResultEventState",
    "KeyResultMonth",
    "Mapping",
    "NotificationChannel",
    "NotificationDelivery",
    "NotificationEvent",
    "OAuthApp",
    "OAuthState",
    "Objective",
    "Observation",
    "PushSignature",
    "RetrospectiveEntry",
    "Revision",
    "SeriesMonth",
    "SourceEventState",
    "SyncRun",
    "WebSession",
]
