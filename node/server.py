"""How a peer's HTTP server is run: uvicorn settings that bound what a slow or greedy
client can hold (headers, idle connections, concurrent requests).

uvicorn (h11) has no timeout for a client that opens a connection and never finishes its
request headers; ``HeaderTimeoutH11`` closes such connections. A slow *body* is cut by
``read_json_body`` (408). Idle keep-alive connections close after TIMEOUT_KEEP_ALIVE_S.
"""
from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0
TIMEOUT_KEEP_ALIVE_S = 5
MAX_HEADER_BYTES = 16 * 1024
LIMIT_CONCURRENCY = 1024  # open connections + requests beyond this get 503 (overload, not input)


class HeaderTimeoutH11(H11Protocol):
    """h11 protocol that drops a connection whose first request line + headers take longer
    than ``header_timeout_s`` (a slow-loris client holds a socket, nothing else)."""

    header_timeout_s = HEADER_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _header_timeout(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_timer.cancel()
        super().connection_lost(exc)


def uvicorn_settings() -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` (besides app, host, port)."""
    return {"http": HeaderTimeoutH11, "timeout_keep_alive": TIMEOUT_KEEP_ALIVE_S,
            "h11_max_incomplete_event_size": MAX_HEADER_BYTES, "limit_concurrency": LIMIT_CONCURRENCY,
            "timeout_graceful_shutdown": 5}
