"""The same node on PostgreSQL (``--db-url``): commit, restart, same head and state root.

Starts a throwaway PostgreSQL server (Debian's postgresql package, installed by
scripts/setup.sh) on a free loopback port; skipped only where no server binary exists.
"""
import glob
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from fastapi.testclient import TestClient

from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import sign_tx
from pocnet.node.node import Node
from pocnet.node.setup_home import FAUCET_FILE, init_cluster_home
from tests.conftest import free_port_block

pytestmark = pytest.mark.slow


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


@pytest.fixture
def pg_url(tmp_path):
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed")
    # not under tmp_path: pytest's base dir is 0700 root, and the server runs as `postgres`
    top = tempfile.mkdtemp(prefix="pocnet-pg-")
    data = os.path.join(top, "pgdata")
    os.mkdir(data)
    as_user = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(top, "postgres")
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port_block(1)
    subprocess.run(as_user + [f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "pocnet"],
                   check=True, capture_output=True)
    subprocess.run(as_user + [f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(top, "log"), "-w", "-o",
                              f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        url = f"postgresql+psycopg://pocnet@127.0.0.1:{port}/postgres"
        yield url
    finally:
        subprocess.run(as_user + [f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def test_chain_on_postgres_survives_restart(tmp_path, pg_url):
    home = tmp_path / "net"
    init_cluster_home(home, 1, 29997, [], chain_id="pg-test")
    faucet, bob = KeyPair.load(home / FAUCET_FILE), KeyPair.generate()
    node = Node(home / "peer0", db_url=pg_url)
    with TestClient(node.create_app()) as c:
        for n in range(10):
            assert c.post("/txs", json=sign_tx(faucet, "pg-test", "transfer", n,
                                                {"to": bob.address, "amount": 5}).to_dict()).status_code == 202
        deadline = time.monotonic() + 20
        while c.get(f"/accounts/{bob.address}").json()["balance"] != 50:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        before = c.get("/status").json()
    node2 = Node(home / "peer0", db_url=pg_url)
    assert node2.chain.height >= before["height"]
    assert node2.storage.get_block_dict(before["height"])["header"]["state_root"] == before["state_root"]
    assert node2.chain.state.get("acct", bob.address)["balance"] == 50
    assert node2.storage.engine.dialect.name == "postgresql"
    node2.storage.close()


def test_tx_search_and_index_backfill_on_postgres(tmp_path, pg_url):
    """GET /txs pages through the tx index on PostgreSQL; a database without it is re-indexed."""
    from sqlalchemy import text

    from pocnet.ledger import txindex
    from pocnet.ledger.storage import Storage
    home = tmp_path / "net"
    init_cluster_home(home, 1, 29996, [], chain_id="pg-search")
    faucet, bob = KeyPair.load(home / FAUCET_FILE), KeyPair.generate()
    node = Node(home / "peer0", db_url=pg_url)
    hashes = [sign_tx(faucet, "pg-search", "transfer", n, {"to": bob.address, "amount": 1}) for n in range(6)]
    with TestClient(node.create_app()) as c:
        for t in hashes:
            assert c.post("/txs", json=t.to_dict()).status_code == 202
        deadline = time.monotonic() + 20
        while c.get(f"/accounts/{bob.address}").json()["balance"] != 6:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        seen, cursor = [], None
        while True:
            page = c.get("/txs", params={"sender": faucet.address, "limit": 4,
                                         **({"cursor": cursor} if cursor else {})}).json()
            seen += [t["tx_hash"] for t in page["txs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [t.hash for t in reversed(hashes)]
        assert c.get("/txs", params={"type": "bogus"}).status_code == 400
    st = Storage(pg_url)
    with st.engine.begin() as conn:
        conn.execute(text("DELETE FROM tx_index"))
        conn.execute(text("DELETE FROM meta WHERE key = 'tx_index_height'"))
    st.close()
    st = Storage(pg_url)
    found, _ = txindex.search(st, txindex.TxQuery(sender=faucet.address, limit=100, descending=False))
    assert [t["tx_hash"] for t in found] == [t.hash for t in hashes]
    st.close()


def test_storage_bulk_writes_and_migration_on_postgres(pg_url):
    """The plain-SQL bulk block writes and the schema 4 → 5 migration on PostgreSQL."""
    from sqlalchemy import text

    from pocnet.ledger.storage import Storage
    from tests.ledger.test_ledger_storage import check_migration_from_4, check_storage_roundtrip
    check_storage_roundtrip(pg_url)
    st = Storage(pg_url)
    with st.engine.begin() as conn:  # start the migration check from an empty database
        conn.execute(text("DROP TABLE blocks, state, meta, tx_index"))
    st.close()
    check_migration_from_4(pg_url)
