"""Proof-of-contribution models: scenarios, solvers (GA / exact / greedy),
teacher and student allocation networks, and the integer-only consensus path.

Import submodules explicitly; this package import stays light (no torch/dgl)
so the consensus path (`models.poc`) never pulls in float libraries.
"""
