"""One error shape for every 4xx (unknown routes, wrong methods, validation), and an OpenAPI
spec that documents the codes the server really answers."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pocnet.node.node import Node
from pocnet.node.setup_home import init_cluster_home

SHAPE = {"error", "field", "reason"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    home = tmp_path_factory.mktemp("apierr")
    init_cluster_home(home, 1, 29940, [], chain_id="api-errors")
    with TestClient(Node(home / "peer0").create_app()) as c:
        yield c


@pytest.mark.parametrize("method, path, status, field", [
    ("get", "/no/such/route", 404, "$"),
    ("get", "/blocks/latest/extra", 404, "$"),
    ("delete", "/status", 405, "$"),
    ("get", "/tasks?status=bogus", 400, "status"),
    ("get", "/tasks?limit=0", 400, "limit"),
    ("get", "/blocks?from=x", 400, "from"),
    ("get", "/blocks/notanumber", 400, "height"),
    ("get", "/tasks/" + "ab" * 32, 404, "task_id"),
    ("get", "/accounts/zz", 400, "address"),
])
def test_every_4xx_has_the_error_shape(client, method, path, status, field):
    r = getattr(client, method)(path)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == SHAPE and body["field"] == field and body["reason"], body


def test_valid_task_filters_still_answer(client):
    for status in ("queued", "allocated", "done", "expired"):
        r = client.get(f"/tasks?status={status}")
        assert r.status_code == 200 and r.json() == {"tasks": [], "total": 0}


def test_openapi_documents_400_not_422_for_validation(client):
    spec = client.get("/openapi.json").json()
    text = str(spec)
    assert "HTTPValidationError" not in text
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            has_params = bool(op.get("parameters")) or "requestBody" in op
            if has_params:
                assert "400" in op["responses"], (method, path)
            r422 = op["responses"].get("422")
            if r422 is not None:  # only where the server itself answers 422 (a state precondition)
                assert "ErrorOut" in str(r422), (method, path)
    tasks = spec["paths"]["/tasks"]["get"]
    status_param = next(p for p in tasks["parameters"] if p["name"] == "status")
    assert "bogus" not in str(status_param) and "expired" in str(status_param)
