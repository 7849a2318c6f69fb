"""scripts/run_pipeline_locally.py: the synthesized dev training pipeline, executed on this machine.

The end-to-end runs read the definition from the session's synthesized dev assembly (the ``dev`` fixture), train the
deterministic tiny BERT through the real ``sagemaker-training`` toolkit, evaluate with the staged evaluation bundle,
gate and register. The unit tests feed the intrinsic resolver, the expression evaluator and the planner bad input.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from config import load_config
from scripts import run_pipeline_locally as runner
from tests.stacks.test_training_pipeline import pipelines, step
from tests.training_code.harness_support import LABELS, build_tiny_pretrained, make_records, write_split

BASE_MODEL = "tiny-bert"
CURATED = "datasets/default"
# Enough steps at a learning rate that moves the tiny model for it to pass the dev gate (0.7) on the synthetic data.
TRAINS_WELL = ["Epochs=8", "LearningRate=0.002"]


def write_curated_run(curated: Path, run_id: str, *, without: tuple[str, ...] = ()) -> str:
    """A data preparation run as the Glue job lays it out (Spark's part files and _SUCCESS markers included)."""
    run = curated / CURATED / "runs" / run_id
    splits = {"train": make_records(1, 240), "validation": make_records(2, 60), "test": make_records(3, 60)}
    for name, records in splits.items():
        if f"{name}/" not in without:
            write_split(run / name, records)
            (run / name / "_SUCCESS").write_text("", encoding="utf-8")
    if "labels.json" not in without:
        (run / "labels.json").write_text(json.dumps(LABELS) + "\n", encoding="utf-8")
    (run / "data_report.json").write_text(json.dumps({"written_per_split": {}}) + "\n", encoding="utf-8")
    return f"s3://{runner.DEFAULT_CURATED_BUCKET_NAME}/{CURATED}/runs/{run_id}"


@pytest.fixture(scope="module")
def buckets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The curated folder (a complete run published through _LATEST, two incomplete ones) and the artifacts folder
    with the tiny base model under pretrained/<BaseModel>/."""
    root = tmp_path_factory.mktemp("buckets")
    curated, artifacts = root / "curated", root / "artifacts"
    prefix = write_curated_run(curated, "complete")
    write_curated_run(curated, "no-labels", without=("labels.json",))
    write_curated_run(curated, "no-validation", without=("validation/",))
    pointer = {"run_id": "complete", "run_prefix": f"{prefix}/", "labels": f"{prefix}/labels.json"}
    (curated / CURATED / "_LATEST").write_text(json.dumps(pointer) + "\n", encoding="utf-8")
    build_tiny_pretrained(artifacts / "pretrained" / BASE_MODEL)
    return curated, artifacts


def arguments(dev: Any, buckets: tuple[Path, Path], work: Path, execution_id: str, *parameters: str) -> list[str]:
    curated, artifacts = buckets
    flags = ["--cdk-out", str(dev.assembly_dir), "--curated", str(curated), "--artifacts", str(artifacts)]
    flags += ["--work", str(work), "--execution-id", execution_id, "--no-job-logs"]
    for parameter in (f"BaseModel={BASE_MODEL}", *parameters):
        flags += ["--parameter", parameter]
    return flags


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def succeeded(dev: Any, buckets: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One execution that should pass the gate; the tests below read what it left."""
    before = {name: snapshot(folder) for name, folder in zip(("curated", "artifacts"), buckets, strict=True)}
    work = tmp_path_factory.mktemp("work-succeeds")
    output = io.StringIO()
    result = runner.run(runner.parse_args(arguments(dev, buckets, work, "succeeds", *TRAINS_WELL)), output)
    after = {name: snapshot(folder) for name, folder in zip(("curated", "artifacts"), buckets, strict=True)}
    return {"result": result, "output": output.getvalue(), "work": work, "before": before, "after": after}


def dev_training_definition(dev: Any) -> dict[str, Any]:
    return pipelines(dev.template("pipeline"))[load_config("dev").training_pipeline_name]


# --------------------------------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------------------------------


def test_trains_evaluates_gates_and_registers_from_the_synthesized_dev_definition(succeeded: dict[str, Any]) -> None:
    result = succeeded["result"]
    assert result.status == "Succeeded", succeeded["output"]
    assert [(s.name, s.status) for s in result.steps] == [
        ("ResolveInputs", "Succeeded"),
        ("Train", "Succeeded"),
        ("Evaluate", "Succeeded"),
        ("AccuracyGate", "Succeeded"),
        ("RegisterModel", "Succeeded"),
    ]
    status = json.loads(result.status_file.read_text(encoding="utf-8"))
    assert status["PipelineExecutionStatus"] == "Succeeded"
    assert "FailureReason" not in status
    assert {"Name": "Epochs", "Value": "8"} in status["PipelineParameters"]
    # The gate read the accuracy that evaluate.py wrote, through the definition's Std:JsonGet.
    evaluation = json.loads(
        (succeeded["work"] / "s3" / "local-artifacts" / "evaluation" / "succeeds" / "evaluation.json").read_text()
    )
    accuracy = evaluation["metrics"]["accuracy"]["value"]
    assert accuracy >= 0.7
    assert f"GreaterThanOrEqualTo({accuracy!r}, 0.7) is true -> RegisterModel" in succeeded["output"]


def test_a_progress_line_per_step_and_a_summary(succeeded: dict[str, Any]) -> None:
    output = succeeded["output"]
    for number, name in enumerate(["ResolveInputs", "Train", "Evaluate", "AccuracyGate", "RegisterModel"], start=1):
        assert re.search(rf"^\[{number}/6\] {name} \(\w+\): started$", output, re.MULTILINE), name
        assert re.search(rf"^\[{number}/6\] {name} \(\w+\): Succeeded in \d+\.\d s", output, re.MULTILINE), name
    assert "[6/6] AccuracyBelowThreshold (Fail): not run, AccuracyGate chose the IfSteps" in output
    assert re.search(r"^Execution succeeds of nlp-dev-training: Succeeded in \d+\.\d s$", output, re.MULTILINE)
    # Settings that do not apply on this machine are named, not silently dropped.
    assert "spot does not apply locally" in output


def test_registry_entry_carries_what_the_register_step_declares(dev: Any, succeeded: dict[str, Any]) -> None:
    config = load_config("dev")
    declared = step(dev_training_definition(dev), "RegisterModel")["Arguments"]
    (package_file,) = succeeded["result"].registered
    assert package_file == succeeded["work"] / "registry" / config.model_package_group_name / "1" / "model-package.json"
    package = json.loads(package_file.read_text(encoding="utf-8"))
    assert package["ModelPackageGroupName"] == declared["ModelPackageGroupName"] == config.model_package_group_name
    assert package["ModelApprovalStatus"] == config.training.approval_status == "PendingManualApproval"
    assert package["ModelPackageDescription"] == "Trained by pipeline execution succeeds"
    specification, declared_specification = package["InferenceSpecification"], declared["InferenceSpecification"]
    for key in (
        "SupportedContentTypes",
        "SupportedResponseMIMETypes",
        "SupportedRealtimeInferenceInstanceTypes",
        "SupportedTransformInstanceTypes",
    ):
        assert specification[key] == declared_specification[key], key
    (container,) = specification["Containers"]
    # The image mapping resolved for the local region; the repository and tag are the definition's.
    assert container["Image"].startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/")
    assert container["Image"].split("/", 1)[1] == declared_specification["Containers"][0]["Image"].split("/", 1)[1]
    assert container["Environment"] == declared_specification["Containers"][0]["Environment"]
    # The model is the training job's model.tar.gz, servable as is; the metrics are the gate's evaluation report.
    assert re.fullmatch(r"s3://local-artifacts/models/pipelines-succeeds-Train-\w+/output/model.tar.gz",
                        container["ModelDataUrl"])  # fmt: skip
    with tarfile.open(package["LocalFiles"][container["ModelDataUrl"]], "r:gz") as archive:
        assert {"config.json", "labels.json", "code/inference.py", "model.safetensors"} <= set(archive.getnames())
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["S3Uri"] == "s3://local-artifacts/evaluation/succeeds/evaluation.json"
    report = json.loads(Path(package["LocalFiles"][statistics["S3Uri"]]).read_text(encoding="utf-8"))
    assert set(report["metrics"]) >= {"accuracy", "macro_f1"}


def test_every_metric_definition_matches_a_line_the_training_job_logs(succeeded: dict[str, Any]) -> None:
    train = next(s for s in succeeded["result"].steps if s.name == "Train")
    assert train.metadata["TrainingJob"]["MetricDefinitionsWithoutMatch"] == []
    assert "validation:accuracy=" in train.summary


def test_the_run_reads_the_bucket_folders_and_writes_only_under_work(succeeded: dict[str, Any]) -> None:
    assert succeeded["after"] == succeeded["before"]
    written = sorted(
        p.relative_to(succeeded["work"] / "s3").as_posix() for p in (succeeded["work"] / "s3").rglob("*.*")
    )
    assert any(re.fullmatch(r"local-artifacts/models/.+/output/model\.tar\.gz", p) for p in written), written
    assert "local-artifacts/evaluation/succeeds/evaluation.json" in written


def test_a_model_below_the_threshold_fails_at_the_fail_step_and_registers_nothing(
    dev: Any, buckets: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The stage's default learning rate does not move the randomly initialised tiny model in one epoch: it stays at
    # chance, below the dev threshold of 0.7.
    code = runner.main(arguments(dev, buckets, tmp_path, "too-weak", "Epochs=1"))
    output = capsys.readouterr().out
    assert code == 1, output
    status = json.loads((tmp_path / "executions" / "too-weak" / "execution.json").read_text(encoding="utf-8"))
    evaluation = json.loads(
        (tmp_path / "s3" / "local-artifacts" / "evaluation" / "too-weak" / "evaluation.json").read_text()
    )
    accuracy = evaluation["metrics"]["accuracy"]["value"]
    assert accuracy < 0.7
    message = f"Test accuracy {accuracy} is below the threshold 0.7; the model was not registered"
    assert status["PipelineExecutionStatus"] == "Failed"
    assert status["FailedStep"] == "AccuracyBelowThreshold"
    assert status["FailureReason"] == message
    assert {s["StepName"]: s["StepStatus"] for s in status["Steps"]} == {
        "ResolveInputs": "Succeeded",
        "Train": "Succeeded",
        "Evaluate": "Succeeded",
        "AccuracyGate": "Succeeded",
        "AccuracyBelowThreshold": "Failed",
    }
    assert f"failed at AccuracyBelowThreshold: {message}" in output
    assert "RegisterModel (RegisterModel): not run, AccuracyGate chose the ElseSteps" in output
    assert not (tmp_path / "registry").exists()


@pytest.mark.parametrize(("run_id", "missing"), [("no-labels", "labels.json"), ("no-validation", "validation/")])
def test_a_run_lacking_a_channel_fails_at_resolve_inputs_naming_it(
    dev: Any, buckets: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], run_id: str, missing: str
) -> None:
    prefix = f"s3://{runner.DEFAULT_CURATED_BUCKET_NAME}/{CURATED}/runs/{run_id}"
    code = runner.main(arguments(dev, buckets, tmp_path, "incomplete", f"InputPrefix={prefix}"))
    output = capsys.readouterr().out
    assert code == 1, output
    status = json.loads((tmp_path / "executions" / "incomplete" / "execution.json").read_text(encoding="utf-8"))
    assert status["PipelineExecutionStatus"] == "Failed"
    assert status["FailedStep"] == "ResolveInputs"
    assert status["FailureReason"] == (
        f"DatasetResolutionError: InputPrefix={prefix!r} lacks {missing}: point it at a complete data preparation run "
        "(runs/<run_id> with train/, validation/, test/ and labels.json)"
    )
    assert [s["StepName"] for s in status["Steps"]] == ["ResolveInputs"]
    assert "Train (Training): not run, the execution failed at ResolveInputs" in output
    assert not (tmp_path / "executions" / "incomplete" / "Train").exists()


def test_unknown_parameter_stops_before_running_and_lists_the_declared_ones(
    dev: Any, buckets: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runner.main(arguments(dev, buckets, tmp_path, "typo", "Epoch=2")) == 2
    error = capsys.readouterr().err
    assert "--parameter 'Epoch=2': the pipeline has no parameter 'Epoch'" in error
    assert "'Epochs'" in error
    assert not (tmp_path / "executions").exists()


def test_missing_cloud_assembly_says_to_synthesize(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c").mkdir()
    flags = [
        "--cdk-out",
        str(tmp_path / "nothing"),
        "--curated",
        str(tmp_path / "c"),
        "--artifacts",
        str(tmp_path / "c"),
    ]
    assert runner.main([*flags, "--work", str(tmp_path / "w")]) == 2
    assert "no manifest.json there; run `cdk synth`" in capsys.readouterr().err


def crashing_training_execution(work: Path, script: str) -> runner.PipelineExecution:
    """A definition whose Train step runs ``script`` through the real toolkit, and a step that needs its model."""
    bucket = work / "s3" / "local-artifacts"
    (bucket / "code").mkdir(parents=True)
    (bucket / "code" / "crash.py").write_text(script, encoding="utf-8")
    code_channel = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://local-artifacts/code/"}}
    train = {
        "Name": "Train",
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": "local", "TrainingInputMode": "File"},
            "InputDataConfig": [{"ChannelName": "code", "DataSource": code_channel}],
            "HyperParameters": {
                "sagemaker_program": '"crash.py"',
                "sagemaker_submit_directory": '"/opt/ml/input/data/code"',
            },
            "OutputDataConfig": {"S3OutputPath": "s3://local-artifacts/models"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        },
    }
    needs_model = {
        "Name": "UsesModel",
        "Type": "Fail",
        "Arguments": {"ErrorMessage": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}},
    }
    store = runner.LocalObjectStore()
    store.add(runner.LocalBucket("local-artifacts", [bucket], bucket))

    def no_functions(arn: str) -> Any:
        raise AssertionError(f"no Lambda step here, asked for {arn}")

    return runner.PipelineExecution(
        pipeline_name="crash-training",
        definition={"Version": "2020-12-01", "Parameters": [], "Steps": [train, needs_model]},
        parameters={},
        execution_id="crash",
        work=work,
        store=store,
        functions=no_functions,
        region="us-east-1",
        reporter=runner.Reporter(io.StringIO(), job_logs=False),
    )


def test_a_crashing_training_script_fails_the_train_step_with_its_exception_and_stops_the_execution(
    tmp_path: Path,
) -> None:
    # The regression: sagemaker-training 5.1 exited 0 after the script crashed when output/ was missing (its failure
    # handling raised, then sys.exit(0) in a finally), and the run reported Train as Succeeded.
    execution = crashing_training_execution(tmp_path, 'raise IndexError("index out of range in self")\n')
    output = execution.reporter.stream
    result = execution.run()
    assert result.status == "Failed"
    assert result.failed_step == "Train"
    assert result.failure_reason.startswith("AlgorithmError: IndexError: index out of range in self (output/failure: ")
    assert "ExecuteUserScriptError" in result.failure_reason
    assert result.failure_reason.endswith("(exit code 1)")
    assert [(s.name, s.status) for s in result.steps] == [("Train", "Failed")]
    status = json.loads(result.status_file.read_text(encoding="utf-8"))
    assert (status["PipelineExecutionStatus"], status["FailedStep"]) == ("Failed", "Train")
    assert status["Steps"][0]["FailureReason"] == result.failure_reason
    assert isinstance(output, io.StringIO)
    text = output.getvalue()
    assert "[2/2] UsesModel (Fail): not run, the execution failed at Train" in text
    assert f"failed at Train: {result.failure_reason}" in text
    assert not (tmp_path / "s3" / "local-artifacts" / "models").exists(), "a failed job uploads no model"


def test_a_script_that_writes_its_own_failure_reason_is_reported_with_it(tmp_path: Path) -> None:
    script = (
        "import os, pathlib, sys\n"
        "pathlib.Path(os.environ['SM_OUTPUT_DIR'], 'failure').write_text('bad training data: no rows')\n"
        "sys.exit(1)\n"
    )
    result = crashing_training_execution(tmp_path, script).run()
    assert (result.status, result.failed_step) == ("Failed", "Train")
    assert result.failure_reason == "AlgorithmError: bad training data: no rows (exit code 1)"


def test_a_job_that_exits_0_without_reporting_success_fails(tmp_path: Path) -> None:
    (tmp_path / "output").mkdir()
    log = "Invoking script with the following command:\n\npython -- train.py\n"
    reason = runner.training_failure(0, tmp_path / "output", log)
    assert reason == (
        "AlgorithmError: the training toolkit exited 0 without reporting success (no output/success, no "
        "output/failure); the job's log ends with: Invoking script with the following command: | python -- train.py "
        "(exit code 0)"
    )
    (tmp_path / "output" / "success").write_text("", encoding="utf-8")
    assert runner.training_failure(0, tmp_path / "output", log) == ""
    # A failure file wins over an exit code of 0.
    (tmp_path / "output" / "failure").write_text("ExitCode 1", encoding="utf-8")
    assert runner.training_failure(0, tmp_path / "output", log) == "AlgorithmError: ExitCode 1 (exit code 0)"


# --------------------------------------------------------------------------------------------------------------------
# The intrinsic resolver
# --------------------------------------------------------------------------------------------------------------------


def assembly(resources: dict[str, Any], **template: Any) -> runner.CloudAssembly:
    data = runner.StackTemplate(
        "data",
        {
            "Resources": {"CuratedBucket": {"Type": "AWS::S3::Bucket"}, "Key": {"Type": "AWS::KMS::Key"}},
            "Outputs": {
                "CuratedName": {"Value": {"Ref": "CuratedBucket"}, "Export": {"Name": "data:Curated"}},
                "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "data:Key"}},
            },
        },
    )
    pipeline = runner.StackTemplate("pipeline", {"Resources": resources, **template})
    return runner.CloudAssembly(Path("cdk.out"), {"data": data, "pipeline": pipeline}, ())


def resolver(resources: dict[str, Any] | None = None, **template: Any) -> runner.IntrinsicResolver:
    return runner.IntrinsicResolver(
        assembly(resources or {}, **template), region="eu-west-1", curated_bucket_name="local-curated"
    )


def test_resolver_maps_buckets_follows_exports_and_computes_joins_and_subs() -> None:
    resolve = resolver({"Role": {"Type": "AWS::IAM::Role"}}, Mappings={"Accounts": {"eu-west-1": {"value": "123"}}})
    value = {
        "Fn::Join": [
            "",
            [
                "s3://",
                {"Fn::ImportValue": "data:Curated"},
                "/x ",
                {"Fn::Sub": "${AWS::Region}-${!Literal}-${AWS::AccountId}"},
                " ",
                {"Fn::FindInMap": ["Accounts", {"Ref": "AWS::Region"}, "value"]},
            ],
        ]
    }
    assert resolve.resolve(value, "pipeline", "Body") == "s3://local-curated/x eu-west-1-${Literal}-000000000000 123"
    key = resolve.resolve({"Fn::ImportValue": "data:Key"}, "pipeline", "Body")
    role = resolve.resolve({"Fn::GetAtt": ["Role", "Arn"]}, "pipeline", "Body")
    assert key == "arn:aws:kms:eu-west-1:000000000000:local/data/Key/Arn"
    assert resolve.placeholders[role] == runner.ResourceReference("pipeline", "Role", "AWS::IAM::Role")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Fn::Base64": "x"}, "pipeline Body.Fn::Join[1]: intrinsic Fn::Base64 is not supported by the local run"),
        ({"Fn::GetStackOutput": {}}, "intrinsic Fn::GetStackOutput is not supported"),
        ({"Fn::ImportValue": "data:Nothing"}, "no stack of cdk.out exports 'data:Nothing'"),
        ({"Ref": "Missing"}, "stack pipeline has no resource 'Missing'"),
        ({"Ref": "AWS::NotificationARNs"}, "pseudo parameter AWS::NotificationARNs has no local value"),
        (
            {"Fn::FindInMap": ["Accounts", "ap-south-2", "value"]},
            "fails at 'ap-south-2'; for another region pass --region",
        ),
    ],
)
def test_resolver_names_what_it_cannot_resolve_and_where(value: Any, message: str) -> None:
    resolve = resolver(Mappings={"Accounts": {"eu-west-1": {"value": "123"}}})
    with pytest.raises(runner.LocalRunError, match=re.escape(message)):
        resolve.resolve({"Fn::Join": ["", ["a", value]]}, "pipeline", "Body")


def test_a_pipeline_without_a_training_name_is_reported_with_the_ones_found() -> None:
    resources = {"P": {"Type": "AWS::SageMaker::Pipeline", "Properties": {"PipelineName": "nlp-dev-batch"}}}
    with pytest.raises(runner.LocalRunError, match=re.escape("it has ['nlp-dev-batch (pipeline)']")):
        runner.find_training_pipeline(resolver(resources), None, None)
    with pytest.raises(
        runner.LocalRunError, match=re.escape("--stack nope: the cloud assembly has ['data', 'pipeline']")
    ):
        runner.find_training_pipeline(resolver(resources), "nope", None)


# --------------------------------------------------------------------------------------------------------------------
# The expression evaluator, parameters and the step plan
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def evaluator() -> runner.Evaluator:
    evaluator = runner.Evaluator({"Threshold": 0.7, "Epochs": 3}, {"PipelineExecutionId": "e1"})
    evaluator.step_properties["Evaluate"] = {"ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation"}]}}
    evaluator.property_files[("Evaluate", "Report")] = runner.PropertyFileValue(
        "Evaluate", "Report", "s3://b/evaluation.json", {"metrics": {"accuracy": {"value": 0.5}}}
    )
    return evaluator


def json_get(path: str, property_file: str = "Report") -> dict[str, Any]:
    return {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.Evaluate.PropertyFiles.{property_file}"}, "Path": path}}


def test_evaluator_joins_gets_and_reads_property_files(evaluator: runner.Evaluator) -> None:
    message = {
        "Std:Join": {
            "On": "",
            "Values": ["acc ", json_get("metrics.accuracy.value"), " < ", {"Get": "Parameters.Threshold"}],
        }
    }
    assert evaluator.evaluate(message, "m") == "acc 0.5 < 0.7"
    assert (
        evaluator.evaluate({"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].OutputName"}, "x")
        == "evaluation"
    )
    accuracy, threshold = json_get("metrics.accuracy.value"), {"Get": "Parameters.Threshold"}
    holds, text = evaluator.condition(
        {"Type": "GreaterThanOrEqualTo", "LeftValue": accuracy, "RightValue": threshold}, "c"
    )
    assert (holds, text) == (False, "GreaterThanOrEqualTo(0.5, 0.7)")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ({"Get": "Parameters.Threshhold"}, "Get Parameters.Threshhold: the pipeline declares no parameter"),
        ({"Get": "Execution.StartTime"}, "unknown execution variable (known: PipelineExecutionId)"),
        ({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, "step 'Train' has not run"),
        ({"Get": "Steps.Evaluate.PropertyFiles.Report"}, "is a property file; read it with Std:JsonGet"),
        (json_get("metrics.f1.value"), "property file Report of step Evaluate (s3://b/evaluation.json): "
                                       "'metrics.f1.value' has no 'f1' (there: accuracy)"),
        (json_get("metrics.accuracy.value", "Other"), "step Evaluate declares no property file 'Other'"),
        ({"Std:Split": {}}, "unknown function Std:Split (known: Std:Join, Std:JsonGet)"),
        ({"Std:Join": {"On": "", "Values": [{"a": 1}]}}, "Std:Join cannot join {'a': 1}"),
        ({"Get": "Parameters.Epochs", "Extra": 1}, "a Get must be the only key"),
    ],
)  # fmt: skip
def test_evaluator_failures_name_the_expression(evaluator: runner.Evaluator, expression: Any, message: str) -> None:
    with pytest.raises(runner.EvaluationError, match=re.escape(message)):
        evaluator.evaluate({"Arg": expression}, "Step")


def test_conditions_reject_unknown_types_and_mixed_comparisons(evaluator: runner.Evaluator) -> None:
    with pytest.raises(runner.EvaluationError, match="condition type 'Between' is not one of Equals, GreaterThan"):
        evaluator.condition({"Type": "Between", "LeftValue": 1, "RightValue": 2}, "c")
    with pytest.raises(runner.EvaluationError, match=re.escape("GreaterThan('0.9', 0.7) compares str with float")):
        evaluator.condition({"Type": "GreaterThan", "LeftValue": "0.9", "RightValue": 0.7}, "c")


def test_parameter_overrides_are_typed_like_the_declarations() -> None:
    declared = [
        {"Name": "Epochs", "Type": "Integer", "DefaultValue": 3},
        {"Name": "LearningRate", "Type": "Float", "DefaultValue": 5e-05},
        {"Name": "InputPrefix", "Type": "String", "DefaultValue": "latest"},
    ]
    assert runner.parse_parameter_overrides(declared, ["Epochs=1", "LearningRate=0.1"]) == {
        "Epochs": 1,
        "LearningRate": 0.1,
        "InputPrefix": "latest",
    }
    with pytest.raises(runner.LocalRunError, match="Epochs is a parameter of type Integer; give a whole number"):
        runner.parse_parameter_overrides(declared, ["Epochs=two"])
    with pytest.raises(runner.LocalRunError, match="--parameter Epochs is given twice"):
        runner.parse_parameter_overrides(declared, ["Epochs=1", "Epochs=2"])
    with pytest.raises(runner.LocalRunError, match="write it as Name=Value"):
        runner.parse_parameter_overrides(declared, ["Epochs"])


def test_plan_orders_by_data_dependencies_and_rejects_cycles_and_unknown_step_types() -> None:
    branch = [{"Name": "Ok", "Type": "Fail", "Arguments": {}}]
    steps = [
        {"Name": "B", "Type": "Processing", "Arguments": {"X": {"Get": "Steps.A.ModelArtifacts.S3ModelArtifacts"}}},
        {"Name": "A", "Type": "Training", "Arguments": {}},
        {
            "Name": "Gate",
            "Type": "Condition",
            "Arguments": {"Conditions": [], "IfSteps": branch, "ElseSteps": []},
            "DependsOn": ["B"],
        },
    ]
    plan = runner.plan_steps(steps)
    assert [s.name for s in plan] == ["A", "B", "Gate", "Ok"]
    assert plan[3].branch_of == ("Gate", True)
    cyclic = [{"Name": "A", "Type": "Fail", "DependsOn": ["B"]}, {"Name": "B", "Type": "Fail", "DependsOn": ["A"]}]
    with pytest.raises(runner.LocalRunError, match="steps A, B depend on each other in a cycle"):
        runner.plan_steps(cyclic)
    with pytest.raises(runner.LocalRunError, match="step A depends on Z, which the definition does not have"):
        runner.plan_steps([{"Name": "A", "Type": "Fail", "DependsOn": ["Z"]}])
    with pytest.raises(runner.LocalRunError, match="step 'Predict' has type 'Transform'; the local run executes"):
        runner.plan_steps([{"Name": "Predict", "Type": "Transform", "Arguments": {}}])


# --------------------------------------------------------------------------------------------------------------------
# Local buckets and container paths
# --------------------------------------------------------------------------------------------------------------------


def test_store_lists_like_s3_and_names_a_missing_channel(tmp_path: Path) -> None:
    store = runner.LocalObjectStore()
    store.add(runner.LocalBucket("local-curated", [tmp_path / "written", tmp_path / "given"], tmp_path / "written"))
    (tmp_path / "given" / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "given" / "runs" / "r1" / "labels.json").write_text("[]")
    (tmp_path / "given" / "runs" / "r1" / "labels.json.bak").write_text("[]")
    assert store.has_prefix("local-curated", "runs/r1/labels.json")
    assert not store.has_prefix("local-curated", "runs/r1/train/")
    copied = store.download("s3://local-curated/runs/r1/labels.json", tmp_path / "channel", "channel 'labels'")
    assert sorted(p.name for p in copied) == ["labels.json", "labels.json.bak"]
    with pytest.raises(
        runner.StepFailure, match=r"ClientError: channel 'train': no objects under s3://local-curated/runs/r1/train/"
    ):
        store.download("s3://local-curated/runs/r1/train/", tmp_path / "train", "channel 'train'")
    with pytest.raises(
        runner.StepFailure, match=r"bucket 'nlp-dev-curated' is not one of this run's buckets .* --curated-bucket-name"
    ):
        store.read_text("nlp-dev-curated", "datasets/default/_LATEST")
    # Writes land in the run's own layer and shadow the given folder.
    (tmp_path / "new.json").write_text("{}")
    store.put("s3://local-curated/runs/r1/labels.json", tmp_path / "new.json")
    assert store.read_text("local-curated", "runs/r1/labels.json") == "{}"
    assert (tmp_path / "given" / "runs" / "r1" / "labels.json").read_text() == "[]"


def test_container_paths_are_rebased_and_nothing_else(tmp_path: Path) -> None:
    script = "tar -xzf /opt/ml/processing/input/code/*.gz -C /tmp/code; exec python3 /tmp/code/evaluate.py"
    assert runner.rebase_container_paths(script, tmp_path) == (
        f"tar -xzf {tmp_path}/opt/ml/processing/input/code/*.gz -C {tmp_path}/tmp/code; "
        f"exec python3 {tmp_path}/tmp/code/evaluate.py"
    )
    for untouched in ("s3://bucket/tmp/x", "/opt/mlflow", "/var/tmp/x", "train.py"):
        assert runner.rebase_container_paths(untouched, tmp_path) == untouched


def test_a_job_path_outside_the_container_folders_is_refused(tmp_path: Path) -> None:
    assert runner.container_path("/opt/ml/processing/test", tmp_path, "x") == tmp_path / "opt/ml/processing/test"
    with pytest.raises(runner.StepFailure, match=re.escape("input 'test' LocalPath '/data/test' is not under /opt/ml")):
        runner.container_path("/data/test", tmp_path, "input 'test' LocalPath")
