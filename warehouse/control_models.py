"""Every model of the control database, wherever it is declared: import this module (not
only `warehouse.control`) where the whole schema matters (migrations, schema checks)."""

from warehouse.control import Base

__all__ = ["Base"]
# One import line per module that declares models on Base, e.g.:
# import privacy.consent
import api.admin.models  # noqa: F401  (api: console accounts, sessions, policy versions)
import connectors.filedrop_ledger  # noqa: F401  (connectors: the file-drop ledger)
import privacy.consent  # privacy: consent records
import privacy.recipients  # noqa: F401  (privacy: consumers' encryption keys)
import relay.models  # noqa: F401  (relay: alarms, lifecycle history, outbox)
import warehouse.ngsi_ld_models  # noqa: F401  (peers/ngsi_ld: push cursors, sent instances, dead letters)
import warehouse.quality_models  # noqa: F401  (warehouse: kept validation results per batch)
