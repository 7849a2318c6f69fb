"""notebooks/03_call_the_api.ipynb: the inference API with SigV4, and the endpoint directly.

The API is a local HTTP server standing in for API Gateway with IAM authorization: it recomputes the SigV4 signature
of every request (service execute-api, the notebook's credentials) and answers 403 as API Gateway does when the
signature is missing or wrong, so a request that is not properly signed cannot pass. Behind it, answers follow the
Lambda wrapper's contract (lambda_handlers/classify/handler.py). The endpoint is botocore's Stubber on a real
sagemaker-runtime client. The helper cell is tested on its own, then the whole notebook runs top to bottom.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import nbformat
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.response import StreamingBody
from botocore.stub import Stubber

from notebook_lifecycle.helpers import write_platform_env as env_writer

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "03_call_the_api.ipynb"
REGION = "eu-west-1"
CREDENTIALS = Credentials("AKIDNOTEBOOKROLE", "notebook-role-secret", "notebook-session-token")
ENDPOINT = "env-inference-endpoint"
STAGE_PATH = "/dev"
# The most any stage accepts (config.serving.max_text_chars is at most 100,000).
MAX_TEXT_CHARS = 100_000
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/execute-api/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
LABELS = {"password": "account", "crash": "technical", "refund": "billing", "charged": "billing"}


# --- A stand-in for API Gateway with IAM authorization ----------------------------------------------------------------


class FakeApi(ThreadingHTTPServer):
    """Checks each request's SigV4 signature, then answers like the classify Lambda behind the API would."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeApiHandler)
        self.received: list[dict[str, Any]] = []
        self.scripted: list[tuple[int, dict[str, str], dict[str, Any]]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{STAGE_PATH}/"


def signature_problem(method: str, url: str, headers: dict[str, str], body: bytes) -> str | None:
    """Why the request is not signed with CREDENTIALS for execute-api in REGION, or None when it is."""
    authorization = headers.get("authorization")
    if authorization is None:
        return "Missing Authentication Token"
    match = AUTHORIZATION.fullmatch(authorization)
    if match is None:
        return f"Authorization header is malformed: {authorization}"
    if match["key"] != CREDENTIALS.access_key or match["region"] != REGION:
        return "The security token included in the request is invalid."
    if headers.get("x-amz-security-token") != CREDENTIALS.token:
        return "The security token included in the request is invalid."
    signed = match["signed"].split(";")
    if not {"host", "x-amz-date"} <= set(signed):
        return f"SignedHeaders {match['signed']} must include host and x-amz-date"
    if not headers.get("x-amz-date", "").startswith(match["date"]):
        return "Date in Credential scope does not match the request's X-Amz-Date"
    # Recompute the signature over exactly the headers the client says it signed.
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in signed})
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(CREDENTIALS.get_frozen_credentials(), "execute-api", REGION)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if expected != match["signature"]:
        return "The request signature we calculated does not match the signature you provided."
    return None


class FakeApiHandler(BaseHTTPRequestHandler):
    server: FakeApi

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        url = f"http://{headers['host']}{self.path}"
        problem = signature_problem("POST", url, headers, body)
        self.server.received.append({"path": self.path, "headers": headers, "body": body, "problem": problem})
        if problem is not None:
            return self.answer(403, {}, {"message": problem})
        if self.path != f"{STAGE_PATH}/v1/classify":
            return self.answer(403, {}, {"message": "Missing Authentication Token"})  # API Gateway's unknown path
        if self.server.scripted:
            return self.answer(*self.server.scripted.pop(0))
        return self.answer(*classify(body))

    def answer(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def label_of(text: str) -> str:
    return next((label for word, label in LABELS.items() if word in text.lower()), "other")


def classify(body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    """The wrapper's answers for the requests the notebook makes: predictions, or 413 for a text over the limit."""
    inputs = json.loads(body)["inputs"]
    texts = [inputs] if isinstance(inputs, str) else inputs
    if any(len(text) > MAX_TEXT_CHARS for text in texts):
        message = f"data.inputs must be shorter than or equal to {MAX_TEXT_CHARS} characters: shorten the text"
        return 413, {}, {"error": "TextTooLong", "message": message}
    predictions = [{"label": label_of(text), "score": 0.875, "truncated": False} for text in texts]
    return 200, {}, {"predictions": predictions}


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


# --- The notebook's cells ---------------------------------------------------------------------------------------------


def code_cells() -> list[Any]:
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


@pytest.fixture(scope="module")
def helpers() -> dict[str, Any]:
    (cell,) = [cell for cell in code_cells() if "api-helpers" in cell.metadata.get("tags", [])]
    namespace: dict[str, Any] = {}
    exec(compile(cell.source, f"{NOTEBOOK.name}[api-helpers]", "exec"), namespace)
    return namespace


def runtime_client() -> Any:
    session = boto3.Session(aws_access_key_id="stub", aws_secret_access_key="stub", region_name=REGION)
    return session.client("sagemaker-runtime")


def endpoint_answer(texts: list[str]) -> dict[str, Any]:
    raw = json.dumps([{"label": label_of(t), "score": 0.875, "truncated": False} for t in texts]).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"}


def expected_invoke(texts: list[str]) -> dict[str, Any]:
    return {
        "EndpointName": ENDPOINT,
        "ContentType": "application/json",
        "Accept": "application/json",
        "Body": json.dumps({"inputs": texts}).encode(),
    }


@pytest.mark.parametrize(
    "base",
    [
        "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/dev/",
        "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/dev",
        "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/dev/v1/classify",
    ],
)
def test_the_classify_url_is_v1_classify_under_the_api_base_url(helpers: dict[str, Any], base: str) -> None:
    assert helpers["classify_url"](base) == "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/dev/v1/classify"


def test_requests_are_signed_with_sigv4_for_execute_api_with_the_notebook_credentials(
    helpers: dict[str, Any], api: FakeApi
) -> None:
    url = helpers["classify_url"](api.base_url)

    status, _, answer = helpers["call_api"](CREDENTIALS, REGION, url, "How do I reset my password?")

    assert (status, answer) == (200, {"predictions": [{"label": "account", "score": 0.875, "truncated": False}]})
    (request,) = api.received
    assert request["problem"] is None
    assert AUTHORIZATION.fullmatch(request["headers"]["authorization"])
    assert request["headers"]["content-type"] == "application/json"
    assert json.loads(request["body"]) == {"inputs": "How do I reset my password?"}


def test_the_stand_in_refuses_what_api_gateway_refuses(helpers: dict[str, Any], api: FakeApi) -> None:
    """The check is real: an unsigned request, another secret or another region get API Gateway's 403."""
    url = helpers["classify_url"](api.base_url)
    wrong_secret = Credentials(CREDENTIALS.access_key, "another-secret", CREDENTIALS.token)
    for credentials, region in ((wrong_secret, REGION), (CREDENTIALS, "us-east-1")):
        status, headers, answer = helpers["call_api"](credentials, region, url, "text")
        assert status == 403 and "error" not in answer
        assert helpers["describe_error"](status, headers, answer).startswith("HTTP 403 ")
    import urllib.request

    request = urllib.request.Request(url, data=b'{"inputs": "text"}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(request, timeout=5)
    assert unsigned.value.code == 403
    assert [r["problem"] is not None for r in api.received] == [True, True, True]


def test_a_text_over_the_limit_is_a_handled_413_with_its_code(helpers: dict[str, Any], api: FakeApi) -> None:
    url = helpers["classify_url"](api.base_url)

    status, headers, answer = helpers["call_api"](CREDENTIALS, REGION, url, ["x" * (MAX_TEXT_CHARS + 1)])

    assert status == 413 and answer["error"] == "TextTooLong"
    assert helpers["describe_error"](status, headers, answer) == f"HTTP 413 TextTooLong: {answer['message']}"


def test_retries_wait_the_retry_after_seconds_then_give_the_answer(helpers: dict[str, Any], api: FakeApi) -> None:
    not_ready = {"error": "ModelNotReady", "message": "the model is not ready yet (starting or scaling): retry later"}
    api.scripted = [(503, {"Retry-After": "10"}, not_ready), (503, {"retry-after": "1"}, not_ready)]
    waits: list[float] = []
    url = helpers["classify_url"](api.base_url)

    status, _, answer = helpers["call_api"](CREDENTIALS, REGION, url, ["a refund"], sleep=waits.append)

    assert (status, answer["predictions"][0]["label"]) == (200, "billing")
    assert waits == [10.0, 1.0]
    assert [r["problem"] for r in api.received] == [None, None, None]  # each attempt signed


def test_a_503_that_persists_is_returned_with_its_retry_after(helpers: dict[str, Any], api: FakeApi) -> None:
    throttled = {"error": "Throttled", "message": "too many requests to the endpoint: retry later"}
    api.scripted = [(503, {"Retry-After": "1"}, throttled)] * 3
    waits: list[float] = []
    url = helpers["classify_url"](api.base_url)

    status, headers, answer = helpers["call_api"](CREDENTIALS, REGION, url, "text", retries=2, sleep=waits.append)

    assert status == 503 and waits == [1.0, 1.0] and len(api.received) == 3
    line = helpers["describe_error"](status, headers, answer)
    assert line == "HTTP 503 Throttled: too many requests to the endpoint: retry later (retry after 1 s)"


def test_a_client_error_is_not_retried(helpers: dict[str, Any], api: FakeApi) -> None:
    api.scripted = [(400, {}, {"error": "EmptyInputs", "message": "send non-empty texts"})]
    waits: list[float] = []
    url = helpers["classify_url"](api.base_url)

    status, _, _ = helpers["call_api"](CREDENTIALS, REGION, url, [""], sleep=waits.append)

    assert status == 400 and waits == [] and len(api.received) == 1


def test_the_endpoint_is_called_with_the_api_s_json_contract(helpers: dict[str, Any]) -> None:
    client = runtime_client()
    texts = ["How do I reset my password?", "Can I get a refund?"]
    with Stubber(client) as stubber:
        stubber.add_response("invoke_endpoint", endpoint_answer(texts), expected_invoke(texts))
        predictions = helpers["invoke_endpoint"](client, ENDPOINT, texts)
        stubber.assert_no_pending_responses()
    assert [p["label"] for p in predictions] == ["account", "billing"]
    table = helpers["predictions_table"](texts, predictions).splitlines()
    assert table[1] == f"{'account':<16} {0.875:>6.3f}  How do I reset my password?"


# --- The whole notebook, top to bottom --------------------------------------------------------------------------------


class StubbedSession:
    """Stands in for boto3.Session: checks the region, hands out the stubbed runtime client and the credentials."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.regions: list[str] = []

    def __call__(self, *, region_name: str) -> StubbedSession:
        self.regions.append(region_name)
        return self

    def client(self, service: str) -> Any:
        assert service == "sagemaker-runtime"
        return self.runtime

    def get_credentials(self) -> Credentials:
        return CREDENTIALS


def environment(api_url: str) -> dict[str, str]:
    values = {key: f"env-{key.lower().replace('_', '-')}" for key in env_writer.ENV_FILE_KEYS}
    return {**values, "AWS_REGION_NAME": REGION, "ENDPOINT_NAME": ENDPOINT, "INFERENCE_API_URL": api_url}


def write_env(tmp_path: Path, values: dict[str, str]) -> Path:
    """The environment file as the notebook instance writes it, plus INFERENCE_API_URL (a key of the Serving stack)."""
    env_path, _ = env_writer.write_platform_env(tmp_path, values)
    if "INFERENCE_API_URL" not in env_writer.ENV_FILE_KEYS and "INFERENCE_API_URL" in values:
        with env_path.open("a", encoding="utf-8") as env_file:
            env_file.write(f"INFERENCE_API_URL={values['INFERENCE_API_URL']}\n")
    return env_path


def run_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: dict[str, str], runtime: Any
) -> tuple[dict[str, Any], StubbedSession]:
    env_path = write_env(tmp_path, values)
    session = StubbedSession(runtime)
    monkeypatch.setattr(boto3, "Session", session)
    namespace: dict[str, Any] = {}
    for index, cell in enumerate(code_cells()):
        exec(compile(cell.source, f"{NOTEBOOK.name}[code cell {index}]", "exec"), namespace)
        if "platform-env" in cell.metadata.get("tags", []):
            read: Callable[..., dict[str, str]] = namespace["read_platform_env"]
            namespace["read_platform_env"] = lambda read=read: read(env_path)
    return namespace, session


def test_run_all_calls_the_api_signed_shows_a_batch_handles_a_413_and_calls_the_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], api: FakeApi
) -> None:
    runtime = runtime_client()
    with Stubber(runtime) as stubber:
        # The batch cell's texts, sent to the endpoint as they were to the API.
        def queue_endpoint(texts: list[str]) -> None:
            stubber.add_response("invoke_endpoint", endpoint_answer(texts), expected_invoke(texts))

        texts = batch_texts()
        queue_endpoint(texts)
        namespace, session = run_notebook(tmp_path, monkeypatch, environment(api.base_url), runtime)
        stubber.assert_no_pending_responses()

    assert session.regions == [REGION]
    assert [r["problem"] for r in api.received] == [None, None, None]  # single, batch, too long: all signed
    assert {r["path"] for r in api.received} == {f"{STAGE_PATH}/v1/classify"}
    output = capsys.readouterr().out
    assert f"POST {api.base_url}v1/classify -> HTTP 200" in output
    assert f"{'billing':<16} {0.875:>6.3f}  I was charged twice for my subscription this month" in output
    assert "HTTP 413 TextTooLong: " in output and "-> handled" in output
    assert "same labels as through the API: True" in output
    assert [p["label"] for p in namespace["batch_predictions"]] == [label_of(t) for t in texts]


def batch_texts() -> list[str]:
    """The TEXTS of the batch cell, read from the notebook without running it."""
    import ast

    for cell in code_cells():
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["TEXTS"]:
                texts: list[str] = ast.literal_eval(node.value)
                return texts
    raise AssertionError("the notebook has no TEXTS = [...] batch")


@pytest.mark.parametrize("missing", ["INFERENCE_API_URL", "ENDPOINT_NAME"])
def test_without_a_served_model_the_setup_cell_says_what_to_do_and_calls_nothing(
    missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: FakeApi
) -> None:
    values = environment(api.base_url)
    values[missing] = ""  # the file's value while no endpoint (and so no API) is deployed
    runtime = runtime_client()
    with Stubber(runtime), pytest.raises(RuntimeError, match=rf"{missing} empty .* scripts/promote_model.py"):
        run_notebook(tmp_path, monkeypatch, values, runtime)
    assert api.received == []
