"""The consumer's kit for a Neuron Hub (standalone: imports nothing of the hub)."""

from neuron_consumer.client import Hub
from neuron_consumer.errors import ConsumerError, HubRefused, IntegrityError, Unavailable

__all__ = ["ConsumerError", "Hub", "HubRefused", "IntegrityError", "Unavailable"]
__version__ = "0.1.0"
