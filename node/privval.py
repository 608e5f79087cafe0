"""Double-sign protection for a validator across crashes (cf. CometBFT's priv_validator_state).

Before a vote or proposal is broadcast, what was signed at the current height —
and the engine's lock — is written to ``<home>/privval_state.json`` (atomic rename
+ fsync). After a restart at the same height the driver (a) re-sends the vote it
already signed for a (round, kind) instead of signing a different one, and
(b) restores lockedValue/lockedRound, so a crash cannot make an honest validator
equivocate or forget a lock (either could break safety together with f faulty peers).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FILE = "privval_state.json"


class PrivValState:
    def __init__(self, home: Path) -> None:
        self.path = Path(home) / FILE
        self.height = 0
        self.signed: dict[str, dict[str, Any]] = {}   # "round:kind" -> signed wire message
        self.locked_value: str | None = None
        self.locked_round = -1
        if self.path.exists():
            try:
                d = json.loads(self.path.read_text())
                self.height = int(d["height"])
                self.signed = dict(d["signed"])
                self.locked_value = d.get("locked_value")
                self.locked_round = int(d.get("locked_round", -1))
            except (ValueError, KeyError, TypeError):
                # A torn write cannot happen (atomic rename); anything else is a bug worth seeing.
                raise ValueError(f"{self.path} is unreadable; inspect it before restarting the validator") from None

    def at_height(self, height: int) -> None:
        if height != self.height:
            self.height = height
            self.signed = {}
            self.locked_value, self.locked_round = None, -1

    def previous(self, height: int, round_: int, kind: str) -> dict[str, Any] | None:
        if height != self.height:
            return None
        return self.signed.get(f"{round_}:{kind}")

    def record(self, height: int, round_: int, kind: str, wire: dict[str, Any],
               locked_value: str | None, locked_round: int) -> None:
        self.at_height(height)
        self.signed[f"{round_}:{kind}"] = {k: v for k, v in wire.items() if k != "block"}
        self.locked_value, self.locked_round = locked_value, locked_round
        self._persist()

    def _persist(self) -> None:
        """Write atomically and durably before the signed message leaves the process."""
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump({"height": self.height, "signed": self.signed, "locked_value": self.locked_value,
                       "locked_round": self.locked_round}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
