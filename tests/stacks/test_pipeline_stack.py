"""The Pipeline stack's data preparation job: Glue 5.0, encrypted, in the VPC, with a role scoped to its buckets."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from components.data_preparation_job import CURATED_PREFIX, DATASETS_PREFIX, EXAMPLES_PREFIX, RAW_PREFIX
from config import load_config


def of_type(template: Any, resource_type: str) -> dict[str, Any]:
    return {k: v for k, v in template.to_json()["Resources"].items() if v["Type"] == resource_type}


def of_glue_job(template: Any, resource_type: str) -> dict[str, Any]:
    """Resources of the data preparation job (the stack also holds the SageMaker pipelines)."""
    return {k: v for k, v in of_type(template, resource_type).items() if k.startswith("DataPreparation")}


def glue_job(stage: Any) -> dict[str, Any]:
    (job,) = of_type(stage.template("pipeline"), "AWS::Glue::Job").values()
    return dict(job["Properties"])


def test_job_runs_the_shipped_script_on_glue_5(stage: Any) -> None:
    job = glue_job(stage)
    assert job["GlueVersion"] == "5.0"
    assert job["Command"]["Name"] == "glueetl"
    assert job["Command"]["PythonVersion"] == "3"
    assert job["Command"]["ScriptLocation"]["Fn::Sub"].startswith("s3://cdk-")
    assert job["Command"]["ScriptLocation"]["Fn::Sub"].endswith(".py")
    assert job["DefaultArguments"]["--extra-py-files"]["Fn::Sub"].endswith(".py")
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}


def test_job_capacity_comes_from_the_stage_config(dev: Any, prod: Any) -> None:
    for stage in (dev, prod):
        settings = load_config(stage.platform.data.node.try_get_context("stage")).data_preparation
        job = glue_job(stage)
        assert (job["WorkerType"], job["NumberOfWorkers"], job["Timeout"], job["MaxRetries"]) == (
            settings.worker_type,
            settings.number_of_workers,
            settings.timeout_minutes,
            settings.max_retries,
        )
    assert glue_job(dev)["NumberOfWorkers"] != glue_job(prod)["NumberOfWorkers"]


def test_security_configuration_encrypts_s3_logs_and_bookmarks_with_the_platform_key(stage: Any) -> None:
    template = stage.template("pipeline")
    (config,) = of_type(template, "AWS::Glue::SecurityConfiguration").values()
    encryption = config["Properties"]["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    for key_arn in (
        encryption["S3Encryptions"][0]["KmsKeyArn"],
        encryption["CloudWatchEncryption"]["KmsKeyArn"],
        encryption["JobBookmarksEncryption"]["KmsKeyArn"],
    ):
        assert "PlatformKeyArn" in json.dumps(key_arn)
    (config_id,) = of_type(template, "AWS::Glue::SecurityConfiguration")
    assert glue_job(stage)["SecurityConfiguration"] == {"Ref": config_id}


def test_job_runs_in_the_isolated_subnet_with_the_workload_security_group(stage: Any) -> None:
    template = stage.template("pipeline")
    (connection_id, connection), *_ = of_type(template, "AWS::Glue::Connection").items()
    props = connection["Properties"]["ConnectionInput"]
    assert props["ConnectionType"] == "NETWORK"
    requirements = props["PhysicalConnectionRequirements"]
    assert "IsolatedSubnet" in json.dumps(requirements["SubnetId"])
    assert "WorkloadSecurityGroup" in json.dumps(requirements["SecurityGroupIdList"])
    assert glue_job(stage)["Connections"] == {"Connections": [{"Ref": connection_id}]}


def test_glue_5_logs_go_to_encrypted_log_groups_created_by_the_stack(dev: Any, prod: Any) -> None:
    """Glue 5.0 writes <--custom-logGroup-prefix>/<security configuration>-role/<role>/{error,output} when the
    security configuration encrypts CloudWatch logs; the stack creates exactly those groups, so they have the
    platform key, the configured retention and the stage's deletion policy (the 4.0 continuous-log arguments are
    ignored by 5.0 and would leave Glue's own unmanaged groups behind)."""
    for stage, deletion in ((dev, "Delete"), (prod, "Retain")):
        config = load_config(stage.app.node.try_get_context("stage"))
        template = stage.template("pipeline")
        arguments = glue_job(stage)["DefaultArguments"]
        prefix = f"/aws-glue/jobs/{config.prefix}-prepare-dataset"
        assert arguments["--custom-logGroup-prefix"] == prefix
        assert prefix == f"/aws-glue/jobs/{glue_job(stage)['Name']}"  # found from the job's name
        for glue_4_only in (
            "--enable-continuous-cloudwatch-log",
            "--continuous-log-logGroup",
            "--enable-continuous-log-filter",
        ):
            assert glue_4_only not in arguments
        (security_configuration,) = of_type(template, "AWS::Glue::SecurityConfiguration").values()
        security_name = security_configuration["Properties"]["Name"]
        assert security_name == f"{config.prefix}-data-preparation"
        (role_id,) = of_glue_job(template, "AWS::IAM::Role")
        groups = of_glue_job(template, "AWS::Logs::LogGroup")
        names = {_joined(group["Properties"]["LogGroupName"]): group_id for group_id, group in groups.items()}
        role_ref = json.dumps({"Ref": role_id})
        assert set(names) == {f"{prefix}/{security_name}-role/<{role_ref}>/{kind}" for kind in ("error", "output")}
        for group in groups.values():
            assert group["Properties"]["RetentionInDays"] == config.data_preparation.log_retention_days
            assert "PlatformKeyArn" in json.dumps(group["Properties"]["KmsKeyId"])
            assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == (deletion, deletion)
    assert (
        load_config("dev").data_preparation.log_retention_days
        != load_config("prod").data_preparation.log_retention_days
    )


def test_role_writes_logs_only_to_the_jobs_two_log_groups(stage: Any) -> None:
    template = stage.template("pipeline")
    group_arns = [{"Fn::GetAtt": [group_id, "Arn"]} for group_id in of_glue_job(template, "AWS::Logs::LogGroup")]
    (policy,) = of_glue_job(template, "AWS::IAM::ManagedPolicy").values()
    logs_statements = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("logs:") for a in _actions(s))
    ]
    actions = {action for statement in logs_statements for action in _actions(statement)}
    assert {"logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"} <= actions
    for statement in logs_statements:
        assert all(action.startswith("logs:") for action in _actions(statement)), statement
        assert statement["Effect"] == "Allow"
        assert sorted(map(json.dumps, _resources(statement))) == sorted(map(json.dumps, group_arns)), statement


def _joined(value: Any) -> str:
    """A Fn::Join of strings and tokens as one string, each token written as <its JSON>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" not in value:
        return f"<{json.dumps(value)}>"
    separator, parts = value["Fn::Join"]
    return separator.join(part if isinstance(part, str) else f"<{json.dumps(part)}>" for part in parts)


def test_default_arguments_read_the_default_raw_prefix_and_write_the_default_curated_one(stage: Any) -> None:
    arguments = glue_job(stage)["DefaultArguments"]
    input_uri, output_uri = _joined(arguments["--input_uri"]), _joined(arguments["--output_uri"])
    assert input_uri.startswith("s3://<") and "RawBucket" in input_uri
    # Its own prefix: raw files elsewhere under datasets/ (the notebook examples) are not in the team's default run.
    assert input_uri.endswith(">/datasets/default/")
    assert input_uri.endswith(f"/{RAW_PREFIX}")
    assert output_uri.startswith("s3://<") and "CuratedBucket" in output_uri
    assert output_uri.endswith(">/datasets/default")
    assert output_uri.endswith(f"/{CURATED_PREFIX}")
    # Inside what the role may read and write, and apart from the examples' prefix both ways.
    for prefix in (RAW_PREFIX, f"{CURATED_PREFIX}/"):
        assert prefix.startswith(DATASETS_PREFIX)
        assert not prefix.startswith(EXAMPLES_PREFIX) and not EXAMPLES_PREFIX.startswith(prefix)
    assert EXAMPLES_PREFIX.startswith(DATASETS_PREFIX)


def test_role_reads_the_raw_bucket_under_datasets_only(stage: Any) -> None:
    (policy,) = of_glue_job(stage.template("pipeline"), "AWS::IAM::ManagedPolicy").values()
    raw = [
        _joined(resource)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for resource in _resources(statement)
        if "RawBucket" in json.dumps(resource)
    ]
    assert raw, "the role reads the raw bucket"
    # The default input and the notebook examples both lie under datasets/: nothing broader than that.
    bucket_itself = [r for r in raw if r.startswith("<") and r.endswith(">") and ">" not in r[:-1]]
    assert all(r in bucket_itself or r.endswith(">/datasets/*") for r in raw), raw
    assert any(r.endswith(">/datasets/*") for r in raw), raw


def test_role_is_assumed_by_glue_and_has_no_managed_aws_policy(stage: Any) -> None:
    stage.template("pipeline").has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "glue.amazonaws.com"}})]}
            )
        },
    )
    for role in of_type(stage.template("pipeline"), "AWS::IAM::Role").values():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            assert "aws:policy" not in json.dumps(arn)


def test_role_reads_raw_and_writes_curated_datasets_only(stage: Any) -> None:
    (policy,) = of_glue_job(stage.template("pipeline"), "AWS::IAM::ManagedPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    s3_writes = [s for s in statements if any(a.startswith("s3:Put") for a in _actions(s))]
    assert s3_writes, statements
    for statement in s3_writes:
        for resource in map(json.dumps, _resources(statement)):
            # The bucket ARN itself (bucket-level reads) or objects under datasets/ of the curated bucket, nothing else.
            assert "CuratedBucket" in resource, resource
            assert resource.endswith('"/datasets/*"]]}') or resource.startswith('{"Fn::ImportValue"'), resource
    s3_reads = [s for s in statements if "s3:GetObject*" in _actions(s)]
    read_resources = json.dumps([r for s in s3_reads for r in _resources(s)])
    assert "RawBucket" in read_resources and "ArtifactsBucket" not in read_resources
    for statement in statements:
        for action in _actions(statement):
            assert action not in ("s3:*", "kms:*", "*", "glue:*"), statement
        if any(a.startswith("s3:") for a in _actions(statement)):
            assert "*" not in _resources(statement), statement


def test_role_reads_exactly_the_two_script_objects_of_the_asset_bucket(stage: Any) -> None:
    (policy,) = of_glue_job(stage.template("pipeline"), "AWS::IAM::ManagedPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    asset_reads = [s for s in statements if "cdk-hnb659fds-assets" in json.dumps(s)]
    assert len(asset_reads) == 1
    assert _actions(asset_reads[0]) == ["s3:GetObject"]
    assert len(_resources(asset_reads[0])) == 2
    assert all(json.dumps(r).endswith('.py"]]}') for r in _resources(asset_reads[0]))


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]
