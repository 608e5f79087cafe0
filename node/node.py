"""The peer: wires chain, mempool, consensus driver and the HTTP app together."""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI

from pocnet.ledger.genesis import Genesis
from pocnet.ledger.keys import KeyPair
from pocnet.ledger import queries
from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.state_machine import tx_types
from pocnet.ledger.storage import Storage
from pocnet.ledger.tx import Tx, parse_tx, verify_tx_signature
from pocnet.ledger.versions import supported_versions
from pocnet.node.api import ApiError, TxAccepted, install_error_handlers, public_router
from pocnet.node.chain import Chain
from pocnet.node.config import GENESIS_FILE, NODE_KEY_FILE, NodeConfig
from pocnet.node.mempool import Mempool, MempoolFull

log = logging.getLogger("pocnet.node")


def _warm_up_games() -> None:
    try:
        from pocnet.games.switch_kernel import warm_up
        warm_up()
    except Exception:  # noqa: BLE001 - a failed warm-up only costs latency later
        log.exception("coalition kernel warm-up failed")


def now_ms() -> int:
    return int(time.time() * 1000)


class ConsensusDriver(Protocol):
    """What produces and commits blocks: the solo producer or the BFT engine adapter."""

    async def run(self) -> None: ...

    def status(self) -> dict[str, Any]: ...

    def on_new_tx(self, tx: Tx) -> None: ...


class Node:
    def __init__(self, home: Path, config: NodeConfig | None = None, db_url: str | None = None) -> None:
        self.home = Path(home)
        self.config = config or NodeConfig.load(self.home)
        if db_url:
            self.config.db_url = db_url
        self.genesis = Genesis.load(self.home / GENESIS_FILE)
        self.key = KeyPair.load(self.home / NODE_KEY_FILE)
        self.validator_ids = [v.address for v in self.genesis.validators]
        self.poc = self._load_poc()
        self.storage = Storage(self.config.database_url(self.home))
        self.chain = Chain(self.genesis, self.storage, self.poc, signer=self.key)
        self.mempool = Mempool(self.chain.app, self.chain.next_context, self.config.mempool_max_txs)
        self.driver: ConsensusDriver = self._make_driver()
        from pocnet.node.events import EventHub  # observation side: node/web.py serves these
        from pocnet.node.explorer_api import PeerBook
        from pocnet.node.metrics import NodeMetrics
        self.metrics = NodeMetrics(self)
        self.events = EventHub()
        self.metrics.subscriber_count = lambda: len(self.events)
        self.peer_book = PeerBook()
        self._tasks: list[asyncio.Task] = []

    def _load_poc(self):  # noqa: ANN202
        """The PoC student named by genesis; refuse to start with any other weights."""
        expected = self.genesis.poc_weights_sha256
        if not expected:
            log.warning("genesis names no PoC weights: proposer order falls back on hash order")
            return None
        from pocnet.models.quant import DEFAULT_WEIGHTS, weights_sha256
        path = self.config.extra.get("poc_weights") or DEFAULT_WEIGHTS
        actual = weights_sha256(path)
        if actual != expected:
            raise ValueError(f"PoC weights {path} have sha256 {actual}, genesis requires {expected}; "
                             "refusing to start")
        from pocnet.consensus.poc_selector import PocSelector
        from pocnet.models.quant import warm_up
        t0 = time.monotonic()
        warm_up()  # compile or load the integer kernels before the first height needs a ranking
        log.info("PoC student %s ready in %.2f s", actual[:16], time.monotonic() - t0)
        return PocSelector(str(path))

    def _make_driver(self) -> ConsensusDriver:
        if len(self.genesis.validators) == 1:
            from pocnet.node.solo import SoloDriver
            if self.key.address != self.genesis.validators[0].address:
                log.warning("this peer is not the genesis validator; it will not produce blocks")
            return SoloDriver(self)
        from pocnet.node.bft import BftDriver  # multi-validator consensus
        return BftDriver(self, selector=self.poc)

    # -- tx intake (REST and gossip)
    def submit_tx_obj(self, obj: Any, *, from_peer: bool = False) -> TxAccepted:
        """Admit one tx (batch API, gossip); refusals and admissions are counted (GET /metrics)."""
        try:
            out = self._admit(obj, from_peer=from_peer)
        except TxRejected as exc:
            self.metrics.tx_refused(exc, from_peer)
            raise
        if not out.duplicate:
            self.metrics.tx_admitted(out.tx_hash, from_peer)
        return out

    def admission_limit(self, *, from_peer: bool = False) -> int:
        """Mempool size at which this intake sheds load: peers' gossip up to the hard cap,
        clients at ``admission_backlog_blocks`` blocks' worth (so a client backlog cannot
        grow blocks past what the round timeouts allow, nor latency without bound)."""
        if from_peer:
            return self.mempool.max_txs
        soft = self.config.admission_backlog_blocks * self.chain.params.max_block_txs
        return max(1, min(self.mempool.max_txs, soft))

    def shedding(self) -> bool:
        """True while client submissions are refused (503 + Retry-After) before any work."""
        return len(self.mempool) >= self.admission_limit()

    def _admit(self, obj: Any, *, from_peer: bool = False) -> TxAccepted:
        limit = self.admission_limit(from_peer=from_peer)
        if len(self.mempool) >= limit:  # shed load before paying for the signature check
            self.mempool.stats["rejected"] += 1
            raise MempoolFull(limit)
        tx = parse_tx(obj, chain_id=self.genesis.chain_id, check_signature=False)
        if from_peer:
            # cheap staleness check first: gossip often brings txs this peer already committed
            if tx.nonce < queries.account(self.chain.state, tx.sender).nonce:
                raise TxRejected("nonce", f"nonce {tx.nonce} already used", Code.NONCE_USED)
        verify_tx_signature(tx)
        with self.chain.lock:
            if tx.hash in self.mempool:
                return TxAccepted(tx_hash=tx.hash, duplicate=True)
            try:
                self.mempool.add(tx)
            except TxRejected as exc:
                # A committed tx always fails the nonce check; only then pay for the DB lookup.
                if exc.code is Code.NONCE_USED and self.storage.get_tx(tx.hash) is not None:
                    raise TxRejected("$", "transaction is already committed", Code.COMMITTED) from None
                raise
        if not from_peer:
            self.driver.on_new_tx(tx)
        return TxAccepted(tx_hash=tx.hash)

    async def submit_from_client(self, obj: Any) -> TxAccepted:
        """Client submission. A small nonce gap may be a race with gossip (the client sent
        the previous nonce to another peer a moment ago), so wait briefly for it to fill
        before refusing."""
        deadline = time.monotonic() + 1.0
        while True:
            try:
                out = self._admit(obj)
                if not out.duplicate:
                    self.metrics.tx_admitted(out.tx_hash, False)
                return out
            except TxRejected as exc:
                gap_race = exc.code is Code.NONCE_GAP and len(self.genesis.validators) > 1
                if not gap_race or time.monotonic() >= deadline:
                    self.metrics.tx_refused(exc, False)  # counted once, after the wait
                    raise
            await asyncio.sleep(0.05)

    def on_block_committed(self, committed_hashes: list[str]) -> None:
        self.mempool.update(committed_hashes)
        block = self.chain.last_block
        if block is not None:
            self.metrics.on_commit(block)
            self.events.on_commit(block)

    def catching_up(self) -> bool:
        """True while the driver knows peers ahead of this one (block sync running)."""
        probe = getattr(self.driver, "catching_up", None)
        return bool(probe()) if probe is not None else False

    def status(self) -> dict[str, Any]:
        c = self.chain
        return {"chain_id": c.chain_id, "peer_id": self.key.address, "name": self.config.name,
                "height": c.height, "latest_hash": c.head_hash, "state_root": c.state_root,
                "latest_timestamp_ms": c.last_timestamp_ms, "mempool_size": len(self.mempool),
                "catching_up": self.catching_up(),
                "validators": [v.to_dict() for v in self.genesis.validators],
                "tx_types": tx_types(), "version": c.version, "supported_versions": supported_versions(),
                "consensus_params": c.params.to_dict(), "consensus": self.driver.status()}

    # -- HTTP app
    def create_app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_: FastAPI):
            self._tasks.append(asyncio.create_task(self.driver.run(), name="consensus"))
            # Compile/load the coalition kernel off the event loop now, so the first FML
            # close_registration in a block does not stall consensus for seconds.
            asyncio.get_running_loop().run_in_executor(None, _warm_up_games)
            log.info("%s serving chain %s at height %d", self.config.name, self.genesis.chain_id, self.chain.height)
            try:
                yield
            finally:
                for t in self._tasks:
                    t.cancel()
                for t in self._tasks:
                    try:
                        await t
                    except (asyncio.CancelledError, Exception):  # noqa: BLE001
                        pass
                stop = getattr(self.driver, "stop", None)
                if stop:
                    await stop()
                self.storage.close()
                log.info("%s stopped at height %d", self.config.name, self.chain.height)

        app = FastAPI(title="pocnet peer", version="0.1.0", lifespan=lifespan,
                      description="REST API of a pocnet peer. Wire format: see README § Wire format.",
                      docs_url=None, redoc_url=None)  # /docs served from packaged assets (node/web.py)
        install_error_handlers(app)
        app.include_router(public_router(self))
        from pocnet.node.fml_api import fml_router  # FML rounds (docs/fmlchain.md)
        app.include_router(fml_router(self))
        from pocnet.node.validators_api import validators_router  # GET /validators, /evidence
        app.include_router(validators_router(self))
        from pocnet.node.market_api import market_router  # bandwidth market (docs/market.md)
        app.include_router(market_router(self))
        extra = getattr(self.driver, "router", None)
        if extra is not None:
            app.include_router(extra())
        from pocnet.node.web import install_web  # /docs, /explorer, /metrics, /events, tx search, ...
        install_web(self, app)
        return app


__all__ = ["Node", "ApiError", "now_ms"]
