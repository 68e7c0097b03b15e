"""Airflow publish DAGs: one per feed of schemas/feeds/*.yaml whose sources the suite
ingests, scheduled on the staging Assets of those sources (see neuron/dag_factory.py).
Adding a feed file adds its DAG here."""

from neuron.dag_factory import publish_dag, suite_communities, suite_feeds

for _community in suite_communities():
    for _feed in suite_feeds():
        _dag = publish_dag(_feed, _community)
        globals()[_dag.dag_id] = _dag
