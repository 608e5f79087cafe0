"""Fixed-point conversion of game results before they enter chain state.

Floats are never stored or hashed (DESIGN § Determinism rules). ``quantize``
uses the exact binary value of the float (via ``Decimal``), multiplies it by
the scale *exactly* (under the module's own context, ``EXACT``, not the
thread's mutable default one) and rounds half to even, so the result depends
only on the float's bits, never on the platform or on other code's settings.
"""
from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Context, Decimal

DEFAULT_SCALE = 1_000_000
# Exact for any double times any scale < 10**40: a double has at most 767 significant decimal digits.
EXACT = Context(prec=850, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999)


def quantize(x: float, scale: int = DEFAULT_SCALE) -> int:
    """round(x * scale) as an int, half to even; rejects NaN and infinities."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"quantize: expected a number, got {type(x).__name__}")
    if not math.isfinite(x):
        raise ValueError(f"quantize: non-finite value {x!r}")
    if not isinstance(scale, int) or isinstance(scale, bool) or scale <= 0:
        raise ValueError("quantize: scale must be a positive int")
    if scale >= 10**40:
        raise ValueError("quantize: scale must be < 10**40")
    return int(EXACT.multiply(Decimal(x), scale).to_integral_value(rounding=ROUND_HALF_EVEN, context=EXACT))


def dequantize(n: int, scale: int = DEFAULT_SCALE) -> float:
    """Inverse of ``quantize`` up to the rounding step 1/scale."""
    return n / scale
