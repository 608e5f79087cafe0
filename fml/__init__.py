"""The FML workload: Per-FedAvg training of simulated meta-learners, the
round driver (offline today, on-chain later) and the baseline schemes of
[GFML] § VI. See docs/fml.md."""
