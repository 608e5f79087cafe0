"""Providers (the validators' compute offer), task allocation records and task results.

State ``prov/<validator address>``::

    {"capacity": work units per ms offered (0 = not offering),
     "backlog": work allocated and not yet reported or expired,
     "history": last HISTORY_LEN delivered amounts (oldest first),
     "allocated_total", "due_total", "delivered_total", "reputation_ppm"}

Reputation (ppm) = (delivered_total + S) * 1e6 // (due_total + S) with S = REPUTATION_PRIOR:
``due_total`` counts tasks that were settled or expired, so fresh allocations do
not count against a provider until their deadline. A provider that stops
delivering sees its tasks expire and its reputation fall, which lowers its
proof-of-contribution weight.

Tasks cannot grief a provider (issue 17):

* **Only meetable tasks count.** At allocation a task is ``meetable`` for its provider
  iff ``backlog + work <= capacity × deadline_ms`` (the provider's offer before this
  task). A meetable task that expires counts as delivering nothing; an unmeetable one
  only releases the backlog (``unmeetable_expired`` is counted, reputation untouched).
  Tasks no provider could meet are refused at check_tx (ledger/txtypes/tasks.py).
* **The submitter attests.** ``task_result`` is the provider's *claim*: the task becomes
  ``reported`` (backlog released, nothing credited). The submitter then has
  ``task_attest_heights`` heights to send ``task_attest``: the same amount confirms it
  (``done``, ``attested: true``); a smaller amount **disputes** it (``disputed``): the
  task counts neither for nor against the provider (``disputes`` is counted on its
  record) and the whole fee is burned, so a submitter gains nothing by disputing and
  cannot lower anyone's reputation by it. Without an attestation the claim stands at
  the end of the window (``done``, ``attested: false``). Crediting (reputation, fee
  ``fee × delivered // work``) happens when the task becomes ``done``.
* Finished tasks (``done``, ``expired``, ``disputed``) are deleted from state
  ``task_retention_heights`` after they finish; the txs stay in the blocks.

Deadlines per height are kept in buckets (``taskq/attest:<h>``, ``taskq/prune:<h>``:
task ids due at height h), so each block touches only what is due.

Tx types:
* ``provider_update`` ``{"capacity": int >= 0}`` — only a validator, for itself.
* ``task_result`` ``{"task_id": hex, "delivered_work": int >= 0}`` — only the provider
  the task was allocated to, while the task is ``allocated``.
* ``task_attest`` ``{"task_id": hex, "delivered_work": int >= 0}`` — only the task's
  submitter, while the task is ``reported``; at most the claimed amount.
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
from pocnet.ledger.txtypes.tasks import MAX_WORK, PROVIDERS, TASKS, burn, settle_fee

HISTORY_LEN = 8
REPUTATION_PRIOR = 1000
PPM = 1_000_000
MAX_CAPACITY = 1_000_000


def reputation_ppm(delivered_total: int, due_total: int) -> int:
    return min(PPM, (delivered_total + REPUTATION_PRIOR) * PPM // (due_total + REPUTATION_PRIOR))


def new_provider(capacity: int) -> dict[str, Any]:
    return {"capacity": capacity, "backlog": 0, "history": [], "allocated_total": 0, "due_total": 0,
            "delivered_total": 0, "reputation_ppm": PPM}


def _release(prov: dict[str, Any], work: int) -> None:
    prov["backlog"] = max(0, prov["backlog"] - work)


def _credit(prov: dict[str, Any], work: int, delivered: int) -> None:
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


def _task_in_status(view: StateView, task_id: str, status: str) -> dict[str, Any]:
    """The task ``task_id``, refused unless it exists and is ``status``."""
    task = view.get(TASKS, task_id)
    if task is None:
        raise TxRejected("payload.task_id", "no such task", Code.UNMET)
    if task["status"] != status:
        raise TxRejected("payload.task_id", f"task is {task['status']}, not {status}", Code.CONFLICT)
    return task


class TaskResultHandler:
    tx_type = "task_result"

    def check_payload(self, payload: dict[str, Any]) -> TaskResult:
        exact_fields(payload, ("task_id", "delivered_work"))
        if not isinstance(payload["task_id"], str) or not is_hex(payload["task_id"], 32):
            raise TxRejected("payload.task_id", "must be a task id (64 lowercase hex characters)")
        return TaskResult(payload["task_id"], int_field(payload, "delivered_work", 0, MAX_WORK))

    def check_state(self, view: StateView, tx: Tx, p: TaskResult) -> None:
        task = _task_in_status(view, p.task_id, "allocated")
        if task["assigned_to"] != tx.sender:
            raise TxRejected("sender", "only the provider the task was allocated to may report it", Code.FORBIDDEN)
        if p.delivered_work > task["work"]:
            raise TxRejected("payload.delivered_work", f"exceeds the task's work ({task['work']})", Code.UNMET)

    def apply(self, view: StateView, tx: Tx, p: TaskResult, ctx: BlockContext) -> None:
        task = view.get_copy(TASKS, p.task_id)
        task.update(status="reported", claimed_work=p.delivered_work, reported_height=ctx.height)
        view.set(TASKS, p.task_id, task)
        prov = view.get_copy(PROVIDERS, tx.sender)
        _release(prov, task["work"])
        view.set(PROVIDERS, tx.sender, prov)
        _bucket_add(view, "attest", ctx.height + int(view.get("meta", "task_attest_heights", 1)), p.task_id)


class TaskAttestHandler:
    """The submitter confirms (same amount) or disputes (less) a provider's claim."""

    tx_type = "task_attest"

    def check_payload(self, payload: dict[str, Any]) -> TaskResult:
        return TaskResultHandler().check_payload(payload)

    def check_state(self, view: StateView, tx: Tx, p: TaskResult) -> None:
        task = _task_in_status(view, p.task_id, "reported")
        if task["submitter"] != tx.sender:
            raise TxRejected("sender", "only the task's submitter may attest its result", Code.FORBIDDEN)
        if p.delivered_work > task["claimed_work"]:
            raise TxRejected("payload.delivered_work",
                             f"exceeds what the provider claimed ({task['claimed_work']})", Code.UNMET)

    def apply(self, view: StateView, tx: Tx, p: TaskResult, ctx: BlockContext) -> None:
        task = view.get_copy(TASKS, p.task_id)
        if p.delivered_work == task["claimed_work"]:
            _finish_done(view, task, ctx.height, attested=True)
            return
        task.update(status="disputed", delivered_work=p.delivered_work, result_height=ctx.height)
        view.set(TASKS, p.task_id, task)
        prov = view.get_copy(PROVIDERS, task["assigned_to"])
        if prov is not None:
            prov["disputes"] = prov.get("disputes", 0) + 1
            view.set(PROVIDERS, task["assigned_to"], prov)
        burn(view, int(task.get("fee", 0)))
        _schedule_prune(view, p.task_id, ctx.height)


def _finish_done(view: StateView, task: dict[str, Any], height: int, attested: bool) -> None:
    """Credit the claimed work (reputation, fee) and mark the task done."""
    delivered = task["claimed_work"]
    task.update(status="done", delivered_work=delivered, result_height=height, attested=attested)
    view.set(TASKS, task["id"], task)
    prov = view.get_copy(PROVIDERS, task["assigned_to"])
    if prov is not None:  # a provider record is never deleted today; kept defensive for joins/leaves
        _credit(prov, task["work"], delivered)
        view.set(PROVIDERS, task["assigned_to"], prov)
    settle_fee(view, task, task["assigned_to"], delivered)
    _schedule_prune(view, task["id"], height)


TASKQ = "taskq"


def _bucket_add(view: StateView, kind: str, height: int, task_id: str) -> None:
    key = f"{kind}:{height}"
    view.set(TASKQ, key, list(view.get(TASKQ, key, [])) + [task_id])


def _bucket_pop(view: StateView, kind: str, height: int) -> list[str]:
    key = f"{kind}:{height}"
    ids = view.get(TASKQ, key)
    if ids is None:
        return []
    view.delete(TASKQ, key)
    return list(ids)


def _schedule_prune(view: StateView, task_id: str, height: int) -> None:
    _bucket_add(view, "prune", height + int(view.get("meta", "task_retention_heights", 1)), task_id)


def _task_lifecycle(view: StateView, ctx: BlockContext) -> None:
    """Begin-block: unattested claims whose window ended stand; finished tasks past the
    retention are deleted."""
    for task_id in _bucket_pop(view, "attest", ctx.height):
        task = view.get_copy(TASKS, task_id)
        if task is not None and task["status"] == "reported":
            _finish_done(view, task, ctx.height, attested=False)
    for task_id in _bucket_pop(view, "prune", ctx.height):
        task = view.get(TASKS, task_id)
        if task is not None and task["status"] in FINISHED:
            view.delete(TASKS, task_id)


FINISHED = ("done", "expired", "disputed")


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
        meetable = prov["backlog"] + task["work"] <= prov["capacity"] * task["deadline_ms"]
        task.update(status="allocated", assigned_to=provider, allocated_height=ctx.height,
                    allocated_ms=ctx.timestamp_ms, meetable=meetable)
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
            _release(prov, task["work"])
            if task.get("meetable", True):
                _credit(prov, task["work"], 0)
            else:  # it could not have met the deadline: not held against it
                prov["unmeetable_expired"] = prov.get("unmeetable_expired", 0) + 1
            view.set(PROVIDERS, task["assigned_to"], prov)
            settle_fee(view, task, task["assigned_to"], 0)
            _schedule_prune(view, task_id, ctx.height)
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
register_handler(TaskAttestHandler())
register_genesis("providers", _genesis)
register_begin_block("poc_allocation", _record_allocation)
register_begin_block("task_lifecycle", _task_lifecycle)
