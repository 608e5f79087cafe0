"""Durable storage through SQLAlchemy 2: blocks, txs, state; one DB transaction per block.

SQLite (WAL) is the embedded default; any SQLAlchemy URL works (PostgreSQL in
deployments). A block, its txs and every state write it caused are committed
together, so a crash never leaves half a block. ``schema_version`` in ``meta``
guards against opening a database written by an incompatible release.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import (BigInteger, Column, Integer, MetaData, String, Table, Text, create_engine, delete,
                        event, select)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from pocnet.ledger import txindex
from pocnet.ledger.block import Block
from pocnet.ledger.encoding import canonical_json
from pocnet.ledger.state import Key, State, is_deleted_marker

SCHEMA_VERSION = 4  # 2: block headers carry `version`; 3: and `beacon`, `beacon_proof`; 4: evidence

metadata = MetaData()
meta_table = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))
blocks_table = Table("blocks", metadata,
                     Column("height", BigInteger, primary_key=True, autoincrement=False),
                     Column("hash", String(64), nullable=False, unique=True),
                     Column("block_json", Text, nullable=False))
txs_table = Table("txs", metadata,
                  Column("hash", String(64), primary_key=True),
                  Column("height", BigInteger, nullable=False, index=True),
                  Column("idx", Integer, nullable=False),
                  Column("sender", String(64), nullable=False, index=True))
state_table = Table("state", metadata,
                    Column("ns", String(32), primary_key=True),
                    Column("key", String(160), primary_key=True),
                    Column("value_json", Text, nullable=False))


class StorageError(RuntimeError):
    pass


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def _dumps(v: Any) -> str:
    # canonical_json (orjson): JSON text read back with json.loads; ~20x cheaper per block
    return canonical_json(v, checked=False).decode("utf-8")


class Storage:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()
        metadata.create_all(self.engine)
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) != SCHEMA_VERSION:
            raise StorageError(f"database schema version {version}, this pocnet needs {SCHEMA_VERSION}")
        txindex.ensure(self)  # derived tx search index, own watermark (ledger/txindex.py)

    def close(self) -> None:
        self.engine.dispose()

    # -- meta
    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(meta_table.c.value).where(meta_table.c.key == key)).first()
            return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            self._upsert_meta(conn, key, value)

    def _upsert(self, conn, table: Table, rows: list[dict], keys: list[str]) -> None:  # noqa: ANN001
        if not rows:
            return
        ins = sqlite_insert if self.engine.dialect.name == "sqlite" else pg_insert
        if self.engine.dialect.name not in ("sqlite", "postgresql"):  # generic fallback
            for row in rows:
                conn.execute(delete(table).where(*[table.c[k] == row[k] for k in keys]))
            conn.execute(table.insert(), rows)
            return
        stmt = ins(table)
        update_cols = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update_cols), rows)

    def _upsert_meta(self, conn, key: str, value: str) -> None:  # noqa: ANN001
        self._upsert(conn, meta_table, [{"key": key, "value": value}], ["key"])

    # -- genesis / head
    def is_initialised(self) -> bool:
        return self.get_meta("genesis_hash") is not None

    def init_genesis(self, genesis_hash: str, state: State) -> None:
        with self.engine.begin() as conn:
            self._write_state(conn, {k: v for k, v in state.all_items()})
            self._upsert_meta(conn, "genesis_hash", genesis_hash)
            self._upsert_meta(conn, "height", "0")

    def _write_state(self, conn, writes: dict[Key, Any]) -> None:  # noqa: ANN001
        puts = [{"ns": k[0], "key": k[1], "value_json": _dumps(v)} for k, v in writes.items()
                if not is_deleted_marker(v)]
        self._upsert(conn, state_table, puts, ["ns", "key"])
        for k, v in writes.items():
            if is_deleted_marker(v):
                conn.execute(delete(state_table).where(state_table.c.ns == k[0], state_table.c.key == k[1]))

    def save_block(self, block: Block, writes: dict[Key, Any]) -> None:
        """Persist a committed block, its txs and its state writes atomically."""
        with self.engine.begin() as conn:
            conn.execute(blocks_table.insert(), [{"height": block.height, "hash": block.hash,
                                                  "block_json": _dumps(block.to_dict())}])
            if block.txs:
                conn.execute(txs_table.insert(), [
                    {"hash": tx.hash, "height": block.height, "idx": i, "sender": tx.sender}
                    for i, tx in enumerate(block.txs)])
            txindex.write(conn, block, self._upsert_meta)
            self._write_state(conn, writes)
            self._upsert_meta(conn, "height", str(block.height))

    def head_height(self) -> int:
        h = self.get_meta("height")
        return int(h) if h is not None else 0

    def load_state(self) -> State:
        with self.engine.connect() as conn:
            rows = conn.execute(select(state_table.c.ns, state_table.c.key, state_table.c.value_json))
            return State({(ns, k): json.loads(v) for ns, k, v in rows})

    # -- queries
    def get_block(self, height: int) -> Block | None:
        d = self.get_block_dict(height)
        return Block.from_trusted_dict(d) if d else None

    def get_block_dict(self, height: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(blocks_table.c.block_json).where(blocks_table.c.height == height)).first()
            return json.loads(row[0]) if row else None

    def get_block_dicts(self, start: int, limit: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(blocks_table.c.block_json).where(blocks_table.c.height >= start)
                                .order_by(blocks_table.c.height).limit(limit))
            return [json.loads(r[0]) for r in rows]

    def get_tx(self, tx_hash: str) -> tuple[dict[str, Any], int, int] | None:
        """(tx JSON, height, index). Txs are stored once, inside their block's JSON;
        the ``txs`` table is only an index (hash → height, position)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(txs_table.c.height, txs_table.c.idx)
                               .where(txs_table.c.hash == tx_hash)).first()
        if not row:
            return None
        block = self.get_block_dict(row[0])
        return (block["txs"][row[1]], row[0], row[1]) if block else None

    def has_txs(self, hashes: Iterable[str]) -> set[str]:
        hashes = list(hashes)
        found: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(hashes), 500):
                chunk = hashes[i:i + 500]
                found.update(r[0] for r in conn.execute(select(txs_table.c.hash).where(txs_table.c.hash.in_(chunk))))
        return found
