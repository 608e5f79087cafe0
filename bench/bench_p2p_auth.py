"""Cost of the /p2p/* envelope (p2p/auth.py) per HTTP request, next to what the same request
costs to handle anyway (strict JSON parse + one tx signature per tx).

The envelope is one Ed25519 verify + one SHA-256 of the body per request, whatever the
batch holds; a refusal for an unknown key or an empty bucket does no signature work.

    .venv/bin/python bench/bench_p2p_auth.py [N]

Prints CPU time (process_time) per request, so load from other processes matters less.
"""
from __future__ import annotations

import json
import sys
import time

from pocnet.ledger.encoding import loads_strict
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import parse_tx, sign_tx, verify_tx_signature
from pocnet.p2p.auth import AuthRefused, EnvelopeSigner, PeerAuthenticator

CHAIN = "bench"


def _cpu_per_call(fn, n: int) -> float:
    t = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t) / n


def main(n: int = 2_000) -> None:
    me, peer, stranger = (KeyPair.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
    alice = KeyPair.from_seed(b"\x09" * 32)
    auth = PeerAuthenticator(me.address, CHAIN, {peer.address}.__contains__, rate_per_s=1e9, burst=1e9)
    signer, other = EnvelopeSigner(peer, CHAIN), EnvelopeSigner(stranger, CHAIN)
    nonce = 0

    def batch(ntx: int) -> bytes:
        nonlocal nonce
        txs = [sign_tx(alice, CHAIN, "transfer", nonce + i, {"to": me.address, "amount": 1}).to_dict()
               for i in range(ntx)]
        nonce += ntx
        return json.dumps({"msgs": [], "txs": txs}, separators=(",", ":")).encode()

    for ntx in (0, 1, 300):
        body = batch(ntx)
        heads = [signer.headers(me.address, "POST", "/p2p/msgs", body) for _ in range(n)]
        it = iter(heads)

        def envelope(it=it, body=body) -> None:  # bound now: the closure runs in this iteration
            h = next(it)
            auth.check_body(auth.check_headers("POST", "/p2p/msgs", h), body)

        env = _cpu_per_call(envelope, n)
        sign_cost = _cpu_per_call(lambda body=body: signer.headers(me.address, "POST", "/p2p/msgs", body), n)

        # distinct txs per repetition: verify_tx_signature remembers what it verified
        reps = max(1, n // max(1, ntx * 10))
        bodies = iter([batch(ntx) for _ in range(reps)])

        def handle(bodies=bodies) -> None:
            for obj in loads_strict(next(bodies))["txs"]:
                verify_tx_signature(parse_tx(obj, chain_id=CHAIN, check_signature=False))

        work = _cpu_per_call(handle, reps)
        print(f"batch of {ntx:3d} txs ({len(body):6d} B): envelope verify {env * 1e6:7.1f} us/request, "
              f"sign {sign_cost * 1e6:6.1f} us; parse + tx signatures {work * 1e6:9.1f} us "
              f"(envelope = {100 * env / (env + work):.1f} % of the two)")
    h = other.headers(me.address, "POST", "/p2p/msgs", b"{}")

    def unknown() -> None:
        try:
            auth.check_headers("POST", "/p2p/msgs", h)
        except AuthRefused:
            pass

    print(f"unknown key refused: {_cpu_per_call(unknown, n * 10) * 1e6:.1f} us/request (no signature work)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000)
