"""Providers (the validators' compute offer), task allocation records and task results.

State ``prov/<validator address>``::

    {"capacity": work units per ms offered (0 = not offering),
     "backlog": work allocated and not yet reported or expired,
     "history": last HISTORY_LEN delivered amounts (oldest first),
     "allocated_total", "due_total", "delivered_total", "reputation_ppm"}

Reputation (ppm) = (delivered_total + S) * 1e6 // (due_total + S) with S = REPUTATION_PRIOR:
``due_total`` counts tasks that were reported or expired, so fresh allocations do
not count against a provider until their deadline. A provider that stops
delivering sees its tasks expire and its reputation fall, which lowers its
proof-of-contribution weight.

Tx types:
* ``provider_update`` ``{"capacity": int >= 0}`` — only a validator, for itself.
* ``task_result`` ``{"task_id": hex, "delivered_work": int >= 0}`` — only the provider
  the task was allocated to, while the task is ``allocated``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.genesis import Genesis
from pocnet.ledger.keys import is_hex
from pocnet.ledger.state import StateView
from pocnet.ledger.state_machine import BlockContext, register_begin_block, register_genesis, register_handler
from pocnet.ledger.tx import Tx
from pocnet.ledger.txtypes.common import exact_fields, int_field
from pocnet.ledger.txtypes.tasks import MAX_WORK, TASKS, settle_fee

PROVIDERS = "prov"
HISTORY_LEN = 8
REPUTATION_PRIOR = 1000
PPM = 1_000_000
MAX_CAPACITY = 1_000_000


def reputation_ppm(delivered_total: int, due_total: int) -> int:
    return min(PPM, (delivered_total + REPUTATION_PRIOR) * PPM // (due_total + REPUTATION_PRIOR))


def new_provider(capacity: int) -> dict[str, Any]:
    return {"capacity": capacity, "backlog": 0, "history": [], "allocated_total": 0, "due_total": 0,
            "delivered_total": 0, "reputation_ppm": PPM}


def _settle(prov: dict[str, Any], work: int, delivered: int) -> None:
    prov["backlog"] = max(0, prov["backlog"] - work)
    prov["due_total"] += work
    prov["delivered_total"] += delivered
    prov["history"] = (prov["history"] + [delivered])[-HISTORY_LEN:]
    prov["reputation_ppm"] = reputation_ppm(prov["delivered_total"], prov["due_total"])


@dataclass(frozen=True)
class ProviderUpdate:
    capacity: int


class ProviderUpdateHandler:
    tx_type = "provider_update"

    def check_payload(self, payload: dict[str, Any]) -> ProviderUpdate:
        exact_fields(payload, ("capacity",))
        return ProviderUpdate(int_field(payload, "capacity", 0, MAX_CAPACITY))

    def check_state(self, view: StateView, tx: Tx, p: ProviderUpdate) -> None:
        if view.get(PROVIDERS, tx.sender) is None:
            raise TxRejected("sender", "only a validator (a registered provider) may update its capacity", Code.FORBIDDEN)

    def apply(self, view: StateView, tx: Tx, p: ProviderUpdate, ctx: BlockContext) -> None:
        prov = view.get_copy(PROVIDERS, tx.sender)
        prov["capacity"] = p.capacity
        view.set(PROVIDERS, tx.sender, prov)


@dataclass(frozen=True)
class TaskResult:
    task_id: str
    delivered_work: int


class TaskResultHandler:
    tx_type = "task_result"

    def check_payload(self, payload: dict[str, Any]) -> TaskResult:
        exact_fields(payload, ("task_id", "delivered_work"))
        if not isinstance(payload["task_id"], str) or not is_hex(payload["task_id"], 32):
            raise TxRejected("payload.task_id", "must be a task id (64 lowercase hex characters)")
        return TaskResult(payload["task_id"], int_field(payload, "delivered_work", 0, MAX_WORK))

    def check_state(self, view: StateView, tx: Tx, p: TaskResult) -> None:
        task = view.get(TASKS, p.task_id)
        if task is None:
            raise TxRejected("payload.task_id", "no such task", Code.UNMET)
        if task["status"] != "allocated":
            raise TxRejected("payload.task_id", f"task is {task['status']}, not allocated", Code.CONFLICT)
        if task["assigned_to"] != tx.sender:
            raise TxRejected("sender", "only the provider the task was allocated to may report it", Code.FORBIDDEN)
        if p.delivered_work > task["work"]:
            raise TxRejected("payload.delivered_work", f"exceeds the task's work ({task['work']})", Code.UNMET)

    def apply(self, view: StateView, tx: Tx, p: TaskResult, ctx: BlockContext) -> None:
        task = view.get_copy(TASKS, p.task_id)
        task.update(status="done", delivered_work=p.delivered_work, result_height=ctx.height)
        view.set(TASKS, p.task_id, task)
        prov = view.get_copy(PROVIDERS, tx.sender)
        _settle(prov, task["work"], p.delivered_work)
        view.set(PROVIDERS, tx.sender, prov)
        settle_fee(view, task, tx.sender, p.delivered_work)


def _genesis(view: StateView, genesis: Genesis) -> None:
    for v in genesis.validators:
        view.set(PROVIDERS, v.address, new_provider(v.capacity))


def _record_allocation(view: StateView, ctx: BlockContext) -> None:
    """Begin-block: record this height's PoC allocation, then expire overdue tasks."""
    for task_id, provider in ctx.poc_allocation:
        task = view.get_copy(TASKS, task_id)
        prov = view.get_copy(PROVIDERS, provider)
        if task is None or prov is None or task["status"] != "queued":
            raise ValueError(f"PoC allocation names task {task_id[:12]} / provider {provider[:12]} "
                             "that is not queued / not a provider")
        task.update(status="allocated", assigned_to=provider, allocated_height=ctx.height,
                    allocated_ms=ctx.timestamp_ms)
        view.set(TASKS, task_id, task)
        prov["backlog"] += task["work"]
        prov["allocated_total"] += task["work"]
        view.set(PROVIDERS, provider, prov)
    open_ids = view.get("meta", "allocated_tasks", [])
    new_ids = [t for t, _ in ctx.poc_allocation]
    still_open = []
    for task_id in list(open_ids) + new_ids:
        task = view.get(TASKS, task_id)
        if task is None or task["status"] != "allocated":
            continue
        if task["allocated_ms"] + task["deadline_ms"] < ctx.timestamp_ms:
            task = dict(task, status="expired", delivered_work=0, result_height=ctx.height)
            view.set(TASKS, task_id, task)
            prov = view.get_copy(PROVIDERS, task["assigned_to"])
            _settle(prov, task["work"], 0)
            view.set(PROVIDERS, task["assigned_to"], prov)
            settle_fee(view, task, task["assigned_to"], 0)
        else:
            still_open.append(task_id)
    if still_open != list(open_ids):
        view.set("meta", "allocated_tasks", still_open)
    if ctx.poc_contribution:
        view.set(POC_NS, POC_WEIGHTS, {"height": ctx.height,
                                       "contribution": {p: int(c) for p, c in ctx.poc_contribution}})


POC_NS, POC_WEIGHTS = "poc", "weights"


def lagged_contribution(state) -> dict[str, int]:  # noqa: ANN001 - State or StateView
    """Contribution recorded by the last block (computed from the state before it):
    the weights of the next height's proposer ranking (consensus/poc_selector.py)."""
    rec = state.get(POC_NS, POC_WEIGHTS)
    return dict(rec["contribution"]) if rec else {}


register_handler(ProviderUpdateHandler())
register_handler(TaskResultHandler())
register_genesis("providers", _genesis)
register_begin_block("poc_allocation", _record_allocation)
