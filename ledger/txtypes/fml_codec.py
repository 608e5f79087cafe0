"""FML state layout and the integer <-> float conversions between chain state and ``games``.

State never holds a float (the state root hashes canonical JSON). Everything
the FML transactions store is an int in a documented unit, or a decimal string
for the game parameters; this module is the one place that turns those into
the floats ``games`` computes with, and back. Conversions use exact integer
division (``n / 10**k`` is correctly rounded in Python), so every peer gets
the same floats from the same ints.

Units (see docs/fmlchain.md):
- game quantities from ``games`` (times, frequencies, tokens, reputations):
  value x ``SCALE`` (1e6), i.e. micro-seconds, micro-hertz, micro-tokens, x1e-6;
- balances, budgets and payouts: micro-tokens (1 token = ``TOKEN_SCALE`` units);
- capabilities: samples, kappa x 1e36, MHz, kbit/s, milliseconds.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any, Mapping

from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.quantize import DEFAULT_SCALE, dequantize
from pocnet.games.reputation import ReputationHistory

SCALE = DEFAULT_SCALE  # fixed-point scale of every stored game quantity
TOKEN_SCALE = 1_000_000  # balance units (micro-tokens) per game token
KAPPA_EXP = 36  # kappa = kappa_e36 * 10**-36
MAX_HISTORY = 64  # reputation records kept per learner (0.7**64 ~ 1e-10 < 1/SCALE)

# namespaces (<= 32 chars, the storage column width)
NS = "fml"  # keys: "params", "round_seq" (last round id), "epoch" (closed rounds)
NS_LEARNER = "fml_learner"  # address -> capabilities
NS_REP = "fml_rep"  # address -> {"global", "history"}
NS_ROUND = "fml_round"  # round key -> summary (small; updated by every tx of the round)
NS_PLAN = "fml_plan"  # round key -> quantised RoundPlan (written once)
NS_SETTLE = "fml_settle"  # round key -> quantised settlement (written once)
NS_MSP = "fml_msp"  # opener -> {"last_planned_round"}

PHASE_REGISTRATION = "registration"
PHASE_TRAINING = "training"
PHASE_CLOSED = "closed"


def round_key(rid: int) -> str:
    """Zero-padded so that key order (what ``items`` iterates) is numeric order."""
    return f"{rid:012d}"


def join_ns(rid: int) -> str:
    return f"fml_join:{rid}"


def report_ns(rid: int) -> str:
    return f"fml_report:{rid}"


def round_seed(beacon: str, rid: int) -> int:
    """Seed of round ``rid``'s random draws: 60 bits of sha256(beacon ":fml:" rid).

    ``beacon`` is the VRF beacon of the block before the one that closes registration
    (``BlockContext.beacon``): no client can choose it, every peer derives the same seed,
    and unlike that block's hash its proposer cannot grind it by trying tx sets or
    timestamps (a VRF output is unique for its key and input; withholding the block is
    the only choice left, as for the proposer ranking).
    """
    digest = hashlib.sha256(f"{beacon}:fml:{rid}".encode()).hexdigest()
    return int(digest[:15], 16)


# ----------------------------------------------------------------- game parameters
def _to_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"params.{name}: must be a number or a decimal string, got {value!r}")
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            raise ValueError(f"params.{name}: {value!r} is not a decimal number") from None
    elif isinstance(value, (int, float)):
        f = float(value)
    else:
        raise ValueError(f"params.{name}: must be a number or a decimal string, got {value!r}")
    if not math.isfinite(f):
        raise ValueError(f"params.{name}: must be finite")
    return f


def params_from_config(raw: Mapping[str, Any] | None) -> GameParams:
    """GameParams from genesis ``game_params`` (ints, decimal strings or, off-chain, floats)."""
    if not raw:
        return GameParams()
    if not isinstance(raw, Mapping):
        raise ValueError("game_params: must be an object")
    fields = {f.name: f.default for f in dataclasses.fields(GameParams)}
    numeric: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in fields:
            raise ValueError(f"params.{name}: unknown parameter")
        if isinstance(fields[name], tuple):
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise ValueError(f"params.{name}: must be a [low, high] pair")
            numeric[name] = [_to_float(name, x) for x in value]
        else:
            numeric[name] = _to_float(name, value)
    return GameParams.from_dict(numeric)


def params_to_state(p: GameParams) -> dict[str, Any]:
    """Float-free form: ints stay ints, floats become their shortest exact repr string."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(p):
        v = getattr(p, f.name)
        if isinstance(v, tuple):
            out[f.name] = [repr(float(x)) for x in v]
        elif isinstance(v, int) and not isinstance(v, bool):
            out[f.name] = v
        else:
            out[f.name] = repr(float(v))
    return out


def params_from_state(d: Mapping[str, Any] | None) -> GameParams:
    return params_from_config(d or {})


# Per-round overrides an MSP may set when opening a round: payload name -> (GameParams field, divisor).
ROUND_OVERRIDES: dict[str, tuple[str, int]] = {
    "n_coalitions": ("n_coalitions", 1),
    "tau": ("tau", 1),
    "model_size_bits": ("model_size_bits", 1),
    "reputation_incentive": ("R", TOKEN_SCALE),  # micro-tokens
    "incentive_min": ("C_min", TOKEN_SCALE),  # micro-tokens
    "incentive_max": ("C_max", TOKEN_SCALE),  # micro-tokens
}


def round_params(base: GameParams, overrides: Mapping[str, int]) -> GameParams:
    """The game a round plays: chain parameters with the MSP's overrides (ValueError if invalid)."""
    changes: dict[str, Any] = {}
    for name, value in sorted(overrides.items()):
        field, div = ROUND_OVERRIDES[name]
        changes[field] = int(value) if field in ("n_coalitions", "tau") else value / div
    return dataclasses.replace(base, **changes)


# ----------------------------------------------------------------- learners
CAPABILITY_FIELDS = ("data_size", "kappa_e36", "f_min_mhz", "f_max_mhz", "rate_kbps", "tolerated_ms", "active")


def profile_from_state(address: str, caps: Mapping[str, Any], embedding: list[int]) -> LearnerProfile:
    """LearnerProfile (samples, Hz, bit/s, s) from stored capabilities and a joined embedding."""
    return LearnerProfile(
        address=address,
        data_size=float(caps["data_size"]),
        kappa=caps["kappa_e36"] / 10**KAPPA_EXP,
        f_min=float(caps["f_min_mhz"] * 10**6),
        f_max=float(caps["f_max_mhz"] * 10**6),
        rate=float(caps["rate_kbps"] * 1000),
        tolerated_time=caps["tolerated_ms"] / 1000,
        embedding=tuple(dequantize(int(x), SCALE) for x in embedding),
        active=bool(caps["active"]),
    )


def history_from_state(rep: Mapping[str, Any] | None) -> ReputationHistory:
    """Stored records -> ReputationHistory with rounds = settlement epochs (always increasing)."""
    if not rep:
        return ReputationHistory()
    return ReputationHistory.from_list([[r["epoch"], r["head"], dequantize(r["q"], SCALE)] for r in rep["history"]])


def deq_map(d: Mapping[str, int]) -> dict[str, float]:
    return {k: dequantize(int(v), SCALE) for k, v in d.items()}
