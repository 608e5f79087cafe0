"""GFML on Flower: learners as Flower ClientApps, rounds planned and settled by the chain.

* :mod:`.shard`    a learner's data shard, rebuilt from the shared split seed (fml.learners);
* :mod:`.client_app` the learner: local Per-FedAvg HF for its committed iterations (+ misbehaviours);
* :mod:`.strategy` the Flower Strategy: plan from the chain (``fml_*`` txs via fml.onchain),
  per-coalition aggregation and contributions (fml.training), ``fml_report`` / ``fml_close_round``;
* :mod:`.server_app` the ServerApp wiring them; :mod:`.local` starts SuperLink + SuperNodes locally.

Flower (``flwr``) is an optional dependency: ``pip install -e ".[flower]"``.
"""
