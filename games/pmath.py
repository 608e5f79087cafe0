"""Portable transcendental functions for the consensus path: same bits on every CPU.

Why: libm (glibc picks an FMA or an SSE2 ``exp``/``log`` when it loads) and
numpy (AVX-512 / AVX2 / baseline loops) return different last bits on
different CPUs, and a chain whose state transition calls them agrees only
while every peer runs the same CPU family and build. IEEE-754 ``+ - * /`` and
``sqrt`` are correctly rounded, hence identical everywhere; so these
functions are written with those operations only, plus exact scaling by
powers of two (``math.frexp`` / ``math.ldexp``) and float-to-int truncation.
They follow fdlibm (``e_exp.c``, ``s_log1p.c``, Sun Microsystems, freely
redistributable), whose error is below 1 ulp.

Every function here is plain Python and is also compiled by numba from the
*same source* (``exp_nb``, ``log1p_nb``, ``powi_nb``, ``exp_array``), without
fastmath: LLVM then emits one IEEE operation per Python operation (no FMA
contraction, no reassociation), so the compiled and interpreted results are
bit-identical (tests/games/test_games_pmath.py checks it on 10^6 inputs).

Rules for consensus code (docs/games.md § Determinism): call ``pmath.exp``,
``pmath.log1p``, ``pmath.powi`` through the module (``pmath.exp(x)``, not
``from pmath import exp``), never ``math.exp``/``np.exp``/``x ** y`` on floats;
tests/test_consensus_math.py enforces it.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np

if "numba" not in sys.modules:
    # SVML would replace exp-like loops by vectorised versions with different last bits.
    os.environ["NUMBA_DISABLE_INTEL_SVML"] = "1"
import numba  # noqa: E402

_JIT: dict[str, Any] = dict(cache=True, fastmath=False, error_model="numpy")

INF = float("inf")
NAN = float("nan")

# fdlibm e_exp.c constants
_O_THRESHOLD = 7.09782712893383973096e02  # exp(x) overflows above
_U_THRESHOLD = -7.45133219101941108420e02  # exp(x) underflows to 0 below
_LN2_HI = 6.93147180369123816490e-01  # ln2 with 32 trailing zero bits: k * _LN2_HI is exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_HALF_LN2 = 0.34657359027997264  # |x| below: no reduction (fdlibm tests the high word against 0x3fd62e42)
_TINY_EXP = 3.725290298461914e-09  # 2^-28: exp(x) = 1 + x to double precision
_P1 = 1.66666666666666019037e-01
_P2 = -2.77777777770155933842e-03
_P3 = 6.61375632143793436117e-05
_P4 = -1.65339022054652515390e-06
_P5 = 4.13813679705723846039e-08

# fdlibm s_log1p.c constants
_LP1 = 6.666666666666735130e-01
_LP2 = 3.999999999940941908e-01
_LP3 = 2.857142874366239149e-01
_LP4 = 2.222219843214978396e-01
_LP5 = 1.818357216161805012e-01
_LP6 = 1.531383769920937332e-01
_LP7 = 1.479819860511658591e-01
_SQRT2_M1 = 0.41421356237309503  # log1p(x) needs no reduction for -(1 - 1/sqrt2) < x < sqrt2 - 1
_ONE_M_RSQRT2 = 0.2928932188134524
_SQRT1_2 = 0.7071067811865476
_TINY_LOG1P = 1.862645149230957e-09  # 2^-29: log1p(x) = x - x^2/2 to double precision
_TWO54 = 18014398509481984.0


def exp(x: float) -> float:
    """e**x (fdlibm ``__ieee754_exp``: argument reduction by k ln2, degree-5 minimax, exact 2^k scaling)."""
    if x != x:
        return x
    if x > _O_THRESHOLD:
        return INF
    if x < _U_THRESHOLD:
        return 0.0
    ax = -x if x < 0.0 else x
    if ax < _TINY_EXP:
        return 1.0 + x
    if ax <= _HALF_LN2:
        t = x * x
        c = x - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
        return 1.0 - ((x * c) / (c - 2.0) - x)
    k = int(_INV_LN2 * x + (0.5 if x > 0.0 else -0.5))  # C's (int) cast: truncation toward 0
    fk = float(k)
    hi = x - fk * _LN2_HI
    lo = fk * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    return math.ldexp(y, k)


def log1p(x: float) -> float:
    """ln(1 + x) (fdlibm ``log1p``: u = 1 + x = 2^k m, m in [1/sqrt2, sqrt2), rounding error of u corrected)."""
    if x != x:
        return x
    if x <= -1.0:
        return -INF if x == -1.0 else NAN
    if x == INF:
        return INF
    ax = -x if x < 0.0 else x
    if ax < _TINY_LOG1P:
        return x - x * x * 0.5
    if -_ONE_M_RSQRT2 < x < _SQRT2_M1:
        k = 0
        f = x
        c = 0.0
    else:
        u = 1.0 + x
        m, e = math.frexp(u)  # u = m 2^e, m in [0.5, 1): exact
        # rounding error of u, divided by u; fdlibm picks the exact subtraction by u's binade
        if e >= 55:
            c = 0.0  # x so large that what 1 + x lost does not matter
        elif e >= 2:
            c = (1.0 - (u - x)) / u  # u >= 2 >= ... so u - x is exact (Sterbenz)
        else:
            c = (x - (u - 1.0)) / u  # u < 2 so u - 1 is exact
        if m < _SQRT1_2:
            m = m * 2.0
            e = e - 1
        k = e
        f = m - 1.0  # exact (Sterbenz: m in [0.5, 2])
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    r = z * (_LP1 + z * (_LP2 + z * (_LP3 + z * (_LP4 + z * (_LP5 + z * (_LP6 + z * _LP7))))))
    if k == 0:
        return f - (hfsq - s * (hfsq + r))
    fk = float(k)
    return fk * _LN2_HI - ((hfsq - (s * (hfsq + r) + (fk * _LN2_LO + c))) - f)


def powi(x: float, n: int) -> float:
    """x**n for an integer n >= 0 by binary exponentiation (a fixed sequence of products; no libm ``pow``)."""
    if n < 0:
        raise ValueError("powi: n must be >= 0")
    return _powi_loop(x, n)


def _powi_loop(x, n):
    """The products of ``powi`` (n >= 0; n < 0 gives 1.0): the one source of powi and powi_nb, which
    checks nothing (numba cannot raise with a message cheaply)."""
    result = 1.0
    base = x
    while n > 0:
        if n & 1:
            result = result * base
        n >>= 1
        if n:
            base = base * base
    return result


exp_nb = numba.njit(**_JIT)(exp)
log1p_nb = numba.njit(**_JIT)(log1p)
powi_nb = numba.njit(**_JIT)(_powi_loop)


@numba.njit(**_JIT)
def _exp_flat(src, dst):  # pragma: no cover - compiled
    for i in range(src.shape[0]):
        dst[i] = exp_nb(src[i])


def exp_array(x: np.ndarray) -> np.ndarray:
    """Elementwise ``exp`` of a float array (the same bits as ``exp`` on each element)."""
    a = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(a)
    _exp_flat(a.reshape(-1), out.reshape(-1))
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels now rather than inside the first round."""
    exp_nb(0.5)
    log1p_nb(0.5)
    powi_nb(0.5, 3)
    exp_array(np.zeros(2))


__all__ = ["exp", "log1p", "powi", "exp_nb", "log1p_nb", "powi_nb", "exp_array", "warm_up"]
