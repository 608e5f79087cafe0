"""Tx search index: (height, index, hash, sender, type) per committed tx.

Derived data, written in the same SQL transaction as its block, so it never
disagrees with the chain. It lives in its own table with its own watermark
(``meta.tx_index_height``) instead of bumping ``schema_version``: a database
written before the index existed stays readable, and :func:`ensure` rebuilds the
missing part from the stored blocks at start-up (SQLite and PostgreSQL alike).

It is also the tx-hash lookup (``Storage.get_tx`` / ``has_txs``, unique index on
``hash``): since schema 5 there is no second per-tx table.

Search order is (height, index), newest first by default; a cursor is the
position ``"<height>.<index>"`` of the last tx returned, so pages stay stable
while new blocks are committed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, and_, or_, select

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from pocnet.ledger.block import Block
    from pocnet.ledger.storage import Storage

log = logging.getLogger("pocnet.txindex")

WATERMARK_KEY = "tx_index_height"
MAX_LIMIT = 100
BACKFILL_PAGE = 200

index_metadata = MetaData()
tx_index = Table("tx_index", index_metadata,
                 Column("height", BigInteger, primary_key=True, autoincrement=False),
                 Column("idx", Integer, primary_key=True, autoincrement=False),
                 Column("hash", String(64), nullable=False),
                 Column("sender", String(64), nullable=False),
                 Column("type", String(40), nullable=False),
                 Index("ix_tx_index_sender_pos", "sender", "height", "idx"),
                 Index("ix_tx_index_type_pos", "type", "height", "idx"))
# created separately (checkfirst) so a table made before it existed gets it too
hash_index = Index("ux_tx_index_hash", tx_index.c.hash, unique=True)
COLUMNS = ("height", "idx", "hash", "sender", "type")


class CursorError(ValueError):
    pass


@dataclass(frozen=True)
class TxQuery:
    sender: str | None = None
    types: tuple[str, ...] | None = None
    from_height: int | None = None
    to_height: int | None = None
    limit: int = 20
    cursor: tuple[int, int] | None = None
    descending: bool = True


def parse_cursor(text: str) -> tuple[int, int]:
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 18 for p in parts):
        raise CursorError("cursor must be '<height>.<index>' as returned in next_cursor")
    return int(parts[0]), int(parts[1])


def _rows(block: "Block") -> list[dict[str, Any]]:
    return [{"height": block.height, "idx": i, "hash": tx.hash, "sender": tx.sender, "type": tx.type}
            for i, tx in enumerate(block.txs)]


def row_tuples(block: "Block") -> list[tuple[int, int, str, str, str]]:
    """The block's rows in ``COLUMNS`` order, for ``insert_sql`` (DB-API executemany)."""
    h = block.height
    return [(h, i, tx.hash, tx.sender, tx.type) for i, tx in enumerate(block.txs)]


def insert_sql(paramstyle: str) -> str:
    """Plain INSERT of one row (``?`` for qmark drivers such as sqlite3, else ``%s``)."""
    ph = "?" if paramstyle == "qmark" else "%s"
    return f"INSERT INTO tx_index ({', '.join(COLUMNS)}) VALUES ({', '.join([ph] * len(COLUMNS))})"


def write(conn: "Connection", block: "Block", upsert_meta: Any) -> None:
    """Index a block's txs inside the caller's transaction (Storage.save_block)."""
    rows = _rows(block)
    if rows:
        conn.execute(tx_index.insert(), rows)
    upsert_meta(conn, WATERMARK_KEY, str(block.height))


def ensure(storage: "Storage") -> None:
    """Create the table and index blocks above the watermark (older databases, crashes)."""
    index_metadata.create_all(storage.engine)
    hash_index.create(storage.engine, checkfirst=True)
    done = int(storage.get_meta(WATERMARK_KEY) or 0)
    head = storage.head_height()
    if done >= head:
        if storage.get_meta(WATERMARK_KEY) is None:
            storage.set_meta(WATERMARK_KEY, str(head))
        return
    log.info("building the tx search index for heights %d..%d", done + 1, head)
    from pocnet.ledger.block import Block
    h = done + 1
    while h <= head:
        dicts = storage.get_block_dicts(h, BACKFILL_PAGE)
        if not dicts:
            break
        with storage.engine.begin() as conn:
            conn.execute(tx_index.delete().where(tx_index.c.height >= h,
                                                 tx_index.c.height <= dicts[-1]["header"]["height"]))
            rows = [r for d in dicts for r in _rows(Block.from_trusted_dict(d))]
            if rows:
                conn.execute(tx_index.insert(), rows)
            storage._upsert_meta(conn, WATERMARK_KEY, str(dicts[-1]["header"]["height"]))
        h = dicts[-1]["header"]["height"] + 1


def search(storage: "Storage", q: TxQuery) -> tuple[list[dict[str, Any]], str | None]:
    """One page of matching txs (with their bodies) and the cursor of the next page."""
    limit = max(1, min(q.limit, MAX_LIMIT))
    t = tx_index.c
    cond = []
    if q.sender is not None:
        cond.append(t.sender == q.sender)
    if q.types is not None:
        cond.append(t.type.in_(list(q.types)))
    if q.from_height is not None:
        cond.append(t.height >= q.from_height)
    if q.to_height is not None:
        cond.append(t.height <= q.to_height)
    if q.cursor is not None:
        ch, ci = q.cursor
        # (height, idx) < cursor, spelled out: row-value comparison is not portable everywhere
        after = (or_(t.height < ch, and_(t.height == ch, t.idx < ci)) if q.descending
                 else or_(t.height > ch, and_(t.height == ch, t.idx > ci)))
        cond.append(after)
    order = (t.height.desc(), t.idx.desc()) if q.descending else (t.height.asc(), t.idx.asc())
    stmt = select(t.height, t.idx, t.hash, t.sender, t.type).where(*cond).order_by(*order).limit(limit + 1)
    with storage.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    blocks: dict[int, dict[str, Any]] = {}
    out = []
    for height, idx, tx_hash, sender, tx_type in rows:
        if height not in blocks:
            blocks[height] = storage.get_block_dict(height) or {"txs": []}
        txs = blocks[height]["txs"]
        out.append({"tx_hash": tx_hash, "height": height, "index": idx, "type": tx_type, "sender": sender,
                    "tx": txs[idx] if idx < len(txs) else None})
    nxt = f"{rows[-1][0]}.{rows[-1][1]}" if more and rows else None
    return out, nxt


__all__ = ["TxQuery", "CursorError", "parse_cursor", "search", "ensure", "write", "tx_index", "row_tuples",
           "insert_sql"]
