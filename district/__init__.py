"""The district data office's application (`neuron district`): a verified, exactly-once copy of
every community hub's granted feeds in Apache Iceberg tables, queried with DuckDB.

It sits at the top of the layers beside neuron/ and never needs a hub's secrets: its own
config file (config/district.toml), its own keys, and only the hubs' public JWKS.
"""
