"""Client side of the on-chain FML round: payload builders and a thin REST wrapper.

The payload builders take the floats ``games`` and the trainer use (Hz, bit/s,
seconds, tokens, raw embeddings) and turn them into the integer payloads the
``fml_*`` transactions require (docs/fmlchain.md), quantising exactly like the
state machine expects. :class:`FmlChainClient` signs with ``ledger.tx.sign_tx``
and talks to one peer through ``node.client.PeerClient``.

Typical round (MSP key ``msp``, learner keys ``keys``, head keys known from the plan)::

    c = FmlChainClient("http://127.0.0.1:26650")
    for k, prof in zip(keys, profiles):
        c.submit(k, "fml_register", register_payload(prof))
    rid = c.round_id_of(c.submit(msp, "fml_open_round", open_round_payload(100.0, 8), wait=True))
    for k, prof in zip(keys, profiles):
        c.submit(k, "fml_join", join_payload(rid, prof.embedding))
    c.submit(msp, "fml_close_registration", round_payload(rid), wait=True)
    plan = c.plan(rid)                      # games.RoundPlan as the chain recorded it
    for head in plan.heads: ... c.submit(head_key, "fml_report", p) for p in report_payloads(rid, reports)
    c.submit(msp, "fml_close_round", round_payload(rid), wait=True)

Wait for ``fml_close_registration`` to commit before reporting: the heads are
only known once the block that closes registration (and seeds the draw) exists.
"""
from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

from pocnet.games.profile import LearnerProfile
from pocnet.games.quantize import quantize
from pocnet.games.round import MemberReport, RoundPlan
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import Tx, sign_tx
from pocnet.games.params import GameParams
from pocnet.ledger.txtypes.fml_codec import KAPPA_EXP, SCALE, TOKEN_SCALE, params_to_state
from pocnet.node.client import PeerClient

MAX_REPORTS_PER_TX = 256


def tokens(x: float) -> int:
    """Tokens (float) -> micro-tokens, the unit of balances, budgets and payouts."""
    return quantize(float(x), TOKEN_SCALE)


def genesis_game_params(p: GameParams) -> dict[str, Any]:
    """Float-free ``game_params`` for a genesis file (decimal strings; ``init_cluster_home(game_params=...)``)."""
    return params_to_state(p)


def register_payload(p: LearnerProfile) -> dict[str, Any]:
    """fml_register payload from a profile (address and embedding are not part of it).

    Rounds to the chain's units: kappa x 1e36, MHz, kbit/s, ms (f_max at least f_min).
    """
    f_min = max(1, round(p.f_min / 1e6))
    return {
        "data_size": max(1, round(p.data_size)),
        "kappa_e36": max(1, round(p.kappa * 10**KAPPA_EXP)),
        "f_min_mhz": f_min,
        "f_max_mhz": max(f_min, round(p.f_max / 1e6)),
        "rate_kbps": max(1, round(p.rate / 1000)),
        "tolerated_ms": max(1, round(p.tolerated_time * 1000)),
        "active": bool(p.active),
    }


def open_round_payload(budget_tokens: float, embedding_dim: int, *, max_learners: int | None = None,
                       n_coalitions: int | None = None, tau: int | None = None,
                       model_size_bits: int | None = None, R: float | None = None,
                       C_min: float | None = None, C_max: float | None = None) -> dict[str, Any]:
    """fml_open_round payload; None leaves the chain's genesis value in force."""
    out: dict[str, Any] = {"budget": tokens(budget_tokens), "embedding_dim": int(embedding_dim)}
    for name, value in (("max_learners", max_learners), ("n_coalitions", n_coalitions), ("tau", tau),
                        ("model_size_bits", model_size_bits)):
        if value is not None:
            out[name] = int(value)
    for name, amount in (("reputation_incentive", R), ("incentive_min", C_min), ("incentive_max", C_max)):
        if amount is not None:
            out[name] = tokens(amount)
    return out


def join_payload(round_id: int, embedding: Sequence[float]) -> dict[str, Any]:
    """fml_join payload: the embedding quantised x 1e6."""
    return {"round": int(round_id), "embedding": [quantize(float(x), SCALE) for x in embedding]}


def round_payload(round_id: int) -> dict[str, Any]:
    """Payload of fml_close_registration and fml_close_round."""
    return {"round": int(round_id)}


def report_payloads(round_id: int, reports: Mapping[str, MemberReport]) -> list[dict[str, Any]]:
    """fml_report payloads (<= 256 members each, address order) from one head's reports.

    Loss reduction, gradient norm and work x 1e6; completion time rounded to the
    nearest millisecond (within the chain's 1 ms misreport tolerance).
    """
    items = []
    for a, r in sorted(reports.items()):
        item = {"member": a, "loss_reduction": quantize(float(r.loss_reduction), SCALE),
                "grad_norm": quantize(float(r.grad_norm), SCALE),
                "completion_ms": max(1, round(r.completion_time * 1000))}
        if r.work is not None:  # evidence of work (games.settlement), x 1e6
            item["work"] = quantize(float(r.work), SCALE)
        items.append(item)
    return [{"round": int(round_id), "reports": items[i:i + MAX_REPORTS_PER_TX]}
            for i in range(0, len(items), MAX_REPORTS_PER_TX)]


class FmlChainClient:
    """Sign-and-submit plus the FML queries, against one peer."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.peer = PeerClient(url, timeout)
        self._chain_id: str | None = None

    def close(self) -> None:
        self.peer.close()

    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = self.peer.status()["chain_id"]
        return self._chain_id

    def submit(self, key: KeyPair, tx_type: str, payload: dict[str, Any], nonce: int | None = None,
               wait: bool = False, timeout_s: float = 30.0) -> Tx:
        """Sign with ``key`` (nonce: the peer's pending nonce unless given) and submit; optionally wait."""
        if nonce is None:
            nonce = self.peer.account(key.address)["pending_nonce"]
        tx = sign_tx(key, self.chain_id, tx_type, nonce, payload)
        r = self.peer.submit(tx)
        if r.status_code != 202:
            raise RuntimeError(f"peer refused {tx_type}: {r.status_code} {r.text}")
        if wait:
            self.peer.wait_committed(tx.hash, timeout_s)
        return tx

    def rounds(self, **filters: Any) -> list[dict[str, Any]]:
        """Round summaries, newest first; filters: phase, opener, open_tx, limit."""
        r = self.peer.http.get("/fml/rounds", params=filters)
        r.raise_for_status()
        return r.json()["rounds"]

    def round(self, round_id: int, raw: bool = False) -> dict[str, Any]:
        return self.peer._get(f"/fml/rounds/{int(round_id)}" + ("?raw=true" if raw else ""))

    def round_id_of(self, open_tx: Tx | str) -> int:
        """The id the chain gave the round opened by ``open_tx`` (which must be committed)."""
        h = open_tx if isinstance(open_tx, str) else open_tx.hash
        found = self.rounds(open_tx=h)
        if not found:
            raise LookupError(f"no round opened by tx {h}")
        return int(found[0]["id"])

    def plan(self, round_id: int) -> RoundPlan:
        """The plan as stored on chain, dequantised (what settlement uses on every peer)."""
        raw = self.round(round_id, raw=True)["raw"]["plan"]
        if raw is None:
            raise LookupError(f"round {round_id} has no plan yet (registration still open)")
        return RoundPlan.from_dict(raw)

    def learner(self, address: str) -> dict[str, Any]:
        return self.peer._get(f"/fml/learners/{address}")

    def reputation(self, address: str) -> dict[str, Any]:
        return self.peer._get(f"/reputation/{address}")


def reputations_on_every_peer(clients: Sequence[Any], addresses: Mapping[str, str],
                              wait_s: float = 30.0) -> tuple[list[dict[str, int]], bool]:
    """Each peer's global reputation per learner name, and whether all peers agree.

    Why the wait: the run ends when *its* peer committed the last round; another peer may still be a
    block behind. Reputations change only when a round closes, so after the run they are final: a
    lagging peer converges within a few blocks, a diverged one never does (reported as disagreement).
    """
    deadline = time.monotonic() + wait_s
    while True:
        reps = [{name: cl.reputation(addr)["global_reputation"] for name, addr in addresses.items()}
                for cl in clients]
        agree = all(r == reps[0] for r in reps)
        if agree or time.monotonic() >= deadline:
            return reps, agree
        time.sleep(0.5)
