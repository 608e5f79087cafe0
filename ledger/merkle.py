"""Merkle root of transaction hashes (RFC 6962 style domain separation).

Leaves are ``sha256(0x00 || tx_hash_bytes)``, inner nodes ``sha256(0x01 || left || right)``;
an odd node at the end of a level is promoted unchanged (no duplication, which
would make ``[a, b, c]`` and ``[a, b, c, c]`` collide). Empty list: sha256(b"").
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence


def merkle_root(tx_hashes: Sequence[str]) -> str:
    if not tx_hashes:
        return hashlib.sha256(b"").hexdigest()
    level = [hashlib.sha256(b"\x00" + bytes.fromhex(h)).digest() for h in tx_hashes]
    while len(level) > 1:
        nxt = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
               for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()
