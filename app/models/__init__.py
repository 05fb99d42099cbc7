"""All tables, imported in one place so Alembic and the app see the same metadata."""

from app.models.auth import ApiKey, AuditEvent, WebSession
from app.models.base import Base
from app.models.oauth import OAuthApp, OAuthState
from app.models.okr import CheckIn, Cycle, KeyResult, Objective, Observation
from app.models.review import RetrospectiveEntry
from app.models.revision import Revision
from app.models.sources import DataSource, Mapping, PushSignature, SyncRun

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "CheckIn",
    "Cycle",
    "DataSource",
    "KeyResult",
    "Mapping",
    "OAuthApp",
    "OAuthState",
    "Objective",
    "Observation",
    "PushSignature",
    "RetrospectiveEntry",
    "Revision",
    "SyncRun",
    "WebSession",
]
