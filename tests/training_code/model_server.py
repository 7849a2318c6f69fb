"""The tiny trained model served by the real sagemaker-inference toolkit and multi-model-server over HTTP.

One server for the whole test session (tests/training_code/conftest.py exposes it as the ``server`` fixture, shared by
the serving tests and the classify Lambda end-to-end test), on a free port, with its config file in tmp and one
worker; teardown stops the Java server and its worker by process id.
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


@pytest.fixture(scope="session")
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
