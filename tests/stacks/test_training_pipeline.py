"""The training and batch inference pipelines, read back out of the synthesized Pipeline stack of each stage.

The definitions are parsed from ``PipelineDefinitionBody`` (CDK tokens become ``<Token>`` placeholders) and checked
the way SageMaker would run them: unique names, every ``Get`` resolves, property files exist, VPC, isolation, KMS,
spot limits, checkpoints keyed by RunId, JSON-string hyperparameters, torchrun only where it applies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from config import load_config
from config.instance_storage import volume_kms_key_allowed


def _flatten(value: Any) -> str:
    """The text of a ``Fn::Join`` with every token replaced by a placeholder naming it."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_flatten(part) for part in parts)
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        return f"<Import:{value['Fn::ImportValue'].split(':')[-1]}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<GetAtt:{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict) and "Ref" in value:
        return f"<Ref:{value['Ref']}>"
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        return value["Fn::Sub"]
    return f"<{next(iter(value))}>"


def pipelines(template: Template) -> dict[str, dict[str, Any]]:
    """Pipeline name to its parsed definition."""
    found = {}
    for resource in template.find_resources("AWS::SageMaker::Pipeline").values():
        body = resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
        found[resource["Properties"]["PipelineName"]] = json.loads(_flatten(body))
    return found


def all_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from all_steps(step["Arguments"]["IfSteps"])
            yield from all_steps(step["Arguments"]["ElseSteps"])


def gets(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            yield value["Get"]
        for item in value.values():
            yield from gets(item)
    elif isinstance(value, list):
        for item in value:
            yield from gets(item)


def json_gets(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if "Std:JsonGet" in value:
            yield value["Std:JsonGet"]
        for item in value.values():
            yield from json_gets(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_gets(item)


def step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in all_steps(definition["Steps"]) if s["Name"] == name)


@pytest.fixture(scope="module")
def definitions(stage: Any) -> dict[str, dict[str, Any]]:
    return pipelines(stage.template("pipeline"))


def names(stage: Any) -> tuple[str, str]:
    config = load_config(stage.app.node.try_get_context("stage"))
    return config.training_pipeline_name, config.batch_inference_pipeline_name


def test_both_pipelines_exist_under_their_names(stage: Any, definitions: dict[str, Any]) -> None:
    assert set(definitions) == set(names(stage))
    for definition in definitions.values():
        assert definition["Version"] == "2020-12-01"
        assert "PipelineExperimentConfig" not in definition


def test_step_names_are_unique_and_every_get_resolves(definitions: dict[str, Any]) -> None:
    for definition in definitions.values():
        steps = list(all_steps(definition["Steps"]))
        step_names = [s["Name"] for s in steps]
        assert len(step_names) == len(set(step_names)), step_names
        parameters = {p["Name"] for p in definition["Parameters"]}
        for reference in gets(definition["Steps"]):
            kind, _, rest = reference.partition(".")
            if kind == "Parameters":
                assert rest in parameters, reference
            elif kind == "Steps":
                assert rest.split(".")[0] in step_names, reference
            else:
                assert reference == "Execution.PipelineExecutionId", reference


def test_every_json_get_reads_a_property_file_its_step_declares(definitions: dict[str, Any]) -> None:
    declared = {
        f"Steps.{s['Name']}.PropertyFiles.{p['PropertyFileName']}"
        for definition in definitions.values()
        for s in all_steps(definition["Steps"])
        for p in s.get("PropertyFiles", [])
    }
    found = [g["PropertyFile"]["Get"] for d in definitions.values() for g in json_gets(d["Steps"])]
    assert found, "the accuracy gate reads the evaluation report"
    assert set(found) <= declared


def test_training_runs_in_the_vpc_isolated_encrypted_on_spot_with_checkpoints_per_run(
    stage: Any, definitions: dict[str, Any]
) -> None:
    config = load_config(stage.app.node.try_get_context("stage")).training
    train = step(definitions[names(stage)[0]], "Train")["Arguments"]
    assert train["EnableNetworkIsolation"] is True
    assert train["EnableInterContainerTrafficEncryption"] is True
    assert train["VpcConfig"]["Subnets"] and train["VpcConfig"]["SecurityGroupIds"]
    assert train["OutputDataConfig"]["KmsKeyId"].startswith("<Import:")
    assert train["EnableManagedSpotTraining"] is config.use_spot is True
    stopping = train["StoppingCondition"]
    assert stopping["MaxWaitTimeInSeconds"] >= stopping["MaxRuntimeInSeconds"] == config.max_runtime_seconds
    checkpoint = train["CheckpointConfig"]["S3Uri"]["Std:Join"]
    assert {"Get": "Steps.ResolveInputs.OutputParameters['RunId']"} in checkpoint["Values"]
    assert train["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert ("VolumeKmsKeyId" in train["ResourceConfig"]) is volume_kms_key_allowed(config.instance_type)
    assert {c["ChannelName"] for c in train["InputDataConfig"]} == {
        "code",
        "train",
        "validation",
        "labels",
        "pretrained",
    }
    metric_names = {m["Name"] for m in train["AlgorithmSpecification"]["MetricDefinitions"]}
    assert {"train:loss", "validation:accuracy"} <= metric_names
    # A metric of a split the job has no channel for (the test split is the Evaluate step's) never gets a value.
    channels = {c["ChannelName"] for c in train["InputDataConfig"]}
    assert {name.split(":")[0] for name in metric_names} <= channels


def test_metric_definitions_match_what_train_py_logs() -> None:
    from components.training_pipeline import METRIC_DEFINITIONS

    lines = {
        "train:loss": "step 10/40 | loss 0.6931 | lr 5e-05 | 120.0 samples/s | 900 tokens/s | eta 1m",
        "train:samples_per_second": "step 10/40 | loss 0.6931 | lr 5e-05 | 120.0 samples/s | 900 tokens/s | eta 1m",
        "validation:accuracy": "validation: accuracy 0.8125, macro F1 0.8000",
        "validation:macro_f1": "validation: accuracy 0.8125, macro F1 0.8000",
    }
    values = {"train:loss": "0.6931", "train:samples_per_second": "120.0", "validation:accuracy": "0.8125",
              "validation:macro_f1": "0.8000"}  # fmt: skip
    for metric in METRIC_DEFINITIONS:
        match = re.search(metric["Regex"], lines[metric["Name"]])
        assert match is not None and match[1] == values[metric["Name"]], metric


def test_hyperparameters_are_json_strings_and_torchrun_only_where_it_applies(
    stage: Any, definitions: dict[str, Any]
) -> None:
    config = load_config(stage.app.node.try_get_context("stage")).training
    hyperparameters = step(definitions[names(stage)[0]], "Train")["Arguments"]["HyperParameters"]
    for key, value in hyperparameters.items():
        if isinstance(value, str):
            json.loads(value)
        else:
            assert set(value) == {"Std:Join"} and value["Std:Join"]["On"] == "", key
    assert json.loads(hyperparameters["sagemaker_program"]) == "train.py"
    # The code channel holds the archive under its object's name (the asset hash): the directory must name it.
    (code,) = [c for c in step(definitions[names(stage)[0]], "Train")["Arguments"]["InputDataConfig"]
               if c["ChannelName"] == "code"]  # fmt: skip
    object_name = code["DataSource"]["S3DataSource"]["S3Uri"].rsplit("/", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{64}\.gz", object_name)
    assert json.loads(hyperparameters["sagemaker_submit_directory"]) == f"/opt/ml/input/data/code/{object_name}"
    assert ("sagemaker_torch_distributed_enabled" in hyperparameters) is config.distributed
    assert config.distributed is (stage.app.node.try_get_context("stage") == "prod")  # 1x A10G dev, 4x A10G prod


def test_evaluation_writes_the_report_the_gate_reads(stage: Any, definitions: dict[str, Any]) -> None:
    config = load_config(stage.app.node.try_get_context("stage")).training
    definition = definitions[names(stage)[0]]
    evaluate = step(definition, "Evaluate")
    arguments = evaluate["Arguments"]
    assert arguments["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert arguments["NetworkConfig"]["VpcConfig"]["Subnets"]
    assert arguments["ProcessingOutputConfig"]["KmsKeyId"].startswith("<Import:")
    cluster = arguments["ProcessingResources"]["ClusterConfig"]
    assert ("VolumeKmsKeyId" in cluster) is volume_kms_key_allowed(config.processing_instance_type)
    assert evaluate["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]
    gate = step(definition, "AccuracyGate")["Arguments"]
    (condition,) = gate["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "metrics.accuracy.value"
    assert condition["RightValue"] == {"Get": "Parameters.AccuracyThreshold"}
    assert [s["Type"] for s in gate["IfSteps"]] == ["RegisterModel"]
    (fail,) = gate["ElseSteps"]
    message = fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert condition["LeftValue"] in message and {"Get": "Parameters.AccuracyThreshold"} in message


def test_registered_models_wait_for_approval_with_the_inference_image_and_report(
    stage: Any, definitions: dict[str, Any]
) -> None:
    config = load_config(stage.app.node.try_get_context("stage"))
    definition = definitions[names(stage)[0]]
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert defaults["ModelApprovalStatus"] == "PendingManualApproval"
    assert defaults["AccuracyThreshold"] == config.training.accuracy_threshold
    assert defaults["InputPrefix"] == "latest"
    register = step(definition, "RegisterModel")["Arguments"]
    assert register["ModelPackageGroupName"] == config.model_package_group_name
    spec = register["InferenceSpecification"]
    (container,) = spec["Containers"]
    tag = (
        config.training.images.inference_gpu_tag
        if config.serving.instance_type
        else (config.training.images.inference_cpu_tag)
    )
    assert container["Image"].endswith(f"/huggingface-pytorch-inference:{tag}")
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert "application/jsonlines" in spec["SupportedContentTypes"]
    assert spec["SupportedRealtimeInferenceInstanceTypes"] == [
        config.serving.instance_type or config.training.batch_instance_type
    ]
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert "evaluation.json" in statistics["S3Uri"]["Std:Join"]["Values"]


def test_images_come_from_the_region_facts_mapping(stage: Any, definitions: dict[str, Any]) -> None:
    mapping = stage.template("pipeline").to_json()["Mappings"]["DlcRepositoryAccountMap"]
    assert mapping["us-east-1"] == {"value": "763104351884"}
    assert mapping["ap-east-1"]["value"] != "763104351884"
    image = step(definitions[names(stage)[0]], "Train")["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    expected = (
        r"<Fn::FindInMap>\.dkr\.ecr\.<Ref:AWS::Region>\.<Ref:AWS::URLSuffix>/"
        r"huggingface-pytorch-training:2\.9\.0-transformers5\.3\.0-gpu-py312-cu130-ubuntu22\.04"
    )
    assert re.fullmatch(expected, image), image


def test_batch_inference_splits_lines_with_kms_in_the_vpc_and_isolated(stage: Any, definitions: dict[str, Any]) -> None:
    definition = definitions[names(stage)[1]]
    assert {p["Name"] for p in definition["Parameters"]} >= {"ModelPackageArn", "InputPrefix"}
    model = step(definition, "CreateModel")["Arguments"]
    assert model["EnableNetworkIsolation"] is True and model["VpcConfig"]["Subnets"]
    assert model["Containers"][0]["ModelPackageName"] == {"Get": "Parameters.ModelPackageArn"}
    transform = step(definition, "Predict")["Arguments"]
    assert transform["ModelName"] == {"Get": "Steps.CreateModel.ModelName"}
    assert transform["TransformInput"]["SplitType"] == "Line"
    assert transform["TransformInput"]["ContentType"] == "application/jsonlines"
    assert transform["BatchStrategy"] == "MultiRecord"
    assert transform["TransformOutput"]["AssembleWith"] == "Line"
    assert transform["TransformOutput"]["KmsKeyId"].startswith("<Import:")
    assert "batch-inference/predictions" in "".join(
        map(str, transform["TransformOutput"]["S3OutputPath"]["Std:Join"]["Values"])
    )


def _policy_statements(template: Template, logical_id_start: str) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::ManagedPolicy")
    (policy,) = [p for lid, p in policies.items() if lid.startswith(logical_id_start)]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_pipeline_role_creates_jobs_only_with_the_platform_settings(stage: Any) -> None:
    config = load_config(stage.app.node.try_get_context("stage")).training
    statements = _policy_statements(stage.template("pipeline"), "TrainingPipelinePipelineRolePermissions")
    by_action = {s["Action"]: s for s in statements if isinstance(s["Action"], str)}
    for action, instance_type in (
        ("sagemaker:CreateTrainingJob", config.instance_type),
        ("sagemaker:CreateProcessingJob", config.processing_instance_type),
    ):
        conditions = by_action[action]["Condition"]
        assert conditions["Bool"] == {"sagemaker:NetworkIsolation": "true"}
        assert conditions["Null"] == dict.fromkeys(
            ("sagemaker:InstanceTypes", "sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds"), "false"
        )
        assert conditions["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"] == [instance_type]
        assert "sagemaker:OutputKmsKey" in conditions["StringEquals"]
        assert ("sagemaker:VolumeKmsKey" in conditions["StringEquals"]) is volume_kms_key_allowed(instance_type)
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert len(pass_role["Resource"]) == 2
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_job_roles_create_network_interfaces_only_in_the_platform_subnets(stage: Any) -> None:
    for role in ("TrainingPipelineTrainingRole", "TrainingPipelineEvaluationRole", "BatchInferencePipelineModelRole"):
        statements = _policy_statements(stage.template("pipeline"), f"{role}Permissions")
        creates = [s for s in statements if s["Action"] == "ec2:CreateNetworkInterface"]
        assert creates, role
        for statement in creates:
            resources = json.dumps(statement["Resource"])
            if "network-interface" in resources:
                assert "ec2:Subnet" in statement["Condition"]["ArnEquals"], role
            else:
                assert "subnet/" in resources and "security-group/" in resources, role
        ecr = [s for s in statements if s["Action"] == ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                                                          "ecr:GetDownloadUrlForLayer"]]  # fmt: skip
        assert len(ecr) == 1 and "huggingface-pytorch-" in json.dumps(ecr[0]["Resource"]), role


def test_model_package_group_is_retained_in_prod_only(stage: Any) -> None:
    config = load_config(stage.app.node.try_get_context("stage"))
    template = stage.template("pipeline")
    template.has_resource(
        "AWS::SageMaker::ModelPackageGroup",
        {
            "Properties": {"ModelPackageGroupName": config.model_package_group_name},
            "DeletionPolicy": "Retain" if config.data.retain_on_delete else "Delete",
        },
    )


def test_a_succeeded_glue_run_starts_training_on_that_run(stage: Any) -> None:
    config = load_config(stage.app.node.try_get_context("stage"))
    (glue_job,) = stage.template("pipeline").find_resources("AWS::Glue::Job")
    stage.template("pipeline").has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {
                    "source": ["aws.glue"],
                    "detail": {"jobName": [{"Ref": glue_job}], "state": ["SUCCEEDED"]},
                }
            ),
            "Targets": [
                Match.object_like(
                    {
                        "SageMakerPipelineParameters": {
                            "PipelineParameterList": [{"Name": "DataPreparationRunId", "Value": "$.detail.jobRunId"}]
                        }
                    }
                )
            ],
        },
    )
    schedules = stage.template("pipeline").find_resources(
        "AWS::Events::Rule", {"Properties": {"ScheduleExpression": Match.any_value()}}
    )
    assert len(schedules) == (0 if config.training.schedule is None else 1)


def test_failures_and_models_waiting_for_approval_reach_an_encrypted_topic(stage: Any) -> None:
    template = stage.template("pipeline")
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    detail_types = [
        rule["Properties"]["EventPattern"].get("detail-type", [None])[0]
        for rule in template.find_resources("AWS::Events::Rule").values()
        if "EventPattern" in rule["Properties"]
    ]
    assert "SageMaker Model Building Pipeline Execution Status Change" in detail_types
    assert "SageMaker Model Package State Change" in detail_types


def test_the_code_archives_are_deterministic_and_hold_no_tests_or_caches(dev: Any) -> None:
    import tarfile

    archives = sorted(dev.assembly_dir.glob("asset.*.tar.gz"))
    contents = {}
    for archive in archives:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            assert all(m.mtime == 0 and m.uid == 0 for m in members), archive
            contents[archive.name] = [m.name for m in members]
    assert sorted(contents.values()) == [
        ["README.md", "evaluate.py", "inference.py", "nlp_data.py", "train.py"],
        ["evaluate.py", "nlp_data.py"],
    ]
