"""A real `pocnet node` process: commit over HTTP, kill -9, restart, same head/root/balances."""
import signal
import subprocess
import sys

import pytest

from pocnet.ledger.keys import KeyPair
from pocnet.node.client import PeerClient
from pocnet.node.setup_home import FAUCET_FILE, init_cluster_home
from tests.proc_helpers import ROOT, kill9, start_peer, stop, wait_http, wait_until

pytestmark = pytest.mark.slow


def test_kill9_and_restart_resumes_same_chain(tmp_path, port_block):
    base = port_block(1)
    init_cluster_home(tmp_path, 1, base, [], chain_id="proc-test")
    home, url = tmp_path / "peer0", f"http://127.0.0.1:{base}"
    faucet, bob = KeyPair.load(tmp_path / FAUCET_FILE), KeyPair.generate()
    proc = start_peer(home)
    try:
        wait_http(url)
        c = PeerClient(url)
        txs = [c.sign_and_submit(faucet, "transfer", {"to": bob.address, "amount": 100 + i}, nonce=i)
               for i in range(20)]
        for t in txs:
            c.wait_committed(t.hash)
        before = c.status()
        acct_before = c.account(bob.address)
        assert acct_before["balance"] == sum(100 + i for i in range(20))
        kill9(proc)
        proc = start_peer(home)
        wait_http(url)
        after = c.status()
        assert after["height"] >= before["height"]
        blk = c.block(before["height"])
        assert blk["hash"] == before["latest_hash"] and blk["header"]["state_root"] == before["state_root"]
        assert c.account(bob.address) == acct_before
        assert c.account(faucet.address)["nonce"] == 20
        # and it keeps going
        t = c.sign_and_submit(faucet, "transfer", {"to": bob.address, "amount": 1})
        c.wait_committed(t.hash)
        assert c.account(bob.address)["balance"] == acct_before["balance"] + 1
    finally:
        stop(proc)


def test_cluster_up_stops_cleanly_and_resumes(tmp_path, port_block):
    base = port_block(1)
    home = tmp_path / "net"
    cmd = [sys.executable, "-m", "pocnet.node", "cluster", "up", "--peers", "1", "--home", str(home),
           "--base-port", str(base), "--fund", f"{'ab' * 32}:77"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{base}"
    try:
        wait_http(url)
        c = PeerClient(url)
        assert c.account("ab" * 32)["balance"] == 77
        h1 = wait_until(lambda: c.status()["height"] if c.status()["height"] >= 1 else None)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "peer0" in out and "stopped" in out and str(base) in out
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_http(url)
        assert c.status()["height"] >= h1
        assert c.account("ab" * 32)["balance"] == 77
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
