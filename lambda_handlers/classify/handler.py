"""API Gateway (REST, proxy integration) → Lambda → SageMaker ``InvokeEndpoint``: the inference front door.

A thin handler over pure functions: ``read_request`` turns the API Gateway event into the list of texts (or a
``ClassifyError``), ``error_for_endpoint_failure`` maps what botocore raised to a ``ClassifyError``, ``response``
builds the proxy answer. Powertools for AWS Lambda gives the structured logger (correlation id = API Gateway request
id), the X-Ray tracer, CloudWatch EMF metrics, the event data class and the JSON-schema validation.

Request: ``POST`` with ``Content-Type: application/json`` (charset, when given, utf-8) and ``{"inputs": "text" |
["text", ...]}``; each text 1 to ``MAX_TEXT_CHARS`` characters, 1 to ``MAX_BATCH_SIZE`` texts (``config.serving``).
Answer 200: ``{"predictions": [{"label", "score", "truncated"}, ...]}`` in request order. Every error is
``{"error": <stable code>, "message": <text>}`` with the status in ``ERROR_STATUS``; 503s carry ``Retry-After``.
A 4xx the model itself returned (``ModelError`` with a 4xx ``OriginalStatusCode`` and the model's JSON error body,
see training_code/inference.py) is passed through with its status and code: it is the client's request that is bad.

The request text is never logged, traced or put in a metric: logs carry only counts, codes and statuses.

Timeouts: one attempt reads for at most ``ENDPOINT_TIMEOUT_SECONDS`` (config 1-12 s) after a 2 s connect, botocore
standard retries with two attempts in all, so the worst case stays under API Gateway's 29 s integration timeout.

Packaging without Docker: the function's asset is this folder only. Powertools comes from the AWS-published
"AWSLambdaPowertoolsPythonV3" Lambda layer of the function's region and architecture (x86_64, Python 3.x), the
usual way, chosen for the future Serving stack; the layer ARN is per region and names AWS's publishing account, so
the stack takes it from config. botocore is in the Lambda Python runtime. The alternative, if a stage cannot use a
public layer, is the local bundler of ../shared/FACTS.md (pip ``--platform manylinux2014_x86_64 --only-binary=:all:``
of requirements/test-serving.txt into the asset), also without Docker.

Environment: ``ENDPOINT_NAME`` (required), ``MAX_TEXT_CHARS`` (default 2000), ``MAX_BATCH_SIZE`` (default 32),
``ENDPOINT_TIMEOUT_SECONDS`` (default 10), plus Powertools' ``POWERTOOLS_SERVICE_NAME``,
``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_TRACE_DISABLED``.

Tracing: where Powertools traces (in Lambda, ``POWERTOOLS_TRACE_DISABLED`` not true) the handler and the endpoint
call get X-Ray subsegments and botocore is patched (InvokeEndpoint's own subsegment); elsewhere the X-Ray SDK is not
even imported, which keeps it out of a cold start that would not trace.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

import botocore.session
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

JSON_CONTENT_TYPE = "application/json"
# InvokeEndpoint refuses bodies over 6 MiB; a bigger request is the client's 413, not the endpoint's ValidationError.
MAX_BODY_BYTES = 6 * 1024 * 1024
CONNECT_TIMEOUT_SECONDS = 2
MAX_ATTEMPTS = 2
# Seconds a client should wait before retrying each 503: a scaling or restarting model takes longer than a throttle.
RETRY_AFTER = {"ModelNotReady": 10, "Throttled": 1, "ServiceUnavailable": 5}
# Every error code a client can get, with its HTTP status. Clients match on the code, so codes never change meaning.
ERROR_STATUS = {
    "UnsupportedMediaType": 415,
    "InvalidEncoding": 400,
    "MalformedJSON": 400,
    "MissingInputs": 400,
    "InvalidInputs": 400,
    "EmptyInputs": 400,
    "UnknownField": 400,
    "TooManyInputs": 413,
    "TextTooLong": 413,
    "PayloadTooLarge": 413,
    "ModelError": 502,
    "EndpointRejectedRequest": 502,
    "EndpointError": 502,
    "ModelNotReady": 503,
    "Throttled": 503,
    "ServiceUnavailable": 503,
    "EndpointTimeout": 504,
}

# What the X-Ray tracer patches: botocore alone, so InvokeEndpoint gets its subsegment. Powertools' default patches
# every library the X-Ray SDK supports that is importable, importing each one at cold start (httpx alone ~60 ms).
TRACED_MODULES = ("botocore",)
_F = TypeVar("_F", bound=Callable[..., Any])


def tracing_active(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether Powertools' Tracer would trace here: in Lambda (``LAMBDA_TASK_ROOT``), not in SAM local or Chalice,
    and ``POWERTOOLS_TRACE_DISABLED`` not true. The same rule as ``Tracer``'s own (a test keeps them in step)."""
    disabled = environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "y", "yes", "t", "true", "on")
    local = bool(environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE"))
    return bool(environ.get("LAMBDA_TASK_ROOT")) and not local and not disabled


class Untraced:
    """Stands in for ``Tracer`` where it would be disabled: its decorators return the function unchanged.

    A disabled ``Tracer`` still imports the X-Ray SDK, whose recorder outside Lambda builds two botocore X-Ray clients
    for centralized sampling; that was a third of the cold init that the benchmark measures, for no trace.
    """

    disabled = True

    @staticmethod
    def _unchanged(function: _F) -> _F:
        return function

    @overload
    def capture_method(self, method: _F, **options: Any) -> _F: ...
    @overload
    def capture_method(self, method: None = None, **options: Any) -> Callable[[_F], _F]: ...
    def capture_method(self, method: _F | None = None, **options: Any) -> _F | Callable[[_F], _F]:
        return self._unchanged if method is None else method

    def capture_lambda_handler(
        self, lambda_handler: Callable[..., Any] | None = None, **options: Any
    ) -> Callable[..., Any]:
        return self._unchanged if lambda_handler is None else lambda_handler


def make_tracer(service: str) -> Tracer | Untraced:
    """Powertools' X-Ray ``Tracer`` (patching ``TRACED_MODULES``) where tracing is active, else ``Untraced``."""
    if not tracing_active():
        return Untraced()
    from aws_lambda_powertools import Tracer

    return Tracer(service=service, patch_modules=TRACED_MODULES)


logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "classify"))
tracer = make_tracer(os.environ.get("POWERTOOLS_SERVICE_NAME", "classify"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "NlpPlatform/Classify"))


@dataclass(frozen=True)
class Limits:
    """What one request may hold (``config.serving.max_text_chars`` / ``max_batch_size``)."""

    max_text_chars: int = 2000
    max_batch_size: int = 32


class ClassifyError(Exception):
    """A request that gets an error answer; ``message`` never contains request text."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.status = status or ERROR_STATUS[code]
        self.headers = {"Retry-After": str(RETRY_AFTER[code])} if code in RETRY_AFTER else {}


def request_schema(limits: Limits) -> dict[str, Any]:
    """JSON schema of a request; the Serving stack can reuse it as the API Gateway request model.

    String keywords apply only to a string and array keywords only to an array, so one ``inputs`` definition without
    ``oneOf`` covers both shapes and each failure names its own rule (``maxLength`` → 413, ``minItems`` → 400).
    """
    text = {"type": "string", "minLength": 1, "maxLength": limits.max_text_chars}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "ClassifyRequest",
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {
            "inputs": {
                "type": ["string", "array"],
                "minLength": 1,
                "maxLength": limits.max_text_chars,
                "minItems": 1,
                "maxItems": limits.max_batch_size,
                "items": text,
            }
        },
    }


_RULE_CODES = {
    "required": "MissingInputs",
    "additionalProperties": "UnknownField",
    "type": "InvalidInputs",
    "minLength": "EmptyInputs",
    "minItems": "EmptyInputs",
    "maxItems": "TooManyInputs",
    "maxLength": "TextTooLong",
}
_RULE_HINTS = {
    "required": 'send {"inputs": "text"} or {"inputs": ["text", ...]}',
    "additionalProperties": 'only "inputs" is accepted',
    "type": 'send {"inputs": "text"} or {"inputs": ["text", ...]} (a JSON object, texts as strings)',
    "minLength": "send non-empty texts",
    "minItems": "send at least one text",
    "maxItems": "split the texts over several requests",
    "maxLength": "shorten the text or split it",
}


def check_content_type(headers: dict[str, str] | None) -> None:
    """Accept ``application/json`` with no charset or utf-8; the header name is case-insensitive."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "content-type"), None)
    media_type, _, params = (value or "").partition(";")
    charset = next(
        (
            p.split("=", 1)[1].strip().strip('"').lower()
            for p in params.split(";")
            if p.strip().lower().startswith("charset=")
        ),
        "utf-8",
    )
    if media_type.strip().lower() != JSON_CONTENT_TYPE or charset not in ("utf-8", "utf8"):
        raise ClassifyError(
            "UnsupportedMediaType",
            f"Content-Type {value!r} is not supported: send Content-Type: application/json (UTF-8)",
        )


def decode_body(body: str | None, is_base64_encoded: bool) -> str:
    """The request body as text: base64 undone (API Gateway binary media types), then strict UTF-8."""
    if body is None or body == "":
        raise ClassifyError("MissingInputs", 'the request has no body: send {"inputs": "text"}')
    try:
        raw = base64.b64decode(body, validate=True) if is_base64_encoded else body.encode("utf-8")
    except UnicodeEncodeError:  # A lone surrogate: the body was not UTF-8 text.
        raise ClassifyError("InvalidEncoding", "the request body is not valid UTF-8: encode it as UTF-8") from None
    except (binascii.Error, ValueError):
        raise ClassifyError("InvalidEncoding", "the base64 request body does not decode: send valid base64") from None
    if len(raw) > MAX_BODY_BYTES:
        raise ClassifyError(
            "PayloadTooLarge", f"the body has {len(raw)} bytes, more than {MAX_BODY_BYTES}: send fewer or shorter texts"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ClassifyError(
            "InvalidEncoding", f"the request body is not valid UTF-8 (byte {error.start}): encode it as UTF-8"
        ) from None


def parse_inputs(text: str, limits: Limits) -> list[str]:
    """The texts of a decoded body, checked against ``request_schema``; a single string becomes a list of one."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise ClassifyError(
            "MalformedJSON", f"the body is not JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    try:
        validate(event=payload, schema=request_schema(limits))
    except SchemaValidationError as error:
        rule = str(error.rule)
        # fastjsonschema's message names the path and the limit, never the value.
        raise ClassifyError(
            _RULE_CODES.get(rule, "InvalidInputs"),
            f"{error.validation_message}: {_RULE_HINTS.get(rule, _RULE_HINTS['type'])}",
        ) from None
    inputs = payload["inputs"]
    return [inputs] if isinstance(inputs, str) else list(inputs)


def read_request(event: APIGatewayProxyEvent, limits: Limits) -> list[str]:
    """The texts of an API Gateway proxy event, or a ``ClassifyError`` naming what is wrong and how to fix it."""
    check_content_type(event.headers)
    return parse_inputs(decode_body(event.body, bool(event.is_base64_encoded)), limits)


def error_for_endpoint_failure(error: Exception) -> ClassifyError:
    """The answer for an exception from ``InvokeEndpoint`` (after botocore's retries)."""
    if isinstance(error, ReadTimeoutError):
        return ClassifyError("EndpointTimeout", "the model did not answer in time: retry with fewer or shorter texts")
    if isinstance(error, ConnectTimeoutError | EndpointConnectionError):
        return ClassifyError("ServiceUnavailable", "the inference service cannot be reached: retry later")
    if not isinstance(error, ClientError):
        return ClassifyError("EndpointError", f"calling the endpoint failed ({type(error).__name__})")
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    if code == "ModelError":
        original = error.response.get("OriginalStatusCode")
        if isinstance(original, int) and 400 <= original < 500:
            model_error = _model_error_body(error.response.get("OriginalMessage"))
            if model_error is not None:
                return ClassifyError(model_error[0], model_error[1], status=original)
        return ClassifyError("ModelError", f"the model failed with status {original}: see the endpoint's logs")
    if code == "ModelNotReadyException":
        return ClassifyError("ModelNotReady", "the model is not ready yet (starting or scaling): retry later")
    if code in ("ThrottlingException", "ThrottledException"):
        return ClassifyError("Throttled", "too many requests to the endpoint: retry later")
    if code in ("ServiceUnavailable", "InternalDependencyException"):
        return ClassifyError("ServiceUnavailable", "the inference service is unavailable: retry later")
    if code == "ValidationError":
        return ClassifyError(
            "EndpointRejectedRequest",
            "the endpoint rejected the call (missing endpoint or bad configuration): check ENDPOINT_NAME",
        )
    return ClassifyError("EndpointError", f"the endpoint call failed with {code or 'an unknown error'}")


def _model_error_body(message: object) -> tuple[str, str] | None:
    try:
        body = json.loads(str(message))
    except (TypeError, ValueError):
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str):
        return body["error"], body["message"]
    return None


def response(status: int, body: object, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway proxy answer with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error_response(error: ClassifyError) -> dict[str, Any]:
    return response(error.status, {"error": error.code, "message": error.message}, error.headers)


def classify(texts: list[str], runtime: Any, endpoint_name: str) -> list[Any]:
    """Predictions for ``texts`` in order, from one ``InvokeEndpoint`` call; raises what botocore raises."""
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint_name,
        ContentType=JSON_CONTENT_TYPE,
        Accept=JSON_CONTENT_TYPE,
        Body=json.dumps({"inputs": texts}).encode("utf-8"),
    )
    predictions = json.loads(answer["Body"].read())
    if not isinstance(predictions, list) or len(predictions) != len(texts):
        raise ClassifyError("ModelError", f"the model answered {len(texts)} texts with an unexpected body")
    return predictions


@tracer.capture_method(capture_response=False, capture_error=False)
def call_endpoint(texts: list[str], runtime: Any, endpoint_name: str) -> list[Any] | ClassifyError:
    """``classify`` with every failure turned into its answer inside the trace subsegment.

    Nothing is raised out of the traced method: the tracer would log the exception, and a runtime error message can
    quote the model's answer.
    """
    try:
        return classify(texts, runtime, endpoint_name)
    except ClassifyError as error:
        return error
    except (ClientError, BotoCoreError) as failure:
        return error_for_endpoint_failure(failure)


def handle(event: dict[str, Any], runtime: Any, endpoint_name: str, limits: Limits) -> dict[str, Any]:
    """The whole request → answer, without the Powertools decorators (tests call this with a stubbed client)."""
    try:
        texts = read_request(APIGatewayProxyEvent(event), limits)
    except ClassifyError as error:
        logger.info("rejected request", extra={"error": error.code, "status": error.status})
        metrics.add_metric(name="RejectedRequests", unit=MetricUnit.Count, value=1)
        return error_response(error)
    predictions = call_endpoint(texts, runtime, endpoint_name)
    if isinstance(predictions, ClassifyError):
        return _endpoint_failure(predictions, len(texts))
    logger.info("classified", extra={"texts": len(texts)})
    metrics.add_metric(name="ClassifiedTexts", unit=MetricUnit.Count, value=len(texts))
    return response(200, {"predictions": predictions})


def _endpoint_failure(error: ClassifyError, texts: int) -> dict[str, Any]:
    logger.warning("endpoint call failed", extra={"error": error.code, "status": error.status, "texts": texts})
    metrics.add_metric(name="EndpointErrors", unit=MetricUnit.Count, value=1)
    return error_response(error)


def limits_from_environment() -> Limits:
    return Limits(
        max_text_chars=int(os.environ.get("MAX_TEXT_CHARS", "2000")),
        max_batch_size=int(os.environ.get("MAX_BATCH_SIZE", "32")),
    )


def runtime_client(timeout_seconds: float) -> Any:
    """A SageMaker runtime client whose retries and timeouts fit inside API Gateway's 29 s."""
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=timeout_seconds,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    )
    # botocore alone, not boto3: boto3 also imports s3transfer, ~60 ms of cold start for nothing here.
    return botocore.session.get_session().create_client("sagemaker-runtime", config=config)


# Built at cold start, so a warm request pays only for the call.
LIMITS = limits_from_environment()
ENDPOINT_NAME = os.environ.get("ENDPOINT_NAME", "")
RUNTIME = runtime_client(float(os.environ.get("ENDPOINT_TIMEOUT_SECONDS", "10")))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not ENDPOINT_NAME:
        raise RuntimeError("ENDPOINT_NAME is not set: the Serving stack sets it to the inference endpoint's name")
    return handle(event, RUNTIME, ENDPOINT_NAME, LIMITS)
