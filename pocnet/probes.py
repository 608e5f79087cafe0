"""Process-wide observation points for code that must stay free of node objects.

Pure modules (signature checks, the PoC student, the FML game solver) cannot see
the peer that calls them, so they report here: a counter or a duration under a
fixed name. ``pocnet.node.metrics`` exposes these values on ``GET /metrics``.
Observation never feeds back into results (nothing here is read by consensus
code), so timing here does not break determinism. With several peers in one
process (tests) the values are the sum over those peers; a deployed peer is
one process.
"""
from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

# Histogram bucket upper bounds (seconds) shared by every duration probe.
DURATION_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                       0.5, 1.0, 2.5, 5.0, 10.0)

_lock = threading.Lock()
_counters: dict[str, int] = {}
# name -> [bucket counts (len(DURATION_BUCKETS) + 1, last = +Inf), count, sum]
_durations: dict[str, list[Any]] = {}

F = TypeVar("F", bound=Callable[..., Any])


def count(name: str, n: int = 1) -> None:
    with _lock:
        _counters[name] = _counters.get(name, 0) + n


def observe(name: str, seconds: float) -> None:
    with _lock:
        rec = _durations.get(name)
        if rec is None:
            rec = _durations[name] = [[0] * (len(DURATION_BUCKETS) + 1), 0, 0.0]
        i = 0
        while i < len(DURATION_BUCKETS) and seconds > DURATION_BUCKETS[i]:
            i += 1
        rec[0][i] += 1
        rec[1] += 1
        rec[2] += seconds


def timed(name: str) -> Callable[[F], F]:
    """Decorator: record each call's wall time under ``name`` (exceptions included)."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                observe(name, time.perf_counter() - t0)
        return inner  # type: ignore[return-value]
    return wrap


def counters() -> dict[str, int]:
    with _lock:
        return dict(_counters)


def durations() -> dict[str, tuple[list[int], int, float]]:
    """name -> (per-bucket counts, not cumulative; count; sum of seconds)."""
    with _lock:
        return {k: (list(v[0]), v[1], v[2]) for k, v in _durations.items()}
