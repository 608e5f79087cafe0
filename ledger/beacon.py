"""The randomness beacon carried in every header: an ECVRF output chained height to height.

beacon_h = VRF_{sk of proposer_h}(canonical_json({"chain_id", "height": h, "prev_beacon": beacon_{h-1}}))
beacon_0 = SHA-512 of the canonical genesis file (Genesis.initial_beacon).

The proposer of h cannot choose beacon_h: for its key and that input exactly one output
verifies (RFC 9381 uniqueness). The proposer ranking of h+1 is drawn from beacon_h, so
the proposer of h can only decide whether to publish its block at all (withholding:
the next round's proposer then publishes a different beacon). Pure: no clock, no I/O.
"""
from __future__ import annotations

from pocnet.ledger import vrf
from pocnet.ledger.encoding import canonical_json

BEACON_HEX_LEN = 2 * vrf.OUTPUT_LEN
PROOF_HEX_LEN = 2 * vrf.PROOF_LEN


class BeaconInvalid(ValueError):
    """A header's beacon or beacon proof does not verify (the message says why)."""


def beacon_input(chain_id: str, height: int, prev_beacon: str) -> bytes:
    """alpha of the VRF at ``height``: binds the chain, the height and the previous beacon."""
    return canonical_json({"chain_id": chain_id, "height": height, "prev_beacon": prev_beacon}, checked=False)


def make_beacon(secret_seed: bytes, chain_id: str, height: int, prev_beacon: str) -> tuple[str, str]:
    """(beacon hex, proof hex) the proposer of ``height`` puts in its header."""
    pi = vrf.prove(secret_seed, beacon_input(chain_id, height, prev_beacon))
    return vrf.proof_to_hash(pi).hex(), pi.hex()


def check_beacon(proposer: str, chain_id: str, height: int, prev_beacon: str,
                 beacon: str, proof: str) -> None:
    """Raise BeaconInvalid unless ``proof`` is the proposer's VRF proof over this height's input
    and ``beacon`` its output."""
    if not isinstance(proof, str) or len(proof) != PROOF_HEX_LEN:
        raise BeaconInvalid("beacon_proof missing or not 80 bytes of hex")
    if not isinstance(beacon, str) or len(beacon) != BEACON_HEX_LEN:
        raise BeaconInvalid("beacon missing or not 64 bytes of hex")
    try:
        out = vrf.verify_hex(proposer, beacon_input(chain_id, height, prev_beacon), proof)
    except vrf.VrfError as exc:
        raise BeaconInvalid(f"beacon_proof does not verify for the proposer over "
                            f"(chain_id, {height}, previous beacon): {exc}") from None
    if out != beacon:
        raise BeaconInvalid("beacon is not the output of beacon_proof")
