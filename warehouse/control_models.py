"""Every model of the control database, wherever it is declared: import this module (not
only `warehouse.control`) where the whole schema matters (migrations, schema checks)."""

from warehouse.control import Base

__all__ = ["Base"]
# One import line per module that declares models on Base, e.g.:
# import privacy.consent
