"""Durable storage through SQLAlchemy 2: blocks, txs, state; one DB transaction per block.

SQLite (WAL) is the embedded default; any SQLAlchemy URL works (PostgreSQL in
deployments). A block, its txs and every state write it caused are committed
together, so a crash never leaves half a block. ``schema_version`` in ``meta``
guards against opening a database written by an incompatible release.

The per-block writes (one block row, one ``tx_index`` row per tx, the state upserts)
go through the DB-API ``executemany`` of the SQLAlchemy connection with plain SQL
(SQLite and PostgreSQL); SQLAlchemy Core's per-row parameter processing cost more than
the inserts themselves (bench/bench_storage.py). Tx-hash lookups use ``tx_index``
(ledger/txindex.py), the only per-tx table since schema 5.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import (BigInteger, Column, MetaData, String, Table, Text, create_engine, delete, event, select,
                        text)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from pocnet.ledger import txindex
from pocnet.ledger.block import Block
from pocnet.ledger.encoding import canonical_json
from pocnet.ledger.state import Key, State, is_deleted_marker

log = logging.getLogger("pocnet.storage")

SCHEMA_VERSION = 5  # 2: block headers carry `version`; 3: and `beacon`, `beacon_proof`; 4: evidence;
# 5: the `txs` table is gone (hash lookups use `tx_index`); a version-4 database is migrated on open
MIGRATES_FROM = 4

metadata = MetaData()
meta_table = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))
blocks_table = Table("blocks", metadata,
                     Column("height", BigInteger, primary_key=True, autoincrement=False),
                     Column("hash", String(64), nullable=False, unique=True),
                     Column("block_json", Text, nullable=False))
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
                # WAL + synchronous=NORMAL: a commit is one append to the WAL without fsync, so a
                # killed process loses nothing (the OS holds the written pages) and a power loss can
                # only lose the last blocks, never leave half a block (the WAL is checksummed); a
                # peer that lost blocks catches up from the others. 16 MiB page cache: the random
                # tx-hash index touches pages all over the index; misses cost syscalls per row.
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA cache_size=-16384")
                cur.close()
        # plain-SQL bulk writes where the dialect speaks INSERT ... ON CONFLICT (both defaults do)
        self._bulk = self.engine.dialect.name in ("sqlite", "postgresql")
        ph = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._sql_block = f"INSERT INTO blocks (height, hash, block_json) VALUES ({ph}, {ph}, {ph})"
        self._sql_put = (f'INSERT INTO state (ns, "key", value_json) VALUES ({ph}, {ph}, {ph}) '
                         'ON CONFLICT (ns, "key") DO UPDATE SET value_json = excluded.value_json')
        self._sql_del = f'DELETE FROM state WHERE ns = {ph} AND "key" = {ph}'
        self._sql_meta = (f'INSERT INTO meta ("key", value) VALUES ({ph}, {ph}) '
                          'ON CONFLICT ("key") DO UPDATE SET value = excluded.value')
        metadata.create_all(self.engine)
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) not in (SCHEMA_VERSION, MIGRATES_FROM):
            raise StorageError(f"database schema version {version}, this pocnet needs {SCHEMA_VERSION}")
        txindex.ensure(self)  # derived tx search index, own watermark (ledger/txindex.py)
        if version is not None and int(version) == MIGRATES_FROM:
            self._migrate_from_4()

    def _migrate_from_4(self) -> None:
        """Schema 4 → 5: drop the ``txs`` table. ``txindex.ensure`` has just indexed every
        stored block (hash index included), so ``tx_index`` answers every lookup ``txs`` did."""
        with self.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS txs"))
            self._upsert_meta(conn, "schema_version", str(SCHEMA_VERSION))
        log.info("database migrated from schema %d to %d (tx hash lookups through tx_index)",
                 MIGRATES_FROM, SCHEMA_VERSION)

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
        block_row = (block.height, block.hash, _dumps(block.to_dict()))
        if not self._bulk:
            with self.engine.begin() as conn:
                conn.execute(blocks_table.insert(), [dict(zip(("height", "hash", "block_json"), block_row))])
                txindex.write(conn, block, self._upsert_meta)
                self._write_state(conn, writes)
                self._upsert_meta(conn, "height", str(block.height))
            return
        puts = [(k[0], k[1], _dumps(v)) for k, v in writes.items() if not is_deleted_marker(v)]
        dels = [(k[0], k[1]) for k, v in writes.items() if is_deleted_marker(v)]
        h = str(block.height)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self._sql_block, block_row)
            if block.txs:
                conn.exec_driver_sql(txindex.insert_sql(self.engine.dialect.paramstyle), txindex.row_tuples(block))
            if puts:
                conn.exec_driver_sql(self._sql_put, puts)
            if dels:
                conn.exec_driver_sql(self._sql_del, dels)
            conn.exec_driver_sql(self._sql_meta, [(txindex.WATERMARK_KEY, h), ("height", h)])

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

    def get_block_json(self, height: int) -> str | None:
        """The stored JSON text of a block (canonical JSON of ``Block.to_dict()``), undecoded:
        what the API serves as is instead of decoding and re-encoding ~0.4 kB per tx."""
        with self.engine.connect() as conn:
            row = conn.execute(select(blocks_table.c.block_json).where(blocks_table.c.height == height)).first()
            return row[0] if row else None

    def get_block_jsons(self, start: int, limit: int) -> list[str]:
        """``get_block_dicts`` as stored JSON texts."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(blocks_table.c.block_json).where(blocks_table.c.height >= start)
                                .order_by(blocks_table.c.height).limit(limit))
            return [r[0] for r in rows]

    def get_tx(self, tx_hash: str) -> tuple[dict[str, Any], int, int] | None:
        """(tx JSON, height, index). Txs are stored once, inside their block's JSON;
        ``tx_index`` maps hash → height, position."""
        t = txindex.tx_index.c
        with self.engine.connect() as conn:
            row = conn.execute(select(t.height, t.idx).where(t.hash == tx_hash)).first()
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
                t = txindex.tx_index.c
                found.update(r[0] for r in conn.execute(select(t.hash).where(t.hash.in_(chunk))))
        return found
