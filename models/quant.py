"""Fixed-point student: file format, sha256, and the integer-only forward pass.

Consensus-critical: no torch, no dgl, no floats. All tensors are int64 in
Q(frac_bits); products are rescaled with an arithmetic right shift (floor),
mean aggregation uses floor division, sigmoid/tanh come from the lookup table
shipped inside the weights file (so the table is covered by the weights'
sha256). The arithmetic runs in numba int64 kernels (models/quant_kernel.py,
bit-identical to the previous numpy code kept in
tests/models/models_quant_reference.py); int64 arithmetic is exact and
platform independent, and the value bounds (inputs < 2^40, features clipped
to 32.0) keep every intermediate below 2^63 (largest: look-ahead cost * 4096
< 2^62). Call `warm_up()` at process start to compile/load the kernels.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from pocnet.models import quant_kernel as qk
from pocnet.models.features import (FEAT_CLIP, LOOK_MS, LOOKAHEAD, ONE, TIME_SCALE, WORK_SCALE, provider_sequences,
                             relative_capacity)
from pocnet.models.objective import initial_free, proc_times
from pocnet.models.scenario import DEMAND_MAX, SIM_DEN, SIM_NUM, TIME_WINDOW_MS, Scenario

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
# The arithmetic lives in models/quant_kernel.py (numba, int64); the previous
# numpy implementation is kept as the test reference in
# tests/models/models_quant_reference.py and must stay bit-identical.
@dataclass(frozen=True, eq=False)
class _Packed:
    """Contiguous int64 weights in the layout the kernels expect (built once per QuantStudent)."""

    gnn: tuple[tuple[np.ndarray, np.ndarray], ...]
    dec_task: np.ndarray
    gru: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    dec_prov: tuple[np.ndarray, np.ndarray]
    wpair: np.ndarray
    whid: np.ndarray
    bhid: np.ndarray
    wout: np.ndarray
    bout: int


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


@lru_cache(maxsize=8)
def _packed(q: QuantStudent) -> _Packed:
    return _Packed(
        gnn=tuple((_c(q.t(f"gnn.{k}.weight")), _c(q.t(f"gnn.{k}.bias"))) for k in range(int(q.config["gnn_layers"]))),
        dec_task=_c(q.t("dec_task.weight")),
        gru=(_c(q.t("gru.weight_ih")), _c(q.t("gru.weight_hh")), _c(q.t("gru.bias_ih")), _c(q.t("gru.bias_hh"))),
        dec_prov=(_c(q.t("dec_prov.weight")), _c(q.t("dec_prov.bias"))),
        wpair=_c(q.t("dec_pair.weight")), whid=_c(q.t("dec_hid.weight")), bhid=_c(q.t("dec_hid.bias")),
        wout=_c(q.t("dec_out.weight")[0]), bout=int(q.t("dec_out.bias")[0]),
    )


_NO_BIAS = np.zeros(0, dtype=np.int64)


def encode_tasks_int(q: QuantStudent, scn: Scenario) -> np.ndarray:
    """GraphConv(norm='right') layers with ReLU, then the decoder's task projection.
    Features and graph as features.task_features / features.graph_with_self_loops
    (computed inside the kernel; tests check they agree)."""
    f = q.frac_bits
    pk = _packed(q)
    h, ptr, idx, deg = qk.task_inputs(_c(scn.work), _c(scn.demand), _c(scn.arrival), _c(scn.deadline),
                                      int(scn.capacity.sum()), ONE, FEAT_CLIP, WORK_SCALE, TIME_SCALE, DEMAND_MAX,
                                      LOOK_MS, TIME_WINDOW_MS, SIM_NUM, SIM_DEN)
    for w, b in pk.gnn:
        h = qk.gnn_layer(h, ptr, idx, deg, w, b, f)
    return qk.linear(h, pk.dec_task, _NO_BIAS, False, f)


def encode_providers_int(q: QuantStudent, scn: Scenario) -> np.ndarray:
    """PyTorch-convention GRU (gates r, z, n) over each provider's series."""
    f = q.frac_bits
    pk = _packed(q)
    h = qk.gru(provider_sequences(scn), *pk.gru, _c(q.lut), q.lut_x_min, q.lut_shift, f)
    return qk.linear(h, pk.dec_prov[0], pk.dec_prov[1], True, f)


def allocate_int_logits(q: QuantStudent, scn: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Sequential integer decode: (allocation (n,), integer logits (n, m)).

    Tasks in scenario order; argmax per task over integer logits, ties to the
    lowest provider index; the chosen provider's queue is advanced before the
    next task (same queue model as eq. 1). Pair features as
    `models.features.pair_features` (computed inside the kernel)."""
    n, m = scn.n_tasks, scn.n_providers
    if n == 0 or m == 0:
        return np.zeros(n, dtype=np.int64), np.zeros((n, m), dtype=np.int64)
    pk = _packed(q)
    t = encode_tasks_int(q, scn)
    p = encode_providers_int(q, scn)
    return qk.decode(t, p, pk.wpair, pk.whid, pk.bhid, pk.wout, pk.bout, _c(proc_times(scn)),
                     _c(initial_free(scn)), _c(scn.arrival), _c(relative_capacity(scn)), LOOKAHEAD, ONE,
                     TIME_SCALE, FEAT_CLIP, q.frac_bits)


def allocate_int(q: QuantStudent | None, scn: Scenario) -> np.ndarray:
    """Integer student allocation (provider index per task)."""
    return allocate_int_logits(q or load_quant(), scn)[0]


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) every kernel and load the
    shipped weights now, e.g. when a node starts; otherwise the first ranking
    in a process pays it (see docs/models.md for the measured times)."""
    from pocnet.models.scenario import generate_scenario
    allocate_int(load_quant(), generate_scenario(0, 8, 3))
