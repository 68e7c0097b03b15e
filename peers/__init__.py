"""Outbound peers: the hub meeting other platforms on their own protocols (front doors, like api/ and relay/)."""
