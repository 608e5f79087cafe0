"""``Tx.size`` (kept from the encoding that computed the hash) is exactly what ``tx_size``
would encode again: the max_block_bytes rule must not depend on which path built the Tx."""
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.ledger.encoding import canonical_json
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.state_machine import tx_size
from pocnet.ledger.tx import Tx, parse_tx, sign_tx, tx_from_trusted_dict

KEY = KeyPair.from_seed(b"\x21" * 32)
_text = st.text(max_size=12)
_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _text
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_text, inner, max_size=4), max_leaves=20)


def _encoded_len(tx: Tx) -> int:
    return len(canonical_json(tx.to_dict(), checked=False))


@settings(max_examples=150, deadline=None)
@given(payload=st.dictionaries(_text, _values, max_size=6), nonce=st.integers(0, 2**63 - 1),
       chain=st.text(min_size=1, max_size=10), tx_type=st.text(min_size=1, max_size=10))
def test_size_of_signed_and_parsed_txs_is_their_encoding(payload, nonce, chain, tx_type):
    signed = sign_tx(KEY, chain, tx_type, nonce, payload)
    assert signed.size == _encoded_len(signed) == tx_size(signed)
    wire = json.loads(json.dumps(signed.to_dict()))  # as a peer receives it
    parsed = parse_tx(wire, chain_id=chain)
    assert parsed.hash == signed.hash
    assert parsed.size == _encoded_len(parsed) == tx_size(parsed) == signed.size


def test_size_unknown_is_computed():
    signed = sign_tx(KEY, "c", "transfer", 0, {"to": KEY.address, "amount": 1})
    bare = Tx(signed.chain_id, signed.type, signed.sender, signed.nonce, signed.payload, signed.signature)
    assert bare.size == 0 and tx_size(bare) == signed.size
    trusted = tx_from_trusted_dict(signed.to_dict())
    assert tx_size(trusted) == signed.size and trusted.hash == signed.hash
