"""Storage: bulk block writes read back exactly, tx-hash lookups through tx_index, the schema
4 → 5 migration (the `txs` table dropped) and refusal of unknown schema versions."""
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from pocnet.ledger import txindex
from pocnet.ledger.block import Block, Commit, CommitSig, Header
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.state import _DELETED as DELETED
from pocnet.ledger.state_machine import BlockContext, apply_block, genesis_state
from pocnet.ledger.storage import SCHEMA_VERSION, Storage, StorageError, sqlite_url
from pocnet.ledger.tx import sign_tx

CHAIN = "storage-test"
VAL = KeyPair.from_seed(b"\x31" * 32)
SENDERS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(40, 44)]
SINK = KeyPair.from_seed(b"\x55" * 32).address


def make_blocks(n_blocks: int, per_block: int):  # noqa: ANN201
    """Genesis state and n transfer blocks with the state writes they cause."""
    g = Genesis(CHAIN, 0, (ValidatorInfo("v0", VAL.address, "http://127.0.0.1:1"),),
                {k.address: 10**9 for k in SENDERS})
    state, start = genesis_state(g), genesis_state(g)
    nonces = {k.address: 0 for k in SENDERS}
    prev, out = "0" * 64, []
    for h in range(1, n_blocks + 1):
        txs = []
        for j in range(per_block):
            k = SENDERS[j % len(SENDERS)]
            txs.append(sign_tx(k, CHAIN, "transfer", nonces[k.address], {"to": SINK, "amount": 1 + j}))
            nonces[k.address] += 1
        view = apply_block(state, txs, BlockContext(CHAIN, h, prev, 1000 * h, VAL.address))
        state.apply_writes(view.writes)
        header = Header(CHAIN, h, 0, prev, 1000 * h, VAL.address, "ab" * 32, state.root, "cd" * 32, 1)
        block = Block(header, tuple(txs), Commit(h, 0, header.hash, (CommitSig(VAL.address, "aa" * 64),)))
        out.append((block, dict(view.writes)))
        prev = block.hash
    return start, state, out


def check_storage_roundtrip(url: str) -> None:
    """Save blocks through the bulk path; blocks, txs, state and meta read back exactly."""
    start, state, blocks = make_blocks(3, 7)
    st = Storage(url)
    st.init_genesis("00" * 32, start)
    for block, writes in blocks:
        st.save_block(block, writes)
    assert st.head_height() == 3
    assert st.get_meta("tx_index_height") == "3"
    for block, _ in blocks:
        assert st.get_block_dict(block.height) == block.to_dict()
        for i, tx in enumerate(block.txs):
            assert st.get_tx(tx.hash) == (tx.to_dict(), block.height, i)
    all_hashes = [t.hash for b, _ in blocks for t in b.txs]
    assert st.has_txs(all_hashes + ["ff" * 32]) == set(all_hashes)
    assert st.get_tx("ff" * 32) is None
    assert dict(st.load_state().all_items()) == dict(state.all_items())
    st.close()


def test_save_block_reads_back_sqlite(tmp_path: Path) -> None:
    check_storage_roundtrip(sqlite_url(tmp_path / "c.db"))


def test_deleted_state_keys_are_removed(tmp_path: Path) -> None:
    start, _, blocks = make_blocks(1, 2)
    st = Storage(sqlite_url(tmp_path / "c.db"))
    st.init_genesis("00" * 32, start)
    key = next(iter(blocks[0][1]))
    block, writes = blocks[0]
    st.save_block(block, {**writes, key: DELETED})
    assert key not in dict(st.load_state().all_items())
    st.close()


def check_migration_from_4(url: str) -> None:
    """A schema-4 database (txs table, possibly lagging tx_index) opens as schema 5 with every
    tx still found by hash, the txs table gone, and new blocks written."""
    start, _, blocks = make_blocks(4, 5)
    st = Storage(url)
    st.init_genesis("00" * 32, start)
    for block, writes in blocks[:3]:
        st.save_block(block, writes)
    with st.engine.begin() as conn:  # turn it into what schema 4 wrote
        conn.execute(text("CREATE TABLE txs (hash VARCHAR(64) PRIMARY KEY, height BIGINT NOT NULL, "
                          "idx INTEGER NOT NULL, sender VARCHAR(64) NOT NULL)"))
        for block, _ in blocks[:3]:
            for i, tx in enumerate(block.txs):
                conn.execute(text("INSERT INTO txs VALUES (:h, :ht, :i, :s)"),
                             {"h": tx.hash, "ht": block.height, "i": i, "s": tx.sender})
        conn.execute(text("DELETE FROM tx_index WHERE height >= 2"))
        conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'tx_index_height'"))
        conn.execute(text("UPDATE meta SET value = '4' WHERE key = 'schema_version'"))
        conn.execute(text("DROP INDEX ux_tx_index_hash"))
    st.close()

    st = Storage(url)
    assert st.get_meta("schema_version") == str(SCHEMA_VERSION) == "5"
    names = inspect(st.engine).get_table_names()
    assert "txs" not in names and "tx_index" in names
    assert "ux_tx_index_hash" in {ix["name"] for ix in inspect(st.engine).get_indexes("tx_index")}
    for block, _ in blocks[:3]:
        for i, tx in enumerate(block.txs):
            assert st.get_tx(tx.hash) == (tx.to_dict(), block.height, i)
    st.save_block(*blocks[3])
    assert st.get_tx(blocks[3][0].txs[-1].hash)[1:] == (4, 4)
    st.close()
    st = Storage(url)  # opening a migrated database again changes nothing
    assert st.get_meta("schema_version") == "5" and st.head_height() == 4
    st.close()


def test_migrates_schema_4_sqlite(tmp_path: Path) -> None:
    check_migration_from_4(sqlite_url(tmp_path / "c.db"))


def test_unknown_schema_version_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "c.db")
    st = Storage(url)
    st.set_meta("schema_version", "3")
    st.close()
    with pytest.raises(StorageError, match="schema version 3"):
        Storage(url)


def test_duplicate_tx_hash_is_refused(tmp_path: Path) -> None:
    """The unique hash index keeps what the txs primary key guaranteed: a tx is stored once."""
    start, _, blocks = make_blocks(1, 3)
    st = Storage(sqlite_url(tmp_path / "c.db"))
    st.init_genesis("00" * 32, start)
    block, writes = blocks[0]
    st.save_block(block, writes)
    again = Block(Header(CHAIN, 2, 0, block.hash, 2000, VAL.address, "ab" * 32, "00" * 32, "cd" * 32, 1),
                  block.txs[:1])
    with pytest.raises(IntegrityError):
        st.save_block(again, {})
    assert st.head_height() == 1  # nothing of the refused block was stored
    assert st.get_block_dict(2) is None
    assert txindex.search(st, txindex.TxQuery(limit=100))[0][0]["height"] == 1
    st.close()
