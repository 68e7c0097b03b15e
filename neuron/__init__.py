"""Neuron Hub: command line, settings, logging and shared types."""
