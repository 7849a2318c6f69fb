"""The dev cleanup custom resource: stops running executions, deletes the group's packages, answers CloudFormation.

Every SageMaker call goes through a real botocore client with a Stubber, so each request is checked against the API
model (parameter names, types, required members) and answered in order; an unexpected call fails the test.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import botocore.session
import pytest
from botocore.stub import Stubber

HANDLER = Path(__file__).resolve().parents[2] / "lambda_handlers" / "pipeline_cleanup" / "handler.py"


def _load_handler() -> ModuleType:
    # lambda_handlers is not a package: the Lambda runtime imports handler.py as a top-level module.
    spec = importlib.util.spec_from_file_location("pipeline_cleanup_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


cleanup = _load_handler()
CleanupError = cleanup.CleanupError

TRAINING, BATCH = "nlp-dev-training", "nlp-dev-batch-inference"
GROUP = "nlp-dev-models"
ACCOUNT_ARN = "arn:aws:sagemaker:eu-west-1:111122223333"


def execution(pipeline: str, execution_id: str) -> str:
    return f"{ACCOUNT_ARN}:pipeline/{pipeline}/execution/{execution_id}"


def package(version: int) -> str:
    return f"{ACCOUNT_ARN}:model-package/{GROUP}/{version}"


def summaries(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"PipelineExecutionSummaries": [{"PipelineExecutionArn": a, "PipelineExecutionStatus": s} for a, s in pairs]}


def packages(*versions: int, approval: str = "PendingManualApproval") -> dict[str, Any]:
    return {
        "ModelPackageSummaryList": [
            {
                "ModelPackageArn": package(v),
                "ModelPackageGroupName": GROUP,
                "ModelPackageVersion": v,
                "CreationTime": "2026-01-01T00:00:00Z",
                "ModelPackageStatus": "Completed",
                "ModelApprovalStatus": approval,
            }
            for v in versions
        ]
    }


def client_error(code: str, message: str = "") -> dict[str, Any]:
    return {"service_error_code": code, "service_message": message}


class FakeClock:
    """Time that passes only when the code sleeps; records each sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@functools.cache
def sagemaker_client() -> Any:
    """One SageMaker client for the module (loading its API model costs most of a second); each test stubs it with a
    Stubber of its own, removed when the test ends."""
    return botocore.session.get_session().create_client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    client = sagemaker_client()
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def deadline(clock: FakeClock, seconds: float) -> Any:
    return cleanup.Deadline(clock, clock.now + seconds)


def quiet(*_args: Any, **_fields: Any) -> None:
    pass


def expect_list(stubber: Stubber, pipeline: str, response: dict[str, Any], token: str | None = None) -> None:
    expected: dict[str, Any] = {"PipelineName": pipeline}
    if token:
        expected["NextToken"] = token
    stubber.add_response("list_pipeline_executions", response, expected)


def expect_stop(stubber: Stubber, arn: str, attempt: int = 1) -> None:
    stubber.add_response(
        "stop_pipeline_execution",
        {"PipelineExecutionArn": arn},
        {"PipelineExecutionArn": arn, "ClientRequestToken": cleanup.stop_request_token(arn, attempt)},
    )


def expect_list_packages(stubber: Stubber, response: dict[str, Any], token: str | None = None) -> None:
    expected: dict[str, Any] = {"ModelPackageGroupName": GROUP, "ModelPackageType": "Versioned"}
    if token:
        expected["NextToken"] = token
    stubber.add_response("list_model_packages", response, expected)


def expect_delete(stubber: Stubber, version: int) -> None:
    stubber.add_response("delete_model_package", {}, {"ModelPackageName": package(version)})


# --- stopping executions -------------------------------------------------------------------------------------------


def test_reads_every_page_and_stops_only_executing_ones_then_waits_until_none_runs(
    sagemaker: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = sagemaker
    running, stopping, done = execution(TRAINING, "a"), execution(TRAINING, "b"), execution(TRAINING, "c")
    batch = execution(BATCH, "d")
    # Round 1: two pages for training (the Executing one is on the second), one for batch inference.
    expect_list(stubber, TRAINING, {**summaries((done, "Succeeded"), (stopping, "Stopping")), "NextToken": "page2"})
    expect_list(stubber, TRAINING, summaries((running, "Executing")), token="page2")
    expect_list(stubber, BATCH, summaries((batch, "Executing"), (execution(BATCH, "e"), "Failed")))
    # Stops go out in ARN order (both pipelines' executions together).
    expect_stop(stubber, batch)
    expect_stop(stubber, running)
    # Round 2: both stopped ones are Stopping (not stopped twice), the first has finished.
    expect_list(stubber, TRAINING, summaries((running, "Stopping"), (stopping, "Stopped")))
    expect_list(stubber, BATCH, summaries((batch, "Stopping")))
    # Round 3: nothing runs.
    expect_list(stubber, TRAINING, summaries((running, "Stopped"), (stopping, "Stopped")))
    expect_list(stubber, BATCH, summaries((batch, "Stopped")))

    stopped = cleanup.stop_executions(
        client, [TRAINING, BATCH], deadline(clock, 600), sleep=clock.sleep, poll_seconds=15, log=quiet
    )
    assert stopped == [batch, running]
    assert clock.sleeps == [15, 15]


def test_an_execution_started_during_the_wait_is_stopped_too(sagemaker: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stubber = sagemaker
    first, late = execution(TRAINING, "a"), execution(TRAINING, "late")
    expect_list(stubber, TRAINING, summaries((first, "Executing")))
    expect_stop(stubber, first)
    expect_list(stubber, TRAINING, summaries((late, "Executing"), (first, "Stopping")))
    expect_stop(stubber, late)
    expect_list(stubber, TRAINING, summaries((late, "Stopped"), (first, "Stopped")))
    stopped = cleanup.stop_executions(client, [TRAINING], deadline(clock, 600), sleep=clock.sleep, log=quiet)
    assert stopped == [first, late]


def test_nothing_running_means_no_stop_and_no_wait(sagemaker: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stubber = sagemaker
    expect_list(stubber, TRAINING, summaries((execution(TRAINING, "a"), "Succeeded")))
    expect_list(stubber, BATCH, {"PipelineExecutionSummaries": []})
    assert cleanup.stop_executions(client, [TRAINING, BATCH], deadline(clock, 600), sleep=clock.sleep, log=quiet) == []
    assert clock.sleeps == []


def test_a_pipeline_that_is_already_gone_has_nothing_to_stop(sagemaker: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stubber = sagemaker
    stubber.add_client_error(
        "list_pipeline_executions", "ResourceNotFound", "Pipeline nlp-dev-training does not exist", 400
    )
    expect_list(stubber, BATCH, {"PipelineExecutionSummaries": []})
    assert cleanup.stop_executions(client, [TRAINING, BATCH], deadline(clock, 600), sleep=clock.sleep, log=quiet) == []


def test_an_execution_that_finished_before_its_stop_is_not_an_error(
    sagemaker: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = sagemaker
    arn = execution(TRAINING, "a")
    expect_list(stubber, TRAINING, summaries((arn, "Executing")))
    stubber.add_client_error("stop_pipeline_execution", "ConflictException", "Execution is not running", 400)
    expect_list(stubber, TRAINING, summaries((arn, "Succeeded")))
    assert cleanup.stop_executions(client, [TRAINING], deadline(clock, 600), sleep=clock.sleep, log=quiet) == []


def test_an_execution_that_cannot_be_stopped_fails_naming_it_and_the_fix(
    sagemaker: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = sagemaker
    arn = execution(TRAINING, "stuck")
    expect_list(stubber, TRAINING, summaries((arn, "Executing")))
    stubber.add_client_error("stop_pipeline_execution", "AccessDeniedException", "not authorized", 400)
    expect_list(stubber, TRAINING, summaries((arn, "Executing")))
    stubber.add_client_error(
        "stop_pipeline_execution",
        "AccessDeniedException",
        "not authorized",
        400,
        expected_params={"PipelineExecutionArn": arn, "ClientRequestToken": cleanup.stop_request_token(arn, 2)},
    )
    with pytest.raises(CleanupError) as raised:
        cleanup.stop_executions(client, [TRAINING], deadline(clock, 600), sleep=clock.sleep, log=quiet)
    message = str(raised.value)
    assert arn in message
    assert "AccessDeniedException: not authorized" in message
    assert f"aws sagemaker stop-pipeline-execution --pipeline-execution-arn {arn}" in message


def test_the_wait_ends_at_its_deadline_naming_the_executions_still_running(
    sagemaker: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = sagemaker
    arn = execution(BATCH, "slow")
    expect_list(stubber, BATCH, summaries((arn, "Executing")))
    expect_stop(stubber, arn)
    for _ in range(3):
        expect_list(stubber, BATCH, summaries((arn, "Stopping")))
    with pytest.raises(CleanupError, match=r"still running after the cleanup's wait: .*execution/slow") as raised:
        cleanup.stop_executions(client, [BATCH], deadline(clock, 40), sleep=clock.sleep, poll_seconds=15, log=quiet)
    assert "retry the stack deletion" in str(raised.value)
    # Sleeps never run past the deadline: 15 + 15 + the 10 seconds left.
    assert clock.sleeps == [15, 15, 10]


def test_a_listing_error_other_than_not_found_fails_naming_the_pipeline(
    sagemaker: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = sagemaker
    stubber.add_client_error("list_pipeline_executions", "AccessDeniedException", "denied", 400)
    with pytest.raises(CleanupError, match=rf"executions of pipeline {TRAINING} \(AccessDeniedException: denied\)"):
        cleanup.stop_executions(client, [TRAINING], deadline(clock, 600), sleep=clock.sleep, log=quiet)


def test_stop_tokens_are_stable_per_attempt_and_fit_the_api() -> None:
    arn = execution(TRAINING, "a")
    token = cleanup.stop_request_token(arn, 1)
    assert token == cleanup.stop_request_token(arn, 1)
    assert token != cleanup.stop_request_token(arn, 2)
    assert token != cleanup.stop_request_token(execution(TRAINING, "b"), 1)
    assert 32 <= len(token) <= 128


# --- deleting model packages ---------------------------------------------------------------------------------------


def test_every_package_of_every_page_and_approval_status_is_deleted(
    sagemaker: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = sagemaker
    approved = packages(3, approval="Approved")["ModelPackageSummaryList"]
    expect_list_packages(stubber, {**packages(1, 2), "NextToken": "more"})
    expect_list_packages(
        stubber,
        {"ModelPackageSummaryList": approved + packages(4, approval="Rejected")["ModelPackageSummaryList"]},
        "more",
    )
    for version in (1, 2, 3, 4):
        expect_delete(stubber, version)
    assert cleanup.delete_model_packages(client, GROUP, deadline(clock, 600), log=quiet) == [
        package(v) for v in range(1, 5)
    ]


def test_a_group_that_is_empty_or_gone_needs_no_deletion(sagemaker: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stubber = sagemaker
    expect_list_packages(stubber, {"ModelPackageSummaryList": []})
    assert cleanup.delete_model_packages(client, GROUP, deadline(clock, 600), log=quiet) == []
    stubber.add_client_error(
        "list_model_packages", "ValidationException", f"Model package group {GROUP} does not exist"
    )
    assert cleanup.delete_model_packages(client, GROUP, deadline(clock, 600), log=quiet) == []


def test_a_package_deleted_meanwhile_is_skipped(sagemaker: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stubber = sagemaker
    expect_list_packages(stubber, packages(1, 2))
    stubber.add_client_error("delete_model_package", "ValidationException", "Model package 1 does not exist.")
    expect_delete(stubber, 2)
    assert cleanup.delete_model_packages(client, GROUP, deadline(clock, 600), log=quiet) == [package(2)]


def test_a_package_that_cannot_be_deleted_fails_naming_it_after_deleting_the_others(
    sagemaker: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = sagemaker
    expect_list_packages(stubber, packages(1, 2, 3))
    expect_delete(stubber, 1)
    stubber.add_client_error(
        "delete_model_package", "ConflictException", "in use", expected_params={"ModelPackageName": package(2)}
    )
    expect_delete(stubber, 3)
    with pytest.raises(CleanupError) as raised:
        cleanup.delete_model_packages(client, GROUP, deadline(clock, 600), log=quiet)
    message = str(raised.value)
    assert f"{package(2)} (ConflictException: in use)" in message
    assert package(1) not in message and package(3) not in message
    assert "aws sagemaker delete-model-package --model-package-name" in message


def test_deletion_stops_at_its_deadline_naming_what_is_left(sagemaker: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stubber = sagemaker
    expect_list_packages(stubber, packages(1, 2, 3))

    def delete_slowly(**_kwargs: Any) -> None:
        clock.now += 30

    client.meta.events.register("before-parameter-build.sagemaker.DeleteModelPackage", delete_slowly)
    expect_delete(stubber, 1)
    expect_delete(stubber, 2)
    with pytest.raises(CleanupError, match=rf"1 model packages of group {GROUP} left \(first: .*/{GROUP}/3\)"):
        cleanup.delete_model_packages(client, GROUP, deadline(clock, 45), log=quiet)


# --- the CloudFormation request ------------------------------------------------------------------------------------


def request(kind: str, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": kind,
        "ResponseURL": "https://cloudformation-custom-resource-response.example/signed",
        "StackId": "arn:aws:cloudformation:eu-west-1:111122223333:stack/nlp-dev-pipeline/guid",
        "RequestId": "request-1",
        "LogicalResourceId": "PipelineCleanup",
        "ResourceType": "Custom::PipelineCleanup",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:eu-west-1:111122223333:function:cleanup",
            "PipelineNames": [TRAINING, BATCH],
            "ModelPackageGroupName": GROUP,
        },
    }
    if kind != "Create":
        event["PhysicalResourceId"] = f"pipeline-cleanup-{GROUP}"
    event.update(overrides)
    return event


def answer(event: dict[str, Any], client: Any, clock: FakeClock) -> Any:
    return cleanup.on_event(
        event,
        lambda: client,
        wait_until=deadline(clock, 600),
        delete_until=deadline(clock, 700),
        sleep=clock.sleep,
        log=quiet,
    )


def test_create_and_update_call_nothing_and_keep_one_physical_id(
    sagemaker: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, _ = sagemaker  # no stubbed response: any SageMaker call would fail the test
    created = answer(request("Create"), client, clock)
    assert (created.status, created.physical_id) == ("SUCCESS", f"pipeline-cleanup-{GROUP}")
    assert answer(request("Create"), client, clock) == created
    # Update echoes the current id even when it differs: a new id would make CloudFormation delete the old one.
    updated = answer(request("Update", PhysicalResourceId="an-older-id"), client, clock)
    assert (updated.status, updated.physical_id) == ("SUCCESS", "an-older-id")


def test_delete_stops_executions_before_deleting_packages(sagemaker: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stubber = sagemaker
    arn = execution(TRAINING, "a")
    expect_list(stubber, TRAINING, summaries((arn, "Executing")))
    expect_list(stubber, BATCH, summaries())
    expect_stop(stubber, arn)
    expect_list(stubber, TRAINING, summaries((arn, "Stopped")))
    expect_list(stubber, BATCH, summaries())
    expect_list_packages(stubber, packages(1))
    expect_delete(stubber, 1)
    outcome = answer(request("Delete"), client, clock)
    assert (outcome.status, outcome.physical_id) == ("SUCCESS", f"pipeline-cleanup-{GROUP}")


def test_delete_does_not_touch_packages_while_an_execution_still_runs(
    sagemaker: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = sagemaker
    arn = execution(TRAINING, "a")
    expect_list(stubber, TRAINING, summaries((arn, "Stopping")))
    expect_list(stubber, BATCH, summaries())
    with pytest.raises(CleanupError, match="still running"):
        cleanup.on_event(
            request("Delete"),
            lambda: client,
            wait_until=deadline(clock, 0),
            delete_until=deadline(clock, 100),
            log=quiet,
        )


def test_a_failed_create_is_answered_with_an_id_whose_rollback_delete_does_nothing(
    sagemaker: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, _ = sagemaker
    bad = request("Create", ResourceProperties={"PipelineNames": "nlp-dev-training", "ModelPackageGroupName": GROUP})
    created = answer(bad, client, clock)
    assert created.status == "FAILED"
    assert "PipelineNames='nlp-dev-training'" in created.reason and "non-empty list" in created.reason
    rollback = answer(request("Delete", PhysicalResourceId=created.physical_id), client, clock)
    assert (rollback.status, rollback.physical_id) == ("SUCCESS", created.physical_id)


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"PipelineNames": [], "ModelPackageGroupName": GROUP}, r"PipelineNames=\[\]"),
        (
            {"PipelineNames": [TRAINING, ""], "ModelPackageGroupName": GROUP},
            r"PipelineNames=\['nlp-dev-training', ''\]",
        ),
        ({"PipelineNames": [TRAINING]}, r"ModelPackageGroupName=None must name a model package group"),
    ],
)
def test_bad_properties_fail_naming_the_property_and_value(properties: dict[str, Any], message: str) -> None:
    with pytest.raises(CleanupError, match=message):
        cleanup.CleanupTarget.from_properties(properties)


# --- the stage's log streams in SageMaker's shared log groups -------------------------------------------------------

TRAINING_LOGS, NOTEBOOK_LOGS = "/aws/sagemaker/TrainingJobs", "/aws/sagemaker/NotebookInstances"
LOG_STREAMS = {
    "StreamNamePrefix": "nlp-dev-",
    "LogGroups": [{"LogGroupName": NOTEBOOK_LOGS}, {"LogGroupName": TRAINING_LOGS, "PipelineStepJob": "TrainingJob"}],
}


@pytest.fixture
def logs() -> Iterator[tuple[Any, Stubber]]:
    client = botocore.session.get_session().create_client(
        "logs", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def steps(*job_arns: tuple[str, str]) -> dict[str, Any]:
    return {
        "PipelineExecutionSteps": [
            {"StepName": f"Step{i}", "Metadata": {key: {"Arn": arn}}} for i, (key, arn) in enumerate(job_arns)
        ]
    }


def expect_steps(stubber: Stubber, execution_arn: str, response: dict[str, Any], token: str | None = None) -> None:
    expected: dict[str, Any] = {"PipelineExecutionArn": execution_arn}
    if token:
        expected["NextToken"] = token
    stubber.add_response("list_pipeline_execution_steps", response, expected)


def expect_streams(
    stubber: Stubber, group: str, prefix: str, names: list[str], token: str | None = None, next_token: str = ""
) -> None:
    expected: dict[str, Any] = {"logGroupName": group, "logStreamNamePrefix": prefix}
    if token:
        expected["nextToken"] = token
    response: dict[str, Any] = {"logStreams": [{"logStreamName": name} for name in names]}
    if next_token:
        response["nextToken"] = next_token
    stubber.add_response("describe_log_streams", response, expected)


def expect_delete_stream(stubber: Stubber, group: str, name: str) -> None:
    stubber.add_response("delete_log_stream", {}, {"logGroupName": group, "logStreamName": name})


def training_job(name: str) -> str:
    return f"{ACCOUNT_ARN}:training-job/{name}"


def test_the_jobs_of_every_execution_and_step_page_are_found_by_kind(sagemaker: tuple[Any, Stubber]) -> None:
    client, stubber = sagemaker
    first, second = execution(TRAINING, "a"), execution(TRAINING, "b")
    expect_list(stubber, TRAINING, {**summaries((first, "Succeeded")), "NextToken": "page2"})
    expect_list(stubber, TRAINING, summaries((second, "Stopped")), token="page2")
    expect_steps(stubber, first, {**steps(("TrainingJob", training_job("pipelines-a-Train-x"))), "NextToken": "s2"})
    expect_steps(
        stubber,
        first,
        steps(("ProcessingJob", f"{ACCOUNT_ARN}:processing-job/pipelines-a-Evaluate-y")),
        token="s2",
    )
    # An execution whose steps are gone ran nothing that is left to find.
    stubber.add_client_error("list_pipeline_execution_steps", "ResourceNotFound", "no such execution", 400)
    stubber.add_client_error("list_pipeline_executions", "ResourceNotFound", "Pipeline does not exist", 400)
    jobs = cleanup.pipeline_jobs(client, [TRAINING, BATCH])
    assert jobs == {"TrainingJob": ["pipelines-a-Train-x"], "ProcessingJob": ["pipelines-a-Evaluate-y"],
                    "TransformJob": []}  # fmt: skip


def test_reading_the_steps_stops_at_its_deadline(sagemaker: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stubber = sagemaker
    expect_list(stubber, TRAINING, summaries((execution(TRAINING, "a"), "Succeeded")))
    with pytest.raises(CleanupError, match=f"ran out of time while reading the steps .* {TRAINING}"):
        cleanup.pipeline_jobs(client, [TRAINING], deadline(clock, 0))


def test_deletes_the_stage_streams_and_its_pipeline_jobs_streams_of_every_page(
    logs: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = logs
    target = cleanup.LogStreamTarget.from_property(LOG_STREAMS)
    jobs = {"TrainingJob": ["pipelines-a-Train-x"], "ProcessingJob": ["pipelines-a-Evaluate-y"]}
    # Notebooks: the prefix only, two pages. A job group: the prefix, then each of its kind's pipeline jobs.
    expect_streams(stubber, NOTEBOOK_LOGS, "nlp-dev-", ["nlp-dev-alice/jupyter.log"], next_token="p2")
    expect_streams(stubber, NOTEBOOK_LOGS, "nlp-dev-", ["nlp-dev-alice/LifecycleConfigOnStart"], token="p2")
    expect_delete_stream(stubber, NOTEBOOK_LOGS, "nlp-dev-alice/jupyter.log")
    # Already gone (deleted by hand meanwhile) counts as deleted.
    stubber.add_client_error(
        "delete_log_stream", "ResourceNotFoundException", "The specified log stream does not exist."
    )
    expect_streams(stubber, TRAINING_LOGS, "nlp-dev-", ["nlp-dev-notebook-job/algo-1-1700000000"])
    expect_streams(stubber, TRAINING_LOGS, "pipelines-a-Train-x/", ["pipelines-a-Train-x/algo-1-1700000000"])
    expect_delete_stream(stubber, TRAINING_LOGS, "nlp-dev-notebook-job/algo-1-1700000000")
    expect_delete_stream(stubber, TRAINING_LOGS, "pipelines-a-Train-x/algo-1-1700000000")
    deleted = cleanup.delete_log_streams(client, target, jobs, deadline(clock, 600), log=quiet)
    assert deleted == [
        f"{NOTEBOOK_LOGS}:nlp-dev-alice/jupyter.log",
        f"{TRAINING_LOGS}:nlp-dev-notebook-job/algo-1-1700000000",
        f"{TRAINING_LOGS}:pipelines-a-Train-x/algo-1-1700000000",
    ]


def test_a_shared_group_that_does_not_exist_has_nothing_to_delete(logs: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stubber = logs
    target = cleanup.LogStreamTarget.from_property(LOG_STREAMS)
    stubber.add_client_error(
        "describe_log_streams", "ResourceNotFoundException", "The specified log group does not exist."
    )
    expect_streams(stubber, TRAINING_LOGS, "nlp-dev-", [])
    assert cleanup.delete_log_streams(client, target, {}, deadline(clock, 600), log=quiet) == []


def test_a_stream_that_cannot_be_deleted_fails_naming_it_and_the_command_after_the_others(
    logs: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = logs
    target = cleanup.LogStreamTarget.from_property(LOG_STREAMS)
    expect_streams(stubber, NOTEBOOK_LOGS, "nlp-dev-", ["nlp-dev-alice/jupyter.log", "nlp-dev-bob/jupyter.log"])
    stubber.add_client_error("delete_log_stream", "AccessDeniedException", "not authorized")
    expect_delete_stream(stubber, NOTEBOOK_LOGS, "nlp-dev-bob/jupyter.log")
    expect_streams(stubber, TRAINING_LOGS, "nlp-dev-", [])
    with pytest.raises(CleanupError) as raised:
        cleanup.delete_log_streams(client, target, {}, deadline(clock, 600), log=quiet)
    message = str(raised.value)
    assert "nlp-dev-alice/jupyter.log (AccessDeniedException: not authorized)" in message
    assert (
        f"aws logs delete-log-stream --log-group-name {NOTEBOOK_LOGS} --log-stream-name nlp-dev-alice/jupyter.log"
        in message
    )
    assert "nlp-dev-bob" not in message


def test_listing_streams_that_fails_names_the_group_and_the_command(
    logs: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = logs
    stubber.add_client_error("describe_log_streams", "AccessDeniedException", "not authorized")
    with pytest.raises(CleanupError, match=f"aws logs describe-log-streams --log-group-name {NOTEBOOK_LOGS} "):
        cleanup.stream_names(client, NOTEBOOK_LOGS, "nlp-dev-")


def test_delete_removes_log_streams_after_the_packages(
    sagemaker: tuple[Any, Stubber], logs: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = sagemaker
    logs_client, logs_stubber = logs
    arn = execution(TRAINING, "a")
    # Nothing to stop; the packages go; then the executions are read again for the jobs their steps ran.
    expect_list(stubber, TRAINING, summaries((arn, "Succeeded")))
    expect_list(stubber, BATCH, summaries())
    expect_list_packages(stubber, packages(1))
    expect_delete(stubber, 1)
    expect_list(stubber, TRAINING, summaries((arn, "Succeeded")))
    expect_steps(stubber, arn, steps(("TrainingJob", training_job("pipelines-a-Train-x"))))
    expect_list(stubber, BATCH, summaries())
    expect_streams(logs_stubber, NOTEBOOK_LOGS, "nlp-dev-", [])
    expect_streams(logs_stubber, TRAINING_LOGS, "nlp-dev-", [])
    expect_streams(logs_stubber, TRAINING_LOGS, "pipelines-a-Train-x/", ["pipelines-a-Train-x/algo-1-1"])
    expect_delete_stream(logs_stubber, TRAINING_LOGS, "pipelines-a-Train-x/algo-1-1")
    event = request("Delete")
    event["ResourceProperties"]["LogStreams"] = LOG_STREAMS
    outcome = cleanup.on_event(
        event,
        lambda: client,
        logs=lambda: logs_client,
        wait_until=deadline(clock, 600),
        delete_until=deadline(clock, 700),
        sleep=clock.sleep,
        log=quiet,
    )
    assert outcome.status == "SUCCESS"


@pytest.mark.parametrize(
    ("log_streams", "message"),
    [
        ({"StreamNamePrefix": "nlp-dev", "LogGroups": [{"LogGroupName": NOTEBOOK_LOGS}]}, r"ending in '-'"),
        ({"StreamNamePrefix": "nlp-dev-", "LogGroups": []}, r"LogGroups=\[\] must be a non-empty list"),
        (
            {"StreamNamePrefix": "nlp-dev-", "LogGroups": [{"LogGroupName": TRAINING_LOGS, "PipelineStepJob": "Job"}]},
            r"'PipelineStepJob': 'Job'",
        ),
    ],
)
def test_bad_log_stream_properties_fail_naming_the_value(log_streams: dict[str, Any], message: str) -> None:
    properties = {"PipelineNames": [TRAINING], "ModelPackageGroupName": GROUP, "LogStreams": log_streams}
    with pytest.raises(CleanupError, match=message):
        cleanup.CleanupTarget.from_properties(properties)


# --- answering CloudFormation --------------------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    failures_left: ClassVar[int] = 0

    def do_PUT(self) -> None:  # the method CloudFormation's pre-signed URL is signed for
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        if _Recorder.failures_left > 0:
            _Recorder.failures_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Recorder.received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def response_url() -> Iterator[str]:
    _Recorder.received, _Recorder.failures_left = [], 0
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/signed?X-Amz-Signature=abc"
    finally:
        server.shutdown()
        server.server_close()


def test_the_answer_is_put_with_the_empty_content_type_the_signed_url_expects(response_url: str) -> None:
    event = request("Delete", ResponseURL=response_url)
    cleanup.send_response(event, cleanup.Outcome("FAILED", "pid", "could not delete x"), log=quiet)
    (received,) = _Recorder.received
    assert received["path"] == "/signed?X-Amz-Signature=abc"
    assert received["headers"]["Content-Type"] == ""
    assert received["body"] == {
        "Status": "FAILED",
        "Reason": "could not delete x",
        "PhysicalResourceId": "pid",
        "StackId": event["StackId"],
        "RequestId": "request-1",
        "LogicalResourceId": "PipelineCleanup",
        "NoEcho": False,
        "Data": {},
    }


def test_a_failed_put_is_retried(response_url: str, clock: FakeClock) -> None:
    _Recorder.failures_left = 1
    cleanup.send_response(
        request("Create", ResponseURL=response_url), cleanup.Outcome("SUCCESS", "pid"), sleep=clock.sleep, log=quiet
    )
    assert [r["body"]["Status"] for r in _Recorder.received] == ["SUCCESS"]
    assert clock.sleeps == [2.0]


def test_a_long_reason_is_cut_to_fit_cloudformations_answer_limit() -> None:
    body = cleanup.response_body(request("Delete"), cleanup.Outcome("FAILED", "pid", "x" * 10_000))
    assert len(body) < 4096
    assert json.loads(body)["Reason"].endswith("(see the log)")


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def test_the_handler_answers_failed_when_the_cleanup_raises(
    response_url: str, monkeypatch: pytest.MonkeyPatch, sagemaker: tuple[Any, Stubber]
) -> None:
    client, stubber = sagemaker
    stubber.add_client_error("list_pipeline_executions", "AccessDeniedException", "denied", 400)
    monkeypatch.setattr(cleanup, "_sagemaker_client", lambda: client)
    monkeypatch.setattr(cleanup, "log_json", quiet)
    cleanup.handler(request("Delete", ResponseURL=response_url), _Context())
    (received,) = _Recorder.received
    assert received["body"]["Status"] == "FAILED"
    assert received["body"]["PhysicalResourceId"] == f"pipeline-cleanup-{GROUP}"
    assert f"executions of pipeline {TRAINING}" in received["body"]["Reason"]


def test_the_handler_answers_even_an_unexpected_error(response_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(cleanup, "_sagemaker_client", broken)
    monkeypatch.setattr(cleanup, "log_json", quiet)
    cleanup.handler(request("Delete", ResponseURL=response_url), _Context())
    (received,) = _Recorder.received
    assert received["body"]["Status"] == "FAILED"
    assert "unexpected KeyError" in received["body"]["Reason"]
