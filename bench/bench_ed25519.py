"""Ed25519 verification cost: pocnet's strict verify (rules + libsodium) vs pyca/cryptography.

    .venv/bin/python bench/bench_ed25519.py [N]
"""
from __future__ import annotations

import os
import sys
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pocnet.ledger.keys import KeyPair, verify


def main(n: int = 20_000) -> None:
    k = KeyPair.generate()
    msg = os.urandom(300)
    sig = k.sign(msg)
    t = time.perf_counter()
    for _ in range(n):
        assert verify(k.address, msg, sig)
    strict = (time.perf_counter() - t) / n
    raw_sig, raw_pk = bytes.fromhex(sig), bytes.fromhex(k.address)
    t = time.perf_counter()
    for _ in range(n):
        Ed25519PublicKey.from_public_bytes(raw_pk).verify(raw_sig, msg)
    lax = (time.perf_counter() - t) / n
    print(f"strict (rules + PyNaCl): {strict * 1e6:.1f} us/verify; cryptography (OpenSSL): {lax * 1e6:.1f} us/verify")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
