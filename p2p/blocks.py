"""Parse blocks received from peers (proposals and sync) without trusting them."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pocnet.ledger.block import Block, Commit, CommitSig, Header
from pocnet.ledger.errors import TxRejected
from pocnet.ledger.evidence import MAX_EVIDENCE_PER_BLOCK, EvidenceInvalid, parse_evidence
from pocnet.ledger.tx import Tx, compute_tx_hash, parse_tx
from pocnet.p2p.wire import BadMessage

_HEADER_INT = ("height", "round", "timestamp_ms", "version")
_HEADER_STR = ("chain_id", "prev_hash", "proposer", "tx_root", "state_root", "poc_digest", "beacon",
               "beacon_proof", "evidence_root")


def parse_header(d: Any) -> Header:
    if not isinstance(d, dict) or set(d) != set(_HEADER_INT + _HEADER_STR):
        raise BadMessage("malformed:header")
    for k in _HEADER_INT:
        if not isinstance(d[k], int) or isinstance(d[k], bool) or d[k] < 0:
            raise BadMessage(f"malformed:header.{k}")
    for k in _HEADER_STR:
        if not isinstance(d[k], str) or len(d[k]) > 160:
            raise BadMessage(f"malformed:header.{k}")
    return Header.from_dict(d)


def parse_block(d: Any, chain_id: str, known_tx: Callable[[str], Tx | None],
                verify_signatures: bool = True, max_txs: int = 20_000) -> Block:
    """Rebuild a block; txs already verified by this peer (``known_tx``) are not re-verified."""
    if not isinstance(d, dict):
        raise BadMessage("malformed:block")
    header = parse_header(d.get("header"))
    txs_in = d.get("txs")
    if not isinstance(txs_in, list) or len(txs_in) > max_txs:
        raise BadMessage("malformed:block.txs")
    txs: list[Tx] = []
    for obj in txs_in:
        if not isinstance(obj, dict):
            raise BadMessage("malformed:block.txs")
        try:
            h = compute_tx_hash(obj)
        except (TypeError, ValueError):
            raise BadMessage("malformed:block.txs") from None
        tx = known_tx(h)
        if tx is None:
            try:
                tx = parse_tx(obj, chain_id=chain_id, check_signature=verify_signatures)
            except TxRejected as exc:
                raise BadMessage(f"bad_tx:{exc.field}") from None
        txs.append(tx)
    commit = None
    if d.get("commit") is not None:
        commit = parse_commit(d["commit"])
    return Block(header, tuple(txs), commit, parse_evidence_list(d.get("evidence", []), "block"))


def parse_evidence_list(ev_in: Any, where: str) -> tuple[Any, ...]:
    """A block's (or compact block's) evidence list from a peer; BadMessage names ``where``."""
    if not isinstance(ev_in, list) or len(ev_in) > MAX_EVIDENCE_PER_BLOCK:
        raise BadMessage(f"malformed:{where}.evidence")
    try:
        return tuple(parse_evidence(e) for e in ev_in)
    except EvidenceInvalid:
        raise BadMessage(f"malformed:{where}.evidence") from None


def parse_commit(d: Any) -> Commit:
    try:
        sigs = tuple(CommitSig(str(s["validator"]), str(s["signature"])) for s in d["signatures"])
        c = Commit(int(d["height"]), int(d["round"]), str(d["block_hash"]), sigs)
    except (KeyError, TypeError, ValueError):
        raise BadMessage("malformed:commit") from None
    return c
