"""Airflow ingest DAGs: one per source stream of connectors/registry.py, same shape for all
(see neuron/dag_factory.py). Adding a stream to the registry adds its DAG here."""

from connectors.registry import STREAMS
from neuron.dag_factory import ingest_dag

for _spec in STREAMS.values():
    globals()[_spec.name] = ingest_dag(_spec)
