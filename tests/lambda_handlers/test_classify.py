"""The inference wrapper Lambda: every bad request and every runtime API error gets its status and stable code."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import re
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber

HANDLER = Path(__file__).resolve().parents[2] / "lambda_handlers" / "classify" / "handler.py"
ENDPOINT = "nlp-dev-endpoint"
MARKER = "ZQXJ-secret-patient-text-7731"


def _load_handler() -> ModuleType:
    # The Lambda runtime imports handler.py as a top-level module; Powertools reads its settings at import.
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Test/Classify")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    spec = importlib.util.spec_from_file_location("classify_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there.
    spec.loader.exec_module(module)
    return module


classify = _load_handler()
LIMITS = classify.Limits(max_text_chars=20, max_batch_size=3)


def event(body: str | None, *, content_type: str | None = "application/json", base64_encoded: bool = False) -> dict:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return {
        "httpMethod": "POST",
        "path": "/v1/classify",
        "headers": headers,
        "body": body,
        "isBase64Encoded": base64_encoded,
        "requestContext": {"requestId": "req-0001"},
    }


def stubbed_client() -> tuple[Any, Stubber]:
    client = botocore.session.get_session().create_client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def model_answer(predictions: list[dict]) -> dict:
    raw = json.dumps(predictions).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"}


def answer_of(result: dict) -> tuple[int, dict]:
    assert result["headers"]["Content-Type"] == "application/json"
    return result["statusCode"], json.loads(result["body"])


def expected_call(texts: list[str]) -> dict:
    return {
        "EndpointName": ENDPOINT,
        "ContentType": "application/json",
        "Accept": "application/json",
        "Body": json.dumps({"inputs": texts}).encode(),
    }


def test_list_of_texts_gets_predictions_in_request_order() -> None:
    client, stub = stubbed_client()
    predictions = [{"label": "a", "score": 0.9, "truncated": False}, {"label": "b", "score": 0.8, "truncated": False}]
    stub.add_response("invoke_endpoint", model_answer(predictions), expected_call(["first", "second"]))
    with stub:
        status, body = answer_of(classify.handle(event('{"inputs": ["first", "second"]}'), client, ENDPOINT, LIMITS))
    stub.assert_no_pending_responses()
    assert (status, body) == (200, {"predictions": predictions})


def test_single_text_is_sent_as_a_list_of_one() -> None:
    client, stub = stubbed_client()
    prediction = [{"label": "a", "score": 0.5, "truncated": False}]
    stub.add_response("invoke_endpoint", model_answer(prediction), expected_call(["héllo"]))
    with stub:
        status, body = answer_of(classify.handle(event('{"inputs": "héllo"}'), client, ENDPOINT, LIMITS))
    assert (status, body["predictions"]) == (200, prediction)


def test_base64_body_from_api_gateway_is_decoded() -> None:
    client, stub = stubbed_client()
    prediction = [{"label": "a", "score": 0.5, "truncated": False}]
    stub.add_response("invoke_endpoint", model_answer(prediction), expected_call(["ünïcode"]))
    encoded = base64.b64encode('{"inputs": "ünïcode"}'.encode()).decode()
    with stub:
        status, _ = answer_of(classify.handle(event(encoded, base64_encoded=True), client, ENDPOINT, LIMITS))
    assert status == 200


def test_content_type_with_utf8_charset_and_any_header_case_is_accepted() -> None:
    client, stub = stubbed_client()
    stub.add_response("invoke_endpoint", model_answer([{"label": "a"}]), expected_call(["x"]))
    request = event('{"inputs": "x"}', content_type=None)
    request["headers"] = {"content-TYPE": "Application/JSON; charset=UTF-8"}
    with stub:
        assert classify.handle(request, client, ENDPOINT, LIMITS)["statusCode"] == 200


BAD_REQUESTS = {
    "not_json": (event("{inputs: oops"), 400, "MalformedJSON", "not JSON"),
    "no_body": (event(None), 400, "MissingInputs", "no body"),
    "no_inputs_key": (event('{"text": "x"}'), 400, "MissingInputs", "inputs"),
    "unknown_field": (event('{"inputs": "x", "top": 1}'), 400, "UnknownField", 'only "inputs"'),
    "inputs_missing": (event("{}"), 400, "MissingInputs", "inputs"),
    "not_an_object": (event('["x"]'), 400, "InvalidInputs", "must be object"),
    "wrong_type": (event('{"inputs": 5}'), 400, "InvalidInputs", "must be string or array"),
    "text_in_list_not_a_string": (event('{"inputs": ["ok", 3]}'), 400, "InvalidInputs", r"inputs\[1\]"),
    "empty_list": (event('{"inputs": []}'), 400, "EmptyInputs", "at least one"),
    "empty_text": (event('{"inputs": ""}'), 400, "EmptyInputs", "non-empty"),
    "too_many_texts": (event('{"inputs": ["a", "b", "c", "d"]}'), 413, "TooManyInputs", "less than or equal to 3"),
    "text_too_long": (event(json.dumps({"inputs": ["ok", "x" * 21]})), 413, "TextTooLong", r"inputs\[1\].*20"),
    "wrong_content_type": (event('{"inputs": "x"}', content_type="text/plain"), 415, "UnsupportedMediaType",
                           "'text/plain'.*application/json"),
    "no_content_type": (event('{"inputs": "x"}', content_type=None), 415, "UnsupportedMediaType", "None"),
    "latin1_charset": (event('{"inputs": "x"}', content_type="application/json; charset=latin-1"), 415,
                       "UnsupportedMediaType", "latin-1"),
    "non_utf8_body": (event(base64.b64encode(b'{"inputs": "caf\xe9"}').decode(), base64_encoded=True), 400,
                      "InvalidEncoding", "not valid UTF-8"),
    "lone_surrogate_body": (event('{"inputs": "\ud800"}'), 400, "InvalidEncoding", "not valid UTF-8"),
    "bad_base64": (event("not base64!!", base64_encoded=True), 400, "InvalidEncoding", "base64"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_gets_its_status_and_code_without_calling_the_endpoint(case: str) -> None:
    request, status, code, message = BAD_REQUESTS[case]
    client, stub = stubbed_client()
    with stub:  # No response queued: any endpoint call would fail the test.
        got_status, body = answer_of(classify.handle(request, client, ENDPOINT, LIMITS))
    assert (got_status, body["error"]) == (status, code)
    assert set(body) == {"error", "message"}
    assert re.search(message, body["message"]), body["message"]


def test_body_over_invokeendpoint_limit_is_413() -> None:
    big = json.dumps({"inputs": "x" * (6 * 1024 * 1024)})
    status, body = answer_of(classify.handle(event(big), None, ENDPOINT, classify.Limits(10**8, 1)))
    assert (status, body["error"]) == (413, "PayloadTooLarge")


RUNTIME_ERRORS = {
    "validation_error": ("ValidationError", 400, {}, 502, "EndpointRejectedRequest", None),
    "model_error_5xx": ("ModelError", 424, {"OriginalStatusCode": 500, "OriginalMessage": "boom"}, 502,
                        "ModelError", None),
    "model_not_ready": ("ModelNotReadyException", 429, {}, 503, "ModelNotReady", "10"),
    "throttled": ("ThrottlingException", 400, {}, 503, "Throttled", "1"),
    "service_unavailable": ("ServiceUnavailable", 503, {}, 503, "ServiceUnavailable", "5"),
    "internal_failure": ("InternalFailure", 500, {}, 502, "EndpointError", None),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(RUNTIME_ERRORS))
def test_runtime_api_error_is_mapped_to_status_code_and_retry_after(case: str) -> None:
    aws_code, aws_status, fields, status, code, retry_after = RUNTIME_ERRORS[case]
    client, stub = stubbed_client()
    # Standard retries would retry 5xx: queue one error per attempt.
    for _ in range(classify.MAX_ATTEMPTS if aws_status >= 500 else 1):
        stub.add_client_error(
            "invoke_endpoint", aws_code, "message from the service", aws_status, modeled_fields=fields
        )
    with stub:
        result = classify.handle(event('{"inputs": ["a"]}'), client, ENDPOINT, LIMITS)
    got_status, body = answer_of(result)
    assert (got_status, body["error"]) == (status, code)
    assert result["headers"].get("Retry-After") == retry_after


def test_model_4xx_is_passed_through_with_its_original_status_and_code() -> None:
    client, stub = stubbed_client()
    original = json.dumps({"error": "TooManyInputs", "message": "at most 2 texts per request"})
    stub.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "x",
        424,
        modeled_fields={"OriginalStatusCode": 413, "OriginalMessage": original},
    )
    with stub:
        status, body = answer_of(classify.handle(event('{"inputs": ["a"]}'), client, ENDPOINT, LIMITS))
    assert (status, body) == (413, {"error": "TooManyInputs", "message": "at most 2 texts per request"})


def test_model_4xx_without_a_json_error_body_is_a_model_error() -> None:
    client, stub = stubbed_client()
    stub.add_client_error(
        "invoke_endpoint", "ModelError", "x", 424, modeled_fields={"OriginalStatusCode": 400, "OriginalMessage": "<h1>"}
    )
    with stub:
        status, body = answer_of(classify.handle(event('{"inputs": ["a"]}'), client, ENDPOINT, LIMITS))
    assert (status, body["error"]) == (502, "ModelError")
    assert "400" in body["message"]


def test_read_timeout_is_504() -> None:
    class TimingOut:
        def invoke_endpoint(self, **_: Any) -> dict:
            raise ReadTimeoutError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com/")

    status, body = answer_of(classify.handle(event('{"inputs": "a"}'), TimingOut(), ENDPOINT, LIMITS))
    assert (status, body["error"]) == (504, "EndpointTimeout")


def test_model_answer_with_wrong_number_of_predictions_is_a_model_error() -> None:
    client, stub = stubbed_client()
    stub.add_response("invoke_endpoint", model_answer([{"label": "a"}]), expected_call(["a", "b"]))
    with stub:
        status, body = answer_of(classify.handle(event('{"inputs": ["a", "b"]}'), client, ENDPOINT, LIMITS))
    assert (status, body["error"]) == (502, "ModelError")


def test_every_error_status_has_a_code_and_only_503_retries_after() -> None:
    assert set(classify.RETRY_AFTER) == {code for code, status in classify.ERROR_STATUS.items() if status == 503}


def test_client_timeouts_and_retries_stay_under_the_api_gateway_timeout() -> None:
    client = classify.runtime_client(12)
    config = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert classify.MAX_ATTEMPTS * (config.connect_timeout + config.read_timeout) < 29


def test_request_schema_limits_come_from_the_limits() -> None:
    schema = classify.request_schema(classify.Limits(max_text_chars=7, max_batch_size=4))
    inputs = schema["properties"]["inputs"]
    assert (inputs["maxLength"], inputs["items"]["maxLength"], inputs["maxItems"]) == (7, 7, 4)


def lambda_context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="classify",
        function_version="$LATEST",
        memory_limit_in_mb=512,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:classify",
        aws_request_id="lambda-req-1",
    )


def test_request_text_is_never_logged_and_logs_carry_the_correlation_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    structured = io.StringIO()
    monkeypatch.setattr(classify.logger.registered_handler, "stream", structured)
    client, stub = stubbed_client()
    stub.add_response("invoke_endpoint", model_answer([{"label": "a"}]), expected_call([MARKER]))
    original = json.dumps({"error": "InvalidInputs", "message": "rejected"})
    stub.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "x",
        424,
        modeled_fields={"OriginalStatusCode": 400, "OriginalMessage": original},
    )
    monkeypatch.setattr(classify, "RUNTIME", client)
    monkeypatch.setattr(classify, "ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setattr(classify, "LIMITS", classify.Limits(max_text_chars=40, max_batch_size=2))
    requests = [
        json.dumps({"inputs": [MARKER]}),  # success
        json.dumps({"inputs": [MARKER, MARKER]}),  # model 4xx
        json.dumps({"inputs": [MARKER * 2]}),  # too long, rejected by the wrapper
        '{"inputs": "' + MARKER,  # not JSON
    ]
    with stub:
        statuses = [classify.lambda_handler(event(body), lambda_context())["statusCode"] for body in requests]
    assert statuses == [200, 400, 413, 400]
    log_lines = [json.loads(line) for line in structured.getvalue().splitlines()]
    assert [line.get("error") for line in log_lines] == [None, "InvalidInputs", "TextTooLong", "MalformedJSON"]
    assert {line["correlation_id"] for line in log_lines} == {"req-0001"}
    printed = capsys.readouterr()  # Metrics (EMF) go to stdout.
    assert "ClassifiedTexts" in printed.out
    for output in (structured.getvalue(), printed.out, printed.err, caplog.text):
        assert MARKER not in output


# --- Tracing: X-Ray where Powertools traces, and not even imported elsewhere ------------------------------------------

TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"
# Runs in a fresh interpreter: Powertools keeps the Tracer's settings in class state and the X-Ray SDK in globals.
TRACED_RUN = """
import importlib.util, io, json, sys
from types import SimpleNamespace
from botocore.response import StreamingBody
from botocore.stub import Stubber
spec = importlib.util.spec_from_file_location("classify_handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
marker = sys.argv[2]
body = json.dumps([{"label": "a", "score": 0.9, "truncated": False}]).encode()
with Stubber(module.RUNTIME) as stub:
    stub.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body))})
    event = {"headers": {"Content-Type": "application/json"}, "body": json.dumps({"inputs": [marker]}),
             "isBase64Encoded": False, "requestContext": {"requestId": "req-0001"}}
    context = SimpleNamespace(function_name="classify", function_version="$LATEST", memory_limit_in_mb=512,
                              invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:classify",
                              aws_request_id="lambda-req-1")
    result = module.lambda_handler(event, context)
print(json.dumps({"tracer": type(module.tracer).__name__, "status": result["statusCode"],
                  "xray_imported": "aws_xray_sdk.core" in sys.modules}))
"""


def run_in_lambda_like_process(tmp_path: Path, daemon_port: int, **environment: str) -> dict[str, Any]:
    import subprocess

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POWERTOOLS_", "AWS_", "LAMBDA_", "_X_AMZN")) or key == "AWS_DEFAULT_REGION"
    }
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        ENDPOINT_NAME=ENDPOINT,
        POWERTOOLS_METRICS_NAMESPACE="Test/Classify",
        LAMBDA_TASK_ROOT=str(tmp_path),  # What the Lambda runtime sets, and what tells Powertools it is in Lambda.
        _X_AMZN_TRACE_ID=f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1",
        AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{daemon_port}",
        **environment,
    )
    done = subprocess.run(
        [sys.executable, "-c", TRACED_RUN, str(HANDLER), MARKER],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert MARKER not in done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def xray_daemon() -> Any:
    """A UDP socket where the X-Ray daemon would listen; the SDK sends each (sub)segment there as one datagram."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(0.2)
        yield daemon


def received_segments(daemon: Any) -> list[dict[str, Any]]:
    segments = []
    while True:
        try:
            datagram = daemon.recv(65536).decode("utf-8")
        except TimeoutError:
            return segments
        header, _, document = datagram.partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        assert MARKER not in document  # No request text in a trace, not even in metadata.
        segments.append(json.loads(document))


def test_in_lambda_with_tracing_on_the_handler_the_endpoint_call_and_invoke_endpoint_are_traced(
    tmp_path: Path, xray_daemon: Any
) -> None:
    result = run_in_lambda_like_process(tmp_path, xray_daemon.getsockname()[1])

    assert result == {"tracer": "Tracer", "status": 200, "xray_imported": True}
    segments = received_segments(xray_daemon)
    assert {segment["trace_id"] for segment in segments} == {TRACE_ID}
    names = {segment["name"] for segment in segments}
    assert "## lambda_handler" in names
    assert any(name.endswith("call_endpoint") for name in names), names
    # botocore is patched: InvokeEndpoint has its own subsegment, with the endpoint call's AWS metadata.
    (runtime_call,) = [segment for segment in segments if segment.get("aws", {}).get("operation") == "InvokeEndpoint"]
    assert runtime_call["namespace"] == "aws"


def test_with_tracing_disabled_in_lambda_nothing_is_traced_and_xray_is_not_imported(
    tmp_path: Path, xray_daemon: Any
) -> None:
    result = run_in_lambda_like_process(tmp_path, xray_daemon.getsockname()[1], POWERTOOLS_TRACE_DISABLED="true")

    assert result == {"tracer": "Untraced", "status": 200, "xray_imported": False}
    assert received_segments(xray_daemon) == []


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"LAMBDA_TASK_ROOT": "/var/task"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "0"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "Yes"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_CHALICE_CLI_MODE": "true"},
        {"POWERTOOLS_TRACE_DISABLED": "false"},
    ],
)
def test_tracing_is_active_exactly_where_powertools_tracer_would_trace(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools import Tracer

    for key in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert classify.tracing_active() is not bool(Tracer._is_tracer_disabled())


def test_untraced_decorators_return_the_function_itself() -> None:
    untraced = classify.Untraced()

    def function() -> int:
        return 1

    assert untraced.capture_method(function) is function
    assert untraced.capture_method(capture_response=False)(function) is function
    assert untraced.capture_lambda_handler(capture_response=False)(function) is function
