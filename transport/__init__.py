"""Transport shared by the collector and the relay: MQTT sessions and sockets, read-only SQL engines."""
