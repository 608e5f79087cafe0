"""World state: namespaced key → JSON value, with copy-on-write views and a state root.

State is a map ``(namespace, key) -> value`` where values are canonical-JSON data
(ints, strings, lists, dicts — never floats). ``state_root`` commits to all of it:
``sha256(concat(leaf_i))`` over keys in sorted order, with
``leaf = sha256(canonical_json([namespace, key, value]))``. Leaf hashes are cached
so a block only rehashes what it changed. (A full Merkle tree would add
inclusion proofs; nothing in pocnet needs them yet.)
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from pocnet.ledger.encoding import canonical_json

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
    return hashlib.sha256(canonical_json([key[0], key[1], value])).digest()


class State:
    """The committed state held in memory by a peer (storage keeps the durable copy)."""

    def __init__(self, items: dict[Key, Any] | None = None) -> None:
        self._data: dict[str, dict[str, Any]] = {}
        self._leaves: dict[Key, bytes] = {}
        for key, value in (items or {}).items():
            self._put(key, value)

    def _put(self, key: Key, value: Any) -> None:
        self._data.setdefault(key[0], {})[key[1]] = value
        self._leaves[key] = _leaf(key, value)

    def _delete(self, key: Key) -> None:
        ns = self._data.get(key[0])
        if ns is not None:
            ns.pop(key[1], None)
        self._leaves.pop(key, None)

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

    def apply_writes(self, writes: dict[Key, Any]) -> None:
        for key, value in writes.items():
            if value is _DELETED:
                self._delete(key)
            else:
                self._put(key, value)

    def root_with(self, writes: dict[Key, Any]) -> str:
        """State root as if ``writes`` were applied, without applying them."""
        leaves = dict(self._leaves)
        for key, value in writes.items():
            if value is _DELETED:
                leaves.pop(key, None)
            else:
                leaves[key] = _leaf(key, value)
        h = hashlib.sha256()
        for key in sorted(leaves):
            h.update(leaves[key])
        return h.hexdigest()

    @property
    def root(self) -> str:
        return self.root_with({})

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
