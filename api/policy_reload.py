"""A change of the sharing policies in force, as the audit log records it.

The API reloads the policies folder when it changes (api/deps.py, `Hub.current_policies`);
each reload is one audit entry naming, per consumer, the fingerprint now in force (absent:
no policy, nothing granted), so an auditor can tell under which rule each later request was
answered. The console reads the same folder, so both show one version.
"""

from __future__ import annotations

import logging

from kernel.settings import Settings
from privacy.policy import Policy
from warehouse.audit import append_audit
from warehouse.control import session_scope

log = logging.getLogger(__name__)


def record_reload(settings: Settings, previous: dict[str, Policy], fresh: dict[str, Policy], error: str | None) -> None:
    """Audit (and log) that the policies in force changed from `previous` to `fresh`."""
    before = {name: p.fingerprint for name, p in previous.items()}
    after = {name: p.fingerprint for name, p in fresh.items()}
    changed = sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))
    if not changed and error is None:
        return  # the same rules, read again
    detail: dict[str, object] = {"fingerprints": after, "changed": changed}
    if error is not None:
        detail["error"] = error
    outcome = "refused" if error is not None else "reloaded"
    with session_scope(settings.control_url) as session:
        append_audit(session, actor="hub", action="policies_reload", outcome=outcome, detail=detail)
    if error is not None:
        log.error("policies: the folder does not load, nothing is granted until it does: %s", error)
    else:
        log.info("policies reloaded: %d in force, changed: %s", len(after), ", ".join(changed) or "none")
