"""Fixtures of the FML tests."""
import pytest

from pocnet.fml import data as fml_data
from tests.fml_toy import toy_dataset


@pytest.fixture
def toy_data(monkeypatch):
    """fml.data.load_dataset returns the toy dataset (whatever name is asked for) during the test."""
    ds = toy_dataset()
    monkeypatch.setattr(fml_data, "load_dataset", lambda name, limit=None: ds)
    return ds
