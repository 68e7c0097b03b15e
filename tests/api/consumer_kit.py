"""Loads the standalone consumer kit (clients/python/src) for the tests, without installing it:
the slow test installs it into a fresh venv and runs its CLI as a user would."""

from __future__ import annotations

import sys
from pathlib import Path

KIT_SRC = Path(__file__).resolve().parents[2] / "clients" / "python" / "src"
if str(KIT_SRC) not in sys.path:
    sys.path.insert(0, str(KIT_SRC))
