"""A local stand-in for the SageMaker runtime API (``POST /endpoints/<name>/invocations``, REST JSON protocol).

botocore's ``InvokeEndpoint`` reaches it through ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``. The endpoint name picks
the behaviour: ``model`` forwards to a backend (multi-model-server's ``/invocations`` in the end-to-end test, an
instant fixed answer in the benchmark) and turns a backend error into ``ModelError`` the way SageMaker does (424 with
``OriginalStatusCode`` and ``OriginalMessage``); the other names answer the runtime API's own errors.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Endpoint name -> (HTTP status, error type) the stand-in answers without calling the backend.
SERVICE_ERRORS = {
    "missing": (400, "ValidationError"),
    "not-ready": (429, "ModelNotReadyException"),
    "throttled": (400, "ThrottlingException"),
    "unavailable": (503, "ServiceUnavailable"),
}
SLOW_ENDPOINT = "slow"
SLOW_SECONDS = 3.0
CRASHING_ENDPOINT = "crashing"

Backend = Callable[[bytes, dict[str, str]], tuple[int, bytes]]


def forward_to(url: str) -> Backend:
    """A backend that posts the body to a model server's ``/invocations``."""

    def call(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        request = urllib.request.Request(url + "/invocations", data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    return call


class _Handler(BaseHTTPRequestHandler):
    backend: Backend

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, error_type: str, message: str, **fields: object) -> None:
        body = json.dumps({"__type": error_type, "message": message, **fields}).encode()
        self._send(status, body, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": error_type})

    def do_POST(self) -> None:
        parts = self.path.strip("/").split("/")
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if len(parts) != 3 or parts[0] != "endpoints" or parts[2] != "invocations":
            self._error(404, "UnknownOperationException", f"no such path {self.path}")
            return
        name = parts[1]
        if name in SERVICE_ERRORS:
            status, error_type = SERVICE_ERRORS[name]
            self._error(status, error_type, f"stand-in {error_type} for {name}")
            return
        if name == SLOW_ENDPOINT:
            time.sleep(SLOW_SECONDS)
        if name == CRASHING_ENDPOINT:
            status, answer = 500, b"worker died"
        else:
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
            status, answer = self.backend(body, headers)
        if status >= 400:
            self._error(
                424,
                "ModelError",
                f"Received client error ({status}) from primary",
                OriginalStatusCode=status,
                OriginalMessage=answer.decode("utf-8", "replace"),
            )
            return
        self._send(200, answer, {"Content-Type": "application/json", "x-Amzn-Invoked-Production-Variant": "AllTraffic"})


@contextmanager
def runtime_stand_in(backend: Backend) -> Iterator[str]:
    """Serve the stand-in on a free local port for the duration; yields its URL."""
    handler = type("Handler", (_Handler,), {"backend": staticmethod(backend)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
