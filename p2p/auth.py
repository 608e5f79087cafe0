"""Authenticated peer requests: a signed envelope in HTTP headers on every ``/p2p/*`` route.

Why an envelope per HTTP request (not per message): consensus messages and txs inside a
batch are already signed by their authors; what was missing is *who sent the batch*, so
that only known peers can make a node parse and verify anything and each peer's rate can
be limited. One Ed25519 signature per request (a gossip batch carries up to hundreds of
messages) keeps the cost off the per-tx path. Full rules: docs/p2p-auth.md.

Headers (all required):

- ``X-Pocnet-Peer``: the sender's node key (64 hex, its address)
- ``X-Pocnet-Ts``: sender's wall-clock time, ms since the epoch
- ``X-Pocnet-Nonce``: a per-sender counter (two requests in the same ms sign differently)
- ``X-Pocnet-Body-Sha256``: hex SHA-256 of the exact body bytes (of ``b""`` for a GET)
- ``X-Pocnet-Sig``: Ed25519 signature by the peer's key over :func:`envelope_message`:
  domain, chain id, the *recipient's* address, method, path (with query), ts, nonce, body hash

The receiver checks, cheapest first, and answers 401 at the first failure: headers
present and well formed; the peer is known (no signature work for an unknown key); ts
within ±``window_ms`` of its clock; the signature not seen before (replay); the peer's
token bucket is not empty (else 429 with Retry-After, still no signature work); the
signature; only then is the body read (bounded) and its hash compared. A signature is
remembered until its ts leaves the window, so a replay is refused whenever it arrives.
The bucket is charged only after the signature verified: a forger cannot spend an
honest peer's budget.

Nothing here is consensus-critical (wall clock, per-node rate limits).
"""
from __future__ import annotations

import hashlib
import heapq
import itertools
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pocnet.ledger.keys import KeyPair, is_hex, verify

DOMAIN = "pocnet-p2p-v1"
HDR_PEER = "x-pocnet-peer"
HDR_TS = "x-pocnet-ts"
HDR_NONCE = "x-pocnet-nonce"
HDR_BODY = "x-pocnet-body-sha256"
HDR_SIG = "x-pocnet-sig"
HDR_RETRY_MS = "x-pocnet-retry-after-ms"
WINDOW_MS = 30_000
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def envelope_message(chain_id: str, to: str, method: str, path: str, ts_ms: int, nonce: int,
                     body_sha256: str) -> bytes:
    """The bytes a peer signs for one request (newline-separated; no field may hold a newline)."""
    return "\n".join((DOMAIN, chain_id, to, method.upper(), path, str(ts_ms), str(nonce),
                      body_sha256)).encode()


class EnvelopeSigner:
    """Client side: the headers that authenticate one request from this node to peer ``to``."""

    def __init__(self, key: KeyPair, chain_id: str, clock_ms: Callable[[], int] | None = None) -> None:
        self.key = key
        self.chain_id = chain_id
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._nonce = itertools.count()

    def headers(self, to: str, method: str, path: str, body: bytes = b"") -> dict[str, str]:
        ts = self._clock_ms()
        nonce = next(self._nonce)
        digest = hashlib.sha256(body).hexdigest()
        sig = self.key.sign(envelope_message(self.chain_id, to, method, path, ts, nonce, digest))
        return {HDR_PEER: self.key.address, HDR_TS: str(ts), HDR_NONCE: str(nonce), HDR_BODY: digest,
                HDR_SIG: sig}


class AuthRefused(Exception):
    """A refused peer request: ``status`` 401 (not authenticated) or 429 (rate limited)."""

    def __init__(self, status: int, field: str, reason: str, retry_after_ms: int = 0) -> None:
        super().__init__(reason)
        self.status, self.field, self.reason, self.retry_after_ms = status, field, reason, retry_after_ms


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; one request costs one token."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.last = burst, now

    def _refill(self, now: float) -> None:
        if now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now

    def wait_s(self, now: float) -> float:
        """Seconds until a token is available (0 if one is)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1


@dataclass(frozen=True)
class Envelope:
    peer: str
    body_sha256: str


def _int_header(headers: Mapping[str, str], name: str, max_digits: int) -> int:
    raw = headers.get(name)
    if raw is None:
        raise AuthRefused(401, name, f"missing {name} header (peer routes need a signed envelope)")
    if not raw.isascii() or not raw.isdigit() or len(raw) > max_digits:
        raise AuthRefused(401, name, f"{name} must be a non-negative integer")
    return int(raw)


class PeerAuthenticator:
    """Server side. ``known(peer)`` says whether a key may use peer routes (validators on
    chain, configured full nodes); it is called before any signature work."""

    def __init__(self, my_id: str, chain_id: str, known: Callable[[str], bool], *, rate_per_s: float = 200.0,
                 burst: float = 400.0, window_ms: int = WINDOW_MS, clock_ms: Callable[[], int] | None = None,
                 monotonic: Callable[[], float] | None = None) -> None:
        self.my_id = my_id
        self.chain_id = chain_id
        self.known = known
        self.rate_per_s, self.burst, self.window_ms = rate_per_s, burst, window_ms
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._mono = monotonic or time.monotonic
        self.buckets: dict[str, TokenBucket] = {}
        self._seen: set[str] = set()
        self._expiry: list[tuple[int, str]] = []  # heap (forget-after ms, signature)
        self.stats: Counter = Counter()

    def check_headers(self, method: str, path: str, headers: Mapping[str, str]) -> Envelope:
        """Everything that does not need the body; raises AuthRefused (401 / 429)."""
        try:
            return self._check_headers(method, path, headers)
        except AuthRefused as exc:
            self.stats["p2p_auth_refused_" + ("rate" if exc.status == 429 else exc.field.replace("x-pocnet-", ""))] += 1
            raise

    def _check_headers(self, method: str, path: str, headers: Mapping[str, str]) -> Envelope:
        peer = headers.get(HDR_PEER)
        if peer is None:
            raise AuthRefused(401, HDR_PEER, "missing x-pocnet-peer header (peer routes need a signed envelope)")
        if not is_hex(peer, 32):
            raise AuthRefused(401, HDR_PEER, "x-pocnet-peer must be a node key (64 lowercase hex)")
        if not self.known(peer):
            raise AuthRefused(401, HDR_PEER, "unknown peer: not a validator or configured full node")
        ts = _int_header(headers, HDR_TS, 16)
        nonce = _int_header(headers, HDR_NONCE, 20)
        digest, sig = headers.get(HDR_BODY, ""), headers.get(HDR_SIG, "")
        if not is_hex(digest, 32):
            raise AuthRefused(401, HDR_BODY, "x-pocnet-body-sha256 must be 64 lowercase hex")
        if not is_hex(sig, 64):
            raise AuthRefused(401, HDR_SIG, "x-pocnet-sig must be 128 lowercase hex")
        now_ms = self._clock_ms()
        self._forget_expired(now_ms)
        if abs(now_ms - ts) > self.window_ms:
            raise AuthRefused(401, HDR_TS, f"timestamp {ts} is more than {self.window_ms} ms from this "
                                           f"peer's clock ({now_ms})")
        if sig in self._seen:
            raise AuthRefused(401, HDR_SIG, "replayed request (this signature was already used)")
        now = self._mono()
        bucket = self.buckets.get(peer)
        if bucket is None:
            bucket = self.buckets[peer] = TokenBucket(self.rate_per_s, self.burst, now)
        wait = bucket.wait_s(now)
        if wait > 0:
            raise AuthRefused(429, "$", f"peer {peer[:12]} exceeds {self.rate_per_s:g} requests/s",
                              retry_after_ms=max(1, int(wait * 1000) + 1))
        msg = envelope_message(self.chain_id, self.my_id, method, path, ts, nonce, digest)
        self.stats["p2p_auth_signature_checks"] += 1
        if not verify(peer, msg, sig):
            raise AuthRefused(401, HDR_SIG, "bad envelope signature")
        bucket.take(now)
        self._seen.add(sig)
        heapq.heappush(self._expiry, (ts + self.window_ms, sig))
        return Envelope(peer, digest)

    def check_body(self, env: Envelope, body: bytes) -> None:
        """The body is the one that was signed (else 401)."""
        if hashlib.sha256(body).hexdigest() != env.body_sha256:
            self.stats["p2p_auth_refused_body"] += 1
            raise AuthRefused(401, HDR_BODY, "body does not match x-pocnet-body-sha256")
        self.stats["p2p_auth_ok"] += 1

    def _forget_expired(self, now_ms: int) -> None:
        while self._expiry and self._expiry[0][0] < now_ms:
            _, sig = heapq.heappop(self._expiry)
            self._seen.discard(sig)

    def remembered(self) -> int:
        """Signatures kept against replay (bounded by the peers' rate x the window)."""
        return len(self._seen)
