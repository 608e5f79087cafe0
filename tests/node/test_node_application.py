"""The application interface: check_tx (cheap, no solvers) in the mempool, prepare / process /
finalize / commit through the chain, typed queries instead of raw state namespaces."""
import re
from pathlib import Path

import pytest

from pocnet.fml.chain_client import join_payload, open_round_payload, register_payload, round_payload
from pocnet.ledger import queries
from pocnet.ledger.app import Application, QueryError
from pocnet.ledger.block import Commit
from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.storage import Storage
from pocnet.ledger.tx import sign_tx
from pocnet.ledger.txtypes import fml as fml_txs
from pocnet.node.chain import Chain
from pocnet.node.mempool import Mempool
from tests.fmlchain.fmlchain_support import DIM, LEARNERS, MSP, profiles

ROOT = Path(__file__).resolve().parents[2]
CHAIN = "app-test"
A, B, C = (KeyPair.from_seed(bytes([0x21 + i]) * 32) for i in range(3))


class Net:
    """One chain + mempool, blocks made by hand (what the solo driver does)."""

    def __init__(self):
        g = Genesis(CHAIN, 0, (ValidatorInfo("v0", MSP.address, "http://127.0.0.1:1"),),
                    {MSP.address: 10**15, A.address: 100})
        self.chain = Chain(g, Storage("sqlite://"), signer=MSP)
        self.mempool = Mempool(self.chain.app, self.chain.next_context)
        self.nonces = {}
        self.now = 1000

    def tx(self, key, tx_type, payload):
        n = self.nonces.get(key.address, 0)
        self.nonces[key.address] = n + 1
        return sign_tx(key, CHAIN, tx_type, n, payload)

    def submit(self, *txs):
        for t in txs:
            self.mempool.add(t)

    def make_block(self):
        self.now += 1000
        prop, rejected = self.chain.build_block(0, MSP.address, self.now, self.mempool.reap(10_000))
        b = prop.block
        self.chain.commit(b, prop.result, Commit(b.height, 0, b.hash, ()))
        self.mempool.update([t.hash for t in b.txs] + [t.hash for t, _ in rejected])
        return b


@pytest.fixture
def solver_calls(monkeypatch):
    calls = []
    real = fml_txs.plan_round

    def spy(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(fml_txs, "plan_round", spy)
    return calls


def test_mempool_admits_close_registration_without_running_the_solver(solver_calls):
    n = Net()
    profs = profiles(6)
    n.submit(*[n.tx(LEARNERS[i], "fml_register", register_payload(p)) for i, p in enumerate(profs)],
             n.tx(MSP, "fml_open_round", open_round_payload(100.0, DIM, n_coalitions=2)))
    n.make_block()
    # pending register -> join works (cheap pending effects), no solver anywhere yet
    n.submit(*[n.tx(LEARNERS[i], "fml_join", join_payload(1, p.embedding)) for i, p in enumerate(profs)])
    n.make_block()
    close = n.tx(MSP, "fml_close_registration", round_payload(1))
    n.submit(close)
    # more blocks commit while the close is pending: re-checking the mempool runs no solver
    for _ in range(3):
        n.submit(n.tx(A, "transfer", {"to": B.address, "amount": 1}))
    assert solver_calls == []
    n.mempool.update([])
    assert solver_calls == [] and close.hash in n.mempool
    b = n.make_block()
    assert close.hash in [t.hash for t in b.txs]
    assert solver_calls == [1]  # once, by the proposer building the block (verify reuses its result)
    assert n.chain.app.query("account", A.address)["balance"] == 97


def test_pending_effects_let_a_tx_rely_on_an_earlier_pending_one():
    n = Net()
    n.submit(n.tx(A, "transfer", {"to": B.address, "amount": 60}))
    n.submit(n.tx(B, "transfer", {"to": C.address, "amount": 50}))   # B has 0 committed
    with pytest.raises(TxRejected) as e:
        n.submit(n.tx(A, "transfer", {"to": C.address, "amount": 50}))  # 40 left pending
    assert e.value.code is Code.UNMET
    assert n.mempool.pending_nonce(A.address) == 1 and n.mempool.pending_nonce(B.address) == 1
    assert n.mempool.pending_nonce(C.address) == 0 and n.mempool.pending_nonce(MSP.address) == 0
    n.make_block()
    assert queries.account(n.chain.state, C.address).balance == 50


def test_nonce_refusals_carry_codes():
    n = Net()
    t0 = n.tx(A, "transfer", {"to": B.address, "amount": 1})
    n.submit(t0)
    n.make_block()
    with pytest.raises(TxRejected) as e:
        n.mempool.add(sign_tx(A, CHAIN, "transfer", 0, {"to": C.address, "amount": 1}))
    assert e.value.code is Code.NONCE_USED
    with pytest.raises(TxRejected) as e:
        n.mempool.add(sign_tx(A, CHAIN, "transfer", 5, {"to": C.address, "amount": 1}))
    assert e.value.code is Code.NONCE_GAP


def test_application_prepare_process_finalize_commit():
    g = Genesis(CHAIN, 0, (ValidatorInfo("v0", MSP.address, "http://127.0.0.1:1"),), {A.address: 100})
    proposer, follower = Application(g), Application(g)
    ctx = Chain(g, Storage("sqlite://")).next_context(MSP.address)
    txs = [sign_tx(A, CHAIN, "transfer", i, {"to": B.address, "amount": 30}) for i in range(4)]
    prep = proposer.prepare_proposal(ctx, txs)
    assert len(prep.txs) == 3 and len(prep.rejected) == 1  # the 4th would overdraw
    proc = follower.process_proposal(ctx, prep.txs)
    assert proc.state_root == prep.state_root
    assert follower.finalize_block(ctx, prep.txs, proc) is proc
    assert follower.commit(proc) == proposer.commit(proposer.finalize_block(ctx, prep.txs)) == prep.state_root
    assert follower.query("account", B.address) == {"address": B.address, "balance": 90, "nonce": 0}
    assert set(follower.query("providers")) == {MSP.address}
    with pytest.raises(QueryError):
        follower.query("nope")


RAW_READ = re.compile(r"""\.(get|get_copy|items|set|delete)\(\s*["'](acct|prov|task)["']\s*[,)]""")


def test_no_raw_state_namespace_access_outside_ledger():
    bad = []
    for pkg in ("node", "consensus", "p2p", "fml", "games", "models"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if RAW_READ.search(line):
                    bad.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not bad, "read state through pocnet.ledger.queries:\n" + "\n".join(bad)
