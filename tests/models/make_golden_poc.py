"""Regenerate golden_poc.json (run only when the shipped weights or the rule
change on purpose; the diff is then reviewed):
    PYTHONPATH=. .venv/bin/python tests/models/make_golden_poc.py
"""
import json
from dataclasses import asdict
from pathlib import Path

from pocnet.models.poc import PocProvider, PocTask, compute_ranking
from pocnet.models.quant import weights_sha256
from pocnet.models.scenario import generate_scenario


def case(seed: int, n: int, m: int, prev_hash: str) -> dict:
    s = generate_scenario(seed, n, m)
    tasks = [PocTask(s.task_ids[i], int(s.work[i]), tuple(int(x) for x in s.demand[i]), int(s.arrival[i]),
                     int(s.deadline[i])) for i in range(s.n_tasks)]
    provs = [PocProvider(s.provider_ids[p], int(s.capacity[p]), int(s.backlog[p]),
                         tuple(int(x) for x in s.history[p]), int(s.reputation_ppm[p]))
             for p in range(s.n_providers)]
    r = compute_ranking(tasks, provs, prev_hash)
    return {"prev_hash": prev_hash, "tasks": [asdict(t) for t in tasks], "providers": [asdict(p) for p in provs],
            "allocation": list(r.allocation), "contribution": r.contribution, "ranking": list(r.ranking),
            "digest": r.digest}


def main() -> None:
    cases = [case(424242, 10, 3, "00" * 32), case(777, 40, 6, "ab" * 32), case(31337, 64, 8, "5e" * 32),
             case(99, 0, 4, "cd" * 32)]
    out = {"weights_sha256": weights_sha256(), "cases": cases}
    Path(__file__).with_name("golden_poc.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
