"""Public REST API (FastAPI). OpenAPI docs at ``/docs``.

Every refusal is a JSON body ``{"error": ..., "field": ..., "reason": ...}`` with a
4xx status; nothing is stored for a refused request.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import BaseModel, Field

from pocnet.ledger.encoding import EncodingError, loads_strict
from pocnet.ledger import queries
from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.keys import parse_public_key

if TYPE_CHECKING:
    from pocnet.node.node import Node

log = logging.getLogger("pocnet.api")


# The one place where refusal kinds become HTTP statuses (README § Errors).
HTTP_STATUS: dict[Code, int] = {
    Code.MALFORMED: 400, Code.FORBIDDEN: 403, Code.CONFLICT: 409, Code.NONCE_USED: 409,
    Code.NONCE_GAP: 409, Code.COMMITTED: 409, Code.UNMET: 422, Code.BUSY: 503,
}


def http_status(exc: TxRejected) -> int:
    return HTTP_STATUS[exc.code]


# Seconds a shed client is asked to wait: about one block interval, by when a commit has
# drained up to max_block_txs from the mempool.
RETRY_AFTER_S = 1


def shed_if_overloaded(node: "Node") -> None:
    """503 + Retry-After before reading the body while the peer sheds client load
    (Node.shedding): an overloaded peer spends nothing on requests it would refuse."""
    if node.shedding():
        node.mempool.stats["shed_requests"] = node.mempool.stats.get("shed_requests", 0) + 1
        raise ApiError(503, "overloaded", "$",
                       f"this peer's mempool holds {len(node.mempool)} txs (limit "
                       f"{node.admission_limit()}); retry after {RETRY_AFTER_S} s",
                       headers={"Retry-After": str(RETRY_AFTER_S)})


class ApiError(Exception):
    def __init__(self, status: int, error: str, field: str, reason: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.error, self.field, self.reason = status, error, field, reason
        self.headers = headers


class ErrorOut(BaseModel):
    error: str = Field(description="what kind of request was refused")
    field: str = Field(description="dotted path of the offending field ('$' = the whole body)")
    reason: str


class TxIn(BaseModel):
    """Documentation of the body of POST /txs (the body is parsed strictly by hand, see README)."""
    chain_id: str
    type: str = Field(description="transfer | task | ... (see GET /status tx_types)")
    sender: str = Field(description="hex Ed25519 public key (64 hex chars); also the account address")
    nonce: int = Field(ge=0, description="next expected nonce of the sender")
    payload: dict[str, Any]
    signature: str = Field(description="hex Ed25519 signature (128 hex chars) of the canonical JSON without 'signature'")


class TxAccepted(BaseModel):
    tx_hash: str
    status: str = "pending"
    duplicate: bool = False


class TxStatusOut(BaseModel):
    tx_hash: str
    status: str = Field(description="pending | committed")
    height: int | None
    index: int | None = None
    tx: dict[str, Any]


class AccountOut(BaseModel):
    address: str
    balance: int
    nonce: int = Field(description="next expected nonce given committed state")
    pending_nonce: int = Field(description="next nonce given committed state and this peer's mempool")


class StatusOut(BaseModel):
    chain_id: str
    peer_id: str
    name: str
    height: int
    latest_hash: str
    state_root: str
    latest_timestamp_ms: int
    mempool_size: int
    catching_up: bool = Field(description="true while peers are ahead and this peer is syncing blocks")
    validators: list[dict[str, Any]]
    tx_types: list[str]
    version: int = Field(description="protocol version of the next block (selects the state-transition rules)")
    supported_versions: list[int] = Field(description="protocol versions this peer has rules for")
    consensus_params: dict[str, int] = Field(description="the chain's consensus parameters (genesis, validated)")
    consensus: dict[str, Any]


def _error_response(status: int, error: str, field: str, reason: str,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "field": field, "reason": reason},
                        headers=headers)


_HTTP_ERRORS = {404: "not found", 405: "method not allowed", 413: "body too large", 415: "unsupported media type"}


def _json_text(text: str) -> Response:
    """A response whose body is JSON text already encoded (stored blocks): no decode/re-encode."""
    return Response(content=text.encode("utf-8"), media_type="application/json")


def _openapi_with_real_codes(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI documents every validation failure as 422 (HTTPValidationError); this server
    answers them with 400 and the one error shape, so the spec says that instead."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        err_ref = {"$ref": "#/components/schemas/ErrorOut"}
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                responses = op.get("responses", {})
                auto = responses.get("422", {})
                if "HTTPValidationError" in json.dumps(auto):
                    del responses["422"]
                    responses.setdefault("400", {"description": "invalid request (bad parameter or body)",
                                                 "content": {"application/json": {"schema": err_ref}}})
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
        if "HTTPValidationError" not in json.dumps(spec["paths"]):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = spec
        return spec
    return openapi


def install_error_handlers(app: FastAPI) -> None:
    """Every 4xx, including unknown routes and wrong methods, is ``{"error","field","reason"}``."""
    app.openapi = _openapi_with_real_codes(app)  # type: ignore[method-assign]

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = _HTTP_ERRORS.get(exc.status_code, "request refused")
        reason = str(exc.detail) if exc.detail else error
        if exc.status_code == 404 and reason == "Not Found":
            reason = "no such route (see /docs)"
        elif exc.status_code == 405 and reason == "Method Not Allowed":
            reason = "this route does not accept this method (see /docs)"
        return JSONResponse(status_code=exc.status_code, headers=getattr(exc, "headers", None),
                            content={"error": error, "field": "$", "reason": reason})

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc.status, exc.error, exc.field, exc.reason, exc.headers)

    @app.exception_handler(TxRejected)
    async def _tx_rejected(_: Request, exc: TxRejected) -> JSONResponse:
        status = http_status(exc)
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
        return _error_response(status, "invalid transaction", exc.field, exc.reason, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ["$"], "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", []) if p not in ("body", "query", "path")]
        return _error_response(400, "invalid request", ".".join(loc) or "$", str(first.get("msg", "invalid")))


MAX_HEIGHT = 2**63 - 1  # storage holds heights as signed 64-bit integers
BODY_READ_TIMEOUT_S = 10.0  # a client that trickles its body is cut off (slow-loris)


def require_json_content_type(request: Request) -> None:
    """415 unless the request says its body is JSON (``application/json``, any parameters)."""
    ctype = request.headers.get("content-type", "")
    if ctype.split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported media type", "content-type",
                       f"body must be sent as application/json (got {ctype[:60]!r})")


async def read_json_body(request: Request, max_bytes: int) -> Any:
    """Read and parse a bounded JSON body: 415 wrong type, 413 too large, 408 too slow,
    400 malformed (see ledger.encoding.loads_strict for what is refused)."""
    require_json_content_type(request)
    return parse_json_body(await read_body(request, max_bytes))


def parse_json_body(body: bytes) -> Any:
    """400 unless ``body`` is strict JSON (ledger.encoding.loads_strict)."""
    try:
        return loads_strict(body)
    except EncodingError as exc:
        raise ApiError(400, "malformed JSON", exc.path, exc.reason) from None


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, bounded: 413 too large, 408 too slow."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise ApiError(413, "body too large", "$", f"body is {length} bytes; limit is {max_bytes}")
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT_S):
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_bytes:
                    raise ApiError(413, "body too large", "$", f"body exceeds the {max_bytes}-byte limit")
    except TimeoutError:
        raise ApiError(408, "request timeout", "$",
                       f"body not received within {BODY_READ_TIMEOUT_S:.0f} s") from None
    return bytes(body)


def _check_address(address: str) -> None:
    try:
        parse_public_key(address)
    except ValueError as exc:
        raise ApiError(400, "invalid address", "address", str(exc)) from None


def public_router(node: "Node") -> APIRouter:
    r = APIRouter()

    @r.post("/txs", status_code=202, response_model=TxAccepted, tags=["transactions"],
            responses={400: {"model": ErrorOut}, 408: {"model": ErrorOut}, 409: {"model": ErrorOut},
                       413: {"model": ErrorOut}, 415: {"model": ErrorOut}, 422: {"model": ErrorOut}},
            openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                "schema": TxIn.model_json_schema()}}}})
    async def submit_tx(request: Request) -> Any:
        """Submit one signed transaction.

        202 means *accepted into this peer's mempool* (and gossiped to the others); it is not
        durable: a pending tx is lost if every peer holding it restarts before it commits.
        Poll ``GET /txs/{tx_hash}`` until ``status`` is ``committed``."""
        shed_if_overloaded(node)
        obj = await read_json_body(request, node.config.max_body_bytes)
        return (await node.submit_from_client(obj)).model_dump()

    @r.post("/txs/batch", tags=["transactions"],
            responses={400: {"model": ErrorOut}, 408: {"model": ErrorOut}, 413: {"model": ErrorOut},
                       415: {"model": ErrorOut}},
            openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "array", "items": TxIn.model_json_schema()}}}}})
    async def submit_batch(request: Request) -> Any:
        """Submit a JSON list of signed transactions; answers one result per tx, in order.

        Each result is ``{"tx_hash", "status": "pending", "duplicate"}`` (accepted into this
        peer's mempool — not durable, see POST /txs) or ``{"error", "field", "reason", "status"}``;
        a bad item never affects the answer for the others.
        """
        shed_if_overloaded(node)
        obj = await read_json_body(request, node.config.max_batch_body_bytes)
        if not isinstance(obj, list):
            raise ApiError(400, "invalid request", "$", "body must be a JSON list of transactions")
        results = []
        for i, item in enumerate(obj):
            try:
                results.append(node.submit_tx_obj(item).model_dump())
            except TxRejected as exc:
                results.append({"error": "invalid transaction", "field": f"[{i}].{exc.field}",
                                "reason": exc.reason, "status": http_status(exc)})
            except Exception:  # noqa: BLE001 - one bad item must not hide the others' outcomes
                log.exception("batch item %d failed unexpectedly", i)
                results.append({"error": "internal error", "field": f"[{i}]",
                                "reason": "the peer failed to process this item (see its log)", "status": 500})
        return {"results": results}

    @r.get("/txs/{tx_hash}", response_model=TxStatusOut, tags=["transactions"],
           responses={404: {"model": ErrorOut}})
    async def get_tx(tx_hash: str) -> Any:
        found = node.chain.storage.get_tx(tx_hash)
        if found:
            tx, height, idx = found
            return {"tx_hash": tx_hash, "status": "committed", "height": height, "index": idx, "tx": tx}
        pending = node.mempool.get(tx_hash)
        if pending:
            return {"tx_hash": tx_hash, "status": "pending", "height": None, "tx": pending.to_dict()}
        raise ApiError(404, "not found", "tx_hash", "no committed or pending transaction with this hash")

    @r.get("/blocks/latest", tags=["blocks"], responses={404: {"model": ErrorOut}})
    async def latest_block() -> Any:
        if node.chain.height == 0:
            raise ApiError(404, "not found", "height", "no block committed yet")
        return _json_text(node.chain.storage.get_block_json(node.chain.height) or "null")

    @r.get("/blocks/{height}", tags=["blocks"], responses={404: {"model": ErrorOut}})
    async def block_at(height: int) -> Any:
        d = node.chain.storage.get_block_json(height) if 1 <= height <= MAX_HEIGHT else None
        if d is None:
            raise ApiError(404, "not found", "height", f"no block at height {height}; head is {node.chain.height}")
        return _json_text(d)

    @r.get("/blocks", tags=["blocks"])
    async def blocks(from_: int = Query(1, alias="from", ge=1, le=MAX_HEIGHT), limit: int = Query(20, ge=1, le=100)) -> Any:
        """Up to ``limit`` (≤ 100) consecutive blocks starting at height ``from``."""
        # stored block JSON spliced in as is: decoding and re-encoding a 2,000-tx block cost ~30 ms
        head = node.chain.height
        return _json_text('{"blocks":[' + ",".join(node.chain.storage.get_block_jsons(from_, limit))
                          + '],"head":' + str(head) + "}")

    @r.get("/accounts/{address}", response_model=AccountOut, tags=["state"],
           responses={400: {"model": ErrorOut}})
    async def account(address: str) -> Any:
        _check_address(address)
        acct = queries.account(node.chain.state, address)
        pending = node.mempool.pending_nonce(address)
        return {"address": address, "balance": acct.balance, "nonce": acct.nonce,
                "pending_nonce": pending if pending is not None else acct.nonce}

    @r.get("/tasks", tags=["state"], responses={400: {"model": ErrorOut}})
    async def tasks(status: Literal["queued", "allocated", "reported", "done", "disputed", "expired"] | None = Query(
                        None, description="queued | allocated | reported | done | disputed | expired "
                                          "(finished tasks are removed task_retention_heights later)"),
                    limit: int = Query(100, ge=1, le=1000)) -> Any:
        """Committed edge-computing tasks in queue (commit) order."""
        items = queries.tasks(node.chain.state, status)
        return {"tasks": [t.to_dict() for t in items[:limit]], "total": len(items)}

    @r.get("/tasks/{task_id}", tags=["state"], responses={404: {"model": ErrorOut}})
    async def task(task_id: str) -> Any:
        """One committed task by id (the hash of its ``task`` tx): status, assigned_to, result."""
        t = queries.task(node.chain.state, task_id)
        if t is None:
            raise ApiError(404, "not found", "task_id", "no committed task with this id")
        return t.to_dict()

    @r.get("/state/proof", tags=["state"], responses={400: {"model": ErrorOut}})
    async def state_proof(ns: str = Query(..., description="state namespace, e.g. acct"),
                          key: str = Query(..., description="key inside the namespace, e.g. an address")) -> Any:
        """Inclusion (or non-inclusion) proof of one committed state entry against the state root
        of the last committed block (docs/state_commitment.md; check it with
        ``pocnet.ledger.commitment.verify_proof``)."""
        for name, val, limit in (("ns", ns, 32), ("key", key, 160)):
            if len(val) > limit:
                raise ApiError(400, "invalid query", name, f"at most {limit} characters")
        c = node.chain
        with c.lock:
            value = c.state.get(ns, key, None)
            present = value is not None or (ns, key) in c.state
            return {"height": c.height, "state_root": c.state.root, "header_state_root": c.state_root,
                    "ns": ns, "key": key, "present": present, "value": value, "proof": c.state.prove(ns, key)}

    @r.get("/status", response_model=StatusOut, tags=["node"])
    async def status() -> Any:
        return node.status()

    @r.get("/health", tags=["node"])
    async def health() -> Any:
        return {"ok": True, "height": node.chain.height, "catching_up": node.catching_up()}

    return r
