"""World state: namespaced key → JSON value, with copy-on-write views and a state root.

State is a map ``(namespace, key) -> value`` where values are canonical-JSON data
(ints, strings, lists, dicts — never floats). ``root`` commits to all of it through
the bucketed Merkle tree of ``ledger/commitment.py`` (protocol version 2), kept up to
date per block in time proportional to the keys the block changed; ``prove`` gives
inclusion / non-inclusion proofs. ``flat_root_with`` is protocol version 1's root
(SHA-256 over all leaves in key order), kept so version-1 history replays.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pocnet.ledger.commitment import BucketTree, RootUpdate, flat_root, leaf_hash

Key = tuple[str, str]
_DELETED = object()


def _copy(v: Any) -> Any:
    """Copy of JSON-like data (much cheaper than copy.deepcopy: no memo, known types)."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _leaf(key: Key, value: Any) -> bytes:
    return leaf_hash(key[0], key[1], value)


class State:
    """The committed state held in memory by a peer (storage keeps the durable copy)."""

    def __init__(self, items: dict[Key, Any] | None = None) -> None:
        self._data: dict[str, dict[str, Any]] = {}
        for key, value in (items or {}).items():
            self._data.setdefault(key[0], {})[key[1]] = value
        self._tree = BucketTree((key, _leaf(key, value)) for key, value in (items or {}).items())

    def _put(self, key: Key, value: Any) -> None:
        self._data.setdefault(key[0], {})[key[1]] = value

    def _delete(self, key: Key) -> None:
        ns = self._data.get(key[0])
        if ns is not None:
            ns.pop(key[1], None)

    def get(self, ns: str, key: str, default: Any = None) -> Any:
        return self._data.get(ns, {}).get(key, default)

    def items(self, ns: str) -> Iterator[tuple[str, Any]]:
        """Entries of one namespace in key order (deterministic)."""
        d = self._data.get(ns, {})
        for k in sorted(d):
            yield k, d[k]

    def all_items(self) -> Iterator[tuple[Key, Any]]:
        for ns in sorted(self._data):
            for k, v in self.items(ns):
                yield (ns, k), v

    def apply_writes(self, writes: dict[Key, Any], update: RootUpdate | None = None) -> None:
        """Apply ``writes``; ``update`` is their :meth:`preview` when the caller has it
        (saves rehashing), computed on this state as it is now."""
        if update is None or update.base != self._tree.generation:
            update = self.preview(writes)
        for key, value in writes.items():
            if value is _DELETED:
                self._delete(key)
            else:
                self._put(key, value)
        self._tree.apply(update)

    def preview(self, writes: dict[Key, Any]) -> RootUpdate:
        """The commitment after ``writes`` (its ``root`` is the state root), state unchanged.

        Cost: one leaf hash per written key, one bucket hash per touched bucket and the
        touched tree nodes above them; independent of the size of the state."""
        return self._tree.preview({key: None if value is _DELETED else _leaf(key, value)
                                   for key, value in writes.items()})

    def root_with(self, writes: dict[Key, Any]) -> str:
        """State root as if ``writes`` were applied, without applying them."""
        return self.preview(writes).root

    @property
    def root(self) -> str:
        """The state root of the committed state: O(1), the tree is kept up to date."""
        return self._tree.root

    def flat_root_with(self, writes: dict[Key, Any]) -> str:
        """Protocol version 1's state root (re-sorts and rehashes every leaf: O(n log n))."""
        leaves = {k: e[1] for k, e in self._tree.entries.items()}
        for key, value in writes.items():
            if value is _DELETED:
                leaves.pop(key, None)
            else:
                leaves[key] = _leaf(key, value)
        return flat_root(leaves[k] for k in sorted(leaves))

    def prove(self, ns: str, key: str) -> dict[str, Any]:
        """Inclusion (or non-inclusion) proof of (ns, key) against :attr:`root`
        (``ledger.commitment.verify_proof`` checks it)."""
        return self._tree.prove(ns, key)

    def __len__(self) -> int:
        return len(self._tree)

    def __contains__(self, key: object) -> bool:
        return key in self._tree.entries

    def view(self) -> "StateView":
        return StateView(self)


class StateView:
    """Copy-on-write overlay over a State (or another view).

    Transactions run in a child view that is merged only if they succeed, so a
    tx failing halfway never leaves a partial write behind.
    """

    def __init__(self, base: "State | StateView") -> None:
        self._base = base
        self.writes: dict[Key, Any] = {}

    def get(self, ns: str, key: str, default: Any = None) -> Any:
        """The stored value itself: treat it as read-only (use :meth:`get_copy` to modify).

        Not copying here is what keeps a transfer at a few microseconds of state access.
        """
        k = (ns, key)
        if k in self.writes:
            v = self.writes[k]
            return default if v is _DELETED else v
        v = self._base.get(ns, key, _DELETED)
        return default if v is _DELETED else v

    def get_copy(self, ns: str, key: str, default: Any = None) -> Any:
        """A private copy of the value, safe to mutate and ``set`` back."""
        return _copy(self.get(ns, key, default))

    def set(self, ns: str, key: str, value: Any) -> None:
        self.writes[(ns, key)] = value

    def delete(self, ns: str, key: str) -> None:
        self.writes[(ns, key)] = _DELETED

    def items(self, ns: str) -> Iterator[tuple[str, Any]]:
        merged = dict(self._base.items(ns))
        for (wns, k), v in self.writes.items():
            if wns == ns:
                if v is _DELETED:
                    merged.pop(k, None)
                else:
                    merged[k] = v
        for k in sorted(merged):
            yield k, _copy(merged[k])

    def child(self) -> "StateView":
        return StateView(self)

    def merge_into_parent(self) -> None:
        if isinstance(self._base, StateView):
            self._base.writes.update(self.writes)
        else:
            raise TypeError("top-level view: use State.apply_writes(view.writes)")

    def is_deleted(self, value: Any) -> bool:
        return value is _DELETED


def is_deleted_marker(value: Any) -> bool:
    return value is _DELETED
