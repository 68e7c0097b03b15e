"""A faithful simulation of Music Square's smart systems, for demos and tests."""
