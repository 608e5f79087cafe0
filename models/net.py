"""Dual-encoder / single-decoder allocation network (teacher and student).

Encoders: a DGL GraphConv GNN over the task graph (node = task) and a GRU
over each provider's resource time series. Decoder: for task i and provider
p, logit_ip = out(relu(hid(relu(T h_i + P g_p + S s_ip + b)))) where s_ip are
queue-state pair features (see models.features). The decoder runs in task
arrival order and updates the integer queue state with each argmax choice,
so one forward pass yields a complete allocation. Teacher and student differ
only in widths.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from pocnet.models.dgl_compat import GraphConv, dgl
from pocnet.models.features import (ONE, N_PAIR_FEATS, N_PROV_FEATS, N_TASK_FEATS, graph_with_self_loops,
                             pair_features, provider_sequences, relative_capacity, task_features)
from pocnet.models.objective import initial_free, proc_times
from pocnet.models.scenario import Scenario


@dataclass(frozen=True)
class NetConfig:
    gnn_hidden: int = 64
    gnn_layers: int = 2
    gru_hidden: int = 32
    dec_hidden: int = 64


TEACHER_CONFIG = NetConfig(64, 2, 32, 64)
STUDENT_CONFIG = NetConfig(16, 2, 8, 16)


class AllocNet(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dims = [N_TASK_FEATS] + [cfg.gnn_hidden] * cfg.gnn_layers
        self.gnn = nn.ModuleList(
            GraphConv(dims[k], dims[k + 1], norm="right", allow_zero_in_degree=True)
            for k in range(cfg.gnn_layers))
        self.gru = nn.GRU(N_PROV_FEATS, cfg.gru_hidden, batch_first=True)
        self.dec_task = nn.Linear(cfg.gnn_hidden, cfg.dec_hidden, bias=False)
        self.dec_prov = nn.Linear(cfg.gru_hidden, cfg.dec_hidden, bias=True)
        self.dec_pair = nn.Linear(N_PAIR_FEATS, cfg.dec_hidden, bias=False)
        self.dec_hid = nn.Linear(cfg.dec_hidden, cfg.dec_hidden)
        self.dec_out = nn.Linear(cfg.dec_hidden, 1)

    # encoders -------------------------------------------------------------
    def encode_tasks(self, g: "dgl.DGLGraph", x: torch.Tensor) -> torch.Tensor:
        h = x
        for conv in self.gnn:
            h = torch.relu(conv(g, h))
        return self.dec_task(h)

    def encode_providers(self, seq: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(seq)
        return self.dec_prov(h[0])

    def decode(self, t: torch.Tensor, p: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
        """t (..., D) + p (..., D) + pair (..., N_PAIR) -> logits (...)."""
        z = torch.relu(t + p + self.dec_pair(pair))
        z = torch.relu(self.dec_hid(z))
        return self.dec_out(z).squeeze(-1)

    def forward_batch(self, b: "Batch") -> torch.Tensor:
        """Teacher-forced logits (N_tasks_total, M_max), padded entries = -1e9."""
        t = self.encode_tasks(b.graph, b.task_x)                  # (N, D)
        p = self.encode_providers(b.prov_seq)                      # (P, D)
        p = torch.cat([p, torch.zeros(1, p.shape[1])], 0)          # dummy row for padding
        logits = self.decode(t[:, None, :], p[b.prov_index], b.pair)
        return logits.masked_fill(~b.mask, -1e9)


def to_float(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, dtype=np.float32) / ONE)


def scenario_graph(scn: Scenario) -> "dgl.DGLGraph":
    src, dst = graph_with_self_loops(scn)
    return dgl.graph((torch.from_numpy(src), torch.from_numpy(dst)), num_nodes=scn.n_tasks)


@dataclass
class Batch:
    graph: "dgl.DGLGraph"
    task_x: torch.Tensor
    prov_seq: torch.Tensor
    prov_index: torch.Tensor   # (N, M) long into providers (+ dummy last row)
    mask: torch.Tensor         # (N, M) bool
    pair: torch.Tensor         # (N, M, N_PAIR)
    labels: torch.Tensor       # (N,) long


def make_batch(items: list[dict], m_max: int = 8) -> Batch:
    """Collate precomputed samples (see models.train.prepare_sample)."""
    graphs, tx, seqs, labels = [], [], [], []
    idx_rows, mask_rows, pair_rows = [], [], []
    p_off = 0
    total_p = sum(it["prov_seq"].shape[0] for it in items)
    for it in items:
        n, m = it["pair"].shape[:2]
        graphs.append(dgl.graph((torch.from_numpy(it["src"]), torch.from_numpy(it["dst"])), num_nodes=n))
        tx.append(it["task_x"])
        seqs.append(it["prov_seq"])
        labels.append(it["label"])
        idx = np.full((n, m_max), total_p, dtype=np.int64)
        idx[:, :m] = p_off + np.arange(m)
        msk = np.zeros((n, m_max), dtype=bool)
        msk[:, :m] = True
        pr = np.zeros((n, m_max, N_PAIR_FEATS), dtype=np.int64)
        pr[:, :m] = it["pair"]
        idx_rows.append(idx)
        mask_rows.append(msk)
        pair_rows.append(pr)
        p_off += m
    return Batch(
        graph=dgl.batch(graphs),
        task_x=to_float(np.concatenate(tx)),
        prov_seq=to_float(np.concatenate(seqs)),
        prov_index=torch.from_numpy(np.concatenate(idx_rows)),
        mask=torch.from_numpy(np.concatenate(mask_rows)),
        pair=to_float(np.concatenate(pair_rows)),
        labels=torch.from_numpy(np.concatenate(labels)),
    )


@torch.no_grad()
def allocate_float(net: AllocNet, scn: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Free-running float inference: (allocation (n,), probabilities (n, m))."""
    n, m = scn.n_tasks, scn.n_providers
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, m))
    t = net.encode_tasks(scenario_graph(scn), to_float(task_features(scn)))
    p = net.encode_providers(to_float(provider_sequences(scn)))
    proc = proc_times(scn)
    free = initial_free(scn).copy()
    capq = relative_capacity(scn)
    alloc = np.zeros(n, dtype=np.int64)
    probs = np.zeros((n, m))
    for i in range(n):
        pair = pair_features(free, i, scn.arrival, proc, capq)
        logits = net.decode(t[i][None, :], p, to_float(pair))
        k = int(torch.argmax(logits))  # first maximum = lowest index on ties
        probs[i] = torch.softmax(logits.double(), 0).numpy()
        alloc[i] = k
        free[k] = max(int(free[k]), int(scn.arrival[i])) + int(proc[i, k])
    return alloc, probs


def save_net(net: AllocNet, path: str) -> None:
    torch.save({"config": asdict(net.cfg), "state": net.state_dict()}, path)


def load_net(path: str) -> AllocNet:
    ck = torch.load(path, map_location="cpu", weights_only=True)
    net = AllocNet(NetConfig(**ck["config"]))
    net.load_state_dict(ck["state"])
    net.eval()
    return net


def param_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
