"""Per-peer configuration (``<home>/config.json``) and the home-directory layout."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pocnet.ledger.storage import sqlite_url

GENESIS_FILE = "genesis.json"
NODE_KEY_FILE = "node_key.json"
CONFIG_FILE = "config.json"
DB_FILE = "chain.db"
LOG_FILE = "node.log"


@dataclass
class NodeConfig:
    name: str = "peer0"
    host: str = "127.0.0.1"
    port: int = 26650
    db_url: str | None = None          # default: sqlite:///<home>/chain.db
    # Backpressure: a few blocks' worth. Past it clients get 503 and retry, instead of the
    # peer spending its CPU verifying txs it cannot commit soon (which starves consensus).
    mempool_max_txs: int = 8_000
    # Admission control (graceful overload, docs/performance.md): client submissions are shed
    # with 503 + Retry-After once the mempool holds this many blocks' worth of txs
    # (x max_block_txs, at most mempool_max_txs); gossip from peers is admitted up to
    # mempool_max_txs, so what one peer admitted still reaches the others. The backlog a
    # client can build, hence submit->commit latency, stays about this many blocks.
    admission_backlog_blocks: int = 2
    max_body_bytes: int = 64 * 1024     # POST /txs
    max_batch_body_bytes: int = 8 * 1024 * 1024  # POST /txs/batch
    max_p2p_body_bytes: int = 32 * 1024 * 1024  # POST /p2p/msgs (proposals carry whole blocks)
    # Peer routes (/p2p/*, docs/p2p-auth.md): besides the validators on chain, these node keys
    # (addresses) may use them, e.g. a full node that relays txs; per-peer token bucket.
    full_nodes: list[str] = field(default_factory=list)
    p2p_rate_per_s: int = 200
    p2p_burst: int = 400
    # Proposals carry the header and tx hashes; peers rebuild the block from their mempool and
    # pull what they miss (p2p/compact.py). False: proposals carry the full txs (both are
    # understood by every peer; a node-local choice, not a consensus parameter).
    compact_proposals: bool = True
    log_level: str = "INFO"
    extra: dict = field(default_factory=dict)
    # Block limits and pacing are protocol parameters: genesis `consensus` (ledger/params.py).

    def save(self, home: Path) -> None:
        (Path(home) / CONFIG_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, home: Path) -> "NodeConfig":
        path = Path(home) / CONFIG_FILE
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def database_url(self, home: Path) -> str:
        return self.db_url or sqlite_url(Path(home) / DB_FILE)
