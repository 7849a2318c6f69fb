"""The trained model directory served by the real sagemaker-inference toolkit and multi-model-server over HTTP.

One server for the module, on a free port, with its config file in tmp and one worker; teardown stops the Java
server and its worker by process id.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.training_code.harness_support import HarnessRun, subprocess_env

pytestmark = pytest.mark.slow

MAX_INPUTS = 8
LAUNCHER = """
import sys
from sagemaker_inference import model_server
# The toolkit writes /etc/sagemaker-mms.properties; a test must not touch /etc.
model_server.MMS_CONFIG_FILE = sys.argv[1]
model_server.start_model_server()
"""


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


def free_port() -> int:
    """A free port below 32767: multi-model-server rejects larger ones ("Invalid port number")."""
    for port in random.Random().sample(range(20000, 32000), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000 for the model server")


def model_server_processes(config_file: Path) -> list[psutil.Process]:
    """The Java server started with our config file, and its workers."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if "com.amazonaws.ml.mms.ModelServer" in cmdline and str(config_file) in " ".join(cmdline):
            found.append(process)
            found.extend(process.children(recursive=True))
    return found


@pytest.fixture(scope="module")
def server(harness_training: HarnessRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("serving")
    shutil.copytree(harness_training.model_dir, base / "model")
    config_file = base / "mms.properties"
    port = free_port()
    env = subprocess_env(
        SAGEMAKER_BASE_DIR=str(base),
        SAGEMAKER_BIND_TO_PORT=str(port),
        SAGEMAKER_MODEL_SERVER_WORKERS="1",
        INFERENCE_MAX_INPUTS=str(MAX_INPUTS),
        # multi-model-server keeps its pid file and worker sockets in the temp dir: ours, not the machine's /tmp.
        TMPDIR=str(base),
        SAGEMAKER_MODEL_SERVER_VMARGS=f"-XX:-UseContainerSupport -Djava.io.tmpdir={base}",
    )
    log = (base / "launcher.log").open("wb")
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(config_file)], cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    started: list[psutil.Process] = []
    try:
        live = Server(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        while True:
            assert launcher.poll() is None, (base / "launcher.log").read_text()[-3000:]
            if not started:
                started = model_server_processes(config_file)
            with contextlib.suppress(OSError):  # not listening yet: poll again
                if live.request("/ping").status == 200:
                    break
            assert time.monotonic() < deadline, (base / "launcher.log").read_text()[-3000:]
            time.sleep(0.5)
        started = model_server_processes(config_file)
        yield live
    finally:
        # The launcher forwards SIGTERM to the Java server; anything still alive after that is killed by pid.
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()
        for process in started or model_server_processes(config_file):
            if process.is_running():
                process.kill()
        psutil.wait_procs(started, timeout=10)
        log.close()


def test_ping_answers_200(server: Server) -> None:
    assert server.request("/ping").status == 200


def test_single_text_gets_one_label_and_score(server: Server) -> None:
    response = server.invoke({"inputs": "the striker scored a goal and the team won the match"})
    assert response.status == 200, response.body
    [result] = response.json()
    assert result["label"] == "sports"
    assert 0.34 < result["score"] <= 1.0
    assert result["truncated"] is False


def test_list_of_texts_gets_results_in_request_order(server: Server) -> None:
    texts = [
        "pasta with cheese and bread",
        "a storm with rain and snow in the forecast today",
        "the referee and the coach",
    ]
    response = server.invoke({"inputs": texts})
    assert response.status == 200, response.body
    assert [r["label"] for r in response.json()] == ["food", "weather", "sports"]


def test_top_k_lists_best_labels_in_order(server: Server) -> None:
    response = server.invoke({"inputs": ["sunny and humid"], "parameters": {"top_k": 2}})
    [result] = response.json()
    assert result["top_k"][0]["label"] == result["label"] == "weather"
    assert len(result["top_k"]) == 2
    assert result["top_k"][0]["score"] >= result["top_k"][1]["score"]


def test_text_longer_than_model_limit_is_truncated_and_says_so(server: Server) -> None:
    response = server.invoke({"inputs": ["soup " * 500, "soup"]})
    assert response.status == 200, response.body
    assert [r["truncated"] for r in response.json()] == [True, False]


def test_charset_parameter_in_content_type_is_accepted(server: Server) -> None:
    response = server.invoke({"inputs": "bake bread"}, content_type="application/json; charset=utf-8")
    assert response.status == 200, response.body


@pytest.mark.parametrize(
    ("payload", "content_type", "accept", "status", "error_type"),
    [
        ({"inputs": "goal"}, "text/plain", None, 415, "UnsupportedMediaType"),
        (b'{"inputs": ["goal"', "application/json", None, 400, "MalformedJSON"),
        ({"text": "goal"}, "application/json", None, 400, "MissingInputs"),
        (["goal"], "application/json", None, 400, "MissingInputs"),
        ({"inputs": []}, "application/json", None, 400, "EmptyInputs"),
        ({"inputs": ""}, "application/json", None, 400, "EmptyInputs"),
        ({"inputs": ["goal", 3]}, "application/json", None, 400, "InvalidInputs"),
        ({"inputs": {"text": "goal"}}, "application/json", None, 400, "InvalidInputs"),
        ({"inputs": ["goal"] * (MAX_INPUTS + 1)}, "application/json", None, 413, "TooManyInputs"),
        ({"inputs": "goal", "parameters": {"top_k": "2"}}, "application/json", None, 400, "InvalidParameters"),
        ({"inputs": "goal"}, "application/json", "text/csv", 406, "NotAcceptable"),
        # Exactly application/json is the type the toolkit used to decode itself, before our hook: a 500.
        (b'{"inputs": "caf\xe9"}', "application/json", None, 400, "InvalidEncoding"),
        (b'{"inputs": "caf\xe9"}', "application/json; charset=utf-8", None, 400, "InvalidEncoding"),
        # text/csv was decoded by the toolkit too: a body that is not UTF-8 was a 500, not the 415 it deserves.
        (b"caf\xe9", "text/csv", None, 415, "UnsupportedMediaType"),
        (b"", "application/json", None, 400, "MalformedJSON"),
        (b'{"text": "pasta"}\n{"text": 3}\n', "application/jsonlines", None, 400, "InvalidInputs"),
    ],
    ids=[
        "wrong-content-type",
        "malformed-json",
        "missing-inputs",
        "not-an-object",
        "empty-list",
        "empty-string",
        "non-string-item",
        "inputs-not-list",
        "too-many-inputs",
        "bad-top-k",
        "unsupported-accept",
        "not-utf8-json",
        "not-utf8-json-charset",
        "not-utf8-csv",
        "empty-body",
        "bad-json-line",
    ],
)
def test_bad_request_gets_4xx_with_json_error(
    server: Server, payload: Any, content_type: str, accept: str | None, status: int, error_type: str
) -> None:
    response = server.invoke(payload, content_type=content_type, accept=accept)
    assert response.status == status, response.body
    assert response.error()["error"] == error_type


def test_server_still_answers_after_bad_requests(server: Server) -> None:
    server.invoke(b"{", "application/json")
    assert server.invoke({"inputs": "rain"}).status == 200


def test_batch_transform_mini_batch_gets_one_json_line_per_record_in_order(server: Server) -> None:
    # What a batch transform job with SplitType Line and BatchStrategy MultiRecord sends: records joined by newlines.
    records = [
        {"id": "c-1", "text": "pasta with cheese and bread", "label": "food"},
        {"inputs": "a storm with rain and snow in the forecast today"},
        {"id": 3, "text": "the referee and the coach"},
        {"id": "c-4", "text": "sunny and humid"},
    ]
    body = ("\n".join(json.dumps(record) for record in records) + "\n").encode()
    response = server.invoke(body, content_type="application/jsonlines", accept="application/jsonlines")
    assert response.status == 200, response.body
    results = response.json_lines()
    assert [r["label"] for r in results] == ["food", "weather", "sports", "weather"]
    assert [r.get("id", "-") for r in results] == ["c-1", "-", 3, "c-4"]
    assert all(0.34 < r["score"] <= 1.0 for r in results)


def test_x_jsonlines_content_type_is_accepted_too(server: Server) -> None:
    response = server.invoke(b'{"text": "bake bread"}', "application/x-jsonlines", accept="application/x-jsonlines")
    assert response.status == 200, response.body
    [result] = response.json_lines()
    assert result["label"] == "food"


def test_bad_json_line_error_names_the_line(server: Server) -> None:
    body = b'{"text": "pasta"}\n{"text": "rain"}\n{"text": "goal"\n'
    response = server.invoke(body, content_type="application/jsonlines", accept="application/jsonlines")
    assert response.status == 400, response.body
    error = response.error()
    assert error["error"] == "MalformedJSON"
    assert error["message"].startswith("line 3 ")
