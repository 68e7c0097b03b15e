"""Outbound pushes to the peers' own protocols (NGSI-LD, GA/T 1400): a front door beside api/ and relay/."""
