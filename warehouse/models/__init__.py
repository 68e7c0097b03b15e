"""Every table of the control database, in one package: Alembic's migrations and the schema
check read `Base.metadata` from here, and every layer imports its tables from here.

One module per concern: the sources' ledgers, sharing (consumers, keys, partitions, consent),
the audit log, quality results, the console's accounts, the relay's alarms and outbox,
the NGSI-LD push's cursors, sent-instances ledger and dead letters, the VIID cascade's
subscriptions and outbox.
"""

from warehouse.models.admin import ROLES, AdminSession, AdminUser, PolicyVersion
from warehouse.models.audit import AuditEntry, AuditHead
from warehouse.models.base import Base, UTCDateTime, utcnow
from warehouse.models.ledger import Cursor, DropFile, LoadRecord
from warehouse.models.ngsi_ld import NgsiLdCursor, NgsiLdDeadLetter, NgsiLdSentInstance
from warehouse.models.quality import BatchQuality, ExpectationResult, QuarantineCount
from warehouse.models.relay import AlarmLifecycleEvent, InboundSeen, OutboxMessage, RelayAlarm, SealedValue
from warehouse.models.sharing import (
    ConsentRecord,
    Consumer,
    ConsumerEncryptionKey,
    ConsumerKey,
    Partition,
    SeenNonce,
)
from warehouse.models.viid import ViidNotification, ViidPassSeen, ViidSubscription

__all__ = [
    "ROLES",
    "AdminSession",
    "AdminUser",
    "AlarmLifecycleEvent",
    "AuditEntry",
    "AuditHead",
    "Base",
    "BatchQuality",
    "ConsentRecord",
    "Consumer",
    "ConsumerEncryptionKey",
    "ConsumerKey",
    "Cursor",
    "DropFile",
    "ExpectationResult",
    "InboundSeen",
    "LoadRecord",
    "NgsiLdCursor",
    "NgsiLdDeadLetter",
    "NgsiLdSentInstance",
    "OutboxMessage",
    "Partition",
    "PolicyVersion",
    "QuarantineCount",
    "RelayAlarm",
    "SealedValue",
    "SeenNonce",
    "UTCDateTime",
    "ViidNotification",
    "ViidPassSeen",
    "ViidSubscription",
    "utcnow",
]
