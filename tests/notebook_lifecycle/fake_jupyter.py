"""A real local HTTP server that answers like the Jupyter REST API (sessions, kernels, terminals, status)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit


@dataclass
class FakeJupyter:
    """What the fake server answers (path -> (HTTP status, JSON body)) and what it was asked."""

    url: str
    routes: dict[str, tuple[int, Any]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def answer(
        self,
        *,
        sessions: list[dict[str, Any]] | None = None,
        kernels: list[dict[str, Any]] | None = None,
        terminals: list[dict[str, Any]] | None = None,
        started: str = "2026-11-27T08:00:00.000000Z",
    ) -> None:
        """Answer like a Jupyter server with these sessions, kernels and terminals."""
        self.routes = {
            "/api/sessions": (200, sessions or []),
            "/api/kernels": (200, kernels or []),
            "/api/terminals": (200, terminals or []),
            "/api/status": (200, {"started": started, "last_activity": started, "connections": 0, "kernels": 0}),
        }


def handler_for(state: FakeJupyter) -> type[BaseHTTPRequestHandler]:
    """A request handler class that serves `state.routes` and records every request in `state.requests`."""

    class JupyterApiHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            state.requests.append((self.path, dict(self.headers.items())))
            status, body = state.routes.get(path, (404, {"message": f"Not found: {path}"}))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            # Keeps the test output clean; the requests are recorded in state.requests instead.
            return

    return JupyterApiHandler
