"""Fixed-point student: file format, sha256, and the integer-only forward pass.

Consensus-critical: no torch, no dgl, no floats. All tensors are int64 in
Q(frac_bits); products are rescaled with an arithmetic right shift (floor),
mean aggregation uses floor division, sigmoid/tanh come from the lookup table
shipped inside the weights file (so the table is covered by the weights'
sha256). numpy int64 arithmetic is exact and platform independent; value
bounds (inputs < 2^40, features clipped to 32.0) keep every intermediate far
below 2^63.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from models.features import (FRAC_BITS, graph_with_self_loops, pair_features, provider_sequences,
                             relative_capacity, task_features)
from models.objective import initial_free, proc_times
from models.scenario import Scenario

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "student_q.json"
FORMAT = "pocnet-student-q"


@dataclass(frozen=True, eq=False)
class QuantStudent:
    """Integer student weights + sigmoid lookup table."""

    frac_bits: int
    config: Mapping[str, int]
    tensors: Mapping[str, np.ndarray]   # int64 arrays
    lut_x_min: int                      # table covers [lut_x_min, -lut_x_min]
    lut_shift: int                      # index = (clip(x) - x_min) >> shift
    lut: np.ndarray                     # int64 sigmoid values in Q(frac_bits)

    def t(self, name: str) -> np.ndarray:
        return self.tensors[name]


# ------------------------------------------------------------------ file I/O
def quant_to_dict(q: QuantStudent) -> dict:
    return {
        "format": FORMAT, "version": 1, "frac_bits": q.frac_bits, "config": dict(q.config),
        "lut": {"x_min": q.lut_x_min, "shift": q.lut_shift, "sigmoid": [int(v) for v in q.lut]},
        "tensors": {k: {"shape": list(v.shape), "data": [int(x) for x in v.reshape(-1)]}
                    for k, v in sorted(q.tensors.items())},
    }


def quant_from_dict(obj: Mapping) -> QuantStudent:
    if obj.get("format") != FORMAT or obj.get("version") != 1:
        raise ValueError("not a pocnet student_q file")
    tensors = {k: np.array(v["data"], dtype=np.int64).reshape(v["shape"]) for k, v in obj["tensors"].items()}
    lut = obj["lut"]
    return QuantStudent(int(obj["frac_bits"]), dict(obj["config"]), tensors, int(lut["x_min"]),
                        int(lut["shift"]), np.array(lut["sigmoid"], dtype=np.int64))


def save_quant(q: QuantStudent, path: str | Path) -> None:
    """Canonical JSON (sorted keys, no spaces) so the sha256 is stable."""
    Path(path).write_text(json.dumps(quant_to_dict(q), sort_keys=True, separators=(",", ":")) + "\n")


def weights_sha256(path: str | Path | None = None) -> str:
    """sha256 hex of the weights file bytes (default: the shipped student)."""
    return hashlib.sha256(Path(path or DEFAULT_WEIGHTS).read_bytes()).hexdigest()


@lru_cache(maxsize=4)
def _load_cached(path: str) -> QuantStudent:
    return quant_from_dict(json.loads(Path(path).read_text()))


def load_quant(path: str | Path | None = None) -> QuantStudent:
    return _load_cached(str(Path(path or DEFAULT_WEIGHTS).resolve()))


# ------------------------------------------------------------ integer forward
def _lin(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, f: int) -> np.ndarray:
    """(x @ w.T + b) in Q(f): one floor rescale."""
    acc = x @ w.T
    if b is not None:
        acc = acc + (b << f)
    return acc >> f


def _sigmoid(q: QuantStudent, x: np.ndarray) -> np.ndarray:
    xc = np.minimum(np.maximum(x, q.lut_x_min), -q.lut_x_min)
    return q.lut[(xc - q.lut_x_min) >> q.lut_shift]


def _tanh(q: QuantStudent, x: np.ndarray) -> np.ndarray:
    return 2 * _sigmoid(q, 2 * x) - (1 << q.frac_bits)


def encode_tasks_int(q: QuantStudent, scn: Scenario) -> np.ndarray:
    """GraphConv(norm='right') layers with ReLU, then the decoder's task projection."""
    f = q.frac_bits
    n = scn.n_tasks
    src, dst = graph_with_self_loops(scn)
    adj = np.zeros((n, n), dtype=np.int64)
    adj[dst, src] = 1
    deg = adj.sum(axis=1)[:, None]
    h = task_features(scn)
    for k in range(int(q.config["gnn_layers"])):
        xw = (h @ q.t(f"gnn.{k}.weight")) >> f
        h = np.maximum(0, (adj @ xw) // deg + q.t(f"gnn.{k}.bias"))
    return _lin(h, q.t("dec_task.weight"), None, f)


def encode_providers_int(q: QuantStudent, scn: Scenario) -> np.ndarray:
    """PyTorch-convention GRU (gates r, z, n) over each provider's series."""
    f = q.frac_bits
    one = 1 << f
    seq = provider_sequences(scn)
    hh = int(q.config["gru_hidden"])
    h = np.zeros((scn.n_providers, hh), dtype=np.int64)
    wih, whh, bih, bhh = q.t("gru.weight_ih"), q.t("gru.weight_hh"), q.t("gru.bias_ih"), q.t("gru.bias_hh")
    for step in range(seq.shape[1]):
        gi = _lin(seq[:, step, :], wih, bih, f)
        gh = _lin(h, whh, bhh, f)
        r = _sigmoid(q, gi[:, :hh] + gh[:, :hh])
        z = _sigmoid(q, gi[:, hh:2 * hh] + gh[:, hh:2 * hh])
        nn_ = _tanh(q, gi[:, 2 * hh:] + ((r * gh[:, 2 * hh:]) >> f))
        h = ((one - z) * nn_ + z * h) >> f
    return _lin(h, q.t("dec_prov.weight"), q.t("dec_prov.bias"), f)


def allocate_int_logits(q: QuantStudent, scn: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Sequential integer decode: (allocation (n,), integer logits (n, m)).

    Tasks in scenario order; argmax per task over integer logits, ties to the
    lowest provider index; the chosen provider's queue is advanced before the
    next task (same queue model as eq. 1)."""
    f = q.frac_bits
    n, m = scn.n_tasks, scn.n_providers
    alloc = np.zeros(n, dtype=np.int64)
    logits = np.zeros((n, m), dtype=np.int64)
    if n == 0 or m == 0:
        return alloc, logits
    t = encode_tasks_int(q, scn)
    p = encode_providers_int(q, scn)
    wpair_t = np.ascontiguousarray(q.t("dec_pair.weight").T)      # (N_PAIR, D)
    whid_t = np.ascontiguousarray(q.t("dec_hid.weight").T)
    bhid = q.t("dec_hid.bias") << f
    wout = q.t("dec_out.weight")[0]
    bout = int(q.t("dec_out.bias")[0]) << f
    proc = proc_times(scn)
    free = initial_free(scn).copy()
    capq = relative_capacity(scn)
    arrival = scn.arrival.tolist()
    proc_rows = list(proc)
    tp = t[:, None, :] + p[None, :, :]                         # (n, m, D)
    for i in range(n):
        a = arrival[i]
        pair = pair_features(free, i, arrival, proc_rows, capq)
        z = tp[i] + ((pair @ wpair_t) >> f)
        np.maximum(z, 0, out=z)
        z = (z @ whid_t + bhid) >> f
        np.maximum(z, 0, out=z)
        lg = (z @ wout + bout) >> f
        k = int(lg.argmax())  # first maximum -> lowest index on ties
        logits[i] = lg
        alloc[i] = k
        free[k] = max(int(free[k]), a) + int(proc[i, k])
    return alloc, logits


def allocate_int(q: QuantStudent | None, scn: Scenario) -> np.ndarray:
    """Integer student allocation (provider index per task)."""
    return allocate_int_logits(q or load_quant(), scn)[0]
