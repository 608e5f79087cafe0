"""What the Flower server and its learners share: names, keys, arrays, the update digest."""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

import numpy as np
import torch

from pocnet.fml.model import Params
from pocnet.ledger.keys import KeyPair, verify

KINDS = ("honest", "lazy", "disguised", "noisy", "free-rider")  # client option `misbehave`


def learner_name(index: int) -> str:
    """The driver's learner names (fml.learners.make_population)."""
    return f"mml{index:03d}"


def learner_key(key_seed: int, index: int) -> KeyPair:
    """Learner key, derived as fml.onchain.OnChainCoordinator.key_of derives it (same addresses on chain)."""
    seed = hashlib.sha256(f"pocnet-fml-learner:{key_seed}:{learner_name(index)}".encode()).digest()
    return KeyPair.from_seed(seed)


def to_arrays(params: Params) -> list[np.ndarray]:
    """A 1-model stack as plain arrays (the leading model axis dropped)."""
    return [p[0].detach().numpy().copy() for p in params]


def from_arrays(arrays: list[np.ndarray]) -> Params:
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(0) for a in arrays)


def update_digest(round_no: int, index: int, arrays: list[np.ndarray]) -> bytes:
    """What a learner signs with its key: round, learner and the exact bytes of its model."""
    h = hashlib.sha256(f"pocnet-flower-update:{round_no}:{index}".encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.digest()


def check_signed(address: str, round_no: int, index: int, arrays: list[np.ndarray], sig: str) -> bool:
    return verify(address, update_digest(round_no, index, arrays), sig)


def opt(cfg: Mapping[str, Any], key: str, default: Any) -> Any:
    """A node/run config value, with Flower's dashed or underscored spelling."""
    for k in (key, key.replace("-", "_"), key.replace("_", "-")):
        if k in cfg:
            return cfg[k]
    return default
