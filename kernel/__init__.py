"""The kernel: settings, the error tree, logging and service threads. It imports nothing of the hub."""
