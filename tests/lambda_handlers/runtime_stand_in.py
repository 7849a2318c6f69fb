"""The local SageMaker runtime API (scripts/local_runtime.py) with extra endpoints that answer its failures.

``model`` forwards to a backend (multi-model-server's ``/invocations`` in the end-to-end test, an instant fixed answer
in the benchmark). The other names answer the runtime API's own errors, time out or crash, so the classify Lambda's
mapping of each one is tested over the real protocol; ``missing`` is simply not served (the API's ValidationError).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from scripts.local_runtime import Backend, RuntimeServiceError, forward_to, local_runtime

__all__ = ["CRASHING_ENDPOINT", "SERVICE_ERRORS", "SLOW_ENDPOINT", "forward_to", "runtime_stand_in"]

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


def _service_error(status: int, error_type: str, name: str) -> Backend:
    def answer(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        raise RuntimeServiceError(status, error_type, f"stand-in {error_type} for {name}")

    return answer


def _slow(backend: Backend) -> Backend:
    def answer(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        time.sleep(SLOW_SECONDS)
        return backend(body, headers)

    return answer


@contextmanager
def runtime_stand_in(backend: Backend) -> Iterator[str]:
    """The runtime API on a free local port: ``model`` is ``backend``, the other names fail; yields its URL."""
    endpoints: dict[str, Backend] = {
        name: _service_error(status, error_type, name)
        for name, (status, error_type) in SERVICE_ERRORS.items()
        if name != "missing"
    }
    endpoints["model"] = backend
    endpoints[SLOW_ENDPOINT] = _slow(backend)
    endpoints[CRASHING_ENDPOINT] = lambda body, headers: (500, b"worker died")
    with local_runtime(endpoints) as url:
        yield url
