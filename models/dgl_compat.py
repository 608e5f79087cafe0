"""The one place that imports dgl.

Why: dgl==2.1.0 is the last dgl wheel for Python 3.11, and its package
``__init__`` imports ``dgl.graphbolt``, which loads a C++ library compiled
against torch 2.0-2.2. With torch 2.13 that load fails and ``import dgl``
raises. pocnet never uses graphbolt (it only needs ``dgl.graph``/``dgl.batch``
and ``dgl.nn`` layers), so we register an empty stub module under the name
``dgl.graphbolt`` *before* importing dgl; dgl's own ``import`` then finds the
stub in ``sys.modules`` and skips the broken native load. DGLBACKEND is pinned
to pytorch so dgl does not probe other frameworks or read a config file.

Everyone else does ``from models.dgl_compat import dgl``.
"""
from __future__ import annotations

import os
import sys
import types

os.environ.setdefault("DGLBACKEND", "pytorch")
sys.modules.setdefault("dgl.graphbolt", types.ModuleType("dgl.graphbolt"))

import dgl  # noqa: E402  (must follow the stub registration)
from dgl.nn.pytorch import GATConv, GraphConv  # noqa: E402

__all__ = ["dgl", "GraphConv", "GATConv"]
