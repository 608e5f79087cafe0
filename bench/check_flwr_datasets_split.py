"""Does flwr-datasets' PathologicalPartitioner reproduce fml.learners.shard_split? (docs/fml.md)

Needs flwr-datasets (not a pocnet dependency) next to pocnet, e.g. a throwaway venv:
``python3.11 -m venv .venv-fds && .venv-fds/bin/pip install flwr-datasets==0.6.1 torch==2.13.0``,
``.venv-fds/bin/pip install --no-deps -e .``, then ``.venv-fds/bin/python bench/check_flwr_datasets_split.py``
(numbers: docs/fml.md § Flower learners).
"""
from __future__ import annotations

import numpy as np
from datasets import Dataset
from flwr_datasets.partitioner import PathologicalPartitioner

from pocnet.fml.data import load_fashion_mnist
from pocnet.fml.learners import shard_split


def stats(y: np.ndarray, parts: list[np.ndarray]) -> str:
    sizes = np.array([len(p) for p in parts])
    holders = np.bincount(np.concatenate([np.unique(y[p]) for p in parts]), minlength=10)
    return (f"size mean {sizes.mean():.1f} min {sizes.min()} max {sizes.max()} std {sizes.std():.1f}; "
            f"learners/class {holders.min()}-{holders.max()}")


def main(n: int = 40) -> None:
    y = load_fashion_mnist().y
    for seed in (0, 1, 2):
        pp = PathologicalPartitioner(num_partitions=n, partition_by="label", num_classes_per_partition=2,
                                     class_assignment_mode="first-deterministic", shuffle=True, seed=seed)
        pp.dataset = Dataset.from_dict({"label": y, "idx": np.arange(len(y))})
        fp = [np.sort(np.array(pp.load_partition(i)["idx"])) for i in range(n)]
        op, cls = shard_split(y, n, np.random.default_rng(seed))
        same_cls = sum(set(np.unique(y[a]).tolist()) == set(c) for a, c in zip(fp, cls))
        same_rows = sum(np.array_equal(a, b) for a, b in zip(fp, op))
        print(f"seed {seed}: flwr-datasets {stats(y, fp)} | shard_split {stats(y, op)} | "
              f"same class pair {same_cls}/{n}, identical shards {same_rows}/{n}")


if __name__ == "__main__":
    main()
