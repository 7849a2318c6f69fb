"""The classify Lambda through real botocore InvokeEndpoint, a local runtime-protocol server and multi-model-server.

The handler's client points at ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``, a local SageMaker runtime API
(scripts/local_runtime.py, with the failing endpoints of tests/lambda_handlers/runtime_stand_in.py) that forwards to
the session's multi-model-server serving the model train.py produced; the other endpoint names answer the runtime
API's errors.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.lambda_handlers.runtime_stand_in import SERVICE_ERRORS, forward_to, runtime_stand_in
from tests.training_code.model_server import MAX_INPUTS, Server

pytestmark = pytest.mark.slow

HANDLER = Path(__file__).resolve().parents[2] / "lambda_handlers" / "classify" / "handler.py"


def load_handler() -> ModuleType:
    if "classify_handler" in sys.modules:
        return sys.modules["classify_handler"]
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Test/Classify")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    spec = importlib.util.spec_from_file_location("classify_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


classify = load_handler()
LIMITS = classify.Limits(max_text_chars=200, max_batch_size=16)


@pytest.fixture(scope="module")
def runtime(server: Server) -> Iterator[Any]:
    """A real botocore sagemaker-runtime client, 2 s read timeout, aimed at the stand-in."""
    server.invoke({"inputs": "warm up"})  # The first answer loads the model: not a timeout case.
    with pytest.MonkeyPatch.context() as env, runtime_stand_in(forward_to(server.url)) as url:
        env.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.delenv("AWS_PROFILE", raising=False)
        client = classify.runtime_client(2)
        assert client.meta.endpoint_url == url
        yield client


def call(runtime: Any, payload: Any, endpoint: str = "model") -> tuple[int, dict, dict]:
    event = {
        "headers": {"Content-Type": "application/json"},
        "body": payload if isinstance(payload, str) else json.dumps(payload),
        "isBase64Encoded": False,
        "requestContext": {"requestId": "e2e"},
    }
    result = classify.handle(event, runtime, endpoint, LIMITS)
    return result["statusCode"], json.loads(result["body"]), result["headers"]


def test_good_request_gets_the_served_model_predictions_in_order(runtime: Any, server: Server) -> None:
    texts = ["how do I reset my password", "the weather is nice today", "reset password please"]
    status, body, _ = call(runtime, {"inputs": texts})
    assert status == 200
    # The same texts straight to the model server, one by one: the wrapper must keep the order.
    direct = [server.invoke({"inputs": text}).json()[0] for text in texts]
    assert [p["label"] for p in body["predictions"]] == [p["label"] for p in direct]
    assert [p["score"] for p in body["predictions"]] == pytest.approx([p["score"] for p in direct], abs=1e-5)


def test_single_text_gets_one_prediction(runtime: Any) -> None:
    status, body, _ = call(runtime, {"inputs": "hello there"})
    assert status == 200 and len(body["predictions"]) == 1
    assert set(body["predictions"][0]) >= {"label", "score", "truncated"}


def test_model_4xx_reaches_the_client_with_the_model_status_and_code(runtime: Any) -> None:
    # The wrapper allows 16 texts, the served model MAX_INPUTS: the model's own 413 comes back as is.
    status, body, _ = call(runtime, {"inputs": ["text"] * (MAX_INPUTS + 1)})
    assert (status, body["error"]) == (413, "TooManyInputs")
    assert set(body) == {"error", "message"}


@pytest.mark.parametrize(
    ("endpoint", "status", "code", "retry_after"),
    [
        ("missing", 502, "EndpointRejectedRequest", None),
        ("not-ready", 503, "ModelNotReady", "10"),
        ("throttled", 503, "Throttled", "1"),
        ("unavailable", 503, "ServiceUnavailable", "5"),
        ("crashing", 502, "ModelError", None),
        ("slow", 504, "EndpointTimeout", None),
    ],
)
def test_runtime_failure_is_mapped_over_the_real_protocol(
    runtime: Any, endpoint: str, status: int, code: str, retry_after: str | None
) -> None:
    got_status, body, headers = call(runtime, {"inputs": ["a"]}, endpoint)
    assert (got_status, body["error"]) == (status, code), body
    assert headers.get("Retry-After") == retry_after


def test_every_stand_in_service_error_is_covered() -> None:
    assert set(SERVICE_ERRORS) == {"missing", "not-ready", "throttled", "unavailable"}


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ("{oops", 400, "MalformedJSON"),
        ({"inputs": []}, 400, "EmptyInputs"),
        ({"inputs": "x" * 201}, 413, "TextTooLong"),
    ],
)
def test_bad_request_is_answered_by_the_wrapper(runtime: Any, payload: Any, status: int, code: str) -> None:
    got_status, body, _ = call(runtime, payload)
    assert (got_status, body["error"]) == (status, code)
