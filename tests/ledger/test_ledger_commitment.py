"""The bucketed state commitment (ledger/commitment.py): incremental == from scratch, proofs.

The reference root below is computed straight from the definition in
docs/state_commitment.md (all 65,536 buckets, 16 levels), independently of BucketTree.
"""
import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocnet.ledger.commitment import (EMPTY_ROOT, N_BUCKETS, BucketTree, ProofInvalid, bucket_of, key_hash,
                                      verify_proof)
from pocnet.ledger.state import State

# 2,000 keys: by the birthday bound ~30 buckets hold two or more of them
KEYS = [("acct" if i % 3 else "task", f"k{i:05d}") for i in range(2000)]
VALUES = st.one_of(st.integers(-10**20, 10**20), st.text(max_size=8),
                   st.dictionaries(st.sampled_from(["balance", "nonce", "x"]), st.integers(0, 10**9), max_size=3))
OPS = st.lists(st.tuples(st.integers(0, len(KEYS) - 1), st.one_of(st.none(), VALUES)), max_size=60)


def _cj(v) -> bytes:
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def reference_root(items: dict) -> str:
    """The definition, written out: no caching, no incremental anything."""
    buckets: list[list[tuple[bytes, bytes]]] = [[] for _ in range(N_BUCKETS)]
    for (ns, k), v in items.items():
        kh = hashlib.sha256(_cj([ns, k])).digest()
        buckets[kh[0] * 256 + kh[1]].append((kh, hashlib.sha256(_cj([ns, k, v])).digest()))
    level = [hashlib.sha256(b"\x01" + b"".join(a + b for a, b in sorted(bk))).digest() for bk in buckets]
    while len(level) > 1:
        level = [hashlib.sha256(b"\x02" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0].hex()


def test_empty_state_root_is_the_definitions():
    assert State().root == EMPTY_ROOT == reference_root({})


def test_birthday_keys_share_buckets():
    buckets = [bucket_of(key_hash(*k)) for k in KEYS]
    assert len(set(buckets)) < len(buckets) - 10


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=OPS, blocks=st.lists(OPS, max_size=4))
def test_incremental_root_equals_root_from_scratch(initial, blocks):
    model = {KEYS[i]: v for i, v in initial if v is not None}
    s = State(dict(model))
    assert s.root == reference_root(model)
    for ops in blocks:
        writes = {}
        view = s.view()
        for i, v in ops:
            if v is None:
                view.delete(*KEYS[i])
                model.pop(KEYS[i], None)
            else:
                view.set(*KEYS[i], v)
                model[KEYS[i]] = v
        writes = view.writes
        before = s.root
        preview = s.root_with(writes)
        assert s.root == before  # a preview changes nothing
        s.apply_writes(writes)
        assert s.root == preview == reference_root(model) == State(dict(model)).root


@settings(max_examples=40, deadline=None)
@given(initial=OPS, probe=st.integers(0, len(KEYS) - 1))
def test_proofs_verify_and_fail_on_tampering(initial, probe):
    model = {KEYS[i]: v for i, v in initial if v is not None}
    s = State(dict(model))
    ns, k = KEYS[probe]
    proof = s.prove(ns, k)
    json.loads(json.dumps(proof))  # plain JSON
    if (ns, k) in model:
        value = model[(ns, k)]
        verify_proof(s.root, ns, k, value, proof)
        with pytest.raises(ProofInvalid):
            verify_proof(s.root, ns, k, [value], proof)  # another value
        with pytest.raises(ProofInvalid):
            verify_proof(s.root, ns, k, value, proof, present=False)
        dropped = dict(proof, entries=[e for e in proof["entries"] if e[0] != key_hash(ns, k).hex()])
        with pytest.raises(ProofInvalid):  # hiding the entry does not prove absence
            verify_proof(s.root, ns, k, None, dropped, present=False)
    else:
        verify_proof(s.root, ns, k, None, proof, present=False)
        with pytest.raises(ProofInvalid):
            verify_proof(s.root, ns, k, 1, proof)
        forged = dict(proof, entries=sorted(proof["entries"] + [[key_hash(ns, k).hex(), "00" * 32]]))
        with pytest.raises(ProofInvalid):  # adding an entry does not prove presence
            verify_proof(s.root, ns, k, 1, forged)
    present = (ns, k) in model
    value = model.get((ns, k))
    sib = list(proof["siblings"])
    sib[probe % 16] = ("%064x" % (int(sib[probe % 16], 16) ^ 1))
    for bad in (dict(proof, siblings=sib), dict(proof, bucket=(proof["bucket"] + 1) % N_BUCKETS),
                dict(proof, siblings=sib[:-1]), {"bucket": proof["bucket"]}, dict(proof, entries=[["zz", "00"]])):
        with pytest.raises(ProofInvalid):
            verify_proof(s.root, ns, k, value, bad, present=present)
    with pytest.raises(ProofInvalid):
        verify_proof(EMPTY_ROOT if s.root != EMPTY_ROOT else "00" * 32, ns, k, value, proof, present=present)


def test_stale_update_is_refused_and_recomputed_by_state():
    tree = BucketTree()
    up = tree.preview({("a", "b"): b"\x01" * 32})
    tree.apply(up)
    with pytest.raises(ValueError, match="generation"):
        tree.apply(up)
    s = State()
    v = s.view()
    v.set("a", "b", 1)
    stale = s.preview(v.writes)
    s.apply_writes(v.writes, stale)
    v2 = s.view()
    v2.set("a", "c", 2)
    s.apply_writes(v2.writes, stale)  # stale: recomputed, not applied
    assert s.root == reference_root({("a", "b"): 1, ("a", "c"): 2})


def test_floats_are_refused_in_committed_values():
    s = State()
    v = s.view()
    v.set("a", "b", 1.5)
    with pytest.raises(ValueError, match="float"):
        s.root_with(v.writes)
