"""Hub settings with the source fields of issue 3 (platform, door access, intercom).

Until the hub's `Settings` declares these fields, tests use this subclass; afterwards it
adds nothing and can go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kernel.settings import Settings
from privacy.keys import init_keys
from tests.conftest import make_settings
from warehouse.migrations import migrate

SourcesSettings = Settings  # the hub's Settings now declares every source


def hub_settings(home: Path, vendor_url: str = "http://127.0.0.1:9", **sources: Any) -> Settings:
    """A private hub under `home` with the given sources, keys made and control DB migrated."""
    base = make_settings(home, vendor_url)
    settings = SourcesSettings(**{**dict(base), **sources})
    init_keys(settings)
    migrate(settings.control_url)
    return settings
