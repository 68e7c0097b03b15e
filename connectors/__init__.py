"""Connectors: the four families (HTTP API, MQTT, SQL, file drop) and one module per stream."""
