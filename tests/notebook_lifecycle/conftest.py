"""Fixtures for the lifecycle tests: a real local HTTP server that answers like the Jupyter REST API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from tests.notebook_lifecycle.fake_jupyter import FakeJupyter, handler_for


@pytest.fixture(scope="session")
def _jupyter_server() -> Iterator[FakeJupyter]:
    state = FakeJupyter(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-jupyter", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def jupyter(_jupyter_server: FakeJupyter) -> FakeJupyter:
    """The shared fake Jupyter server, reset to an idle server with nothing open."""
    _jupyter_server.requests.clear()
    _jupyter_server.answer()
    return _jupyter_server
