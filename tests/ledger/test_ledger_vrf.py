"""ECVRF-EDWARDS25519-SHA512-TAI against RFC 9381 Appendix B.3 (Examples 16-18)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.ledger import vrf

# (SK, PK, alpha, H, pi, beta) from RFC 9381 Appendix B.3
VECTORS = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "91bbed02a99461df1ad4c6564a5f5d829d0b90cfc7903e7a5797bd658abf3318",
     "8657106690b5526245a92b003bb079ccd1a92130477671f6fc01ad16f26f723f"
     "26f8a57ccaed74ee1b190bed1f479d9727d2d0f9b005a6e456a35d4fb0daab12"
     "68a1b0db10836d9826a528ca76567805",
     "90cf1df3b703cce59e2a35b925d411164068269d7b2d29f3301c03dd757876ff"
     "66b71dda49d2de59d03450451af026798e8f81cd2e333de5cdf4f3e140fdd8ae"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "5b659fc3d4e9263fd9a4ed1d022d75eaacc20df5e09f9ea937502396598dc551",
     "f3141cd382dc42909d19ec5110469e4feae18300e94f304590abdced48aed593"
     "3bf0864a62558b3ed7f2fea45c92a465301b3bbf5e3e54ddf2d935be3b67926d"
     "a3ef39226bbc355bdc9850112c8f4b02",
     "eb4440665d3891d668e7e0fcaf587f1b4bd7fbfe99d0eb2211ccec90496310eb"
     "5e33821bc613efb94db5e5b54c70a848a0bef4553a41befc57663b56373a5031"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "bf4339376f5542811de615e3313d2b36f6f53c0acfebb482159711201192576a",
     "9bc0f79119cc5604bf02d23b4caede71393cedfbb191434dd016d30177ccbf80"
     "96bb474e53895c362d8628ee9f9ea3c0e52c7a5c691b6c18c9979866568add7a"
     "2d41b00b05081ed0f58ee5e31b3a970e",
     "645427e5d00c62a23fb703732fa5d892940935942101e456ecca7bb217c61c45"
     "2118fec1219202a0edcf038bb6373241578be7217ba85a2687f7a0310b2df19f"),
]


@pytest.mark.parametrize("sk,pk,alpha,h,pi,beta", VECTORS)
def test_rfc9381_vectors(sk: str, pk: str, alpha: str, h: str, pi: str, beta: str) -> None:
    sk_b, pk_b, alpha_b = bytes.fromhex(sk), bytes.fromhex(pk), bytes.fromhex(alpha)
    assert vrf.public_key(sk_b).hex() == pk
    assert vrf.encode_to_curve(pk_b, alpha_b).hex() == h
    proof = vrf.prove(sk_b, alpha_b)
    assert proof.hex() == pi
    assert vrf.proof_to_hash(proof).hex() == beta
    assert vrf.verify(pk_b, alpha_b, proof).hex() == beta


@pytest.mark.parametrize("sk,pk,alpha,h,pi,beta", VECTORS)
def test_rfc9381_tampered_refused(sk: str, pk: str, alpha: str, h: str, pi: str, beta: str) -> None:
    pk_b, alpha_b, pi_b = bytes.fromhex(pk), bytes.fromhex(alpha), bytes.fromhex(pi)
    with pytest.raises(vrf.VrfError):
        vrf.verify(pk_b, alpha_b + b"x", pi_b)            # other input
    other_pk = bytes.fromhex(VECTORS[(VECTORS.index((sk, pk, alpha, h, pi, beta)) + 1) % 3][1])
    with pytest.raises(vrf.VrfError):
        vrf.verify(other_pk, alpha_b, pi_b)               # other key
    for i in (0, 40, 79):                                 # a flipped bit in Gamma, c or s
        bad = bytearray(pi_b)
        bad[i] ^= 1
        with pytest.raises(vrf.VrfError):
            vrf.verify(pk_b, alpha_b, bytes(bad))
    with pytest.raises(vrf.VrfError):
        vrf.verify(pk_b, alpha_b, pi_b[:-1])              # truncated
    s_big = (int.from_bytes(pi_b[48:], "little") + vrf._Q).to_bytes(32, "little")
    with pytest.raises(vrf.VrfError):
        vrf.verify(pk_b, alpha_b, pi_b[:48] + s_big)      # s not reduced (malleability)


def test_small_order_key_refused() -> None:
    identity = (1).to_bytes(32, "little")
    with pytest.raises(vrf.VrfError):
        vrf.verify(identity, b"", bytes(80))


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=64), st.binary(max_size=64))
def test_prove_verify_unique(seed: bytes, alpha: bytes, other: bytes) -> None:
    pk = vrf.public_key(seed)
    pi = vrf.prove(seed, alpha)
    assert vrf.prove(seed, alpha) == pi                   # deterministic
    assert vrf.verify(pk, alpha, pi) == vrf.proof_to_hash(pi)
    if other != alpha:
        with pytest.raises(vrf.VrfError):
            vrf.verify(pk, other, pi)


def test_vrf_key_is_the_validator_key() -> None:
    from pocnet.ledger.keys import KeyPair
    kp = KeyPair.from_seed(bytes(range(32)))
    assert vrf.public_key(bytes(range(32))).hex() == kp.address
