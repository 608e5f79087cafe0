"""Compact proposals (BIP 152 style): a proposal carries the block header and the ordered tx
hashes instead of the txs, which every peer already got by gossip.

A receiver rebuilds the block from its mempool; what it misses it pulls from the proposer
(or any peer) with an authenticated ``POST /p2p/txs``, and if that fails it falls back to the
full block (``GET /p2p/candidate/{hash}``). The block, its hash and its validation are the
same as with a full proposal: only what travels changes. This module is the pure part
(encoding, parsing, rebuild, checking pulled txs); the I/O lives in node/bft.py.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pocnet.ledger.block import Block, Header
from pocnet.ledger.errors import TxRejected
from pocnet.ledger.merkle import merkle_root
from pocnet.ledger.tx import Tx, compute_tx_hash, parse_tx
from pocnet.p2p.blocks import parse_evidence_list, parse_header
from pocnet.p2p.wire import BadMessage

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class CompactBlock:
    """A block as a compact proposal names it: header, ordered tx hashes, evidence."""

    header: Header
    tx_hashes: tuple[str, ...]
    evidence: tuple[Any, ...]

    @property
    def hash(self) -> str:
        return self.header.hash


def compact_block_dict(block: Block) -> dict[str, Any]:
    """What a compact proposal carries in place of ``block.to_dict()``."""
    return {"header": block.header.to_dict(), "tx_hashes": [t.hash for t in block.txs],
            "evidence": [e.to_dict() for e in block.evidence]}


def _is_hash(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 64 and not (set(v) - _HEX)


def parse_compact(d: Any, max_txs: int = 20_000) -> CompactBlock:
    """Check a compact block from a peer (shape, hashes, the header's tx_root over the listed
    hashes) before anything is looked up or pulled for it; raise BadMessage."""
    if not isinstance(d, dict) or set(d) != {"header", "tx_hashes", "evidence"}:
        raise BadMessage("malformed:cblock")
    header = parse_header(d["header"])
    hashes = d["tx_hashes"]
    if not isinstance(hashes, list) or len(hashes) > max_txs or not all(_is_hash(h) for h in hashes):
        raise BadMessage("malformed:cblock.tx_hashes")
    if merkle_root(hashes) != header.tx_root:
        raise BadMessage("cblock_tx_root_mismatch")
    return CompactBlock(header, tuple(hashes), parse_evidence_list(d["evidence"], "cblock"))


def missing_txs(cb: CompactBlock, lookup: Callable[[str], Tx | None]) -> list[str]:
    """Hashes of the block's txs that ``lookup`` (mempool, txs pulled earlier) does not know,
    in block order, without repeats."""
    return list(dict.fromkeys(h for h in cb.tx_hashes if lookup(h) is None))


def assemble(cb: CompactBlock, lookup: Callable[[str], Tx | None]) -> Block:
    """The full block, every tx from ``lookup``; KeyError if one is missing."""
    txs = []
    for h in cb.tx_hashes:
        tx = lookup(h)
        if tx is None:
            raise KeyError(h)
        txs.append(tx)
    return Block(cb.header, tuple(txs), None, cb.evidence)


def check_pulled(objs: Any, wanted: Iterable[str], chain_id: str) -> dict[str, Tx]:
    """Txs a peer returned for a pull: keep only well-formed, correctly signed txs whose hash
    was asked for (a peer cannot slip in anything else); a missing one is simply absent."""
    want = set(wanted)
    out: dict[str, Tx] = {}
    if not isinstance(objs, list):
        return out
    for obj in objs:
        if not isinstance(obj, dict):
            continue
        try:
            h = compute_tx_hash(obj)
        except (TypeError, ValueError):
            continue
        if h not in want or h in out:
            continue
        try:
            tx = parse_tx(obj, chain_id=chain_id, check_signature=True)
        except TxRejected:
            continue
        if tx.hash == h:
            out[h] = tx
    return out
