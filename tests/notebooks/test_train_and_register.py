"""notebooks/02_train_and_register.ipynb: start the training pipeline, follow it, review the metrics, approve.

The notebook keeps its logic in tagged cells of small functions; these tests execute them against botocore Stubber
responses, then run the whole notebook the same way, so every request is checked for the names it sends (only the
environment file's values) and for the approval it must not make unless asked.
"""

from __future__ import annotations

import ast
import datetime
import functools
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import nbformat
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from components import training_pipeline
from config import load_config
from notebook_lifecycle.helpers import write_platform_env as env_writer

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_train_and_register.ipynb"
REGION = "eu-west-1"
ACCOUNT_ARN = f"arn:aws:sagemaker:{REGION}:111122223333"
# Names no stage would produce, so a name written into the notebook instead of read from the file cannot pass.
ENVIRONMENT = {
    "AWS_REGION_NAME": REGION,
    "RAW_BUCKET": "env-raw-bucket",
    "CURATED_BUCKET": "env-curated-bucket",
    "ARTIFACTS_BUCKET": "env-artifacts-bucket",
    "KMS_KEY_ARN": f"arn:aws:kms:{REGION}:111122223333:key/env-key",
    "GLUE_JOB_NAME": "env-prepare-job",
    "PIPELINE_NAME": "env-training-pipeline",
    "MODEL_PACKAGE_GROUP_NAME": "env-model-group",
    "ENDPOINT_NAME": "",
    "INFERENCE_API_URL": "",
    "NOTEBOOK_INSTANCE_NAME": "env-notebook",
    "IDLE_MINUTES": "60",
}
EXECUTION_ARN = f"{ACCOUNT_ARN}:pipeline/env-training-pipeline/execution/abc123"
GROUP = ENVIRONMENT["MODEL_PACKAGE_GROUP_NAME"]
ARTIFACTS = ENVIRONMENT["ARTIFACTS_BUCKET"]
T0 = datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.UTC)
REPORT = {
    "metrics": {"accuracy": {"value": 0.91}, "macro_f1": {"value": 0.8876}, "loss": {"value": 0.31}},
    "num_examples": 120,
    "per_label": {
        "billing": {"precision": 0.95, "recall": 0.9, "f1": 0.9243, "support": 40},
        "technical": {"precision": 0.88, "recall": 0.92, "f1": 0.8996, "support": 40},
    },
    "confusion_matrix": {"labels": ["billing", "technical"], "matrix": [[36, 4], [3, 37]]},
}


# --- the notebook's cells ---------------------------------------------------------------------------------------------


def code_cells() -> list[Any]:
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def tagged(tag: str) -> Any:
    found = [cell for cell in code_cells() if tag in cell.metadata.get("tags", [])]
    assert len(found) == 1, f"{NOTEBOOK.name} needs exactly one code cell tagged {tag!r}"
    return found[0]


def run_cell(tag: str) -> dict[str, Any]:
    """The names a tagged cell defines, executed on its own (the way the tests of platform-env do)."""
    namespace: dict[str, Any] = {}
    exec(compile(tagged(tag).source, f"{NOTEBOOK.name}[{tag}]", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def training() -> dict[str, Any]:
    return run_cell("training-helpers")


@pytest.fixture(scope="module")
def registry() -> dict[str, Any]:
    return run_cell("registry-helpers")


@functools.cache
def client(service: str) -> Any:
    # Credentials are never used: the Stubber answers before a request would be signed or sent. One client per service
    # for the module (loading an API model costs most of a second); each test's Stubber is removed when it ends.
    session = boto3.Session(aws_access_key_id="stub", aws_secret_access_key="stub", region_name=REGION)
    return session.client(service)


@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    sagemaker_client = client("sagemaker")
    with Stubber(sagemaker_client) as stubber:
        yield sagemaker_client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def s3() -> Iterator[tuple[Any, Stubber]]:
    s3_client = client("s3")
    with Stubber(s3_client) as stubber:
        yield s3_client, stubber
        stubber.assert_no_pending_responses()


# --- stubbed responses ------------------------------------------------------------------------------------------------


def step(name: str, status: str, minute: int, **extra: Any) -> dict[str, Any]:
    return {"StepName": name, "StepStatus": status, "StartTime": T0 + datetime.timedelta(minutes=minute), **extra}


def training_job(status: str) -> dict[str, Any]:
    job = f"{ACCOUNT_ARN}:training-job/pipelines-abc123-train-x1y2"
    return step("Train", status, 1, Metadata={"TrainingJob": {"Arn": job}})


def package_arn(version: int) -> str:
    return f"{ACCOUNT_ARN}:model-package/{GROUP}/{version}"


def expect_execution(stubber: Stubber, status: str, steps: list[dict[str, Any]], reason: str = "") -> None:
    described: dict[str, Any] = {"PipelineExecutionArn": EXECUTION_ARN, "PipelineExecutionStatus": status}
    if reason:
        described["FailureReason"] = reason
    stubber.add_response("describe_pipeline_execution", described, {"PipelineExecutionArn": EXECUTION_ARN})
    listing = {"PipelineExecutionArn": EXECUTION_ARN, "SortOrder": "Ascending"}
    stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps}, listing)


def succeeded_steps(registered: str) -> list[dict[str, Any]]:
    return [
        step("ResolveInputs", "Succeeded", 0),
        training_job("Succeeded"),
        step("Evaluate", "Succeeded", 20),
        step("AccuracyGate", "Succeeded", 25, Metadata={"Condition": {"Outcome": "True"}}),
        step("RegisterModel", "Succeeded", 26, Metadata={"RegisterModel": {"Arn": registered}}),
    ]


def expect_pending(stubber: Stubber, arns: list[str]) -> None:
    summaries = [
        {
            "ModelPackageArn": arn,
            "CreationTime": T0,
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": "PendingManualApproval",
        }
        for arn in arns
    ]
    stubber.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": summaries},
        {
            "ModelPackageGroupName": GROUP,
            "ModelApprovalStatus": "PendingManualApproval",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        },
    )


def described_package(arn: str, report_uri: str | None) -> dict[str, Any]:
    package: dict[str, Any] = {
        "ModelPackageName": GROUP,
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": int(arn.rsplit("/", 1)[1]),
        "ModelPackageArn": arn,
        "ModelPackageDescription": "Trained by pipeline execution abc123",
        "CreationTime": T0,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "PendingManualApproval",
    }
    if report_uri is not None:
        package["ModelMetrics"] = {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": report_uri}}
        }
    return package


def report_uri(execution_id: str = "abc123") -> str:
    return f"s3://{ARTIFACTS}/evaluation/{execution_id}/evaluation.json"


def expect_report(stubber: Stubber, key: str, report: Any = REPORT) -> None:
    body = json.dumps(report).encode("utf-8")
    stubber.add_response(
        "get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))}, {"Bucket": ARTIFACTS, "Key": key}
    )


class Clock:
    """A monotonic clock that advances only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- starting a run ---------------------------------------------------------------------------------------------------


def test_a_run_with_defaults_sends_no_parameter(training: dict[str, Any]) -> None:
    assert training["pipeline_parameters"]() == []
    assert training["pipeline_parameters"](data_run_id="  ", epochs=None) == []


def test_a_data_run_and_epochs_become_pipeline_parameters(training: dict[str, Any]) -> None:
    assert training["pipeline_parameters"](data_run_id=" jr_0a1b2c ", epochs=3) == [
        {"Name": "DataPreparationRunId", "Value": "jr_0a1b2c"},
        {"Name": "Epochs", "Value": "3"},
    ]


@pytest.mark.parametrize("epochs", [0, -2, 2.5, "3", True])
def test_epochs_must_be_a_positive_whole_number(training: dict[str, Any], epochs: Any) -> None:
    with pytest.raises(ValueError, match=rf"EPOCHS={epochs!r}: use a whole number"):
        training["pipeline_parameters"](epochs=epochs)


@pytest.mark.parametrize("run_id", ["runs/jr_1", "jr 1", "s3://bucket/datasets/default/runs/jr_1"])
def test_data_run_id_must_be_a_run_id_not_a_path(training: dict[str, Any], run_id: str) -> None:
    with pytest.raises(ValueError, match=r"DATA_RUN_ID=.*Glue job run id"):
        training["pipeline_parameters"](data_run_id=run_id)


def pipeline_definition(stage: Any, name: str) -> dict[str, Any]:
    """The parsed definition of the pipeline ``name``; each CloudFormation intrinsic becomes ``<Kind:name>``."""

    def text(value: Any) -> str:
        if isinstance(value, str):
            return value
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(text(part) for part in parts)
        if "Fn::ImportValue" in value:
            return f"<Import:{value['Fn::ImportValue'].split(':')[-1]}>"
        if "Ref" in value:
            return f"<Ref:{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return f"<GetAtt:{'.'.join(value['Fn::GetAtt'])}>"
        return f"<{next(iter(value))}>"

    pipelines = stage.template("pipeline").find_resources("AWS::SageMaker::Pipeline").values()
    (body,) = [p["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"] for p in pipelines
               if p["Properties"]["PipelineName"] == name]  # fmt: skip
    definition: dict[str, Any] = json.loads(text(body))
    return definition


def test_the_parameters_the_notebook_sends_are_parameters_of_the_training_pipeline(
    dev: Any, training: dict[str, Any]
) -> None:
    definition = pipeline_definition(dev, load_config("dev").training_pipeline_name)
    declared = {parameter["Name"]: parameter["Type"] for parameter in definition["Parameters"]}
    sent = training["pipeline_parameters"](data_run_id="jr_1", epochs=2)

    assert [parameter["Name"] for parameter in sent] == ["DataPreparationRunId", "Epochs"]
    assert {parameter["Name"]: declared.get(parameter["Name"]) for parameter in sent} == {
        "DataPreparationRunId": "String",
        "Epochs": "Integer",
    }


def test_start_names_the_pipeline_and_sends_the_request_token(
    training: dict[str, Any], sagemaker: tuple[Any, Stubber]
) -> None:
    sagemaker_client, stubber = sagemaker
    parameters = [{"Name": "Epochs", "Value": "2"}]
    stubber.add_response(
        "start_pipeline_execution",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {
            "PipelineName": "env-training-pipeline",
            "PipelineExecutionDisplayName": "notebook-20250301T120000Z",
            "PipelineExecutionDescription": ANY,
            "PipelineParameters": parameters,
            "ClientRequestToken": "0" * 32,
        },
    )

    arn = training["start_training"](
        sagemaker_client,
        pipeline_name="env-training-pipeline",
        parameters=parameters,
        display_name="notebook-20250301T120000Z",
        request_token="0" * 32,
    )

    assert arn == EXECUTION_ARN


# --- following the execution ------------------------------------------------------------------------------------------


def test_follow_prints_a_line_per_step_status_change_until_the_execution_ends(
    training: dict[str, Any], sagemaker: tuple[Any, Stubber]
) -> None:
    sagemaker_client, stubber = sagemaker
    registered = package_arn(4)
    expect_execution(stubber, "Executing", [step("ResolveInputs", "Executing", 0)])
    expect_execution(stubber, "Executing", [step("ResolveInputs", "Succeeded", 0), training_job("Starting")])
    expect_execution(stubber, "Executing", [step("ResolveInputs", "Succeeded", 0), training_job("Starting")])
    # The listing is paginated: the second page must be read too.
    stubber.add_response(
        "describe_pipeline_execution", {"PipelineExecutionStatus": "Succeeded"}, {"PipelineExecutionArn": EXECUTION_ARN}
    )
    stubber.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": succeeded_steps(registered)[:2], "NextToken": "page-2"},
        {"PipelineExecutionArn": EXECUTION_ARN, "SortOrder": "Ascending"},
    )
    stubber.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": succeeded_steps(registered)[2:]},
        {"PipelineExecutionArn": EXECUTION_ARN, "SortOrder": "Ascending", "NextToken": "page-2"},
    )
    clock = Clock()
    lines: list[str] = []

    result = training["follow_execution"](
        sagemaker_client,
        EXECUTION_ARN,
        timeout_seconds=3600,
        poll_seconds=30,
        report=lines.append,
        sleep=clock.sleep,
        clock=clock,
    )

    assert [line.split("] ", 1)[1] for line in lines] == [
        "ResolveInputs: Executing",
        "ResolveInputs: Succeeded",
        "Train: Starting (pipelines-abc123-train-x1y2)",
        "Train: Succeeded (pipelines-abc123-train-x1y2)",
        "Evaluate: Succeeded",
        "AccuracyGate: Succeeded (outcome True)",
        "RegisterModel: Succeeded",
        "execution Succeeded",
    ]
    assert lines[-1] == "[  1 min 30 s] execution Succeeded"
    assert clock.sleeps == [30, 30, 30]
    assert result["status"] == "Succeeded" and len(result["steps"]) == 5
    assert training["registered_package_arn"](result["steps"]) == registered


def test_follow_says_what_still_runs_when_nothing_changes_for_a_while(
    training: dict[str, Any], sagemaker: tuple[Any, Stubber]
) -> None:
    sagemaker_client, stubber = sagemaker
    running = [step("ResolveInputs", "Succeeded", 0), training_job("Executing")]
    for _ in range(4):
        expect_execution(stubber, "Executing", running)
    expect_execution(stubber, "Stopped", running)
    clock = Clock()
    lines: list[str] = []

    result = training["follow_execution"](
        sagemaker_client,
        EXECUTION_ARN,
        timeout_seconds=3600,
        poll_seconds=120,
        heartbeat_seconds=300,
        report=lines.append,
        sleep=clock.sleep,
        clock=clock,
    )

    assert result["status"] == "Stopped"
    assert [line for line in lines if "still" in line] == ["[  6 min 00 s] still Executing: Train"]


def test_follow_gives_up_after_the_timeout_and_says_how_to_continue(
    training: dict[str, Any], sagemaker: tuple[Any, Stubber]
) -> None:
    sagemaker_client, stubber = sagemaker
    for _ in range(3):
        expect_execution(stubber, "Executing", [training_job("Executing")])
    clock = Clock()

    with pytest.raises(TimeoutError) as raised:
        training["follow_execution"](
            sagemaker_client,
            EXECUTION_ARN,
            timeout_seconds=600,
            poll_seconds=300,
            report=lambda line: None,
            sleep=clock.sleep,
            clock=clock,
        )

    message = str(raised.value)
    assert EXECUTION_ARN in message and "still Executing after 10 min 00 s" in message
    assert "run this cell again" in message and "stop_pipeline_execution" in message
    assert clock.sleeps == [300, 300]


def test_failure_report_shows_each_failed_steps_reason_and_its_logs(training: dict[str, Any]) -> None:
    gate_message = "Test accuracy 0.41 is below the threshold 0.7; the model was not registered"
    result = {
        "status": "Failed",
        "failure_reason": "Step failure: One or multiple steps failed.",
        "steps": [
            step("ResolveInputs", "Succeeded", 0),
            {**training_job("Failed"), "FailureReason": "AlgorithmError: CUDA out of memory"},
            step("AccuracyBelowThreshold", "Failed", 30, Metadata={"Fail": {"ErrorMessage": gate_message}}),
        ],
    }

    report = training["failure_report"](result)

    assert report.splitlines() == [
        "the execution ended Failed: Step failure: One or multiple steps failed.",
        "- step Train failed: AlgorithmError: CUDA out of memory",
        "  its logs: CloudWatch log group /aws/sagemaker/TrainingJobs, streams pipelines-abc123-train-x1y2/...",
        f"- step AccuracyBelowThreshold failed: {gate_message}",
    ]


def test_an_execution_that_registered_nothing_names_no_package(training: dict[str, Any]) -> None:
    registered = package_arn(3)
    failed_register = step("RegisterModel", "Failed", 26, Metadata={"RegisterModel": {"Arn": registered}})

    assert training["registered_package_arn"]([step("ResolveInputs", "Succeeded", 0)]) is None
    assert training["registered_package_arn"]([failed_register]) is None


# --- picking the package, reading its metrics -------------------------------------------------------------------------


def test_the_package_this_execution_registered_is_reviewed_even_when_a_newer_one_waits(
    registry: dict[str, Any], sagemaker: tuple[Any, Stubber]
) -> None:
    sagemaker_client, stubber = sagemaker
    expect_pending(stubber, [package_arn(5), package_arn(4)])
    stubber.add_response(
        "describe_model_package", described_package(package_arn(4), report_uri()), {"ModelPackageName": package_arn(4)}
    )

    package = registry["pick_package_to_approve"](sagemaker_client, GROUP, registered_arn=package_arn(4))

    assert package["ModelPackageArn"] == package_arn(4)


def test_without_a_registered_package_the_newest_pending_one_is_reviewed(
    registry: dict[str, Any], sagemaker: tuple[Any, Stubber]
) -> None:
    sagemaker_client, stubber = sagemaker
    expect_pending(stubber, [package_arn(5), package_arn(4)])
    stubber.add_response(
        "describe_model_package", described_package(package_arn(5), report_uri()), {"ModelPackageName": package_arn(5)}
    )

    assert registry["pick_package_to_approve"](sagemaker_client, GROUP)["ModelPackageArn"] == package_arn(5)


def test_no_pending_package_is_an_error_that_names_the_group(
    registry: dict[str, Any], sagemaker: tuple[Any, Stubber]
) -> None:
    sagemaker_client, stubber = sagemaker
    expect_pending(stubber, [])

    with pytest.raises(LookupError, match=rf"no model package of {GROUP} is PendingManualApproval: train one"):
        registry["pick_package_to_approve"](sagemaker_client, GROUP)


def test_a_registered_package_that_no_longer_waits_is_not_silently_replaced(
    registry: dict[str, Any], sagemaker: tuple[Any, Stubber]
) -> None:
    sagemaker_client, stubber = sagemaker
    expect_pending(stubber, [package_arn(5)])

    with pytest.raises(LookupError) as raised:
        registry["pick_package_to_approve"](sagemaker_client, GROUP, registered_arn=package_arn(4))

    assert f"{package_arn(4)} (registered by this notebook's execution) is no longer" in str(raised.value)
    assert "REGISTERED_PACKAGE_ARN = None" in str(raised.value) and package_arn(5) in str(raised.value)


def test_the_evaluation_report_is_read_from_the_uri_the_package_names(
    registry: dict[str, Any], s3: tuple[Any, Stubber]
) -> None:
    s3_client, stubber = s3
    expect_report(stubber, "evaluation/abc123/evaluation.json")
    uri = registry["evaluation_report_uri"](described_package(package_arn(4), report_uri()))

    assert registry["read_evaluation"](s3_client, uri, artifacts_bucket=ARTIFACTS) == REPORT


@pytest.mark.parametrize(
    "uri",
    [
        "s3://another-bucket/evaluation/abc123/evaluation.json",
        f"s3://{ARTIFACTS}/models/abc123/evaluation.json",
        f"s3://{ARTIFACTS}/evaluation-old/abc123/evaluation.json",
    ],
)
def test_a_report_outside_the_pipelines_evaluation_prefix_is_refused_without_a_request(
    registry: dict[str, Any], s3: tuple[Any, Stubber], uri: str
) -> None:
    with pytest.raises(ValueError, match=rf"the evaluation report '{uri}' is not under s3://{ARTIFACTS}/evaluation/"):
        registry["read_evaluation"](s3[0], uri, artifacts_bucket=ARTIFACTS)


def test_a_report_without_the_evaluation_contract_is_refused(registry: dict[str, Any], s3: tuple[Any, Stubber]) -> None:
    s3_client, stubber = s3
    expect_report(stubber, "evaluation/abc123/evaluation.json", {"accuracy": 0.9})

    with pytest.raises(ValueError, match=r"has no metrics.accuracy and metrics.macro_f1"):
        registry["read_evaluation"](s3_client, report_uri(), artifacts_bucket=ARTIFACTS)


def test_a_package_without_model_metrics_is_an_error_naming_it(registry: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=rf"{package_arn(2)} names no ModelMetrics.ModelQuality.Statistics report"):
        registry["evaluation_report_uri"](described_package(package_arn(2), None))


def test_metrics_are_shown_per_label_and_as_a_confusion_matrix(registry: dict[str, Any]) -> None:
    lines = registry["metrics_table"](REPORT).splitlines()

    assert lines[:4] == ["accuracy     0.9100", "macro_f1     0.8876", "loss         0.3100", "examples     120"]
    assert "billing         0.9500    0.9000    0.9243       40" in lines
    assert lines[-3:] == [
        "                  billing    technical",
        "billing                36            4",
        "technical               3           37",
    ]


def test_the_reading_contract_is_the_one_the_pipeline_registers(dev: Any, registry: dict[str, Any]) -> None:
    """The package's ModelMetrics URI points at evaluation.json under the prefix the notebook reads (and may read)."""
    assert registry["EVALUATION_PREFIX"] == f"{training_pipeline.EVALUATION_PREFIX}/"
    definition = pipeline_definition(dev, load_config("dev").training_pipeline_name)
    (gate,) = [s for s in definition["Steps"] if s["Name"] == "AccuracyGate"]
    (register,) = [s for s in gate["Arguments"]["IfSteps"] if s["Type"] == "RegisterModel"]

    def joined(value: Any) -> str:
        if isinstance(value, dict) and "Std:Join" in value:
            return str(value["Std:Join"]["On"]).join(joined(part) for part in value["Std:Join"]["Values"])
        if isinstance(value, dict) and "Get" in value:
            return f"<{value['Get']}>"
        return str(value)

    uri = joined(register["Arguments"]["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    assert uri.startswith("s3://<Import:ExportsOutputRefArtifactsBucket")
    assert uri.split("/", 3)[3] == f"{registry['EVALUATION_PREFIX']}<Execution.PipelineExecutionId>/evaluation.json"


# --- approving --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("confirmed", [False, None, "yes", 1])
def test_nothing_is_approved_unless_confirmed_is_true(
    registry: dict[str, Any], sagemaker: tuple[Any, Stubber], confirmed: Any
) -> None:
    # No response is queued: any request would fail the test.
    lines: list[str] = []

    approved = registry["approve_package"](
        sagemaker[0], package_arn(4), confirmed=confirmed, description="looks good", report=lines.append
    )

    assert approved is False
    assert lines == [
        f"not approved: {package_arn(4)} stays PendingManualApproval. Review the metrics above, then set "
        "APPROVE = True in this cell and run it again."
    ]


def test_a_confirmed_approval_updates_that_package_with_its_description(
    registry: dict[str, Any], sagemaker: tuple[Any, Stubber]
) -> None:
    sagemaker_client, stubber = sagemaker
    description = registry["approval_description"](REPORT)
    stubber.add_response(
        "update_model_package",
        {"ModelPackageArn": package_arn(4)},
        {"ModelPackageArn": package_arn(4), "ModelApprovalStatus": "Approved", "ApprovalDescription": description},
    )
    lines: list[str] = []

    assert registry["approve_package"](
        sagemaker_client, package_arn(4), confirmed=True, description=description, report=lines.append
    )
    assert "test accuracy 0.9100, macro F1 0.8876" in description
    assert "serving.model_package_arn" in lines[0]


def test_an_approval_without_a_description_is_refused(registry: dict[str, Any], sagemaker: tuple[Any, Stubber]) -> None:
    with pytest.raises(ValueError, match="APPROVAL_DESCRIPTION is empty"):
        registry["approve_package"](sagemaker[0], package_arn(4), confirmed=True, description="  ")


def test_the_approval_cell_defaults_to_not_approving_and_is_the_only_way_to_approve() -> None:
    approval = ast.parse(tagged("approval").source)
    flags = [
        node for node in approval.body if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "APPROVE"
    ]
    assert [ast.unparse(flag.value) for flag in flags] == ["False"]
    (call,) = [node for node in ast.walk(approval) if isinstance(node, ast.Call)
               and ast.unparse(node.func) == "approve_package"]  # fmt: skip
    assert {keyword.arg: ast.unparse(keyword.value) for keyword in call.keywords}["confirmed"] == "APPROVE"

    # The notebook changes a package's status only inside approve_package, whose confirmation check the tests above run.
    enclosing = []
    for cell in code_cells():
        tree = ast.parse(cell.source)
        functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "update_model_package":
                enclosing.append(next((f.name for f in functions if node in ast.walk(f)), "<cell level>"))
    assert enclosing == ["approve_package"]


# --- the whole notebook, top to bottom, against stubs -----------------------------------------------------------------


class StubbedSession:
    """Stands in for boto3.Session in the notebook: checks the region and hands out the stubbed clients."""

    def __init__(self, clients: dict[str, Any]) -> None:
        self.clients = clients
        self.regions: list[str] = []

    def __call__(self, *, region_name: str) -> StubbedSession:
        self.regions.append(region_name)
        return self

    def client(self, service: str) -> Any:
        return self.clients[service]


def run_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, queue: Any, sagemaker_client: Any, s3_client: Any
) -> tuple[dict[str, Any], StubbedSession]:
    """Execute every code cell in order with the environment file in ``tmp_path``; ``queue(namespace)`` adds the
    stubbed responses once the parameters cell has run (they name its display name and request token)."""
    env_path, _ = env_writer.write_platform_env(tmp_path, ENVIRONMENT)
    session = StubbedSession({"sagemaker": sagemaker_client, "s3": s3_client})
    monkeypatch.setattr(boto3, "Session", session)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    namespace: dict[str, Any] = {}
    queued = False
    for index, cell in enumerate(code_cells()):
        if not queued and "REQUEST_TOKEN" in namespace:
            queue(namespace)
            queued = True
        exec(compile(cell.source, f"{NOTEBOOK.name}[code cell {index}]", "exec"), namespace)
        if "platform-env" in cell.metadata.get("tags", []):
            read = namespace["read_platform_env"]
            namespace["read_platform_env"] = lambda read=read: read(env_path)
    return namespace, session


def expect_start(stubber: Stubber, namespace: dict[str, Any]) -> None:
    stubber.add_response(
        "start_pipeline_execution",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {
            "PipelineName": ENVIRONMENT["PIPELINE_NAME"],
            "PipelineExecutionDisplayName": namespace["DISPLAY_NAME"],
            "PipelineExecutionDescription": ANY,
            "PipelineParameters": [],
            "ClientRequestToken": namespace["REQUEST_TOKEN"],
        },
    )


def test_run_all_trains_follows_and_shows_the_metrics_with_env_file_names_and_approves_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sagemaker: tuple[Any, Stubber],
    s3: tuple[Any, Stubber],
) -> None:
    (sagemaker_client, sagemaker_stubber), (s3_client, s3_stubber) = sagemaker, s3
    registered = package_arn(4)

    def queue(namespace: dict[str, Any]) -> None:
        expect_start(sagemaker_stubber, namespace)
        expect_execution(
            sagemaker_stubber, "Executing", [step("ResolveInputs", "Succeeded", 0), training_job("Executing")]
        )
        expect_execution(sagemaker_stubber, "Succeeded", succeeded_steps(registered))
        expect_pending(sagemaker_stubber, [package_arn(5), registered])
        sagemaker_stubber.add_response(
            "describe_model_package", described_package(registered, report_uri()), {"ModelPackageName": registered}
        )
        expect_report(s3_stubber, "evaluation/abc123/evaluation.json")
        # No update_model_package is queued: approving would fail the test.

    namespace, session = run_notebook(tmp_path, monkeypatch, queue, sagemaker_client, s3_client)

    assert session.regions == [REGION]
    assert namespace["APPROVE"] is False and namespace["PACKAGE_ARN"] == registered
    output = capsys.readouterr().out
    assert "RegisterModel: Succeeded" in output and f"registered {registered}" in output
    assert "accuracy     0.9100" in output
    assert f"not approved: {registered} stays PendingManualApproval" in output


def test_run_all_stops_at_a_failed_execution_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sagemaker: tuple[Any, Stubber], s3: tuple[Any, Stubber]
) -> None:
    (sagemaker_client, stubber), (s3_client, _) = sagemaker, s3
    gate_message = "Test accuracy 0.41 is below the threshold 0.7; the model was not registered"
    failed = [
        step("ResolveInputs", "Succeeded", 0),
        training_job("Succeeded"),
        step("Evaluate", "Succeeded", 20),
        step("AccuracyGate", "Succeeded", 25, Metadata={"Condition": {"Outcome": "False"}}),
        step("AccuracyBelowThreshold", "Failed", 26, Metadata={"Fail": {"ErrorMessage": gate_message}}),
    ]

    def queue(namespace: dict[str, Any]) -> None:
        expect_start(stubber, namespace)
        expect_execution(stubber, "Failed", failed, reason="Step failure: One or multiple steps failed.")
        # Nothing after the failure: no registry lookup, no report, no approval.

    with pytest.raises(RuntimeError, match=rf"step AccuracyBelowThreshold failed: {gate_message}"):
        run_notebook(tmp_path, monkeypatch, queue, sagemaker_client, s3_client)
