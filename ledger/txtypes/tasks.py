"""``task``: an edge-computing task queued in state for proof of contribution.

Payload ``{"work": int, "demand": [int, ...], "deadline_ms": int}``: work in work
units, a resource-demand vector (1..8 non-negative integers, e.g. CPU, memory,
bandwidth shares in thousandths), and a relative deadline in milliseconds after
the block that commits it. Tasks are queued with a global sequence number so the
queue order is the commit order on every peer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pocnet.ledger.state import StateView
from pocnet.ledger.state_machine import BlockContext, register_handler
from pocnet.ledger.tx import Tx
from pocnet.ledger.txtypes.common import exact_fields, int_field, int_list_field

TASKS = "task"
MAX_WORK = 10**12
MAX_DEADLINE_MS = 30 * 24 * 3600 * 1000


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
        return None

    def apply(self, view: StateView, tx: Tx, p: TaskPayload, ctx: BlockContext) -> None:
        seq = view.get("meta", "task_seq", 0)
        view.set("meta", "task_seq", seq + 1)
        view.set(TASKS, tx.hash, {
            "id": tx.hash, "seq": seq, "submitter": tx.sender, "work": p.work, "demand": p.demand,
            "deadline_ms": p.deadline_ms, "arrival_height": ctx.height,
            "arrival_ms": ctx.timestamp_ms, "status": "queued", "assigned_to": None,
        })


register_handler(TaskHandler())
