"""Typed read access to application state, for code outside ``ledger/``.

State is stored as namespaced JSON values (``ledger/state.py``); which namespace
holds what, and the records' shapes, are the ledger's business. Consensus, the
node and clients read through these functions instead of ``state.get("acct", ...)``,
so a change of layout is a change in ``ledger/`` only. Every function takes a
committed :class:`State` or a :class:`StateView` (e.g. the mempool's pending view)
and returns copies or frozen records: callers cannot write state through them.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

ACCOUNTS = "acct"
TASKS = "task"
PROVIDERS = "prov"
VALIDATORS = "validator"


class Readable(Protocol):
    def get(self, ns: str, key: str, default: Any = None) -> Any: ...

    def items(self, ns: str) -> Iterator[tuple[str, Any]]: ...


@dataclass(frozen=True)
class Account:
    address: str
    balance: int
    nonce: int


@dataclass(frozen=True)
class Task:
    """An edge-computing task (``task`` tx) and its allocation / result."""

    id: str
    seq: int
    submitter: str
    work: int
    demand: tuple[int, ...]
    deadline_ms: int
    arrival_height: int
    arrival_ms: int
    status: str                     # queued | allocated | reported | done | disputed | expired
    assigned_to: str | None
    record: dict[str, Any]          # the full stored record (extra fields: result_height, ...)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.record)


@dataclass(frozen=True)
class Provider:
    """A validator's compute offer and delivery record (PoC input)."""

    address: str
    capacity: int
    backlog: int
    history: tuple[int, ...]
    reputation_ppm: int
    record: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.record)


def account(state: Readable, address: str) -> Account:
    a = state.get(ACCOUNTS, address)
    return Account(address, a["balance"], a["nonce"]) if a else Account(address, 0, 0)


def account_exists(state: Readable, address: str) -> bool:
    return state.get(ACCOUNTS, address) is not None


def _task(rec: dict[str, Any]) -> Task:
    return Task(rec["id"], rec["seq"], rec["submitter"], rec["work"], tuple(rec["demand"]), rec["deadline_ms"],
                rec["arrival_height"], rec["arrival_ms"], rec["status"], rec.get("assigned_to"), dict(rec))


def task(state: Readable, task_id: str) -> Task | None:
    rec = state.get(TASKS, task_id)
    return _task(rec) if rec else None


def tasks(state: Readable, status: str | None = None) -> list[Task]:
    """Tasks (optionally of one status) in queue order (their global sequence number)."""
    out = [_task(t) for _, t in state.items(TASKS) if status is None or t["status"] == status]
    out.sort(key=lambda t: t.seq)
    return out


def provider(state: Readable, address: str) -> Provider | None:
    p = state.get(PROVIDERS, address)
    if p is None:
        return None
    return Provider(address, p["capacity"], p["backlog"], tuple(p["history"]), p["reputation_ppm"], dict(p))


def providers(state: Readable) -> list[Provider]:
    """Every provider record, by address."""
    out = []
    for addr, _ in state.items(PROVIDERS):
        p = provider(state, addr)
        if p is not None:
            out.append(p)
    return out
