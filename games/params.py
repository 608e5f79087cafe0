"""Parameters of pocnet's FML game model (docs/model.md § Symbols and defaults).

All defaults live in one frozen object so they can be written into genesis
and every peer plays exactly the same game. Units: seconds, Hz (CPU cycles
per second), bits and bit/s.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class GameParams:
    """Every constant of the dual game; defaults are docs/model.md's."""

    # population (used by scenario generators and plan_round's K)
    n_learners: int = 40
    n_coalitions: int = 4
    active_share: float = 0.9
    # cost and time (eqs. 6-9)
    tau: int = 10  # local iterations per round
    cycles_per_sample: float = 10.0 * 6272.0  # cycles/bit x bits/sample (28x28 bytes)
    kappa: float = 1e-26  # default effective capacitance
    model_size_bits: float = 10e6  # Z = 10 Mb
    mu: float = 0.1  # unit computation cost
    # incentives (eqs. 10, 20, 24)
    R: float = 5.0  # reputation incentive per coalition
    C_min: float = 5.0
    C_max: float = 15.0
    # reputation (eqs. 11-18)
    rho0: float = 0.5  # default reputation utility
    r_th: float = 0.5  # reputation threshold
    theta: float = 10.0  # steepness of the logistic reputation function (ours)
    decline: float = 0.7  # time-declining factor (vartheta)
    lam: float = 0.2  # weight of global vs task-specific reputation
    omega: float = 0.5  # weight of training vs timeliness in q_i (ours)
    # MSP (eq. 23)
    beta: float = 25.0
    # coalition formation: a switch must gain more than this
    epsilon: float = 1e-9
    # settlement (ours): a reported completion time more than this below the
    # time the committed frequency allows is a misreport
    misreport_tolerance_s: float = 1e-3
    # scenario draw ranges (ours; used by generators, not by the game itself)
    freq_range_hz: tuple[float, float] = (0.1e9, 2.0e9)
    rate_range_bps: tuple[float, float] = (2e6, 10e6)
    tolerated_time_range_s: tuple[float, float] = (5.0, 15.0)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            vals = v if isinstance(v, tuple) else (v,)
            for x in vals:
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                    raise ValueError(f"{f.name}: must be a finite number, got {v!r}")
        positive = ("tau", "cycles_per_sample", "kappa", "model_size_bits", "mu", "theta", "beta", "n_coalitions")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0")
        for name in ("R", "C_min", "rho0", "epsilon", "n_learners", "misreport_tolerance_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0")
        if self.C_max < self.C_min:
            raise ValueError("C_max: must be >= C_min")
        for name in ("r_th", "lam", "omega", "active_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be in [0, 1]")
        if not 0.0 < self.decline <= 1.0:
            raise ValueError("decline: must be in (0, 1]")
        for name in ("freq_range_hz", "rate_range_bps", "tolerated_time_range_s"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name}: need 0 < low <= high")
        if int(self.tau) != self.tau or int(self.n_coalitions) != self.n_coalitions:
            raise ValueError("tau and n_coalitions: must be integers")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GameParams":
        """Defaults overridden by ``data``; unknown keys are an error naming the key."""
        if not isinstance(data, Mapping):
            raise ValueError("params: must be an object")
        names = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                raise ValueError(f"params.{key}: unknown parameter")
            default = names[key].default
            if isinstance(default, tuple):
                if not isinstance(value, (list, tuple)) or len(value) != 2:
                    raise ValueError(f"params.{key}: must be a [low, high] pair")
                value = tuple(_number(f"params.{key}", x) for x in value)
            elif isinstance(default, int) and not isinstance(default, bool):
                num = _number(f"params.{key}", value)
                if int(num) != num:
                    raise ValueError(f"params.{key}: must be an integer")
                value = int(num)
            else:
                value = _number(f"params.{key}", value)
            kwargs[key] = value
        try:
            return cls(**kwargs)
        except ValueError as exc:
            raise ValueError(f"params.{exc}") from None


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{field}: must be a finite number, got {value!r}")
    return float(value)


DEFAULT_PARAMS = GameParams()
