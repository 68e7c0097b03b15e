"""Airflow ingest DAGs: one per source stream (per community in a subdistrict suite), same
shape for all (see neuron/dag_factory.py). A stream is declared by its contract's `source`
block (schemas/contracts/*.yaml); adding one adds its DAG here."""

from neuron.dag_factory import ingest_dag, suite_communities, suite_streams

for _community in suite_communities():
    for _spec in suite_streams():
        _dag = ingest_dag(_spec, _community)
        globals()[_dag.dag_id] = _dag
