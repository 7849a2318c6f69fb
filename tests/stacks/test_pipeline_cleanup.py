"""Nothing left behind in dev: a custom resource empties what the pipelines made at run time before they are deleted.

Dev's Pipeline stack holds a ``Custom::PipelineCleanup`` that CloudFormation deletes before the pipelines, the model
package group and the cleanup's own permissions; prod has none and retains the group.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from config import load_config

CLEANUP_TYPE = "Custom::PipelineCleanup"


def resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return dict(template.find_resources(resource_type))


def the_cleanup(template: Template) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = resources(template, CLEANUP_TYPE).items()
    return logical_id, resource


def cleanup_function(template: Template) -> tuple[str, dict[str, Any]]:
    _, cleanup = the_cleanup(template)
    function_id = cleanup["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    return function_id, resources(template, "AWS::Lambda::Function")[function_id]


def cleanup_statements(template: Template) -> list[dict[str, Any]]:
    _, function = cleanup_function(template)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    (policy,) = [
        p
        for p in resources(template, "AWS::IAM::ManagedPolicy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def arn_text(value: Any) -> str:
    """An ARN as written in the template, with its pseudo parameters as <Name>."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    parts = value["Fn::Join"][1]
    return "".join(arn_text(part) for part in parts)


def test_only_stages_that_destroy_their_data_have_the_cleanup(stage: Any) -> None:
    config = load_config(stage.app.node.try_get_context("stage"))
    template = stage.template("pipeline")
    assert len(resources(template, CLEANUP_TYPE)) == (0 if config.data.retain_on_delete else 1)
    for part, other in stage.templates.items():
        if part != "pipeline":
            assert resources(other, CLEANUP_TYPE) == {}, part


def test_dev_cleanup_is_deleted_before_the_pipelines_the_group_and_its_permissions(dev: Any) -> None:
    config = load_config("dev")
    template = dev.template("pipeline")
    _, cleanup = the_cleanup(template)
    pipelines = resources(template, "AWS::SageMaker::Pipeline")
    (group_id,) = resources(template, "AWS::SageMaker::ModelPackageGroup")
    assert len(pipelines) == 2
    policy_ids = [
        lid
        for lid, p in resources(template, "AWS::IAM::ManagedPolicy").items()
        if p["Properties"]["PolicyDocument"]["Statement"] == cleanup_statements(template)
    ]
    # DependsOn makes CloudFormation create the resource after these and delete it before them.
    assert set(cleanup["DependsOn"]) == {*pipelines, group_id, *policy_ids}
    assert len(policy_ids) == 1
    assert cleanup["DeletionPolicy"] == "Delete"
    properties = cleanup["Properties"]
    assert properties["PipelineNames"] == [config.training_pipeline_name, config.batch_inference_pipeline_name]
    assert sorted(properties["PipelineNames"]) == sorted(p["Properties"]["PipelineName"] for p in pipelines.values())
    assert properties["ModelPackageGroupName"] == config.model_package_group_name
    # The stage's own streams in the groups SageMaker shares across the account, one entry per shared group.
    assert properties["LogStreams"] == {
        "StreamNamePrefix": f"{config.prefix}-",
        "LogGroups": [
            {"LogGroupName": "/aws/sagemaker/NotebookInstances"},
            {"LogGroupName": "/aws/sagemaker/ProcessingJobs", "PipelineStepJob": "ProcessingJob"},
            {"LogGroupName": "/aws/sagemaker/TrainingJobs", "PipelineStepJob": "TrainingJob"},
            {"LogGroupName": "/aws/sagemaker/TransformJobs", "PipelineStepJob": "TransformJob"},
        ],
    }


def test_cloudformation_stops_waiting_only_after_the_function_has_timed_out(dev: Any) -> None:
    template = dev.template("pipeline")
    _, cleanup = the_cleanup(template)
    _, function = cleanup_function(template)
    timeout = function["Properties"]["Timeout"]
    assert 600 <= timeout <= 900  # stopping a training job takes minutes; Lambda allows at most 15
    assert timeout < int(cleanup["Properties"]["ServiceTimeout"]) < 3600


def test_cleanup_function_runs_in_the_isolated_vpc_with_encrypted_logs_kept_per_config(dev: Any) -> None:
    config = load_config("dev")
    template = dev.template("pipeline")
    function_id, function = cleanup_function(template)
    props = function["Properties"]
    assert props["Runtime"] == "python3.14"
    assert props["Handler"] == "handler.handler"
    assert "Environment" not in props  # the names travel as resource properties
    assert "IsolatedSubnet" in json.dumps(props["VpcConfig"]["SubnetIds"])
    assert "WorkloadSecurityGroup" in json.dumps(props["VpcConfig"]["SecurityGroupIds"])
    log_group = resources(template, "AWS::Logs::LogGroup")[props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert "PlatformKeyArn" in json.dumps(log_group["Properties"]["KmsKeyId"])
    assert log_group["Properties"]["RetentionInDays"] == config.log_retention_days
    assert log_group["DeletionPolicy"] == "Delete"
    # A VPC function creates its network interfaces with the role's policy, so it waits for that policy.
    policy_ids = [lid for lid in function["DependsOn"] if lid in resources(template, "AWS::IAM::ManagedPolicy")]
    assert len(policy_ids) == 1, function_id


def test_the_vpc_has_the_endpoints_the_function_needs(dev: Any) -> None:
    # SageMaker and CloudWatch Logs through their interface endpoints, CloudFormation's response URL (S3) through the
    # gateway endpoint.
    endpoints = resources(dev.template("network"), "AWS::EC2::VPCEndpoint").values()
    services = json.dumps([e["Properties"]["ServiceName"] for e in endpoints])
    assert "sagemaker.api" in services
    assert ".logs" in services
    assert any(e["Properties"].get("VpcEndpointType") == "Gateway" and ".s3" in json.dumps(e) for e in endpoints)


def test_cleanup_role_may_only_list_and_stop_executions_and_delete_the_groups_packages(dev: Any) -> None:
    config = load_config("dev")
    account = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
    pipelines = (config.training_pipeline_name, config.batch_inference_pipeline_name)
    granted: dict[str, set[str]] = {}
    for statement in cleanup_statements(dev.template("pipeline")):
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            granted.setdefault(action, set()).update(map(arn_text, targets))
    sagemaker = {action: arns for action, arns in granted.items() if action.startswith("sagemaker:")}
    assert sagemaker == {
        "sagemaker:ListPipelineExecutions": {f"{account}:pipeline/{name}" for name in pipelines},
        "sagemaker:StopPipelineExecution": {f"{account}:pipeline/{name}/execution/*" for name in pipelines},
        "sagemaker:ListPipelineExecutionSteps": {f"{account}:pipeline/{name}/execution/*" for name in pipelines},
        "sagemaker:DeleteModelPackage": {f"{account}:model-package/{config.model_package_group_name}/*"},
        "sagemaker:ListModelPackages": {"*"},  # no resource type
    }
    others = {action for action in granted if not action.startswith("sagemaker:")}
    assert others == {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
        "logs:DeleteLogStream",
    }
    _, function = cleanup_function(dev.template("pipeline"))
    own_log_group = f"<{function['Properties']['LoggingConfig']['LogGroup']['Ref']}.Arn>"
    assert granted["logs:CreateLogStream"] == granted["logs:PutLogEvents"] == {own_log_group}
    # The shared SageMaker groups: describe them, delete only streams named after the stage's notebooks and jobs
    # (<prefix>-...) or, in job groups, after pipeline jobs (pipelines-...: the handler deletes only its own ones).
    logs = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker"
    jobs = ("TrainingJobs", "ProcessingJobs", "TransformJobs")
    assert granted["logs:DescribeLogStreams"] == {f"{logs}/{group}:*" for group in (*jobs, "NotebookInstances")}
    assert granted["logs:DeleteLogStream"] == {
        *(f"{logs}/{group}:log-stream:{config.prefix}-*" for group in (*jobs, "NotebookInstances")),
        *(f"{logs}/{group}:log-stream:pipelines-*" for group in jobs),
    }


def test_rules_that_start_executions_are_deleted_before_the_cleanup_runs(dev: Any) -> None:
    template = dev.template("pipeline")
    cleanup_id, _ = the_cleanup(template)
    starters = {
        lid: rule
        for lid, rule in resources(template, "AWS::Events::Rule").items()
        if any(":pipeline/" in json.dumps(target.get("Arn")) for target in rule["Properties"].get("Targets", []))
    }
    assert starters
    for logical_id, rule in starters.items():
        assert cleanup_id in rule.get("DependsOn", []), logical_id


def test_prod_has_no_cleanup_function_and_retains_the_group(prod: Any) -> None:
    template = prod.template("pipeline")
    assert resources(template, CLEANUP_TYPE) == {}
    handlers = [f["Properties"]["Description"] for f in resources(template, "AWS::Lambda::Function").values()]
    assert handlers == ["Training pipeline step: which data preparation run to train on"]
    (group,) = resources(template, "AWS::SageMaker::ModelPackageGroup").values()
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_the_function_code_is_the_handler_alone(dev: Any) -> None:
    _, function = cleanup_function(dev.template("pipeline"))
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    asset_dir = Path(dev.assembly_dir) / f"asset.{asset_hash}"
    assert sorted(p.name for p in asset_dir.rglob("*")) == ["handler.py"]
    assert "import aws_cdk" not in (asset_dir / "handler.py").read_text()


def test_the_cleanup_refuses_a_prefix_other_stages_could_match_and_groups_a_stack_owns() -> None:
    import aws_cdk as cdk
    import pytest

    from components.pipeline_cleanup import PipelineCleanup
    from components.run_time_logs import GLUE_JOB_ERROR, SHARED_LOG_GROUPS

    def build(prefix: str, groups: Any) -> None:
        stack = cdk.Stack(cdk.App(), "Small")
        # The arguments are checked before any other is used.
        PipelineCleanup(
            stack, "Cleanup", pipelines=[], registry=None, placement=None,  # type: ignore[arg-type]
            shared_log_groups=groups, stream_name_prefix=prefix, log_retention_days=14,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )  # fmt: skip

    with pytest.raises(ValueError, match=r"stream_name_prefix='nlp-dev' must be the stage's '<prefix>-'"):
        build("nlp-dev", SHARED_LOG_GROUPS)
    with pytest.raises(ValueError, match=r"belong to a stack"):
        build("nlp-dev-", (*SHARED_LOG_GROUPS, GLUE_JOB_ERROR))
