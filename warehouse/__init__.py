"""Control database, raw vault, DuckDB staging, marts and the publisher."""
