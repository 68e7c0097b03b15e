"""The carrier IoT connector family: NB-IoT devices that reach the hub through the carriers'
platforms (China Telecom CTWing/AEP, China Mobile OneNET) by HTTP push, beside the MQTT, HTTP,
SQL and file-drop families.

A push cannot be pulled again (a CTWing message lost to its cool-down is gone unless fetched by
API), so `neuron inbox` (`receiver`) writes each push durably to an inbox (`store`, SQLite WAL)
before answering 200, and a processor (`processor`) works through the inbox afterwards: decode
per product (`decoders`), map the carrier's device to the hub's (`devices`), de-duplicate, track
sequence gaps and silent devices, land the readings where the MQTT streams read theirs
(`connectors.collector_landing`, so the `home_safety` and `manhole_covers` ingest picks them up
unchanged) and publish alarms on the community broker (`alarms_out`), where the relay takes them
like any device's alarm. The protocols: docs/standards/carrier-iot-push.md.
"""
