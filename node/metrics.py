"""Prometheus metrics of one peer (``GET /metrics``, text exposition format).

Each peer owns its own ``CollectorRegistry`` (tests run several peers in one
process, and the global default registry would mix them). Most values are read
from the peer at scrape time (height, round, mempool, the driver's counters), so
the consensus path pays nothing for them; the node calls :meth:`NodeMetrics.on_commit`
and :meth:`tx_admitted`/:meth:`tx_refused` for the rest. Durations measured inside
pure code (signature checks, PoC ranking, FML solver) come from ``pocnet.probes``
and are per process. Every metric is listed in docs/observability.md.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, disable_created_metrics,
                               generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from pocnet import probes
from pocnet.ledger.errors import Code
from pocnet.node.api import HTTP_STATUS
from pocnet.ledger.encoding import canonical_json
from pocnet.ledger.errors import TxRejected

if TYPE_CHECKING:
    from pocnet.ledger.block import Block
    from pocnet.ledger.tx import Tx
    from pocnet.node.node import Node

# `*_created` timestamps are noise for these counters (and not in the documented names)
disable_created_metrics()

BLOCK_INTERVAL_BUCKETS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
COMMIT_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# submit → commit latency is tracked for at most this many pending txs (oldest forgotten)
MAX_TRACKED_TXS = 50_000

# Driver counters (BftDriver.stats) exported as gossip drops: key prefix -> reason label.
_DROP_PREFIX = "dropped_"
_EXTRA_DROPS = {"gossip_queue_overflow": "queue_overflow", "stale_votes": "stale_vote",
                "stale_proposals": "stale_proposal"}


def refusal_reason(exc: TxRejected) -> str:
    """A bounded label for a refused tx: the HTTP class and the top-level field."""
    field = exc.field.split(".")[0].split("[")[0] or "$"
    if exc.code is Code.BUSY:
        return "mempool_full"
    if exc.code is Code.COMMITTED:
        return "already_committed"
    return f"{HTTP_STATUS[exc.code]}_{field}"[:40]


class _LiveCollector(Collector):
    """Values read from the peer at scrape time."""

    def __init__(self, node: "Node", metrics: "NodeMetrics") -> None:
        self.node = node
        self.m = metrics

    def collect(self) -> Iterator[Any]:
        node = self.node
        yield GaugeMetricFamily("pocnet_height", "Height of the last committed block", value=node.chain.height)
        status: dict[str, Any] = {}
        try:
            status = node.driver.status()
        except Exception:  # noqa: BLE001 - a scrape must not fail because the driver is mid-change
            status = {}
        if "round" in status:
            yield GaugeMetricFamily("pocnet_consensus_round", "Current consensus round at the current height",
                                    value=int(status["round"]))
        yield GaugeMetricFamily("pocnet_mempool_txs", "Transactions in this peer's mempool",
                                value=len(node.mempool))
        yield GaugeMetricFamily("pocnet_mempool_bytes", "Canonical JSON bytes of the mempool's transactions",
                                value=self.m.mempool_bytes())
        yield GaugeMetricFamily("pocnet_event_subscribers", "Open GET /events streams",
                                value=self.m.event_subscribers())
        stats: dict[str, int] = dict(getattr(node.driver, "stats", {}) or {})
        drops = CounterMetricFamily("pocnet_gossip_dropped", "Peer messages dropped, by reason",
                                    labels=["reason"])
        for key, v in sorted(stats.items()):
            if key.startswith(_DROP_PREFIX) and key != "dropped_total":
                drops.add_metric([key[len(_DROP_PREFIX):]], v)
            elif key in _EXTRA_DROPS:
                drops.add_metric([_EXTRA_DROPS[key]], v)
        yield drops
        timeouts = CounterMetricFamily("pocnet_consensus_timeouts", "Consensus timeouts fired, by step",
                                       labels=["step"])
        for key, v in sorted(stats.items()):
            if key.startswith("timeouts_"):
                timeouts.add_metric([key[len("timeouts_"):]], v)
        yield timeouts
        yield CounterMetricFamily("pocnet_sync_blocks", "Blocks applied through block sync",
                                  value=stats.get("blocks_synced", 0))
        yield CounterMetricFamily("pocnet_sync_rejected_blocks", "Blocks refused during block sync",
                                  value=stats.get("sync_rejected_blocks", 0))
        yield CounterMetricFamily("pocnet_gossip_send_failures", "Failed POST /p2p/msgs to peers",
                                  value=stats.get("gossip_send_failed", 0))
        # process-wide probes from pure code
        c = probes.counters()
        yield CounterMetricFamily("pocnet_signature_verifications",
                                  "Ed25519 signature verifications run (process-wide)",
                                  value=c.get("signature_verifications", 0))
        d = probes.durations()
        yield self._histogram("pocnet_poc_ranking_seconds",
                              "PoC student allocation + ranking time per computation (process-wide)",
                              {"": d.get("poc_ranking")})
        yield self._histogram("pocnet_fml_solver_seconds",
                              "FML game solver time (process-wide): plan = coalitions + Stackelberg, "
                              "settle = payouts + reputation",
                              {"plan": d.get("fml_plan_round"), "settle": d.get("fml_settle_round")},
                              label="step")

    @staticmethod
    def _histogram(name: str, doc: str, series: dict[str, Any], label: str | None = None) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(name, doc, labels=[label] if label else None)
        for value, rec in series.items():
            buckets, count, total = rec if rec is not None else ([0] * (len(probes.DURATION_BUCKETS) + 1), 0, 0.0)
            cum, acc = [], 0
            for bound, n in zip([*map(str, probes.DURATION_BUCKETS), "+Inf"], buckets):
                acc += n
                cum.append((bound, acc))
            fam.add_metric([value] if label else [], cum, total)
        return fam


class NodeMetrics:
    def __init__(self, node: "Node") -> None:
        self.node = node
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.blocks = Counter("pocnet_blocks_committed", "Blocks committed by this peer (consensus or sync)",
                              registry=r)
        self.txs_committed = Counter("pocnet_txs_committed", "Transactions in blocks committed by this peer",
                                     registry=r)
        self.round_changes = Counter("pocnet_round_changes",
                                     "Rounds that ended without a decision, counted from committed headers' "
                                     "round numbers", registry=r)
        self.admitted = Counter("pocnet_txs_admitted", "Transactions admitted to the mempool", ["source"],
                                registry=r)
        # children resolved once (on first use, so a source never seen is not exported as 0):
        # .labels() per admitted tx cost ~3x the increment itself
        self._admitted_by: dict[bool, Any] = {}
        self.refused = Counter("pocnet_txs_refused", "Transactions refused at admission, by reason",
                               ["source", "reason"], registry=r)
        self.block_interval = Histogram("pocnet_block_interval_seconds",
                                        "Header timestamp difference between consecutive committed blocks",
                                        buckets=BLOCK_INTERVAL_BUCKETS, registry=r)
        self.commit_latency = Histogram("pocnet_commit_latency_seconds",
                                        "Admission to this peer's mempool -> commit of the block holding the tx",
                                        buckets=COMMIT_LATENCY_BUCKETS, registry=r)
        self._submitted: OrderedDict[str, float] = OrderedDict()  # tx hash -> monotonic admission time
        self._sizes: dict[str, int] = {}  # tx hash -> canonical size, for mempool bytes
        self._last_ts_ms: int | None = None
        self.subscriber_count = lambda: 0
        r.register(_LiveCollector(node, self))

    # -- hooks called by the node
    def tx_admitted(self, tx_hash: str, from_peer: bool) -> None:
        child = self._admitted_by.get(from_peer)
        if child is None:
            child = self._admitted_by[from_peer] = self.admitted.labels("peer" if from_peer else "client")
        child.inc()
        self._submitted[tx_hash] = time.monotonic()
        if len(self._submitted) > MAX_TRACKED_TXS:
            self._submitted.popitem(last=False)

    def tx_refused(self, exc: TxRejected, from_peer: bool) -> None:
        self.refused.labels("peer" if from_peer else "client", refusal_reason(exc)).inc()

    def on_commit(self, block: "Block") -> None:
        self.blocks.inc()
        self.txs_committed.inc(len(block.txs))
        self.round_changes.inc(block.header.round)
        ts = block.header.timestamp_ms
        if self._last_ts_ms is not None and block.height > 1:
            self.block_interval.observe(max(0, ts - self._last_ts_ms) / 1000)
        self._last_ts_ms = ts
        now = time.monotonic()
        for tx in block.txs:
            t0 = self._submitted.pop(tx.hash, None)
            if t0 is not None:
                self.commit_latency.observe(now - t0)
            self._sizes.pop(tx.hash, None)

    # -- scrape-time values
    def mempool_bytes(self) -> int:
        pool = self.node.mempool
        txs: list["Tx"] = pool.reap(len(pool))
        live = {t.hash for t in txs}
        for h in [h for h in self._sizes if h not in live]:
            del self._sizes[h]
        total = 0
        for t in txs:
            n = self._sizes.get(t.hash)
            if n is None:
                n = self._sizes[t.hash] = len(canonical_json(t.to_dict(), checked=False))
            total += n
        return total

    def event_subscribers(self) -> int:
        return self.subscriber_count()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_router(metrics: NodeMetrics) -> APIRouter:
    r = APIRouter(tags=["node"])

    @r.get("/metrics", response_class=Response,
           responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
    async def get_metrics() -> Response:
        """Prometheus metrics of this peer (names and meaning: docs/observability.md)."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return r
