"""The tiny trained model served by the real sagemaker-inference toolkit and multi-model-server over HTTP.

One server for the whole test session (tests/training_code/conftest.py exposes it as the ``server`` fixture, shared by
the serving tests and the classify Lambda end-to-end test), started by scripts/local_model_server.py on a free port,
with its config file in tmp and one worker; teardown stops the Java server and its worker by process id.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from scripts.local_model_server import serve_model
from tests.training_code.harness_support import HarnessRun

MAX_INPUTS = 8


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> dict[str, Any]:
        """The error answer: the whole body must be one JSON object with exactly "error" and "message"."""
        body = json.loads(self.body)  # raises on anything after the object, such as a traceback
        assert isinstance(body, dict) and set(body) == {"error", "message"}, self.body
        assert isinstance(body["error"], str) and body["message"], self.body
        return body

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.body.decode().split("\n")]


@dataclass(frozen=True)
class Server:
    url: str

    def request(self, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Response:
        request = urllib.request.Request(self.url + path, data=body, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Response(response.status, response.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.read())

    def invoke(self, payload: Any, content_type: str = "application/json", accept: str | None = None) -> Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        return self.request("/invocations", body, headers)


@pytest.fixture(scope="session")
def server(harness_training: HarnessRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("serving")
    shutil.copytree(harness_training.model_dir, base / "model")
    with serve_model(base, {"INFERENCE_MAX_INPUTS": str(MAX_INPUTS)}) as url:
        yield Server(url)
