"""The dgl import workaround (graphbolt stub) keeps working."""
import os


def test_dgl_imports_and_builds_graph():
    import torch
    from pocnet.models.dgl_compat import GraphConv, dgl
    assert os.environ["DGLBACKEND"] == "pytorch"
    g = dgl.add_self_loop(dgl.graph(([0, 1], [1, 2]), num_nodes=3))
    out = GraphConv(4, 2, norm="right")(g, torch.ones(3, 4))
    assert out.shape == (3, 2)
