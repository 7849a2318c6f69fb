"""CloudFormation custom resource (dev only): clean up what the pipelines create at run time, so deletion completes.

CloudFormation cannot delete a SageMaker pipeline that still has running executions, nor a model package group that
still holds model packages. Both are made at run time, outside CloudFormation, so on **Delete** this function:

1. lists the executions of every pipeline in ``PipelineNames`` (all pages), stops each one that is ``Executing`` and
   waits, polling, until none is ``Executing`` or ``Stopping`` (a running training job takes minutes to stop);
2. then lists every model package of ``ModelPackageGroupName`` (all pages, every approval status) and deletes each;
3. then, where ``LogStreams`` is given, deletes the stage's own log streams in the log groups SageMaker shares across
   the account (``/aws/sagemaker/TrainingJobs``, ...), which no stack may delete: SageMaker names each stream after
   its job or notebook, so in each group it deletes the streams whose names start with ``StreamNamePrefix`` (the
   stage's notebooks and the jobs they start) and, in a job group (``PipelineStepJob`` names the step-metadata key
   of its job kind), those of every job the pipelines' executions ran (``<job name>/...``, the jobs listed by
   ListPipelineExecutionSteps; pipelines name them ``pipelines-...``, like every other pipeline of the account).

Nothing else: the pipelines and the group are deleted by CloudFormation afterwards (the resource depends on them, so
it is deleted first). A pipeline, execution, group, package, log group or stream that is already gone counts as
cleaned up. An error fails the Delete with a message that names the resource and how to finish by hand; the stack
deletion then stops there and can be retried. The wait ends before the Lambda timeout, leaving time to delete
packages and streams and to answer.

**Create** and **Update** change nothing and answer with a stable ``PhysicalResourceId`` (Update echoes the current
one: a new id would make CloudFormation delete the old resource, which would run the cleanup).

The answer goes to the pre-signed ``ResponseURL`` of the event (an S3 URL, reached through the VPC's S3 gateway
endpoint); the SageMaker API through the VPC's ``sagemaker.api`` interface endpoint, CloudWatch Logs through ``logs``.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

ACTIVE_STATUSES = ("Executing", "Stopping")
POLL_SECONDS = 15.0
# A stop that fails is tried again in the next round (the execution may have been finishing); the second failure fails.
STOP_ATTEMPTS = 2
# Kept back from the Lambda's remaining time: the wait ends DELETE_RESERVE_SECONDS before the package deletion must
# stop, which itself stops ANSWER_RESERVE_SECONDS before the timeout, so every outcome is answered.
DELETE_RESERVE_SECONDS = 120.0
ANSWER_RESERVE_SECONDS = 30.0
# Reasons longer than this are cut: CloudFormation rejects answers over 4,096 bytes.
MAX_REASON_CHARS = 1500
# Answered when a Create fails, so that the Delete of the rollback knows there is nothing to clean up.
NOT_CREATED = "pipeline-cleanup-not-created"
_GONE_CODES = ("ResourceNotFound", "ResourceNotFoundException")
# The keys of a pipeline execution step's Metadata that name the job it ran.
STEP_JOB_KEYS = ("TrainingJob", "ProcessingJob", "TransformJob")

Log = Callable[..., None]


class CleanupError(RuntimeError):
    """A resource could not be stopped or deleted; the message names it and how to finish by hand."""


class SageMakerClient(Protocol):
    """The part of a boto3 SageMaker client the cleanup uses."""

    def get_paginator(self, operation_name: str) -> Any: ...

    def stop_pipeline_execution(self, **kwargs: Any) -> Any: ...

    def delete_model_package(self, **kwargs: Any) -> Any: ...


class LogsClient(Protocol):
    """The part of a boto3 CloudWatch Logs client the cleanup uses."""

    def get_paginator(self, operation_name: str) -> Any: ...

    def delete_log_stream(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Deadline:
    """A point in time on ``clock`` (seconds) by which a phase must end."""

    clock: Callable[[], float]
    end: float

    def remaining(self) -> float:
        return self.end - self.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0


def log_json(message: str, **fields: Any) -> None:
    """One JSON line per event in the function's (KMS-encrypted) log group."""
    print(json.dumps({"message": message, **fields}, default=str, sort_keys=True))


def _error_text(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'Unknown')}: {details.get('Message', '')}".strip()


def is_gone(error: ClientError) -> bool:
    """True when ``error`` says the resource does not exist (already deleted counts as cleaned up)."""
    details = error.response.get("Error", {})
    code, message = str(details.get("Code", "")), str(details.get("Message", "")).lower()
    if code in _GONE_CODES:
        return True
    return code == "ValidationException" and ("does not exist" in message or "not found" in message)


def active_executions(client: SageMakerClient, pipeline_name: str) -> dict[str, str]:
    """Execution ARN to status, for the executions of ``pipeline_name`` that are Executing or Stopping.

    ListPipelineExecutions has no status filter, so every page is read. A pipeline that is gone has none.
    """
    active: dict[str, str] = {}
    try:
        for page in client.get_paginator("list_pipeline_executions").paginate(PipelineName=pipeline_name):
            for summary in page.get("PipelineExecutionSummaries", []):
                status = summary.get("PipelineExecutionStatus")
                if status in ACTIVE_STATUSES:
                    active[summary["PipelineExecutionArn"]] = status
    except ClientError as error:
        if is_gone(error):
            return {}
        raise CleanupError(
            f"could not list the executions of pipeline {pipeline_name} ({_error_text(error)}); check the function's "
            "permissions and the VPC's sagemaker.api endpoint, then retry the stack deletion"
        ) from error
    return active


def stop_request_token(execution_arn: str, attempt: int) -> str:
    """The ClientRequestToken (32-128 characters) of one attempt to stop one execution.

    The same in every invocation, so a retried stack deletion repeats the first stop idempotently; a second attempt
    after a failed one is a new request.
    """
    return f"cleanup-{hashlib.sha256(execution_arn.encode('utf-8')).hexdigest()[:48]}-{attempt}"


def stop_executions(
    client: SageMakerClient,
    pipeline_names: Iterable[str],
    wait_until: Deadline,
    *,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = POLL_SECONDS,
    log: Log = log_json,
) -> list[str]:
    """Stop every Executing execution of ``pipeline_names``; return once none is Executing or Stopping.

    Every round lists again, so an execution that started meanwhile is stopped too. A stop that fails is tried once
    more in the next round if the execution still runs. Returns the ARNs it stopped.

    :raises CleanupError: naming the execution that could not be stopped, or those still running at ``wait_until``.
    """
    names = list(pipeline_names)
    stopped: list[str] = []
    stop_attempts: dict[str, int] = {}
    rounds = 0
    while True:
        active: dict[str, str] = {}
        for name in names:
            active.update(active_executions(client, name))
        if not active:
            log("no pipeline execution is running", pipelines=names, stopped=stopped, rounds=rounds)
            return stopped
        for arn, status in sorted(active.items()):
            if status != "Executing" or arn in stopped:
                continue
            stop_attempts[arn] = stop_attempts.get(arn, 0) + 1
            try:
                client.stop_pipeline_execution(
                    PipelineExecutionArn=arn, ClientRequestToken=stop_request_token(arn, stop_attempts[arn])
                )
            except ClientError as error:
                if is_gone(error):
                    continue
                if stop_attempts[arn] >= STOP_ATTEMPTS:
                    raise CleanupError(
                        f"could not stop pipeline execution {arn} ({_error_text(error)}); stop it with `aws sagemaker "
                        f"stop-pipeline-execution --pipeline-execution-arn {arn}`, wait until it is Stopped, then "
                        "retry the stack deletion"
                    ) from error
                log("stop failed; trying again next round if it still runs", execution=arn, error=_error_text(error))
                continue
            stopped.append(arn)
            log("stop requested", execution=arn)
        if wait_until.expired():
            raise CleanupError(
                f"pipeline executions still running after the cleanup's wait: {', '.join(sorted(active))}. Stopping "
                "jobs can take several minutes; wait until they are Stopped (aws sagemaker "
                "list-pipeline-executions --pipeline-name <name>), then retry the stack deletion"
            )
        rounds += 1
        log(
            "waiting for pipeline executions to stop",
            running=dict(sorted(active.items())),
            seconds_left=round(wait_until.remaining()),
            round=rounds,
        )
        sleep(max(0.0, min(poll_seconds, wait_until.remaining())))


def model_package_arns(client: SageMakerClient, group_name: str) -> list[str]:
    """Every model package (version) of ``group_name``, any approval status, all pages; none if the group is gone."""
    arns: list[str] = []
    try:
        pages = client.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group_name, ModelPackageType="Versioned"
        )
        for page in pages:
            arns.extend(summary["ModelPackageArn"] for summary in page.get("ModelPackageSummaryList", []))
    except ClientError as error:
        if is_gone(error):
            return []
        raise CleanupError(
            f"could not list the model packages of group {group_name} ({_error_text(error)}); check the function's "
            "permissions, then retry the stack deletion"
        ) from error
    return arns


def delete_model_packages(
    client: SageMakerClient, group_name: str, delete_until: Deadline, *, log: Log = log_json
) -> list[str]:
    """Delete every model package of ``group_name`` (listed in full first, so deletion cannot disturb the pages).

    Goes on past a failed package and then raises naming every one that is left. Returns the ARNs it deleted.
    """
    arns = model_package_arns(client, group_name)
    log("deleting model packages", group=group_name, count=len(arns))
    deleted: list[str] = []
    failures: list[str] = []
    for position, arn in enumerate(arns):
        if delete_until.expired():
            left = arns[position:]
            raise CleanupError(
                f"ran out of time with {len(left)} model packages of group {group_name} left (first: {left[0]}); "
                "retry the stack deletion, which goes on where this one stopped"
            )
        try:
            client.delete_model_package(ModelPackageName=arn)
        except ClientError as error:
            if not is_gone(error):
                failures.append(f"{arn} ({_error_text(error)})")
                log("delete failed", package=arn, error=_error_text(error))
            continue
        deleted.append(arn)
        if len(deleted) % 10 == 0:
            log("model packages deleted so far", group=group_name, deleted=len(deleted), of=len(arns))
    if failures:
        raise CleanupError(
            f"could not delete {len(failures)} model packages of group {group_name}: {'; '.join(failures)}. Delete "
            "them with `aws sagemaker delete-model-package --model-package-name <arn>`, then retry the stack deletion"
        )
    return deleted


def execution_arns(client: SageMakerClient, pipeline_name: str) -> list[str]:
    """Every execution of ``pipeline_name``, any status, all pages; none if the pipeline is gone."""
    arns: list[str] = []
    try:
        for page in client.get_paginator("list_pipeline_executions").paginate(PipelineName=pipeline_name):
            arns.extend(summary["PipelineExecutionArn"] for summary in page.get("PipelineExecutionSummaries", []))
    except ClientError as error:
        if is_gone(error):
            return []
        raise CleanupError(
            f"could not list the executions of pipeline {pipeline_name} ({_error_text(error)}); check the function's "
            "permissions, then retry the stack deletion"
        ) from error
    return arns


def pipeline_jobs(
    client: SageMakerClient, pipeline_names: Iterable[str], until: Deadline | None = None
) -> dict[str, list[str]]:
    """The names of the jobs every execution of ``pipeline_names`` ran, by step-metadata key (``TrainingJob``, ...).

    Read from ListPipelineExecutionSteps (all pages), which names each step's job by ARN; the job name is the ARN's
    last part. An execution or pipeline that is gone ran nothing that is left to find.

    :raises CleanupError: when ``until`` passes first (a retried deletion reads them again).
    """
    jobs: dict[str, list[str]] = {key: [] for key in STEP_JOB_KEYS}
    for pipeline_name in pipeline_names:
        for arn in execution_arns(client, pipeline_name):
            if until is not None and until.expired():
                raise CleanupError(
                    f"ran out of time while reading the steps of the executions of {pipeline_name} (at {arn}); retry "
                    "the stack deletion"
                )
            try:
                pages = client.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=arn)
                steps = [step for page in pages for step in page.get("PipelineExecutionSteps", [])]
            except ClientError as error:
                if is_gone(error):
                    continue
                raise CleanupError(
                    f"could not list the steps of pipeline execution {arn} ({_error_text(error)}); check the "
                    "function's permissions (sagemaker:ListPipelineExecutionSteps), then retry the stack deletion"
                ) from error
            for step in steps:
                metadata = step.get("Metadata", {})
                for key in STEP_JOB_KEYS:
                    job_arn = metadata.get(key, {}).get("Arn")
                    if job_arn and job_arn.rsplit("/", 1)[-1] not in jobs[key]:
                        jobs[key].append(job_arn.rsplit("/", 1)[-1])
    return jobs


def stream_names(client: LogsClient, group_name: str, prefix: str) -> list[str]:
    """Every stream of ``group_name`` whose name starts with ``prefix`` (all pages); none if the group is gone."""
    names: list[str] = []
    try:
        pages = client.get_paginator("describe_log_streams").paginate(
            logGroupName=group_name, logStreamNamePrefix=prefix
        )
        for page in pages:
            names.extend(stream["logStreamName"] for stream in page.get("logStreams", []))
    except ClientError as error:
        if is_gone(error):
            return []
        raise CleanupError(
            f"could not list the log streams of {group_name} starting with {prefix} ({_error_text(error)}); check "
            "the function's permissions and the VPC's logs endpoint, then retry the stack deletion (or delete them "
            f"by hand: aws logs describe-log-streams --log-group-name {group_name} --log-stream-name-prefix {prefix})"
        ) from error
    return names


@dataclass(frozen=True)
class SharedLogGroup:
    """A log group SageMaker shares across the account; ``step_job`` is the step-metadata key of its job kind."""

    name: str
    step_job: str | None = None


@dataclass(frozen=True)
class LogStreamTarget:
    """Which log streams are the stage's own: ``stream_name_prefix`` in every group, and its pipelines' jobs."""

    stream_name_prefix: str
    groups: tuple[SharedLogGroup, ...]

    @classmethod
    def from_property(cls, value: Any) -> LogStreamTarget:
        if not isinstance(value, dict):
            raise CleanupError(f"property LogStreams={value!r} must be an object with StreamNamePrefix and LogGroups")
        prefix = value.get("StreamNamePrefix")
        if not isinstance(prefix, str) or len(prefix) < 3 or not prefix.endswith("-"):
            raise CleanupError(
                f"property LogStreams.StreamNamePrefix={prefix!r} must be the stage's '<prefix>-' (ending in '-'), so "
                "that no other stage's streams match it; fix the template"
            )
        groups = value.get("LogGroups")
        if not isinstance(groups, list) or not groups:
            raise CleanupError(f"property LogStreams.LogGroups={groups!r} must be a non-empty list; fix the template")
        parsed = []
        for group in groups:
            name = group.get("LogGroupName") if isinstance(group, dict) else None
            step_job = group.get("PipelineStepJob") if isinstance(group, dict) else None
            if not isinstance(name, str) or not name.startswith("/") or step_job not in (None, *STEP_JOB_KEYS):
                raise CleanupError(
                    f"property LogStreams.LogGroups item {group!r} must be {{'LogGroupName': '/...'}} with an optional "
                    f"'PipelineStepJob' among {', '.join(STEP_JOB_KEYS)}; fix the template"
                )
            parsed.append(SharedLogGroup(name=name, step_job=step_job))
        return cls(stream_name_prefix=prefix, groups=tuple(parsed))


def delete_log_streams(
    client: LogsClient,
    target: LogStreamTarget,
    jobs: dict[str, list[str]],
    delete_until: Deadline,
    *,
    log: Log = log_json,
) -> list[str]:
    """Delete the stage's streams in each of ``target.groups``: those starting with the stage's prefix and, in a job
    group, those of ``jobs`` of its kind (``<job name>/...``). Every group is listed in full before deleting.

    Goes on past a stream that fails and then raises naming each one left and the command to delete it. Returns the
    deleted streams as ``<group>:<stream>``.
    """
    deleted: list[str] = []
    failures: list[str] = []
    for group in target.groups:
        prefixes = [target.stream_name_prefix, *(f"{job}/" for job in jobs.get(group.step_job or "", []))]
        names: list[str] = []
        for prefix in prefixes:
            if delete_until.expired():
                raise CleanupError(
                    f"ran out of time while listing the log streams of {group.name}; retry the stack deletion, which "
                    "goes on where this one stopped"
                )
            names.extend(name for name in stream_names(client, group.name, prefix) if name not in names)
        log("deleting log streams", group=group.name, count=len(names))
        for position, name in enumerate(names):
            if delete_until.expired():
                raise CleanupError(
                    f"ran out of time with {len(names) - position} log streams of {group.name} left (first: "
                    f"{names[position]}); retry the stack deletion, which goes on where this one stopped"
                )
            try:
                client.delete_log_stream(logGroupName=group.name, logStreamName=name)
            except ClientError as error:
                if not is_gone(error):
                    failures.append(
                        f"{group.name} stream {name} ({_error_text(error)}): `aws logs delete-log-stream "
                        f"--log-group-name {group.name} --log-stream-name {name}`"
                    )
                    log("delete failed", group=group.name, stream=name, error=_error_text(error))
                continue
            deleted.append(f"{group.name}:{name}")
    if failures:
        raise CleanupError(
            f"could not delete {len(failures)} log streams: {'; '.join(failures)}. Delete them by hand, then retry "
            "the stack deletion"
        )
    return deleted


@dataclass(frozen=True)
class CleanupTarget:
    """What one custom resource cleans up, from its properties (``log_streams`` None: no log streams)."""

    pipeline_names: tuple[str, ...]
    group_name: str
    log_streams: LogStreamTarget | None = None

    @classmethod
    def from_properties(cls, properties: dict[str, Any]) -> CleanupTarget:
        names = properties.get("PipelineNames")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise CleanupError(
                f"property PipelineNames={names!r} must be a non-empty list of pipeline names; fix the template"
            )
        group = properties.get("ModelPackageGroupName")
        if not isinstance(group, str) or not group:
            raise CleanupError(f"property ModelPackageGroupName={group!r} must name a model package group")
        streams = properties.get("LogStreams")
        log_streams = None if streams is None else LogStreamTarget.from_property(streams)
        return cls(pipeline_names=tuple(names), group_name=group, log_streams=log_streams)

    @property
    def physical_id(self) -> str:
        return f"pipeline-cleanup-{self.group_name}"


@dataclass(frozen=True)
class Outcome:
    """What to tell CloudFormation."""

    status: str
    physical_id: str
    reason: str = ""


def _client_config() -> Any:
    from botocore.config import Config

    return Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=30)


def _sagemaker_client() -> SageMakerClient:
    import boto3  # in the Lambda runtime; imported here so the pure functions test without credentials

    client: SageMakerClient = boto3.client("sagemaker", config=_client_config())
    return client


def _logs_client() -> LogsClient:
    import boto3

    # Standard retries also absorb DeleteLogStream's throttling (a low per-account request rate).
    client: LogsClient = boto3.client("logs", config=_client_config())
    return client


def on_event(
    event: dict[str, Any],
    sagemaker: Callable[[], SageMakerClient],
    *,
    wait_until: Deadline,
    delete_until: Deadline,
    logs: Callable[[], LogsClient] = _logs_client,
    sleep: Callable[[float], None] = time.sleep,
    log: Log = log_json,
) -> Outcome:
    """The answer to one CloudFormation request; a :class:`CleanupError` fails it with its message.

    ``sagemaker`` and ``logs`` make the clients, called on Delete only: Create and Update call no AWS API.
    """
    request = event.get("RequestType")
    properties = event.get("ResourceProperties", {})
    if request == "Create":
        try:
            return Outcome("SUCCESS", CleanupTarget.from_properties(properties).physical_id)
        except CleanupError as error:
            return Outcome("FAILED", NOT_CREATED, str(error))
    current = str(event.get("PhysicalResourceId", ""))
    if request == "Update":
        return Outcome("SUCCESS", current)
    if request != "Delete":
        return Outcome("FAILED", current or NOT_CREATED, f"RequestType={request!r} is not Create, Update or Delete")
    if current == NOT_CREATED:
        return Outcome("SUCCESS", current)
    target = CleanupTarget.from_properties(properties)
    client = sagemaker()
    stopped = stop_executions(client, target.pipeline_names, wait_until, sleep=sleep, log=log)
    deleted = delete_model_packages(client, target.group_name, delete_until, log=log)
    streams: list[str] = []
    if target.log_streams is not None:
        jobs = pipeline_jobs(client, target.pipeline_names, delete_until)
        streams = delete_log_streams(logs(), target.log_streams, jobs, delete_until, log=log)
    log(
        "cleanup done",
        stopped_executions=len(stopped),
        deleted_model_packages=len(deleted),
        deleted_log_streams=len(streams),
    )
    return Outcome("SUCCESS", current)


def response_body(event: dict[str, Any], outcome: Outcome) -> bytes:
    """The JSON CloudFormation expects at the ResponseURL."""
    reason = outcome.reason or "See the function's log group"
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 20] + " ... (see the log)"
    return json.dumps(
        {
            "Status": outcome.status,
            "Reason": reason,
            "PhysicalResourceId": outcome.physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": {},
        }
    ).encode("utf-8")


def send_response(
    event: dict[str, Any],
    outcome: Outcome,
    *,
    attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
    log: Log = log_json,
) -> None:
    """PUT the answer to the event's pre-signed URL, retrying a failed PUT; raises after the last attempt."""
    body = response_body(event, outcome)
    for attempt in range(1, attempts + 1):
        # The URL is signed for an empty Content-Type; urllib would add a form content type without this header.
        request = urllib.request.Request(
            event["ResponseURL"],
            data=body,
            method="PUT",
            headers={"Content-Type": "", "Content-Length": str(len(body))},
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as answer:
                log("answered CloudFormation", status=outcome.status, http_status=answer.status)
                return
        except OSError as error:
            log("answer failed", attempt=attempt, error=str(error))
            if attempt == attempts:
                raise
            sleep(2.0 * attempt)


def handler(event: dict[str, Any], context: Any) -> None:
    """Lambda entry point: every outcome, an unexpected error included, is answered to CloudFormation."""
    log_json(
        "request",
        request_type=event.get("RequestType"),
        logical_id=event.get("LogicalResourceId"),
        physical_id=event.get("PhysicalResourceId"),
        properties=event.get("ResourceProperties"),
    )
    now = time.monotonic()
    remaining = context.get_remaining_time_in_millis() / 1000.0
    delete_until = Deadline(time.monotonic, now + remaining - ANSWER_RESERVE_SECONDS)
    wait_until = Deadline(time.monotonic, delete_until.end - DELETE_RESERVE_SECONDS)
    fallback_id = str(event.get("PhysicalResourceId") or NOT_CREATED)
    try:
        outcome = on_event(event, _sagemaker_client, wait_until=wait_until, delete_until=delete_until)
    except CleanupError as error:
        outcome = Outcome("FAILED", fallback_id, str(error))
    except (ClientError, BotoCoreError) as error:
        outcome = Outcome("FAILED", fallback_id, f"AWS API call failed: {error}; retry the stack deletion")
    except Exception as error:  # an unexpected error must still reach CloudFormation, or it waits until its timeout
        outcome = Outcome("FAILED", fallback_id, f"unexpected {type(error).__name__}: {error}")
    if outcome.status == "FAILED":
        log_json("request failed", reason=outcome.reason)
    send_response(event, outcome)
