"""Golden chain vectors: a scripted history run through the real chain, with its roots checked in.

Four in-process peers (``node.chain.Chain`` on SQLite, the shipped PoC
selector, VRF beacons, the real state machine) take turns to build each
block; the other three verify it (re-executing it) and all four commit it.
The history: genesis, transfers, PoC tasks (allocated by the student model),
task results (attested by their submitters, one disputed, the rest standing after the attestation window) and one expiry, 40 FML learners registering, and three full FML
rounds (open, join, close registration -> plan, heads' reports, close ->
settlement). Round 3 is a *sensitivity* round: the chain's reputation
incentive R is 10^12 tokens (rounds 1-2 override it to 5), so a share
R Phi(r)/|S| is ~10^17 micro-tokens and every last bit of Phi's ``exp``
reaches the stored integers; its reported losses were searched (``--write``)
so that one of its ``exp`` arguments is one where glibc's FMA and SSE2
``exp`` disagree. The portable math must give the checked-in roots under any
arithmetic; the old float path (``--platform-math``) must not.

    .venv/bin/python -m tests.golden.golden_chain --check            # replay, compare with chain_v1.json
    .venv/bin/python -m tests.golden.golden_chain --write            # regenerate chain_v1.json
    .venv/bin/python -m tests.golden.golden_chain --print [--platform-math]   # roots as JSON on stdout

State roots and block hashes are compared separately: a header-format change
alone changes every block hash; it also changes state roots, because FML
round seeds come from ``prev_hash`` and PoC rankings from the beacon -- so
after a header change, regenerate and check that only the expected fields moved.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).with_name("chain_v1.json")
REGENERATE = ".venv/bin/python -m tests.golden.golden_chain --write"
CHAIN_ID = "pocnet-golden"
GENESIS_MS = 1_750_000_000_000
N_LEARNERS = 40
DIM = 6
GLIBC_MASK = "glibc.cpu.hwcaps=-AVX2,-FMA,-FMA4,-AVX512F"
NPY_MASK = "AVX512_SPR,AVX512_ICL,X86_V4"
SENSITIVE_R_TOKENS = 10**12  # round 3's reputation incentive (genesis R); rounds 1-2 override it to 5 tokens


def _keys():
    from pocnet.ledger.keys import KeyPair
    vals = [KeyPair.from_seed(bytes([0xA0 + i]) * 32) for i in range(4)]
    faucet = KeyPair.from_seed(b"\xf0" * 32)
    msp = KeyPair.from_seed(b"\xf1" * 32)
    users = [KeyPair.from_seed(bytes([0xE0 + i]) * 32) for i in range(3)]
    learners = [KeyPair.from_seed(bytes([0x10 + i]) * 32) for i in range(N_LEARNERS)]
    return vals, faucet, msp, users, learners


def _profiles(learners) -> list:
    """40 learners, docs/model.md ranges, four embedding clusters (so similarity and heads matter)."""
    from pocnet.games.profile import LearnerProfile
    rng = random.Random(20261130)
    out = []
    for i, k in enumerate(learners):
        centre = [1.0 if d % 4 == i % 4 else 0.1 for d in range(DIM)]
        f_min = rng.uniform(0.1e9, 0.5e9)
        out.append(LearnerProfile(
            address=k.address, data_size=float(rng.randint(200, 900)), kappa=1e-26, f_min=f_min,
            f_max=rng.uniform(1.0e9, 2.0e9), rate=rng.uniform(2e6, 10e6), tolerated_time=rng.uniform(5.0, 15.0),
            embedding=tuple(x + rng.uniform(-0.05, 0.05) for x in centre), active=(i % 10 != 7)))
    return out


class Replay:
    """Four peers on one scripted history; ``records`` collects (height, block hash, state root, txs)."""

    def __init__(self, home: Path) -> None:
        from pocnet.consensus.poc_selector import PocSelector
        from pocnet.ledger.genesis import Genesis, ValidatorInfo
        from pocnet.ledger.storage import Storage, sqlite_url
        from pocnet.node.chain import Chain
        self.vals, self.faucet, self.msp, self.users, self.learners = _keys()
        vinfo = tuple(ValidatorInfo(f"v{i}", k.address, f"http://127.0.0.1:{27100 + i}", capacity=2 + i)
                      for i, k in enumerate(self.vals))
        self.genesis = Genesis(CHAIN_ID, GENESIS_MS, vinfo, {self.faucet.address: 10**18},
                               game_params={"R": repr(float(SENSITIVE_R_TOKENS))})
        poc = PocSelector()
        self.peers = [Chain(self.genesis, Storage(sqlite_url(home / f"peer{i}.db")), poc, signer=k)
                      for i, k in enumerate(self.vals)]
        self.nonces: dict[str, int] = {}
        self.records: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ mechanics
    @property
    def state(self):
        return self.peers[0].state

    @property
    def height(self) -> int:
        return self.peers[0].height

    def tx(self, key, tx_type: str, payload: dict):
        from pocnet.ledger.tx import sign_tx
        n = self.nonces.get(key.address, 0)
        self.nonces[key.address] = n + 1
        return sign_tx(key, CHAIN_ID, tx_type, n, payload)

    def block(self, txs: list) -> None:
        """Peer h mod 4 builds; the others verify; everyone commits. Every tx must be included."""
        from pocnet.ledger.block import Commit
        h = self.height + 1
        builder = h % len(self.peers)
        prop, rejected = self.peers[builder].build_block(0, self.vals[builder].address, GENESIS_MS + 1000 * h, txs)
        if rejected or len(prop.block.txs) != len(txs):
            raise RuntimeError(f"height {h}: scripted txs refused: {[(t.type, str(e)) for t, e in rejected]}")
        views = {builder: prop.result}
        for i, peer in enumerate(self.peers):
            if i != builder:
                views[i] = peer.verify_block(prop.block)
        commit = Commit(h, 0, prop.block.hash, ())
        for i, peer in enumerate(self.peers):
            peer.commit(prop.block, views[i], commit)
        roots = {p.state.root for p in self.peers}
        if len(roots) != 1:
            raise RuntimeError(f"height {h}: peers disagree on the state root: {roots}")
        self.records.append({"height": h, "block_hash": prop.block.hash, "state_root": prop.block.header.state_root,
                             "txs": len(txs)})

    # ------------------------------------------------------------------ history pieces
    def task_results(self) -> list:
        """Every task allocated to a validator is reported (delivered work: all, or 3/4 of it for v2)."""
        out = []
        by_addr = {k.address: k for k in self.vals}
        for tid, t in self.state.items("task"):
            if t["status"] == "allocated" and t["deadline_ms"] > 5_000:  # short-deadline tasks are left to expire
                share = 3 if t["assigned_to"] == self.vals[2].address else 4
                out.append(self.tx(by_addr[t["assigned_to"]], "task_result",
                                   {"task_id": tid, "delivered_work": t["work"] * share // 4}))
        return out

    def task_attests(self) -> list:
        """Submitters attest reported results: the claim, except the first reported task of
        users[1], which is disputed (half of the claim); the others' claims stand later."""
        out = []
        by_addr = {k.address: k for k in self.users}
        disputed = False
        for tid, t in sorted(self.state.items("task"), key=lambda kv: kv[1]["seq"]):
            if t["status"] != "reported" or t["submitter"] not in by_addr or t["submitter"] == self.users[0].address:
                continue
            amount = t["claimed_work"]
            if t["submitter"] == self.users[1].address and not disputed:
                amount, disputed = amount // 2, True
            out.append(self.tx(by_addr[t["submitter"]], "task_attest", {"task_id": tid, "delivered_work": amount}))
        return out

    def tasks(self, salt: int) -> list:
        out = []
        for j, u in enumerate(self.users):
            out.append(self.tx(u, "task", {"work": 400 + 97 * ((salt + j) % 7), "demand": [100 * (j + 1), 20 + salt % 50],
                                           "deadline_ms": 1_500 if (salt, j) == (1, 2) else 60_000}))
        return out

    def fml_round_open(self, rid: int, profiles: list, overrides: dict) -> None:
        """Open round ``rid``, everyone joins, registration closes (the chain plans the round)."""
        from pocnet.fml.chain_client import join_payload, open_round_payload, round_payload
        self.block([self.tx(self.msp, "fml_open_round", open_round_payload(2_000.0, DIM, **overrides))]
                   + self.tasks(rid * 10))
        self.block([self.tx(k, "fml_join", join_payload(rid, p.embedding)) for k, p in zip(self.learners, profiles)]
                   + self.task_results())
        self.block([self.tx(self.msp, "fml_close_registration", round_payload(rid))] + self.task_results())

    def report_txs(self, rid: int, loss_offset: int = 0) -> list:
        """The heads' fml_report txs on the stored plan (one missing report in round 2, one misreport in 1)."""
        from pocnet.fml.chain_client import report_payloads
        from pocnet.games.round import MemberReport, RoundPlan
        from pocnet.ledger.txtypes import fml_codec as fc
        plan = RoundPlan.from_dict(self.state.get(fc.NS_PLAN, fc.round_key(rid)))
        by_addr = {k.address: k for k in self.learners}
        txs = []
        for hi, head in enumerate(plan.heads):
            members = plan.partition[head]
            reports = {}
            for j, a in enumerate(members):
                if (rid, hi, j) == (2, 0, 1):
                    continue  # one member is never reported on: flagged "missing"
                t = plan.predicted_times[a] * (0.9 if (rid, hi, j) == (1, 1, 2) else 1.0 + 0.01 * (j % 5))
                # loss_offset moves members by different amounts, so normalised contributions (and Phi) move
                loss = 0.001 * ((7 * j + 3 * rid + hi) % 23) + loss_offset * 1e-6 * (j % 3)
                reports[a] = MemberReport(loss, 1.0 + j, t)
            for p in report_payloads(rid, reports):
                txs.append(self.tx(by_addr[head], "fml_report", p))
        return txs

    def fml_round(self, rid: int, profiles: list, overrides: dict, loss_offset: int = 0) -> None:
        from pocnet.fml.chain_client import round_payload
        self.fml_round_open(rid, profiles, overrides)
        self.block(self.report_txs(rid, loss_offset) + self.task_results())
        self.block([self.tx(self.msp, "fml_close_round", round_payload(rid))] + self.task_results())

    def run(self, sensitive_offset: int, stop_before_round3_reports: bool = False) -> None:
        from pocnet.fml.chain_client import register_payload
        profiles = _profiles(self.learners)
        self.block([self.tx(self.faucet, "transfer", {"to": self.msp.address, "amount": 10**17})]
                   + [self.tx(self.faucet, "transfer", {"to": u.address, "amount": 10**12}) for u in self.users]
                   + [self.tx(self.faucet, "transfer", {"to": k.address, "amount": 1_000 + i})
                      for i, k in enumerate(self.learners)])
        self.block(self.tasks(1))
        self.block([self.tx(k, "fml_register", register_payload(p)) for k, p in zip(self.learners, profiles)])
        self.block(self.tasks(2) + self.task_results())
        self.block(self.task_results() + [self.tx(self.users[0], "transfer", {"to": self.users[1].address,
                                                                            "amount": 12_345})])
        self.block(self.task_attests())
        normal = {"n_coalitions": 4, "R": 5.0}
        self.fml_round(1, profiles, normal)
        # round 2: two learners change their registration between rounds; a different K
        moved = [profiles[0].__class__(**{**profiles[i].__dict__, "tolerated_time": 7.5}) for i in (3, 4)]
        self.block([self.tx(self.learners[i], "fml_register", register_payload(m)) for i, m in zip((3, 4), moved)]
                   + self.task_results())
        self.fml_round(2, profiles, {"n_coalitions": 5, "R": 5.0})
        if stop_before_round3_reports:
            return
        self.fml_round(3, profiles, {"n_coalitions": 4}, loss_offset=sensitive_offset)  # R from genesis
        # validator set by transactions: a user joins (bond locked), then leaves (unbonding starts)
        joiner = self.users[2]
        self.block(self.tasks(4) + self.task_results()
                   + [self.tx(joiner, "validator_join", {"validator": joiner.address, "url": "http://127.0.0.1:27199",
                                                         "bond": 1500, "capacity": 3})])
        self.block(self.task_results() + self.task_attests() + [self.tx(joiner, "validator_leave", {})])


def replay(sensitive_offset: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="pocnet-golden-") as home:
        r = Replay(Path(home))
        r.run(sensitive_offset)
        return r.records


# ---------------------------------------------------------------------- sensitivity search (--write)
def _round3_exp_arguments(offsets: range) -> dict[int, list[float]]:
    """For each candidate loss offset: the arguments of every ``pmath.exp`` call while round 3 settles.

    Runs the real pipeline: peer 0 builds (never commits) a block with round 3's reports and its
    fml_close_round, so whatever the settlement rule is, the arguments are the chain's.
    """
    from pocnet.fml.chain_client import round_payload
    from pocnet.games import pmath
    with tempfile.TemporaryDirectory(prefix="pocnet-golden-") as home:
        r = Replay(Path(home))
        r.run(0, stop_before_round3_reports=True)
        r.fml_round_open(3, _profiles(r.learners), {"n_coalitions": 4})
        out: dict[int, list[float]] = {}
        real_exp = pmath.exp
        h = r.height + 1
        for off in offsets:
            args: list[float] = []

            def spy(x: float, _args: list[float] = args) -> float:
                _args.append(x)
                return real_exp(x)
            saved = dict(r.nonces)
            txs = r.report_txs(3, off) + [r.tx(r.msp, "fml_close_round", round_payload(3))]
            r.nonces = saved
            pmath.exp = spy
            try:
                prop = r.peers[0].build_block(0, r.vals[0].address, GENESIS_MS + 1000 * h, txs)
            finally:
                pmath.exp = real_exp
            if prop[1]:
                raise RuntimeError(f"sensitivity search: txs refused: {prop[1]}")
            out[off] = args
        return out


def _libm_phi_bits(args: list[float], env: dict[str, str]) -> list[str]:
    """Phi = 2 rho0 / (1 + exp(z)) with libm's exp, in a process started with ``env`` (rho0 = 0.5).

    Phi, not exp(z): adding 1 drops exp's last bit about half the time, so only a Phi that differs reaches state.
    """
    code = ("import json,math,sys; "
            "print(json.dumps([(1.0 / (1.0 + math.exp(x))).hex() for x in json.load(sys.stdin)]))")
    res = subprocess.run([sys.executable, "-c", code], input=json.dumps(args), capture_output=True, text=True,
                         env={**os.environ, **env}, check=True)
    return json.loads(res.stdout)


def find_sensitive_offset(limit: int = 4000) -> tuple[int | None, dict[str, Any]]:
    """Smallest loss offset (micro-units) for which Phi via glibc's exp differs, FMA vs SSE2, in round 3."""
    from tests.platform_math import platform_math
    with platform_math():  # the arguments the old float path passes to exp (its pow may differ from powi)
        cands = _round3_exp_arguments(range(limit))
    flat = sorted({x for xs in cands.values() for x in xs})
    plain = dict(zip(flat, _libm_phi_bits(flat, {})))
    masked = dict(zip(flat, _libm_phi_bits(flat, {"GLIBC_TUNABLES": GLIBC_MASK})))
    differing = {x for x in flat if plain[x] != masked[x]}
    info = {"candidates": limit, "distinct_exp_arguments": len(flat), "phi_differing_under_glibc_mask": len(differing)}
    for off in range(limit):
        hits = [x for x in cands[off] if x in differing]
        if hits:
            info["argument"] = hits[0].hex()
            info["phi_fma"], info["phi_sse2"] = plain[hits[0]], masked[hits[0]]
            return off, info
    return None, info


# ---------------------------------------------------------------------- CLI
def arithmetic(want: dict[str, Any]) -> str:
    """Which libm / numpy variants this process runs (so a CI log shows that a mask took effect)."""
    import math

    import numpy as np
    info = want["inputs"]["sensitivity_search"]
    libm = "?"
    if "argument" in info:
        phi = (1.0 / (1.0 + math.exp(float.fromhex(info["argument"])))).hex()
        libm = "FMA exp" if phi == info["phi_fma"] else "SSE2 exp" if phi == info["phi_sse2"] else phi
    try:
        feats = np._core._multiarray_umath.__cpu_features__  # type: ignore[attr-defined]
        npy = ",".join(f for f in ("AVX512F", "AVX512_SKX", "AVX512_ICL", "AVX512_SPR", "AVX2", "FMA3")
                       if feats.get(f)) or "baseline"
    except AttributeError:
        npy = "?"
    return f"glibc {libm}; numpy dispatch {npy}"


def load() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


def compare(want: dict[str, Any], got: list[dict[str, Any]]) -> list[str]:
    """Differences, state roots first (state transition), then block hashes (headers)."""
    problems = []
    w = want["blocks"]
    if len(w) != len(got):
        problems.append(f"history has {len(got)} blocks, golden file {len(w)}")
    for a, b in zip(w, got):
        if a["state_root"] != b["state_root"]:
            problems.append(f"height {a['height']}: state_root {b['state_root']} != golden {a['state_root']} "
                            "(the state transition computes something else)")
            break
    for a, b in zip(w, got):
        if a["block_hash"] != b["block_hash"]:
            problems.append(f"height {a['height']}: block hash {b['block_hash']} != golden {a['block_hash']}")
            break
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", action="store_true", help="replay and compare with the golden file (exit 1 on a difference)")
    g.add_argument("--write", action="store_true", help="search the sensitive offset, replay, write the golden file")
    g.add_argument("--print", action="store_true", help="replay and print the records as JSON")
    ap.add_argument("--platform-math", action="store_true",
                    help="test only: run the old libm/numpy float path (tests/platform_math.py)")
    args = ap.parse_args(argv)
    if args.platform_math:
        from tests.platform_math import platform_math
        ctx = platform_math()
    else:
        from contextlib import nullcontext
        ctx = nullcontext()
    with ctx:
        if args.write:
            offset, info = find_sensitive_offset()
            print(f"sensitivity search: {info}; offset {offset}", file=sys.stderr)
            records = replay(offset or 0)
            GOLDEN.write_text(json.dumps({
                "format": 1, "chain_id": CHAIN_ID, "regenerate": REGENERATE,
                "inputs": {"sensitive_offset": offset or 0, "sensitivity_search": info},
                "final_state_root": records[-1]["state_root"], "blocks": records}, indent=1) + "\n")
            print(f"wrote {GOLDEN} ({len(records)} blocks, final root {records[-1]['state_root']})")
            return 0
        want = load()
        records = replay(want["inputs"]["sensitive_offset"])
        if args.print:
            print(json.dumps({"final_state_root": records[-1]["state_root"], "blocks": records}))
            return 0
        problems = compare(want, records)
        if problems:
            print("golden chain replay differs:\n  " + "\n  ".join(problems)
                  + f"\nIf the change is intended (new rules or header format), regenerate: {REGENERATE}",
                  file=sys.stderr)
            return 1
        print(f"golden chain: {len(records)} blocks, state roots and block hashes as checked in "
              f"(final root {records[-1]['state_root'][:16]}); arithmetic of this process: {arithmetic(want)}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
