"""The state commitment (protocol version 2): a bucketed Merkle tree over the state entries.

Why this shape: a 256-level sparse Merkle tree costs ~256 hashes per changed key, too many
for a Python block of ~4,000 changed keys. Here every entry lands in one of 2^16 buckets
by its key hash; a bucket hashes its (few) entries in key-hash order, and a fixed 16-level
binary Merkle tree sits over the 65,536 bucket hashes. A changed key costs one bucket
rehash plus at most 16 inner hashes, shared with the other changed keys of its subtree,
so a block's cost is proportional to what it changed, never to the size of the state.
Exact definition (consensus-critical; docs/state_commitment.md has it with test vectors):

* ``kh(ns, key) = SHA-256(canonical_json([ns, key]))``: the key hash (32 bytes);
* ``leaf(ns, key, value) = SHA-256(canonical_json([ns, key, value]))``;
* bucket index ``b = kh[0] * 256 + kh[1]`` (the first two bytes, big-endian);
* ``bucket_hash = SHA-256(0x01 || kh_1 || leaf_1 || ... || kh_n || leaf_n)`` with the
  bucket's entries sorted by ``kh`` ascending (an empty bucket is ``SHA-256(0x01)``);
* ``node = SHA-256(0x02 || left || right)``; the tree is complete with 2^16 leaves (the
  bucket hashes, bucket 0 leftmost); the state root is the hex of its top node.

Pure: bytes and ints only, no clock, no I/O. ``canonical_json`` refuses floats.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pocnet.ledger.encoding import canonical_json

DEPTH = 16
N_BUCKETS = 1 << DEPTH
_LEAF0 = N_BUCKETS  # heap index of bucket 0's node: node i has children 2i, 2i+1; the root is 1
_BUCKET_TAG = b"\x01"
_NODE_TAG = b"\x02"

Key = tuple[str, str]
_sha = hashlib.sha256


def key_hash(ns: str, key: str) -> bytes:
    return _sha(canonical_json([ns, key], checked=False)).digest()


def leaf_hash(ns: str, key: str, value: Any) -> bytes:
    return _sha(canonical_json([ns, key, value])).digest()


def bucket_of(kh: bytes) -> int:
    return (kh[0] << 8) | kh[1]


def bucket_hash(entries: Mapping[bytes, bytes]) -> bytes:
    """Hash of one bucket: its (kh, leaf) pairs in kh order."""
    if not entries:
        return EMPTY_BUCKET
    return _sha(_BUCKET_TAG + b"".join(kh + entries[kh] for kh in sorted(entries))).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha(_NODE_TAG + left + right).digest()


EMPTY_BUCKET = _sha(_BUCKET_TAG).digest()


def _empty_levels() -> list[bytes]:
    """Hash of an all-empty subtree by height above the buckets (0 = one empty bucket)."""
    out = [EMPTY_BUCKET]
    for _ in range(DEPTH):
        out.append(node_hash(out[-1], out[-1]))
    return out


EMPTY_BY_HEIGHT = _empty_levels()
EMPTY_ROOT = EMPTY_BY_HEIGHT[DEPTH].hex()


@dataclass(frozen=True)
class RootUpdate:
    """The effect of a set of writes on the tree, computed without applying it (a preview).

    ``entries``: key -> (kh, leaf) or None (deleted); ``buckets``: the new contents of every
    touched bucket; ``nodes``: the new hash of every touched tree node. ``base`` is the
    tree generation it was computed on: it may be applied to that generation only.
    """

    root: str
    base: int
    entries: dict[Key, tuple[bytes, bytes] | None]
    buckets: dict[int, dict[bytes, bytes]]
    nodes: dict[int, bytes]


class BucketTree:
    """The commitment over a State's entries, kept up to date incrementally."""

    def __init__(self, items: Iterable[tuple[Key, bytes]] = ()) -> None:
        """Build from (key, leaf) pairs in one pass (a peer's startup rebuild)."""
        self.entries: dict[Key, tuple[bytes, bytes]] = {}
        self._buckets: list[dict[bytes, bytes] | None] = [None] * N_BUCKETS
        nodes: list[bytes] = [b""]
        for height in range(DEPTH, -1, -1):  # heap order: the root level first
            nodes.extend([EMPTY_BY_HEIGHT[height]] * (1 << (DEPTH - height)))
        self._nodes = nodes
        self.generation = 0
        touched: set[int] = set()
        for key, leaf in items:
            kh = key_hash(*key)
            old = self.entries.get(key)
            self.entries[key] = (kh, leaf)
            b = bucket_of(kh)
            bucket = self._buckets[b]
            if bucket is None:
                bucket = self._buckets[b] = {}
            if old is not None:
                bucket.pop(old[0], None)
            bucket[kh] = leaf
            touched.add(b)
        if touched:
            self._rehash({_LEAF0 + b: bucket_hash(self._buckets[b] or {}) for b in touched}, self._nodes)

    @property
    def root(self) -> str:
        return self._nodes[1].hex()

    def __len__(self) -> int:
        return len(self.entries)

    def leaves_in_key_order(self) -> list[bytes]:
        return [self.entries[k][1] for k in sorted(self.entries)]

    @staticmethod
    def _add_ancestors(changed: dict[int, bytes], base: list[bytes]) -> None:
        """Add to ``changed`` (bucket nodes -> new hashes) every ancestor's new hash; unchanged
        siblings come from ``base``, which is not modified."""
        level = {i >> 1 for i in changed}
        while level:
            for i in level:
                left = changed.get(2 * i)
                right = changed.get(2 * i + 1)
                changed[i] = _sha(_NODE_TAG + (base[2 * i] if left is None else left)
                                  + (base[2 * i + 1] if right is None else right)).digest()
            level = {i >> 1 for i in level if i > 1}

    @classmethod
    def _rehash(cls, changed: dict[int, bytes], base: list[bytes]) -> None:
        """Write ``changed`` (bucket nodes -> new hashes) and every ancestor's new hash into ``base``."""
        cls._add_ancestors(changed, base)
        for i, h in changed.items():
            base[i] = h

    def preview(self, changes: Mapping[Key, bytes | None]) -> RootUpdate:
        """The root after ``changes`` (key -> new leaf, or None to delete), tree unchanged."""
        entries: dict[Key, tuple[bytes, bytes] | None] = {}
        buckets: dict[int, dict[bytes, bytes]] = {}
        for key, leaf in changes.items():
            cur = self.entries.get(key)
            if cur is None and leaf is None:
                continue
            if cur is not None and cur[1] == leaf:
                continue
            kh = cur[0] if cur is not None else key_hash(*key)
            b = bucket_of(kh)
            bucket = buckets.get(b)
            if bucket is None:
                bucket = buckets[b] = dict(self._buckets[b] or {})
            if leaf is None:
                del bucket[kh]
                entries[key] = None
            else:
                bucket[kh] = leaf
                entries[key] = (kh, leaf)
        nodes = {_LEAF0 + b: bucket_hash(bk) for b, bk in buckets.items()}
        self._add_ancestors(nodes, self._nodes)
        root = nodes[1].hex() if 1 in nodes else self.root
        return RootUpdate(root, self.generation, entries, buckets, nodes)

    def apply(self, update: RootUpdate) -> None:
        if update.base != self.generation:
            raise ValueError(f"root update computed on tree generation {update.base}, tree is at {self.generation}")
        for key, entry in update.entries.items():
            if entry is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = entry
        for b, bucket in update.buckets.items():
            self._buckets[b] = bucket or None
        for i, h in update.nodes.items():
            self._nodes[i] = h
        self.generation += 1

    def prove(self, ns: str, key: str) -> dict[str, Any]:
        """Proof that (ns, key) holds its current value, or that it is absent: the whole
        bucket the key hashes to (entries in kh order) and the 16 sibling hashes, bottom up."""
        kh = key_hash(ns, key)
        b = bucket_of(kh)
        bucket = self._buckets[b] or {}
        siblings = []
        i = _LEAF0 + b
        while i > 1:
            siblings.append(self._nodes[i ^ 1].hex())
            i >>= 1
        return {"bucket": b, "entries": [[k.hex(), bucket[k].hex()] for k in sorted(bucket)],
                "siblings": siblings}


class ProofInvalid(ValueError):
    pass


def verify_proof(root: str, ns: str, key: str, value: Any, proof: Mapping[str, Any], *,
                 present: bool = True) -> None:
    """Check a proof from :meth:`BucketTree.prove` against ``root`` (hex).

    ``present=True``: (ns, key) holds ``value``; ``present=False``: (ns, key) is absent
    (``value`` ignored). Raises :class:`ProofInvalid` naming what does not match.
    """
    try:
        b = proof["bucket"]
        raw_entries = proof["entries"]
        raw_siblings = proof["siblings"]
        if not isinstance(b, int) or isinstance(b, bool) or not 0 <= b < N_BUCKETS:
            raise ProofInvalid("bucket index out of range")
        entries = [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in raw_entries]
        siblings = [bytes.fromhex(s) for s in raw_siblings]
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ProofInvalid):
            raise
        raise ProofInvalid(f"malformed proof: {exc}") from None
    if len(siblings) != DEPTH or any(len(s) != 32 for s in siblings):
        raise ProofInvalid(f"a proof has {DEPTH} sibling hashes of 32 bytes")
    if any(len(k) != 32 or len(v) != 32 for k, v in entries):
        raise ProofInvalid("entry hashes are 32 bytes")
    khs = [k for k, _ in entries]
    if any(a >= c for a, c in zip(khs, khs[1:])):
        raise ProofInvalid("bucket entries are not in strictly ascending key-hash order")
    if any(bucket_of(k) != b for k in khs):
        raise ProofInvalid("an entry's key hash is not in the proof's bucket")
    kh = key_hash(ns, key)
    if bucket_of(kh) != b:
        raise ProofInvalid("the key does not hash to the proof's bucket")
    found = dict(entries).get(kh)
    if present:
        if found is None:
            raise ProofInvalid("the key is not in its bucket")
        if found != leaf_hash(ns, key, value):
            raise ProofInvalid("the key's committed value differs")
    elif found is not None:
        raise ProofInvalid("the key is present")
    h = bucket_hash(dict(entries))
    i = _LEAF0 + b
    for s in siblings:
        h = node_hash(s, h) if i & 1 else node_hash(h, s)
        i >>= 1
    if h.hex() != root:
        raise ProofInvalid("the proof does not lead to the root")


def flat_root(leaves_in_key_order: Iterable[bytes]) -> str:
    """Protocol version 1's state root: SHA-256 over the leaves concatenated in key order
    (a full re-sort per block; kept so version-1 history replays)."""
    h = _sha()
    for leaf in leaves_in_key_order:
        h.update(leaf)
    return h.hexdigest()
