"""The pure state machine: validate and apply transactions and blocks.

No clock, no randomness, no I/O: everything a transition may depend on comes
from the state, the transaction and the :class:`BlockContext` (which is itself
part of the block header). Handlers for each tx type live in ``ledger.txtypes``
and register themselves here; applications (tasks, FML rounds) plug in the same way.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pocnet.ledger.encoding import canonical_json
from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.genesis import Genesis
from pocnet.ledger.state import State, StateView
from pocnet.ledger.tx import Tx
from pocnet.ledger.versions import ProtocolRules, register_version

ACCOUNTS = "acct"


@dataclass(frozen=True)
class BlockContext:
    """Everything a block's transitions may read besides state and txs.

    ``poc_allocation`` is the proof-of-contribution allocation for this height
    ((task_id, provider_id) pairs), computed by every peer from the committed state
    before the block (consensus/poc_selector.py); the ledger only records it.
    ``poc_contribution`` ((provider_id, contribution) pairs) is recorded too: the
    ranking of the *next* height is weighted by it, so those weights come from the
    state committed two heights before that ranking (the proposer of h knows beacon_h,
    which seeds ranking_{h+1}, before it picks its txs; its txs cannot move the weights).
    """
    chain_id: str
    height: int
    prev_hash: str
    timestamp_ms: int
    proposer: str
    poc_allocation: tuple[tuple[str, str], ...] = ()
    poc_contribution: tuple[tuple[str, int], ...] = ()
    evidence: tuple[Any, ...] = ()   # ledger.evidence.Evidence, signatures already verified
    # beacon of the parent block (genesis: the initial beacon): the seed of this block's random
    # draws (FML round seeds). A VRF output, so the parent's proposer could not grind it.
    beacon: str = ""


class TxHandler(Protocol):
    tx_type: str

    def check_payload(self, payload: dict[str, Any]) -> Any:
        """Stateless payload check; raise TxRejected('payload.<field>', reason)."""

    def check_state(self, view: StateView, tx: Tx, parsed: Any) -> None:
        """Stateful precondition (balances, phases); raise TxRejected."""

    def apply(self, view: StateView, tx: Tx, parsed: Any, ctx: BlockContext) -> None:
        """Write the effects into ``view``; may raise TxRejected (view is then discarded).

        A handler whose ``apply`` is expensive (runs a game solver) sets the class attribute
        ``runs_solver = True``: mempool admission (:func:`check_tx`) then stops at ``check_state``."""


_HANDLERS: dict[str, TxHandler] = {}
EndBlockHook = Callable[[StateView, BlockContext], None]
_END_BLOCK_HOOKS: list[tuple[str, EndBlockHook]] = []
_BEGIN_BLOCK_HOOKS: list[tuple[str, EndBlockHook]] = []
GenesisHook = Callable[[StateView, Genesis], None]
_GENESIS_HOOKS: list[tuple[str, GenesisHook]] = []


def register_handler(handler: TxHandler) -> TxHandler:
    _HANDLERS[handler.tx_type] = handler
    return handler


def register_end_block(name: str, hook: EndBlockHook) -> None:
    if all(n != name for n, _ in _END_BLOCK_HOOKS):
        _END_BLOCK_HOOKS.append((name, hook))


def register_begin_block(name: str, hook: EndBlockHook) -> None:
    """Run ``hook`` before a block's txs (e.g. recording the PoC allocation)."""
    if all(n != name for n, _ in _BEGIN_BLOCK_HOOKS):
        _BEGIN_BLOCK_HOOKS.append((name, hook))


def register_genesis(name: str, hook: GenesisHook) -> None:
    if all(n != name for n, _ in _GENESIS_HOOKS):
        _GENESIS_HOOKS.append((name, hook))


def tx_types() -> list[str]:
    _load_builtin_handlers()
    return sorted(_HANDLERS)


def _load_builtin_handlers() -> None:
    # Imported lazily to avoid import cycles; each module registers itself.
    import pocnet.ledger.txtypes  # noqa: F401


def get_account(view: "StateView | State", address: str) -> dict[str, int]:
    acct = view.get(ACCOUNTS, address)
    return dict(acct) if acct else {"balance": 0, "nonce": 0}


def set_account(view: StateView, address: str, acct: dict[str, int]) -> None:
    view.set(ACCOUNTS, address, {"balance": acct["balance"], "nonce": acct["nonce"]})


def check_payload(tx: Tx) -> Any:
    _load_builtin_handlers()
    handler = _HANDLERS.get(tx.type)
    if handler is None:
        raise TxRejected("type", f"unknown transaction type {tx.type!r}; known: {', '.join(sorted(_HANDLERS))}")
    return handler.check_payload(tx.payload)


def validate_tx(view: "StateView", tx: Tx, *, expected_nonce: int | None = None) -> Any:
    """Full validation of a tx against a state (nonce, payload, preconditions)."""
    parsed = check_payload(tx)
    nonce = get_account(view, tx.sender)["nonce"] if expected_nonce is None else expected_nonce
    if tx.nonce < nonce:
        raise TxRejected("nonce", f"nonce {tx.nonce} already used; next expected nonce is {nonce}", Code.NONCE_USED)
    if tx.nonce > nonce:
        raise TxRejected("nonce", f"nonce {tx.nonce} skips ahead; next expected nonce is {nonce}", Code.NONCE_GAP)
    _HANDLERS[tx.type].check_state(view, tx, parsed)
    return parsed


def apply_tx(view: StateView, tx: Tx, ctx: BlockContext) -> None:
    """Validate and apply one tx atomically into ``view`` (raise TxRejected, view untouched)."""
    child = view.child()
    parsed = validate_tx(child, tx)
    acct = get_account(child, tx.sender)
    acct["nonce"] += 1
    set_account(child, tx.sender, acct)
    _HANDLERS[tx.type].apply(child, tx, parsed, ctx)
    child.merge_into_parent()


def check_tx(view: StateView, tx: Tx, ctx: BlockContext) -> Any:
    """Mempool admission (ABCI CheckTx): judge ``tx`` against a *pending* view and record
    its pending effects there, atomically (raise TxRejected, view untouched).

    Checks the payload, the nonce and the handler's stateful preconditions
    (``check_state``: balances, roles, phases) against committed state plus every tx
    admitted before it. Pending effects: the nonce always; for handlers whose ``apply``
    is cheap bookkeeping (transfers, tasks, registrations, joins, reports) also their
    writes, so a later tx may rely on an earlier pending one (A→B then B→C). Handlers
    marked ``runs_solver = True`` (FML close_registration / close_round, which run the
    game solvers) are admitted on their preconditions alone: their effects are computed
    once, when a proposer builds the block. ``ctx`` describes the next block as far as
    it is known (height, head hash, last timestamp); the block's real context is used
    when the proposer re-executes the tx.
    """
    child = view.child()
    parsed = validate_tx(child, tx)
    acct = get_account(child, tx.sender)
    acct["nonce"] += 1
    set_account(child, tx.sender, acct)
    handler = _HANDLERS[tx.type]
    if not getattr(handler, "runs_solver", False):
        handler.apply(child, tx, parsed, ctx)
    child.merge_into_parent()
    return parsed


class BlockInvalid(ValueError):
    pass


def apply_block(state: State, txs: Sequence[Tx], ctx: BlockContext) -> StateView:
    """Apply every tx of a block; any failing tx makes the whole block invalid.

    Proposers only include txs that applied cleanly (see :func:`select_txs`), so an
    honest block never fails here.
    """
    view = state.view()
    run_begin_block(view, ctx)
    for i, tx in enumerate(txs):
        try:
            apply_tx(view, tx, ctx)
        except TxRejected as exc:
            raise BlockInvalid(f"tx {i} ({tx.hash[:12]}) invalid: {exc}") from None
    run_end_block(view, ctx)
    return view


def run_begin_block(view: StateView, ctx: BlockContext) -> None:
    _load_builtin_handlers()
    for _, hook in _BEGIN_BLOCK_HOOKS:
        hook(view, ctx)


def run_end_block(view: StateView, ctx: BlockContext) -> None:
    _load_builtin_handlers()
    for _, hook in _END_BLOCK_HOOKS:
        hook(view, ctx)


def tx_size(tx: Tx) -> int:
    """Bytes a tx counts against ``max_block_bytes``: its canonical JSON, signature included
    (``Tx.size`` when parsing or signing already encoded it)."""
    return tx.size or len(canonical_json(tx.to_dict(), checked=False))


def check_block_limits(txs: Sequence[Tx], max_txs: int, max_bytes: int) -> None:
    """Raise BlockInvalid if a block's txs exceed the genesis block limits."""
    if len(txs) > max_txs:
        raise BlockInvalid(f"{len(txs)} txs exceed max_block_txs {max_txs}")
    size = sum(tx_size(t) for t in txs)
    if size > max_bytes:
        raise BlockInvalid(f"txs of {size} bytes exceed max_block_bytes {max_bytes}")


def select_txs(state: State, candidates: Sequence[Tx], ctx: BlockContext, max_txs: int,
               max_bytes: int | None = None) -> tuple[StateView, list[Tx], list[tuple[Tx, TxRejected]]]:
    """Proposer side: apply candidates in order, keep those that succeed, within the limits.

    Filling stops at the first tx that would overflow ``max_bytes`` (skipping it would
    leave a nonce gap for its sender's later txs); it leads the next block.
    """
    view = state.view()
    run_begin_block(view, ctx)
    included: list[Tx] = []
    rejected: list[tuple[Tx, TxRejected]] = []
    size = 0
    for tx in candidates:
        if len(included) >= max_txs:
            break
        n = tx_size(tx) if max_bytes is not None else 0
        if max_bytes is not None and size + n > max_bytes:
            break
        try:
            apply_tx(view, tx, ctx)
            included.append(tx)
            size += n
        except TxRejected as exc:
            rejected.append((tx, exc))
    run_end_block(view, ctx)
    return view, included, rejected


def genesis_state(genesis: Genesis) -> State:
    """The state at height 0: balances, validators and application params."""
    _load_builtin_handlers()
    state = State()
    view = state.view()
    for addr, amount in sorted(genesis.balances.items()):
        set_account(view, addr, {"balance": amount, "nonce": 0})
    view.set("meta", "chain", {"chain_id": genesis.chain_id, "genesis_hash": genesis.hash})
    for v in genesis.validators:
        view.set("validator", v.address, {"name": v.name, "capacity": v.capacity})
    for _, hook in _GENESIS_HOOKS:
        hook(view, genesis)
    state.apply_writes(view.writes)
    return state


# Protocol version 1: the rules above. A later version registers its own entry
# (ledger/versions.py) instead of changing these functions' behaviour in place.
V1 = register_version(ProtocolRules(
    version=1, summary="transfers, PoC tasks and provider updates, FML rounds (docs/fmlchain.md)",
    apply_block=apply_block, select_txs=select_txs))

# Protocol version 2: version 1's transitions; the header's state_root is the bucketed
# Merkle tree of ledger/commitment.py (maintained per block in time proportional to the
# keys changed, with inclusion proofs) instead of the flat hash over every sorted leaf.
V2 = register_version(replace(
    V1, version=2, state_commitment="bucket-tree",
    summary="version 1's transitions; state_root = bucketed Merkle tree (docs/state_commitment.md)"))
