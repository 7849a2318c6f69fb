"""A local stand-in for the SageMaker runtime API's ``InvokeEndpoint``, spoken over its real protocol.

botocore's ``sagemaker-runtime`` client reaches it when ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` names its URL: a
``POST /endpoints/<name>/invocations`` with the body and the ``Content-Type``/``Accept`` headers, answered with the
model's body (200) or an error in the runtime API's JSON error shape (``__type``, ``message``, the
``x-amzn-ErrorType`` header), which botocore turns into the same ``ClientError`` as in AWS. Used by ``make demo``
(scripts/demo.py), the classify Lambda's end-to-end tests and scripts/bench_lambda_wrapper.py.

Each endpoint name maps to a backend ``(body, headers) -> (status, body)``:

- a 2xx answer is passed through (``Content-Type: application/json``);
- a backend status of 400 or more becomes ``ModelError`` (424, with ``OriginalStatusCode`` and ``OriginalMessage``),
  as SageMaker answers when the model container returns an error;
- a backend may raise :class:`RuntimeServiceError` to answer one of the runtime API's own errors (throttling,
  model not ready);
- a name that maps to no backend gets the API's ``ValidationError`` (400) for a missing endpoint.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Backend = Callable[[bytes, dict[str, str]], tuple[int, bytes]]
# Header names a model container sees from an InvokeEndpoint call.
FORWARDED_HEADERS = ("content-type", "accept")


class RuntimeServiceError(Exception):
    """Raised by a backend to answer an error of the runtime API itself (not of the model)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def forward_to(url: str, timeout_seconds: float = 30) -> Backend:
    """A backend that posts the body to a model server's ``/invocations`` (multi-model-server, the toolkits)."""

    def call(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        request = urllib.request.Request(url + "/invocations", data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_seconds) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    return call


class _Handler(BaseHTTPRequestHandler):
    endpoints: Mapping[str, Backend]

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
        backend = self.endpoints.get(name)
        if backend is None:
            self._error(400, "ValidationError", f"Endpoint {name} of account 000000000000 not found.")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() in FORWARDED_HEADERS}
        try:
            status, answer = backend(body, headers)
        except RuntimeServiceError as error:
            self._error(error.status, error.error_type, error.message)
            return
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
def local_runtime(endpoints: Mapping[str, Backend]) -> Iterator[str]:
    """Serve the runtime API for ``endpoints`` on a free local port for the duration; yields its URL.

    The server runs on a daemon thread and is shut down and closed on exit, also when the body raises.
    """
    handler = type("Handler", (_Handler,), {"endpoints": dict(endpoints)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="local-sagemaker-runtime")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
