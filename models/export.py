"""Export a trained float student (torch) to the fixed-point QuantStudent.

Float work happens here, once, offline: weights are rounded to Q(FRAC_BITS)
and the sigmoid lookup table is tabulated and stored in the weights file,
so consensus inference (models.quant) never evaluates a float.
"""
from __future__ import annotations

import math

import numpy as np

from pocnet.models.features import FRAC_BITS
from pocnet.models.net import AllocNet
from pocnet.models.quant import QuantStudent

LUT_RANGE = 8      # sigmoid table covers [-8, 8]
LUT_SHIFT = 5      # 2^5 / 2^12 = 1/128 step -> 2049 entries


def _q(t) -> np.ndarray:
    return np.rint(t.detach().double().numpy() * (1 << FRAC_BITS)).astype(np.int64)


def sigmoid_lut(frac_bits: int = FRAC_BITS, rng: int = LUT_RANGE, shift: int = LUT_SHIFT) -> tuple[int, np.ndarray]:
    """(x_min, table): table[k] = round(2^f * sigmoid(centre of bucket k))."""
    one = 1 << frac_bits
    x_min = -rng * one
    size = ((2 * rng * one) >> shift) + 1
    step = 1 << shift
    vals = [int(round(one / (1.0 + math.exp(-((x_min + k * step + step / 2) / one))))) for k in range(size)]
    return x_min, np.array(vals, dtype=np.int64)


def export_student(net: AllocNet) -> QuantStudent:
    cfg = net.cfg
    t: dict[str, np.ndarray] = {}
    for k, conv in enumerate(net.gnn):
        t[f"gnn.{k}.weight"] = _q(conv.weight)      # (in, out): h @ W
        t[f"gnn.{k}.bias"] = _q(conv.bias)
    t["gru.weight_ih"] = _q(net.gru.weight_ih_l0)
    t["gru.weight_hh"] = _q(net.gru.weight_hh_l0)
    t["gru.bias_ih"] = _q(net.gru.bias_ih_l0)
    t["gru.bias_hh"] = _q(net.gru.bias_hh_l0)
    t["dec_task.weight"] = _q(net.dec_task.weight)
    t["dec_prov.weight"] = _q(net.dec_prov.weight)
    t["dec_prov.bias"] = _q(net.dec_prov.bias)
    t["dec_pair.weight"] = _q(net.dec_pair.weight)
    t["dec_hid.weight"] = _q(net.dec_hid.weight)
    t["dec_hid.bias"] = _q(net.dec_hid.bias)
    t["dec_out.weight"] = _q(net.dec_out.weight)
    t["dec_out.bias"] = _q(net.dec_out.bias)
    x_min, lut = sigmoid_lut()
    config = {"gnn_hidden": cfg.gnn_hidden, "gnn_layers": cfg.gnn_layers, "gru_hidden": cfg.gru_hidden,
              "dec_hidden": cfg.dec_hidden}
    return QuantStudent(FRAC_BITS, config, t, x_min, LUT_SHIFT, lut)
