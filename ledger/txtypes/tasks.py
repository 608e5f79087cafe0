"""``task``: an edge-computing task queued in state for proof of contribution.

Payload ``{"work": int, "demand": [int, ...], "deadline_ms": int}``: work in work
units, a resource-demand vector (1..8 non-negative integers, e.g. CPU, memory,
bandwidth shares in thousandths), and a relative deadline in milliseconds after
the block that commits it. Tasks are queued with a global sequence number so the
queue order is the commit order on every peer.

Task fee (genesis ``consensus.task_fee``, default 10 tokens, ledger/params.py): taken from
the submitter's balance and escrowed in the task. The provider the task is allocated
to receives ``fee × delivered_work // work`` when it reports the result; the rest,
and the whole fee of a task that expires, is burned (``meta/burned``). A flood of N
tasks costs N × fee whether it comes from one account or from many, so splitting it
over accounts (to get past the per-submitter cap of the PoC queue) buys nothing.

Tasks that cannot grief (issue 17; the full rule is in ledger/txtypes/providers.py):
a task whose ``work`` no provider could deliver within ``deadline_ms`` at its offered
capacity (``work > max capacity × deadline_ms``) is refused at check_tx (422 UNMET), so
it never reaches a block. Finished tasks are removed from state
``task_retention_heights`` (genesis) after they finish, so task state is bounded by
what arrives within that many heights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pocnet.ledger.state import StateView
from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.genesis import Genesis
from pocnet.ledger.state_machine import BlockContext, get_account, register_genesis, register_handler, set_account
from pocnet.ledger.tx import Tx
from pocnet.ledger.txtypes.common import exact_fields, int_field, int_list_field

TASKS = "task"
PROVIDERS = "prov"  # provider records (ledger/txtypes/providers.py)
MAX_WORK = 10**12
MAX_DEADLINE_MS = 30 * 24 * 3600 * 1000


def task_fee(view: StateView) -> int:
    return int(view.get("meta", "task_fee", 0))


def burn(view: StateView, amount: int) -> None:
    """Tokens leave circulation; the running total is kept in ``meta/burned``."""
    if amount > 0:
        view.set("meta", "burned", int(view.get("meta", "burned", 0)) + amount)


@dataclass(frozen=True)
class TaskPayload:
    work: int
    demand: list[int]
    deadline_ms: int


class TaskHandler:
    tx_type = "task"

    def check_payload(self, payload: dict[str, Any]) -> TaskPayload:
        exact_fields(payload, ("work", "demand", "deadline_ms"))
        return TaskPayload(int_field(payload, "work", 1, MAX_WORK),
                           int_list_field(payload, "demand", 1, 8, 0, 1_000_000),
                           int_field(payload, "deadline_ms", 1, MAX_DEADLINE_MS))

    def check_state(self, view: StateView, tx: Tx, p: TaskPayload) -> None:
        best = max_capacity(view)
        if p.work > best * p.deadline_ms:
            raise TxRejected("payload.deadline_ms",
                             f"infeasible: work {p.work} in {p.deadline_ms} ms needs more than the largest "
                             f"offered capacity ({best} work units per ms)", Code.UNMET)
        fee = task_fee(view)
        balance = get_account(view, tx.sender)["balance"]
        if balance < fee:
            raise TxRejected("$", f"insufficient balance for the task fee: have {balance}, need {fee}", Code.UNMET)

    def apply(self, view: StateView, tx: Tx, p: TaskPayload, ctx: BlockContext) -> None:
        fee = task_fee(view)
        if fee:
            acct = get_account(view, tx.sender)
            acct["balance"] -= fee
            set_account(view, tx.sender, acct)
        seq = view.get("meta", "task_seq", 0)
        view.set("meta", "task_seq", seq + 1)
        view.set(TASKS, tx.hash, {
            "id": tx.hash, "seq": seq, "submitter": tx.sender, "work": p.work, "demand": p.demand,
            "deadline_ms": p.deadline_ms, "arrival_height": ctx.height,
            "arrival_ms": ctx.timestamp_ms, "status": "queued", "assigned_to": None, "fee": fee,
        })


def max_capacity(view: StateView) -> int:
    """Largest capacity (work units per ms) any provider offers now."""
    return max((int(p["capacity"]) for _, p in view.items(PROVIDERS)), default=0)


def settle_fee(view: StateView, task: dict[str, Any], provider: str, delivered: int) -> None:
    """Pay the escrowed fee pro rata to the delivering provider; burn the rest."""
    fee = int(task.get("fee", 0))
    paid = fee * delivered // task["work"] if task["work"] else 0
    if paid:
        acct = get_account(view, provider)
        acct["balance"] += paid
        set_account(view, provider, acct)
    burn(view, fee - paid)


def _genesis(view: StateView, genesis: Genesis) -> None:
    view.set("meta", "task_fee", genesis.params.task_fee)
    view.set("meta", "task_attest_heights", genesis.params.task_attest_heights)
    view.set("meta", "task_retention_heights", genesis.params.task_retention_heights)


register_handler(TaskHandler())
register_genesis("task_fee", _genesis)
