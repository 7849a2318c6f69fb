"""Idle auto-stop: decisions against a real local HTTP server that answers like Jupyter, SageMaker stubbed."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from notebook_lifecycle.helpers import autostop
from tests.notebook_lifecycle.fake_jupyter import FakeJupyter, handler_for

AUTOSTOP_SCRIPT = Path(autostop.__file__)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)  # noqa: UP017 (same spelling as the script)
INSTANCE = "alice-notebook"


def jupyter_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def minutes_ago(minutes: float) -> str:
    return jupyter_time(NOW - timedelta(minutes=minutes))


def kernel(kernel_id: str, *, state: str = "idle", idle_minutes: float = 90, connections: int = 0) -> dict[str, Any]:
    return {
        "id": kernel_id,
        "name": "python3",
        "last_activity": minutes_ago(idle_minutes),
        "execution_state": state,
        "connections": connections,
    }


def session(path: str, kernel_model: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"session-{kernel_model['id']}",
        "path": path,
        "name": path,
        "type": "notebook",
        "kernel": kernel_model,
    }


@pytest.fixture(scope="session")
def sagemaker_client() -> Any:
    # Explicit fake credentials: botocore must never look for real ones (or the instance metadata service) here.
    return boto3.client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def sagemaker(sagemaker_client: Any) -> Iterator[Stubber]:
    with Stubber(sagemaker_client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def metadata_file(tmp_path: Path) -> Path:
    path = tmp_path / "resource-metadata.json"
    path.write_text(
        json.dumps(
            {
                "ResourceArn": f"arn:aws:sagemaker:eu-west-1:111122223333:notebook-instance/{INSTANCE}",
                "ResourceName": INSTANCE,
            }
        )
    )
    return path


def run_autostop(jupyter_url: str, metadata_file: Path, client: Any, *extra: str) -> int:
    argv = ["--idle-minutes", "60", "--jupyter-url", jupyter_url, "--metadata-file", str(metadata_file), *extra]
    return autostop.run(argv, sagemaker_client=client, now=NOW)


def expect_stop(stubber: Stubber, name: str = INSTANCE) -> None:
    stubber.add_response("stop_notebook_instance", {}, {"NotebookInstanceName": name})


def test_stops_instance_when_every_kernel_idled_past_the_limit(
    jupyter: FakeJupyter,
    sagemaker: Stubber,
    sagemaker_client: Any,
    metadata_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kernels = [kernel("k1", idle_minutes=90), kernel("k2", idle_minutes=75)]
    jupyter.answer(sessions=[session("analysis.ipynb", kernels[0])], kernels=kernels)
    expect_stop(sagemaker)

    with caplog.at_level(logging.INFO, logger="platform-autostop"):
        assert run_autostop(jupyter.url, metadata_file, sagemaker_client) == 0

    assert f"decision=stop instance={INSTANCE}" in caplog.text
    assert "idle for 75 min" in caplog.text


def test_keeps_running_while_a_kernel_is_busy(
    jupyter: FakeJupyter,
    sagemaker: Stubber,
    sagemaker_client: Any,
    metadata_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    busy = kernel("k1", state="busy", idle_minutes=300)
    jupyter.answer(sessions=[session("train.ipynb", busy)], kernels=[busy, kernel("k2")])

    with caplog.at_level(logging.INFO, logger="platform-autostop"):
        assert run_autostop(jupyter.url, metadata_file, sagemaker_client) == 0

    assert "decision=keep" in caplog.text
    assert "of train.ipynb is busy" in caplog.text


def test_keeps_running_while_a_terminal_is_open(
    jupyter: FakeJupyter,
    sagemaker: Stubber,
    sagemaker_client: Any,
    metadata_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    jupyter.answer(kernels=[kernel("k1")], terminals=[{"name": "1", "last_activity": minutes_ago(240)}])

    with caplog.at_level(logging.INFO, logger="platform-autostop"):
        assert run_autostop(jupyter.url, metadata_file, sagemaker_client) == 0

    assert "1 terminal(s) open (1)" in caplog.text


def test_keeps_running_after_recent_kernel_activity(
    jupyter: FakeJupyter,
    sagemaker: Stubber,
    sagemaker_client: Any,
    metadata_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    jupyter.answer(kernels=[kernel("old", idle_minutes=500), kernel("recent", idle_minutes=12)])

    with caplog.at_level(logging.INFO, logger="platform-autostop"):
        assert run_autostop(jupyter.url, metadata_file, sagemaker_client) == 0

    assert "decision=keep reason=idle for 12 min" in caplog.text


def test_never_stops_when_jupyter_is_unreachable(
    sagemaker: Stubber, sagemaker_client: Any, metadata_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}"

    assert run_autostop(url, metadata_file, sagemaker_client, "--timeout-seconds", "2") == 1

    assert f"decision=keep reason=cannot read the Jupyter server at {url}" in caplog.text
    assert "decision=stop" not in caplog.text


def test_never_stops_when_jupyter_answers_with_a_server_error(
    jupyter: FakeJupyter,
    sagemaker: Stubber,
    sagemaker_client: Any,
    metadata_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    jupyter.routes["/api/kernels"] = (500, {"message": "internal error"})

    assert run_autostop(jupyter.url, metadata_file, sagemaker_client) == 1

    assert "/api/kernels?no_track_activity=1 answered HTTP 500" in caplog.text


def test_stops_when_no_kernel_ran_since_the_server_started_long_ago(
    jupyter: FakeJupyter,
    sagemaker: Stubber,
    sagemaker_client: Any,
    metadata_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    jupyter.answer(started=minutes_ago(61))
    expect_stop(sagemaker)

    with caplog.at_level(logging.INFO, logger="platform-autostop"):
        assert run_autostop(jupyter.url, metadata_file, sagemaker_client) == 0

    assert "since last server start (no kernel has run)" in caplog.text


def test_keeps_running_when_the_server_started_recently_and_no_kernel_ran(
    jupyter: FakeJupyter, sagemaker: Stubber, sagemaker_client: Any, metadata_file: Path
) -> None:
    jupyter.answer(started=minutes_ago(5))

    assert run_autostop(jupyter.url, metadata_file, sagemaker_client) == 0


def test_browser_connections_keep_the_instance_only_when_asked(
    jupyter: FakeJupyter,
    sagemaker: Stubber,
    sagemaker_client: Any,
    metadata_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    jupyter.answer(kernels=[kernel("k1", idle_minutes=90, connections=1)])

    with caplog.at_level(logging.INFO, logger="platform-autostop"):
        assert run_autostop(jupyter.url, metadata_file, sagemaker_client, "--count-connections") == 0
    assert "has 1 browser connection(s)" in caplog.text

    expect_stop(sagemaker)
    assert run_autostop(jupyter.url, metadata_file, sagemaker_client) == 0


def test_sends_the_jupyter_token_and_asks_not_to_track_its_polls(
    jupyter: FakeJupyter, sagemaker: Stubber, sagemaker_client: Any, metadata_file: Path
) -> None:
    jupyter.answer(started=minutes_ago(5))

    assert run_autostop(jupyter.url, metadata_file, sagemaker_client, "--token", "s3cret") == 0

    paths = {path for path, _ in jupyter.requests}
    assert paths == {f"/api/{name}?no_track_activity=1" for name in ("status", "terminals", "sessions", "kernels")}
    assert all(headers.get("Authorization") == "token s3cret" for _, headers in jupyter.requests)


def test_uses_the_instance_name_parameter_when_the_metadata_file_is_missing(
    jupyter: FakeJupyter, sagemaker: Stubber, sagemaker_client: Any, tmp_path: Path
) -> None:
    expect_stop(sagemaker, name="bob-notebook")

    code = run_autostop(jupyter.url, tmp_path / "absent.json", sagemaker_client, "--instance-name", "bob-notebook")

    assert code == 0


def test_keeps_running_and_says_why_when_the_instance_name_is_unknown(
    jupyter: FakeJupyter,
    sagemaker: Stubber,
    sagemaker_client: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOTEBOOK_INSTANCE_NAME", raising=False)

    assert run_autostop(jupyter.url, tmp_path / "absent.json", sagemaker_client) == 1

    assert "neither --instance-name nor NOTEBOOK_INSTANCE_NAME is set" in caplog.text


def test_logs_and_fails_when_sagemaker_refuses_to_stop(
    jupyter: FakeJupyter,
    sagemaker: Stubber,
    sagemaker_client: Any,
    metadata_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sagemaker.add_client_error(
        "stop_notebook_instance",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: sagemaker:StopNotebookInstance",
        http_status_code=400,
        expected_params={"NotebookInstanceName": INSTANCE},
    )

    assert run_autostop(jupyter.url, metadata_file, sagemaker_client) == 1

    assert f"could not stop notebook instance {INSTANCE}" in caplog.text
    assert "AccessDeniedException" in caplog.text


def test_dry_run_logs_the_stop_without_calling_sagemaker(
    jupyter: FakeJupyter,
    sagemaker: Stubber,
    sagemaker_client: Any,
    metadata_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="platform-autostop"):
        assert run_autostop(jupyter.url, metadata_file, sagemaker_client, "--dry-run") == 0

    assert f"decision=stop (dry run, not stopping {INSTANCE})" in caplog.text


def test_a_server_without_terminals_counts_as_having_none_open(
    jupyter: FakeJupyter, sagemaker: Stubber, sagemaker_client: Any, metadata_file: Path
) -> None:
    del jupyter.routes["/api/terminals"]
    expect_stop(sagemaker)

    assert run_autostop(jupyter.url, metadata_file, sagemaker_client) == 0


def test_rejects_idle_minutes_below_one(
    jupyter: FakeJupyter, metadata_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    argv = ["--idle-minutes", "0", "--jupyter-url", jupyter.url, "--metadata-file", str(metadata_file)]

    assert autostop.run(argv, now=NOW) == 2

    assert "--idle-minutes is 0; it must be at least 1" in caplog.text
    assert jupyter.requests == []


def test_runs_as_a_command_and_logs_its_decision(jupyter: FakeJupyter, metadata_file: Path) -> None:
    jupyter.answer(kernels=[kernel("k1", state="busy")])

    result = subprocess.run(
        [
            sys.executable,
            str(AUTOSTOP_SCRIPT),
            "--idle-minutes",
            "60",
            "--jupyter-url",
            jupyter.url,
            "--metadata-file",
            str(metadata_file),
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "platform-autostop INFO decision=keep reason=kernel python3 (k1) is busy" in result.stderr


def test_reads_a_jupyter_server_over_https_with_a_self_signed_certificate(
    tmp_path: Path, sagemaker: Stubber, sagemaker_client: Any, metadata_file: Path
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=notebook",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    state = FakeJupyter(url="")
    state.answer(kernels=[kernel("k1", idle_minutes=90)])
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    expect_stop(sagemaker)
    try:
        assert run_autostop(f"https://localhost:{server.server_address[1]}", metadata_file, sagemaker_client) == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class TestDecision:
    """The pure decision logic, without any server."""

    def activity(self, *kernels: dict[str, Any], started_minutes_ago: float = 600) -> autostop.JupyterActivity:
        return autostop.activity_from_api(
            sessions=[], kernels=list(kernels), terminals=[], status={"started": minutes_ago(started_minutes_ago)}
        )

    def test_idle_exactly_at_the_limit_stops(self) -> None:
        decision = autostop.decide(self.activity(kernel("k", idle_minutes=60)), now=NOW, idle_limit=timedelta(hours=1))

        assert decision.stop

    def test_a_starting_kernel_counts_as_busy(self) -> None:
        decision = autostop.decide(
            self.activity(kernel("k", state="starting", idle_minutes=600)), now=NOW, idle_limit=timedelta(minutes=5)
        )

        assert not decision.stop
        assert decision.reason.endswith("is starting")

    def test_a_kernel_known_only_from_a_session_still_counts(self) -> None:
        only_in_session = kernel("orphan", state="busy")
        activity = autostop.activity_from_api(
            sessions=[session("a.ipynb", only_in_session)], kernels=[], terminals=[], status={}
        )

        assert [k.notebook_path for k in activity.kernels] == ["a.ipynb"]
        assert not autostop.decide(activity, now=NOW, idle_limit=timedelta(minutes=1)).stop

    def test_without_any_timestamp_it_cannot_tell_and_keeps_running(self) -> None:
        activity = autostop.activity_from_api(sessions=[], kernels=[], terminals=[], status={})

        decision = autostop.decide(activity, now=NOW, idle_limit=timedelta(minutes=1))

        assert not decision.stop
        assert "cannot tell" in decision.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T10:15:30.123456Z", datetime(2026, 11, 27, 10, 15, 30, 123456, tzinfo=timezone.utc)),  # noqa: UP017
        ("2026-11-27T10:15:30.123Z", datetime(2026, 11, 27, 10, 15, 30, 123000, tzinfo=timezone.utc)),  # noqa: UP017
        ("2026-11-27T10:15:30Z", datetime(2026, 11, 27, 10, 15, 30, tzinfo=timezone.utc)),  # noqa: UP017
        ("2026-11-27T12:15:30+02:00", datetime(2026, 11, 27, 10, 15, 30, tzinfo=timezone.utc)),  # noqa: UP017
        ("2026-11-27T10:15:30.5", datetime(2026, 11, 27, 10, 15, 30, 500000, tzinfo=timezone.utc)),  # noqa: UP017
    ],
)
def test_parses_the_timestamps_jupyter_writes(text: str, expected: datetime) -> None:
    assert autostop.parse_jupyter_time(text) == expected


def test_an_unparseable_timestamp_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="'yesterday'"):
        autostop.parse_jupyter_time("yesterday")
