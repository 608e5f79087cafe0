"""Test-only Byzantine peer: the production driver (node/bft.py) wrapped with misbehaviour.

    python -m tests.byzantine.byz_node --home DIR --mode MODE

Modes (each counts what it did in ``/p2p/stats`` as ``byzantine_<mode>`` so a test can
assert that the misbehaviour actually happened):

* ``equivocate``: proposes two different blocks per round (half the peers get each);
* ``forge``: sends votes claiming to be other validators and conflicting votes of its own;
* ``bad_beacon``: its blocks carry a beacon proof with a flipped bit;
* ``no_beacon``: its blocks carry no beacon and no proof;
* ``wrong_input_beacon``: its blocks carry a valid VRF proof of its key over the wrong
  input (the beacon of two heights back instead of the previous one).

None of this is importable from the installed package: it lives under tests/.
"""
from __future__ import annotations

import argparse
import dataclasses
import secrets
from pathlib import Path
from typing import Any

from pocnet.consensus.messages import Proposal, RequestProposal, Vote
from pocnet.ledger.beacon import make_beacon
from pocnet.ledger.block import Block
from pocnet.node.bft import BftDriver, now_ms
from pocnet.node.node import Node
from pocnet.p2p.wire import sign_proposal, sign_vote, vote_to_wire

MODES = ("equivocate", "forge", "bad_beacon", "no_beacon", "wrong_input_beacon")


class ByzantineDriver(BftDriver):
    def __init__(self, node: Node, mode: str, selector: Any = None) -> None:
        super().__init__(node, selector=selector)
        if mode not in MODES:
            raise ValueError(f"unknown Byzantine mode {mode!r}; known: {MODES}")
        self.byzantine = mode

    def status(self) -> dict[str, Any]:
        return dict(super().status(), byzantine=self.byzantine)

    # -- bad beacons: tamper with the header of the block we propose
    def _build_proposal(self, a: RequestProposal) -> list:
        if self.byzantine not in ("bad_beacon", "no_beacon", "wrong_input_beacon"):
            return super()._build_proposal(a)
        node = self.node
        proposal, _ = self.chain.build_block(a.round, node.key.address, now_ms(),
                                             node.mempool.reap(self.chain.params.max_block_txs))
        hdr = proposal.block.header
        if self.byzantine == "bad_beacon":
            p = hdr.beacon_proof
            change = dict(beacon_proof=p[:100] + ("0" if p[100] != "0" else "1") + p[101:])
        elif self.byzantine == "no_beacon":
            change = dict(beacon="", beacon_proof="")
        else:
            prev = self.chain.storage.get_block(hdr.height - 2) if hdr.height > 2 else None
            older = prev.header.beacon if prev else "00" * 64
            beacon, proof = make_beacon(bytes.fromhex(node.key.seed_hex), self.chain_id, hdr.height, older)
            change = dict(beacon=beacon, beacon_proof=proof)
        block = Block(dataclasses.replace(hdr, **change), proposal.block.txs)
        self.candidates[block.hash] = (block, proposal.result)
        self.stats["byzantine_" + self.byzantine] += 1
        return self.engine.set_proposal_value(a.height, a.round, block.hash)

    # -- equivocation: two signed proposals for one (height, round)
    def _broadcast_proposal(self, p: Proposal) -> None:
        if self.byzantine != "equivocate" or not self.peers:
            return super()._broadcast_proposal(p)
        block = self.candidates[p.block_hash][0]
        wire = sign_proposal(self.node.key, self.chain_id, p, block.to_dict())
        self.signed[("proposal", p.round, p.proposer, p.block_hash)] = wire
        alt, _ = self.chain.build_block(p.round, self.node.key.address, now_ms() + 7, [], 0)
        alt_p = Proposal(p.height, p.round, alt.block.hash, p.pol_round, p.proposer)
        alt_wire = sign_proposal(self.node.key, self.chain_id, alt_p, alt.block.to_dict())
        ids = sorted(self.peers)
        half = set(ids[: len(ids) // 2 + 1])
        self.gossip.broadcast(wire, only=set(ids) - half)
        self.gossip.broadcast(alt_wire, only=half)
        self.stats["byzantine_equivocate"] += 1

    # -- forgery: votes signed for others, and a conflicting vote of our own
    def _broadcast_vote(self, v: Vote) -> None:
        super()._broadcast_vote(v)
        if self.byzantine != "forge":
            return
        wire = sign_vote(self.node.key, self.chain_id, v)
        fake_hash = secrets.token_hex(32)
        for other in self.validators:
            if other != v.validator:
                self.gossip.broadcast(vote_to_wire(Vote(v.kind, v.height, v.round, fake_hash, other),
                                                   wire["signature"]))
        self.gossip.broadcast(sign_vote(self.node.key, self.chain_id,
                                        Vote(v.kind, v.height, v.round, fake_hash, v.validator)))
        self.stats["byzantine_forge"] += 1


class ByzantineNode(Node):
    mode = "equivocate"

    def _make_driver(self) -> Any:
        return ByzantineDriver(self, self.mode, selector=self.poc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--mode", choices=MODES, required=True)
    args = ap.parse_args()
    import uvicorn

    from pocnet.node.config import LOG_FILE, NodeConfig
    from pocnet.node.logging_setup import setup_logging
    cfg = NodeConfig.load(args.home)
    setup_logging(cfg.log_level, args.home / LOG_FILE, cfg.name)
    ByzantineNode.mode = args.mode
    node = ByzantineNode(args.home, cfg)
    uvicorn.run(node.create_app(), host=cfg.host, port=cfg.port, log_level="warning",
                timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
