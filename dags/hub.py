"""Airflow `hub` DAGs: one per community (one for a single hub), hourly: each run ingests every
stream due in its window in one task, then publishes the feeds whose sources changed in a
second (see neuron/dag_factory.py). Streams come from the contracts' `source` blocks
(schemas/contracts/*.yaml) and feeds from schemas/feeds/*.yaml: adding one adds it here."""

from neuron.dag_factory import hub_dag, suite_communities

for _community in suite_communities():
    _dag = hub_dag(_community)
    globals()[_dag.dag_id] = _dag
