"""Test-only: switch the game math back to the platform's floats (the pre-portable path).

``platform_math()`` replaces ``games.pmath``'s functions by libm/numpy ones
(``math.exp``, ``math.log1p``, float ``**``, ``np.exp``) and the switch-rule
kernel by a copy compiled against libm's ``exp`` -- what the chain ran before
its math was made portable. Used by the differential tests (how far apart the
two paths are) and by the golden replay's ``--platform-math`` flag (the
replay must be able to see the difference, so the check is not vacuous).
Never imported by production code.
"""
from __future__ import annotations

import math
import types
from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np

from pocnet.games import coalition, pmath
from pocnet.games import switch_kernel as sk


def _libm_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _libm_powi(x: float, n: int) -> float:
    return x ** n


@numba.njit(cache=False, fastmath=False, error_model="numpy")
def _libm_exp_nb(x):  # pragma: no cover - compiled
    return math.exp(x)


_KERNEL = None


def libm_switch_kernel():
    """The switch-rule kernel recompiled with libm's exp in place of pmath's (same source otherwise)."""
    global _KERNEL
    if _KERNEL is None:
        g = dict(sk.__dict__)
        g["_exp"] = _libm_exp_nb
        for name in ("_aggregates", "_share", "_share_bound", "switch_rule_kernel"):
            py = getattr(sk, name).py_func
            fn = types.FunctionType(py.__code__, g, name, py.__defaults__, py.__closure__)
            g[name] = numba.njit(cache=False, fastmath=False, error_model="numpy")(fn)
        _KERNEL = g["switch_rule_kernel"]
    return _KERNEL


@contextmanager
def platform_math() -> Iterator[None]:
    """Within the block, games compute with libm/numpy transcendentals (the old float path)."""
    saved = (pmath.exp, pmath.log1p, pmath.powi, pmath.exp_array, coalition.switch_rule_kernel)
    pmath.exp, pmath.log1p, pmath.powi, pmath.exp_array = _libm_exp, math.log1p, _libm_powi, np.exp
    coalition.switch_rule_kernel = libm_switch_kernel()
    try:
        yield
    finally:
        pmath.exp, pmath.log1p, pmath.powi, pmath.exp_array, coalition.switch_rule_kernel = saved
