"""Contracts: one declaration per stream, from which schema, checks and privacy treatment derive."""
