"""A small HTTP client for a pocnet peer (used by the CLI, tests and benchmarks)."""
from __future__ import annotations

import time
from typing import Any

import httpx

from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import Tx, sign_tx


class TxRefused(RuntimeError):
    """The peer answered a tx submission with a refusal (4xx/5xx and its error body)."""

    def __init__(self, status: int, body: Any, text: str) -> None:
        super().__init__(f"peer refused tx: {status} {text}")
        self.status, self.body = status, body

    def describe(self) -> str:
        b = self.body
        if isinstance(b, dict) and "error" in b:
            field = f" ({b['field']})" if b.get("field") not in (None, "", "$") else ""
            return f"{self.status} {b['error']}{field}: {b.get('reason', '')}"
        return f"{self.status} {str(self.args[0])[len('peer refused tx: '):]}"


class PeerClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def status(self) -> dict[str, Any]:
        return self._get("/status")

    def account(self, address: str) -> dict[str, Any]:
        return self._get(f"/accounts/{address}")

    def tx(self, tx_hash: str) -> dict[str, Any]:
        return self._get(f"/txs/{tx_hash}")

    def block(self, height: int | str) -> dict[str, Any]:
        return self._get(f"/blocks/{height}")

    def _get(self, path: str) -> dict[str, Any]:
        r = self.http.get(path)
        r.raise_for_status()
        return r.json()

    def submit(self, tx: Tx) -> httpx.Response:
        return self.http.post("/txs", json=tx.to_dict())

    def sign_and_submit(self, key: KeyPair, tx_type: str, payload: dict[str, Any],
                        nonce: int | None = None) -> Tx:
        if nonce is None:
            nonce = self.account(key.address)["pending_nonce"]
        tx = sign_tx(key, self.status()["chain_id"], tx_type, nonce, payload)
        r = self.submit(tx)
        if r.status_code != 202:
            try:
                body = r.json()
            except ValueError:
                body = None
            raise TxRefused(r.status_code, body, r.text)
        return tx

    def wait_committed(self, tx_hash: str, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            r = self.http.get(f"/txs/{tx_hash}")
            if r.status_code == 200 and r.json()["status"] == "committed":
                return r.json()
            time.sleep(0.1)
        raise TimeoutError(f"tx {tx_hash} not committed within {timeout_s} s")
