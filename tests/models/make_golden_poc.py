"""Regenerate golden_poc.json (run only when the shipped weights or the rule
change on purpose; the diff is then reviewed):
    PYTHONPATH=. .venv/bin/python tests/models/make_golden_poc.py
"""
import json
from dataclasses import asdict
from pathlib import Path

from pocnet.models.poc import compute_ranking, inputs_from_scenario
from pocnet.models.quant import weights_sha256
from pocnet.models.scenario import generate_scenario


def case(seed: int, n: int, m: int, prev_hash: str) -> dict:
    s = generate_scenario(seed, n, m)
    tasks, provs = inputs_from_scenario(s)
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
