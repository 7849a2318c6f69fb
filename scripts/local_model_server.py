"""Serve a model directory with the real ``sagemaker-inference`` toolkit and multi-model-server, on this machine.

What a SageMaker endpoint container runs, without Docker: the toolkit writes its multi-model-server config and starts
the Java server, whose Python worker loads ``model_fn``/``transform_fn`` from ``<model>/code/inference.py``
(training_code/inference.py, copied into every model.tar.gz by train.py). Used by ``make demo`` (scripts/demo.py) and
the serving tests (tests/training_code/model_server.py).

Everything the server writes (its config, pid file, worker sockets, log) stays under the ``base`` folder the caller
gives, never in ``/etc`` or the machine's ``/tmp``. On exit, also after an error or Ctrl-C, the launcher gets SIGTERM
(the toolkit forwards it to the Java server) and every process of this server still alive is killed by its id.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import psutil

# The toolkit writes /etc/sagemaker-mms.properties by default; the launcher points it at a file of ours.
LAUNCHER = """
import sys
from sagemaker_inference import model_server
model_server.MMS_CONFIG_FILE = sys.argv[1]
model_server.start_model_server()
"""
STARTUP_TIMEOUT_SECONDS = 120


class ModelServerError(Exception):
    """The model server did not start; the message ends with the tail of its log."""


def free_port() -> int:
    """A free port below 32767: multi-model-server rejects larger ones ("Invalid port number")."""
    for port in random.Random().sample(range(20000, 32000), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise ModelServerError("no free port between 20000 and 32000 for the model server")


def model_server_processes(config_file: Path) -> list[psutil.Process]:
    """The Java server started with ``config_file``, and its workers."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if "com.amazonaws.ml.mms.ModelServer" in cmdline and str(config_file) in " ".join(cmdline):
            found.append(process)
            found.extend(process.children(recursive=True))
    return found


def server_environment(base: Path, port: int, extra: Mapping[str, str]) -> dict[str, str]:
    """The container environment: one torch thread, offline Hugging Face libraries, paths under ``base``."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        SAGEMAKER_BASE_DIR=str(base),
        SAGEMAKER_BIND_TO_PORT=str(port),
        SAGEMAKER_MODEL_SERVER_WORKERS="1",
        # multi-model-server keeps its pid file and worker sockets in the temp dir: ours, not the machine's /tmp.
        TMPDIR=str(base),
        SAGEMAKER_MODEL_SERVER_VMARGS=f"-XX:-UseContainerSupport -Djava.io.tmpdir={base}",
    )
    env.update(extra)
    return env


def _log_tail(log_file: Path) -> str:
    return log_file.read_text(encoding="utf-8", errors="replace")[-3000:] if log_file.exists() else ""


def _ping(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url + "/ping", timeout=5) as answer:
        return bool(answer.status == 200)
    return False


@contextlib.contextmanager
def serve_model(
    base: Path, environment: Mapping[str, str] | None = None, timeout_seconds: float = STARTUP_TIMEOUT_SECONDS
) -> Iterator[str]:
    """Serve ``<base>/model`` (an extracted model.tar.gz) until the block ends; yields the server's URL.

    ``environment`` adds container variables (the model's ``Environment``, ``INFERENCE_MAX_INPUTS``). The server is
    ready when ``/ping`` answers 200; its output is in ``<base>/model-server.log``.
    """
    if not (base / "model" / "code" / "inference.py").is_file():
        raise ModelServerError(f"{base / 'model'} has no code/inference.py: extract a model.tar.gz from train.py there")
    config_file = base / "mms.properties"
    log_file = base / "model-server.log"
    port = free_port()
    env = server_environment(base, port, environment or {})
    started: list[psutil.Process] = []
    with log_file.open("wb") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(config_file)], cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout_seconds
            while not _ping(url):
                if launcher.poll() is not None:
                    tail = _log_tail(log_file)
                    raise ModelServerError(f"the model server exited with {launcher.returncode}:\n{tail}")
                if time.monotonic() > deadline:
                    tail = _log_tail(log_file)
                    raise ModelServerError(f"no answer on {url}/ping in {timeout_seconds:.0f} s:\n{tail}")
                if not started:
                    started = model_server_processes(config_file)
                time.sleep(0.5)
            started = model_server_processes(config_file)
            yield url
        finally:
            _stop(launcher, started or model_server_processes(config_file))


def _stop(launcher: subprocess.Popen[bytes], started: list[psutil.Process]) -> None:
    # The launcher forwards SIGTERM to the Java server; anything still alive after that is killed by its id.
    if launcher.poll() is None:
        launcher.send_signal(signal.SIGTERM)
    try:
        launcher.wait(timeout=30)
    except subprocess.TimeoutExpired:
        launcher.kill()
        launcher.wait()
    for process in started:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running():
                process.kill()
    psutil.wait_procs(started, timeout=10)
