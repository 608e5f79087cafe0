"""What the Flower server and its learners share: names, keys, arrays, the update digest."""
from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

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


def update_digest(round_no: int, index: int, arrays: list[np.ndarray], commit: Sequence[str] = ()) -> bytes:
    """What a learner signs with its key: round, learner, the exact bytes of its model and
    its commitment to the chain of its local checkpoints (``commit``, see :func:`model_digest`)."""
    h = hashlib.sha256(f"pocnet-flower-update:{round_no}:{index}".encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    if commit:
        h.update(("checkpoints:" + ",".join(commit)).encode())
    return h.digest()


def check_signed(address: str, round_no: int, index: int, arrays: list[np.ndarray], sig: str,
                 commit: Sequence[str] = ()) -> bool:
    return verify(address, update_digest(round_no, index, arrays, commit), sig)


def model_digest(arrays: list[np.ndarray]) -> str:
    """Hex digest of one model's exact float32 bytes: one entry of a learner's checkpoint chain."""
    h = hashlib.sha256(b"pocnet-flower-checkpoint")
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()


def hosted_learners(node_config: Mapping[str, Any]) -> list[int]:
    """The learner indices a SuperNode hosts: node config ``learners="0,8,16"`` (several) or
    ``learner=3`` (one, the default layout)."""
    many = opt(node_config, "learners", None)
    if many is not None:
        out = [int(x) for x in str(many).replace(";", ",").split(",") if x.strip()]
    else:
        one = opt(node_config, "learner", None)
        if one is None:
            raise ValueError("node config: `learner` (this device's learner index) or `learners` (comma-separated) is required")
        out = [int(one)]
    if not out or len(set(out)) != len(out) or min(out) < 0:
        raise ValueError(f"node config learners: distinct non-negative indices, got {many!r}")
    return out


def misbehaviour(node_config: Mapping[str, Any], learner: int) -> str:
    """``misbehave``: one kind for every hosted learner (``lazy``) or per learner (``3=lazy,5=noisy``)."""
    spec = str(opt(node_config, "misbehave", "honest")).strip() or "honest"
    if "=" in spec:
        kinds = {int(j): k.strip() for j, _, k in (p.partition("=") for p in spec.split(",") if p.strip())}
        kind = kinds.get(learner, "honest")
    else:
        kind = spec
    if kind not in KINDS:
        raise ValueError(f"node config misbehave: one of {', '.join(KINDS)} (or learner=kind,...), got {kind!r}")
    return kind


def key_of(name: str, learner: int) -> str:
    """Record key of learner ``learner``'s part of a multi-learner message (``arrays.7``)."""
    return f"{name}.{learner}"


def opt(cfg: Mapping[str, Any], key: str, default: Any) -> Any:
    """A node/run config value, with Flower's dashed or underscored spelling."""
    for k in (key, key.replace("-", "_"), key.replace("_", "-")):
        if k in cfg:
            return cfg[k]
    return default


def group_by_node(nodes: Mapping[int, int], learners: Any) -> dict[int, list[int]]:
    """node id -> the sorted learners addressed on it (``nodes``: learner -> node id); learners
    without a node are left out. One message per node carries all of them."""
    out: dict[int, list[int]] = {}
    for j in sorted(learners):
        if j in nodes:
            out.setdefault(nodes[j], []).append(j)
    return out
