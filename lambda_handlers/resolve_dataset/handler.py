"""SageMaker Pipeline Lambda step: which data preparation run to train on.

The training pipeline's ``InputPrefix`` parameter is either an explicit run prefix
(``s3://<curated>/datasets/default/runs/<run_id>``, passed by the Glue-succeeded trigger) or ``latest``, which means
the run that the data preparation job's ``_LATEST`` pointer names. ``_LATEST`` is written last, after a run is
complete, so the pipeline never reads a folder that is being rewritten. The step also checks that the run has every
channel the training and evaluation jobs read (``train/``, ``validation/``, ``test/``, ``labels.json``), so a bad
prefix fails here, naming what is missing, instead of minutes later inside a GPU job.

The trigger on a succeeded Glue run passes that run's id as ``data_run_id`` (EventBridge can pass an event field as a
parameter value, but cannot build a URI from it); it wins over ``input_prefix``.

The step also names the checkpoint folder: the ``RunId`` parameter when given (to resume an earlier execution's
checkpoints), else this execution's id, so two executions never share checkpoints by accident.

Event (the step's arguments): ``{"input_prefix", "data_run_id", "runs_uri", "pointer_uri", "run_id",
"execution_id"}``. Answer: ``{"RunPrefix": "s3://.../runs/<run_id>", "RunId": str}``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

LATEST = "latest"
REQUIRED_CHANNELS = ("train/", "validation/", "test/", "labels.json")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")


class DatasetResolutionError(ValueError):
    """The input prefix cannot be trained on; the message names the value and the fix."""


class ObjectStore(Protocol):
    def read_text(self, bucket: str, key: str) -> str | None: ...

    def has_prefix(self, bucket: str, prefix: str) -> bool: ...


def split_s3_uri(uri: str, what: str) -> tuple[str, str]:
    match = _S3_URI.match(uri)
    if match is None:
        raise DatasetResolutionError(f"{what}={uri!r} is not an s3://<bucket>/<key> URI")
    return match["bucket"], match["key"]


def resolve_run_prefix(input_prefix: str, pointer_uri: str, store: ObjectStore) -> str:
    """The run prefix to train on, checked to hold every channel."""
    value = input_prefix.strip().rstrip("/")
    if value == LATEST:
        bucket, key = split_s3_uri(pointer_uri, "pointer_uri")
        text = store.read_text(bucket, key)
        if text is None:
            raise DatasetResolutionError(
                f"InputPrefix=latest but {pointer_uri} does not exist: run the data preparation job first, or pass "
                "InputPrefix=s3://<curated>/datasets/default/runs/<run_id>"
            )
        try:
            value = str(json.loads(text)["run_prefix"]).rstrip("/")
        except (ValueError, KeyError, TypeError) as error:
            raise DatasetResolutionError(f"{pointer_uri} is not a data preparation pointer ({error})") from error
    bucket, prefix = split_s3_uri(value, "InputPrefix")
    missing = [channel for channel in REQUIRED_CHANNELS if not store.has_prefix(bucket, f"{prefix}/{channel}")]
    if missing:
        raise DatasetResolutionError(
            f"InputPrefix={value!r} lacks {', '.join(missing)}: point it at a complete data preparation run "
            "(runs/<run_id> with train/, validation/, test/ and labels.json)"
        )
    return value


class _S3Store:
    def __init__(self) -> None:
        import boto3  # in the Lambda runtime; imported here so the pure functions test without it

        self._s3 = boto3.client("s3")

    def read_text(self, bucket: str, key: str) -> str | None:
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        return str(body.decode("utf-8"))

    def has_prefix(self, bucket: str, prefix: str) -> bool:
        return bool(self._s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0))


def checkpoint_run_id(run_id: str, execution_id: str) -> str:
    """The folder that keys checkpoints: ``run_id`` when given, else the execution id."""
    value = run_id.strip() or execution_id.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", value):
        raise DatasetResolutionError(f"RunId={value!r}: use 1-128 letters, digits, '.', '_' or '-' (or leave it empty)")
    return value


def resolve(event: dict[str, Any], store: ObjectStore) -> dict[str, str]:
    """The step's answer for ``event`` (see the module docstring)."""
    data_run_id = str(event.get("data_run_id", "")).strip()
    if data_run_id:
        input_prefix = f"{str(event['runs_uri']).rstrip('/')}/{data_run_id}"
    else:
        input_prefix = str(event.get("input_prefix", ""))
    return {
        "RunPrefix": resolve_run_prefix(input_prefix, str(event.get("pointer_uri", "")), store),
        "RunId": checkpoint_run_id(str(event.get("run_id", "")), str(event.get("execution_id", ""))),
    }


def handler(event: dict[str, Any], _context: object) -> dict[str, str]:
    """Lambda entry point. An error fails the pipeline step with its message."""
    answer = resolve(event, _S3Store())
    print(json.dumps({"event": event, "answer": answer}))
    return answer
