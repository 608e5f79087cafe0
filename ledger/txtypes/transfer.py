"""``transfer``: move tokens. Payload is exactly ``{"to": <hex address>, "amount": <int > 0>}``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.state import StateView
from pocnet.ledger.state_machine import BlockContext, get_account, register_handler, set_account
from pocnet.ledger.tx import Tx
from pocnet.ledger.txtypes.common import MAX_INT, address_field, exact_fields, int_field


@dataclass(frozen=True)
class TransferPayload:
    to: str
    amount: int


class TransferHandler:
    tx_type = "transfer"

    def check_payload(self, payload: dict[str, Any]) -> TransferPayload:
        exact_fields(payload, ("to", "amount"))
        return TransferPayload(address_field(payload, "to"), int_field(payload, "amount", 1, MAX_INT))

    def check_state(self, view: StateView, tx: Tx, p: TransferPayload) -> None:
        balance = get_account(view, tx.sender)["balance"]
        if balance < p.amount:
            raise TxRejected("payload.amount", f"insufficient balance: have {balance}, need {p.amount}", Code.UNMET)

    def apply(self, view: StateView, tx: Tx, p: TransferPayload, ctx: BlockContext) -> None:
        src = get_account(view, tx.sender)
        src["balance"] -= p.amount
        set_account(view, tx.sender, src)
        dst = get_account(view, p.to)
        if dst["balance"] + p.amount > MAX_INT:
            raise TxRejected("payload.amount", "recipient balance would overflow", Code.UNMET)
        dst["balance"] += p.amount
        set_account(view, p.to, dst)


register_handler(TransferHandler())
