"""What the chain knows about one learner when a round is planned."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class LearnerProfile:
    """Registered capabilities of a meta-learner (units: samples, Hz, bit/s, s).

    ``rate`` is in **bit/s** (the model size is in bits); ``embedding`` is the
    head model's last hidden layer on a small batch of the learner's data.
    """

    address: str
    data_size: float
    kappa: float
    f_min: float
    f_max: float
    rate: float
    tolerated_time: float
    embedding: tuple[float, ...]
    active: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not self.address:
            raise ValueError("address: must be a non-empty string")
        for name in ("data_size", "kappa", "f_min", "f_max", "rate", "tolerated_time"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name}: must be a finite number > 0 (learner {self.address})")
        if self.f_min > self.f_max:
            raise ValueError(f"f_min: must be <= f_max (learner {self.address})")
        if not isinstance(self.embedding, tuple):
            object.__setattr__(self, "embedding", tuple(float(x) for x in self.embedding))
        for x in self.embedding:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise ValueError(f"embedding: must hold finite numbers (learner {self.address})")
        if not isinstance(self.active, bool):
            raise ValueError(f"active: must be a boolean (learner {self.address})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "data_size": self.data_size,
            "kappa": self.kappa,
            "f_min": self.f_min,
            "f_max": self.f_max,
            "rate": self.rate,
            "tolerated_time": self.tolerated_time,
            "embedding": list(self.embedding),
            "active": self.active,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_kappa: float | None = None) -> "LearnerProfile":
        """Build from JSON; a missing or mistyped field raises ValueError naming it."""
        if not isinstance(data, Mapping):
            raise ValueError("learner: must be an object")
        addr = data.get("address")
        if not isinstance(addr, str) or not addr:
            raise ValueError("address: missing or not a non-empty string")
        known = {"address", "data_size", "kappa", "f_min", "f_max", "rate", "tolerated_time", "embedding", "active"}
        for key in data:
            if key not in known:
                raise ValueError(f"{key}: unknown field (learner {addr})")
        kwargs: dict[str, Any] = {"address": addr}
        for name in ("data_size", "kappa", "f_min", "f_max", "rate", "tolerated_time"):
            if name not in data:
                if name == "kappa" and default_kappa is not None:
                    kwargs[name] = default_kappa
                    continue
                raise ValueError(f"{name}: missing (learner {addr})")
            v = data[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{name}: must be a number (learner {addr})")
            kwargs[name] = float(v)
        emb = data.get("embedding")
        if not isinstance(emb, (list, tuple)):
            raise ValueError(f"embedding: missing or not a list (learner {addr})")
        kwargs["embedding"] = tuple(emb)
        kwargs["active"] = data.get("active", True)
        return cls(**kwargs)
