"""Test-only reference: the pure numpy integer forward pass and decode that
`models.quant` used before the numba kernel (models/quant_kernel.py), kept
verbatim (encoders, `pair_features`, sequential decode) so tests can check
kernel == reference bit for bit. Not imported by production code.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pocnet.models.features import (FEAT_CLIP, LOOKAHEAD, N_PAIR_FEATS, ONE, TIME_SCALE, graph_with_self_loops,
                             provider_sequences, relative_capacity, task_features)
from pocnet.models.objective import initial_free, proc_times
from pocnet.models.quant import QuantStudent
from pocnet.models.scenario import Scenario


def _lin(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, f: int) -> np.ndarray:
    acc = x @ w.T
    if b is not None:
        acc = acc + (b << f)
    return acc >> f


def _sigmoid(q: QuantStudent, x: np.ndarray) -> np.ndarray:
    xc = np.minimum(np.maximum(x, q.lut_x_min), -q.lut_x_min)
    return q.lut[(xc - q.lut_x_min) >> q.lut_shift]


def _tanh(q: QuantStudent, x: np.ndarray) -> np.ndarray:
    return 2 * _sigmoid(q, 2 * x) - (1 << q.frac_bits)


def encode_tasks_ref(q: QuantStudent, scn: Scenario) -> np.ndarray:
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


def encode_providers_ref(q: QuantStudent, scn: Scenario) -> np.ndarray:
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


_OFFS = [np.arange(k, dtype=np.int64) * k for k in range(257)]


def pair_features_ref(free: np.ndarray, i: int, arrival: Sequence[int], proc: Sequence[np.ndarray],
                      cap_q: np.ndarray) -> np.ndarray:
    m = free.shape[0]
    a = int(arrival[i])
    proc_i = proc[i]
    out = np.empty((m, N_PAIR_FEATS), dtype=np.int64)
    wait, fin, regret, idle, cost = out[:, 1], out[:, 2], out[:, 3], out[:, 4], out[:, 6]
    out[:, 0] = proc_i
    np.maximum(free, a, out=fin)
    np.subtract(fin, free, out=idle)
    np.subtract(fin, a, out=wait)
    fin += proc_i
    fin -= a
    np.subtract(fin, fin.min(), out=regret)
    cost[:] = fin
    last = min(len(arrival), i + 1 + LOOKAHEAD)
    if last > i + 1:
        state = np.empty((m, m), dtype=np.int64)
        state[:] = free
        flat = state.reshape(-1)
        flat[::m + 1] = fin + a
        buf = np.empty_like(state)
        bflat = buf.reshape(-1)
        offs = _OFFS[m]
        a_sum = 0
        for j in range(i + 1, last):
            aj = int(arrival[j])
            a_sum += aj
            np.maximum(state, aj, out=buf)
            buf += proc[j]
            if j + 1 < last:
                idx = buf.argmin(axis=1)
                idx += offs
                best = bflat[idx]
                flat[idx] = best
                cost += best
            else:
                cost += buf.min(axis=1)
        cost -= a_sum
    np.subtract(cost, cost.min(), out=out[:, 7])
    out[:, :5] *= ONE // TIME_SCALE
    out[:, 6:] *= ONE
    out[:, 6:] //= TIME_SCALE * (1 + LOOKAHEAD)
    out[:, 5] = cap_q
    np.minimum(out, FEAT_CLIP, out=out)
    return out


def allocate_int_logits_ref(q: QuantStudent, scn: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """The pre-kernel `models.quant.allocate_int_logits`, verbatim."""
    f = q.frac_bits
    n, m = scn.n_tasks, scn.n_providers
    alloc = np.zeros(n, dtype=np.int64)
    logits = np.zeros((n, m), dtype=np.int64)
    if n == 0 or m == 0:
        return alloc, logits
    t = encode_tasks_ref(q, scn)
    p = encode_providers_ref(q, scn)
    wpair_t = np.ascontiguousarray(q.t("dec_pair.weight").T)
    whid_t = np.ascontiguousarray(q.t("dec_hid.weight").T)
    bhid = q.t("dec_hid.bias") << f
    wout = q.t("dec_out.weight")[0]
    bout = int(q.t("dec_out.bias")[0]) << f
    proc = proc_times(scn)
    free = initial_free(scn).copy()
    capq = relative_capacity(scn)
    arrival = scn.arrival.tolist()
    proc_rows = list(proc)
    tp = t[:, None, :] + p[None, :, :]
    for i in range(n):
        a = arrival[i]
        pair = pair_features_ref(free, i, arrival, proc_rows, capq)
        z = tp[i] + ((pair @ wpair_t) >> f)
        np.maximum(z, 0, out=z)
        z = (z @ whid_t + bhid) >> f
        np.maximum(z, 0, out=z)
        lg = (z @ wout + bout) >> f
        k = int(lg.argmax())
        logits[i] = lg
        alloc[i] = k
        free[k] = max(int(free[k]), a) + int(proc[i, k])
    return alloc, logits
