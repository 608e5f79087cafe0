"""Shared test material for the on-chain FML round: keys, learner profiles, honest reports."""
from __future__ import annotations

import random

from pocnet.games.cost import completion_time, cycles_per_round
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.round import MemberReport, RoundPlan
from pocnet.ledger.keys import KeyPair
from tests.chain_support import PureChain

MSP = KeyPair.from_seed(b"\x51" * 32)
LEARNERS = [KeyPair.from_seed(bytes([0x60 + i]) * 32) for i in range(12)]
DIM = 6


def profiles(n: int = 8, seed: int = 3, dim: int = DIM) -> list[LearnerProfile]:
    """n learners with docs/model.md-range devices and two embedding clusters (so similarity matters)."""
    rng = random.Random(seed)
    out = []
    for i, k in enumerate(LEARNERS[:n]):
        base = [1.0 if d % 2 == i % 2 else 0.1 for d in range(dim)]
        f_min = rng.uniform(0.1e9, 0.5e9)
        out.append(LearnerProfile(
            address=k.address, data_size=float(rng.randint(200, 900)), kappa=1e-26,
            f_min=f_min, f_max=rng.uniform(1.0e9, 2.0e9), rate=rng.uniform(2e6, 10e6),
            tolerated_time=rng.uniform(5.0, 15.0),
            embedding=tuple(x + rng.uniform(-0.05, 0.05) for x in base), active=True))
    return out


def as_on_chain(p: LearnerProfile) -> LearnerProfile:
    """The profile the chain sees after register_payload/join_payload rounding."""
    from pocnet.fml.chain_client import join_payload, register_payload
    from pocnet.ledger.txtypes.fml_codec import profile_from_state
    return profile_from_state(p.address, register_payload(p), join_payload(1, p.embedding)["embedding"])


def honest_reports(plan: RoundPlan, params: GameParams, profs: list[LearnerProfile], head: str,
                   slow: float = 1.05) -> dict[str, MemberReport]:
    """A head's reports on its members: each finished a bit slower than its committed frequency allows."""
    by = {p.address: p for p in profs}
    out = {}
    for j, a in enumerate(plan.partition[head]):
        p = by[a]
        t = completion_time(cycles_per_round(p.data_size, params), plan.frequencies[a], p.rate, params)
        out[a] = MemberReport(loss_reduction=0.01 * (j + 1), grad_norm=1.5 + j, completion_time=t * slow,
                              work=1.0 + 0.01 * j)  # honest: every member within the full-pay band
    return out


def key_of(address: str) -> KeyPair:
    for k in LEARNERS + [MSP]:
        if k.address == address:
            return k
    raise KeyError(address)


class LocalChain(PureChain):
    """A genesis state plus a block applier: the pure state machine with no node around it."""

    def __init__(self, chain_id: str = "fml-test", balance: int = 10**12, game_params: dict | None = None) -> None:
        from pocnet.ledger.genesis import Genesis, ValidatorInfo
        super().__init__(Genesis(chain_id, 0, (ValidatorInfo("v0", MSP.address, "http://127.0.0.1:1"),),
                                 {MSP.address: balance}, game_params=game_params or {}), MSP.address)

    def default_beacon(self, height: int) -> str:
        """FML round seeds come from the parent beacon: a distinct one per height, as on a chain."""
        return f"{height:0128x}"
