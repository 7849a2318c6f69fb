"""The Serving stack: a serverless endpoint in dev, an autoscaled, canary-updated endpoint in the VPC in prod.

The session's stages serve an example model package (tests/conftest.py), as after ``-c model_package_arn=<arn>``.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from app import build_app, load_cdk_json_context
from components.inference_endpoint import VARIANT_NAME, InferenceEndpoint
from config import CanaryDeploymentConfig, PlatformConfig, ServingConfig
from stacks.platform import vpc_consumers
from stacks.serving_stack import ServingStack


def of_type(stage: Any, resource_type: str, component: str = "Endpoint") -> dict[str, dict[str, Any]]:
    """The resources of ``resource_type`` that the Serving stack's ``component`` construct holds (by default the
    endpoint; the API and the monitoring have their own tests in tests/components/)."""
    template = stage.template("serving").to_json()
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type and k.startswith(component)}


def the(stage: Any, resource_type: str) -> tuple[str, dict[str, Any]]:
    """The one resource of ``resource_type`` of the Serving stack's endpoint: (logical id, properties)."""
    (found,) = of_type(stage, resource_type).items()
    return found[0], found[1].get("Properties", {})


def imported(stage: Any, part: str, value: dict[str, Any]) -> dict[str, str]:
    outputs = stage.template(part).to_json()["Outputs"].values()
    (name,) = [o["Export"]["Name"] for o in outputs if o["Value"] == value and "Export" in o]
    return {"Fn::ImportValue": name}


def key_arn(stage: Any) -> dict[str, str]:
    return imported(stage, "data", {"Fn::GetAtt": ["PlatformKey", "Arn"]})


def role_statements(stage: Any) -> list[dict[str, Any]]:
    (policy,) = of_type(stage, "AWS::IAM::ManagedPolicy").values()
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


# --- both stages ----------------------------------------------------------------------------------------------------


def test_the_model_is_the_promoted_package_and_unnamed(stage: Any) -> None:
    _, model = the(stage, "AWS::SageMaker::Model")
    assert model["Containers"] == [{"ModelPackageName": stage.config.serving.model_package_arn}]
    # Unnamed, so a new model is a new resource (a named model could not be replaced in place).
    assert "ModelName" not in model


def test_the_endpoint_config_is_unnamed_and_the_endpoint_has_the_fixed_name(stage: Any) -> None:
    config_id, endpoint_config = the(stage, "AWS::SageMaker::EndpointConfig")
    assert "EndpointConfigName" not in endpoint_config
    _, endpoint = the(stage, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == stage.config.endpoint_name
    assert endpoint["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
    (variant,) = endpoint_config["ProductionVariants"]
    assert variant["VariantName"] == VARIANT_NAME == "AllTraffic"
    model_id, _ = the(stage, "AWS::SageMaker::Model")
    assert variant["ModelName"] == {"Fn::GetAtt": [model_id, "ModelName"]}


def test_the_endpoint_log_group_is_created_by_the_stack_with_the_stage_retention_and_removal(stage: Any) -> None:
    template = stage.template("serving").to_json()["Resources"]
    group_id, group = the(stage, "AWS::Logs::LogGroup")
    assert group["LogGroupName"] == f"/aws/sagemaker/Endpoints/{stage.config.endpoint_name}"
    assert group["RetentionInDays"] == stage.config.log_retention_days
    assert group["KmsKeyId"] == key_arn(stage)
    expected = "Retain" if stage.config.data.retain_on_delete else "Delete"
    assert template[group_id]["DeletionPolicy"] == template[group_id]["UpdateReplacePolicy"] == expected
    # It exists before the endpoint, or SageMaker would create it first (unencrypted, never expiring).
    (endpoint_id,) = of_type(stage, "AWS::SageMaker::Endpoint")
    assert group_id in template[endpoint_id]["DependsOn"]


def test_retention_and_removal_differ_between_dev_and_prod(dev: Any, prod: Any) -> None:
    dev_group, prod_group = (the(s, "AWS::Logs::LogGroup")[1]["RetentionInDays"] for s in (dev, prod))
    assert (dev_group, prod_group) == (14, 365)


def test_the_role_reads_only_registered_models_and_pulls_only_the_inference_container(stage: Any) -> None:
    statements = role_statements(stage)
    every_action = {action for statement in statements for action in actions_of(statement)}
    assert not {a for a in every_action if a.endswith(":*") or a == "*"}
    assert not {a for a in every_action if a.startswith("sagemaker:")}
    (pull,) = [s for s in statements if "ecr:BatchGetImage" in actions_of(s)]
    assert str(pull["Resource"]).endswith(":repository/huggingface-pytorch-inference']]}")
    (read,) = [s for s in statements if "s3:GetObject*" in actions_of(s)]
    artifacts = imported(stage, "data", {"Fn::GetAtt": ["ArtifactsBucket", "Arn"]})
    assert read["Resource"] == [artifacts, {"Fn::Join": ["", [artifacts, "/models/*"]]}]
    (logs,) = [s for s in statements if "logs:PutLogEvents" in actions_of(s)]
    group_id, _ = the(stage, "AWS::Logs::LogGroup")
    assert logs["Resource"] == {"Fn::GetAtt": [group_id, "Arn"]}


def test_the_model_waits_for_its_role_policy(stage: Any) -> None:
    template = stage.template("serving").to_json()["Resources"]
    (model_id,) = of_type(stage, "AWS::SageMaker::Model")
    (policy_id,) = of_type(stage, "AWS::IAM::ManagedPolicy")
    assert policy_id in template[model_id]["DependsOn"]


def test_the_stack_outputs_the_endpoint_name(stage: Any) -> None:
    outputs = stage.template("serving").to_json()["Outputs"]
    assert outputs["EndpointName"]["Value"] == stage.config.endpoint_name


def test_the_serving_stack_deploys_before_the_workbench(stage: Any) -> None:
    names = [stack.stack_name for stack in stage.platform.stacks]
    assert names.index(stage.platform.serving.stack_name) < names.index(stage.platform.workbench.stack_name)
    assert stage.platform.serving in stage.platform.workbench.dependencies


# --- dev: serverless ------------------------------------------------------------------------------------------------


def test_dev_serves_serverless_outside_the_vpc(dev: Any) -> None:
    serving = dev.config.serving
    _, endpoint_config = the(dev, "AWS::SageMaker::EndpointConfig")
    (variant,) = endpoint_config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": serving.serverless_memory_mb,
        "MaxConcurrency": serving.serverless_max_concurrency,
    }
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    assert "DataCaptureConfig" not in endpoint_config  # serverless endpoints have no data capture
    assert endpoint_config["KmsKeyId"] == key_arn(dev)
    _, model = the(dev, "AWS::SageMaker::Model")
    assert "VpcConfig" not in model and "EnableNetworkIsolation" not in model  # neither exists for serverless
    endpoint = dev.platform.serving.endpoint
    assert endpoint.is_serverless and endpoint.max_instances is None and endpoint.rollback_alarms == []


def test_dev_has_no_autoscaling_no_canary_and_no_rollback_alarms(dev: Any) -> None:
    template = dev.template("serving")
    for kind in ("AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy"):
        template.resource_count_is(kind, 0)
    assert of_type(dev, "AWS::CloudWatch::Alarm") == {}  # the monitoring's alarms only
    _, endpoint = the(dev, "AWS::SageMaker::Endpoint")
    assert "DeploymentConfig" not in endpoint and "RetainAllVariantProperties" not in endpoint
    assert not [s for s in role_statements(dev) if s["Action"] == "cloudwatch:DescribeAlarms"]


# --- prod: instances ------------------------------------------------------------------------------------------------


def test_prod_model_runs_isolated_in_the_private_subnets(prod: Any) -> None:
    _, model = the(prod, "AWS::SageMaker::Model")
    assert model["EnableNetworkIsolation"] is True
    network = prod.template("network").to_json()
    subnets = [k for k, v in network["Resources"].items() if v["Type"] == "AWS::EC2::Subnet"]
    assert len(subnets) == 2
    assert model["VpcConfig"]["Subnets"] == [imported(prod, "network", {"Ref": subnet}) for subnet in subnets]
    for subnet in subnets:
        assert network["Resources"][subnet]["Properties"]["MapPublicIpOnLaunch"] is False
    (group,) = model["VpcConfig"]["SecurityGroupIds"]
    assert "WorkloadSecurityGroup" in group["Fn::ImportValue"]


def test_prod_variant_starts_at_the_floor_on_the_configured_instances(prod: Any) -> None:
    serving = prod.config.serving
    _, endpoint_config = the(prod, "AWS::SageMaker::EndpointConfig")
    (variant,) = endpoint_config["ProductionVariants"]
    assert variant["InstanceType"] == serving.instance_type == "ml.g5.xlarge"
    assert variant["InitialInstanceCount"] == serving.min_instances == 2
    # g5 has local NVMe storage: SageMaker encrypts it in hardware and rejects a volume key.
    assert "KmsKeyId" not in endpoint_config
    assert prod.platform.serving.endpoint.max_instances == 6


def test_prod_captures_a_sample_of_requests_and_responses_encrypted(prod: Any) -> None:
    _, endpoint_config = the(prod, "AWS::SageMaker::EndpointConfig")
    capture = endpoint_config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == prod.config.serving.data_capture_sampling_percent == 20
    assert capture["KmsKeyId"] == key_arn(prod)
    curated = imported(prod, "data", {"Ref": "CuratedBucket"})
    assert capture["DestinationS3Uri"] == {"Fn::Join": ["", ["s3://", curated, "/data-capture"]]}
    assert sorted(o["CaptureMode"] for o in capture["CaptureOptions"]) == ["Input", "Output"]
    (write,) = [s for s in role_statements(prod) if "s3:PutObject" in actions_of(s)]
    bucket = imported(prod, "data", {"Fn::GetAtt": ["CuratedBucket", "Arn"]})
    assert write["Resource"] == {"Fn::Join": ["", [bucket, f"/data-capture/{prod.config.endpoint_name}/*"]]}


def test_prod_scales_between_min_and_max_on_invocations_per_instance(prod: Any) -> None:
    serving = prod.config.serving
    target_id, target = the(prod, "AWS::ApplicationAutoScaling::ScalableTarget")
    (endpoint_id,) = of_type(prod, "AWS::SageMaker::Endpoint")
    assert target["ServiceNamespace"] == "sagemaker"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target["ResourceId"] == {
        "Fn::Join": ["", ["endpoint/", {"Fn::GetAtt": [endpoint_id, "EndpointName"]}, "/variant/AllTraffic"]]
    }
    assert (target["MinCapacity"], target["MaxCapacity"]) == (serving.min_instances, serving.max_instances)
    assert "RoleARN" not in target  # Application Auto Scaling's service-linked role
    assert len(of_type(prod, "AWS::IAM::Role")) == 1  # the endpoint's own only
    _, policy = the(prod, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["ScalingTargetId"] == {"Ref": target_id}
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "TargetValue": serving.invocations_per_instance_target,
        "ScaleInCooldown": serving.scale_in_cooldown_seconds,
        "ScaleOutCooldown": serving.scale_out_cooldown_seconds,
    }
    assert (serving.scale_in_cooldown_seconds, serving.scale_out_cooldown_seconds) == (600, 60)


def test_prod_lowers_the_floor_out_of_hours_in_the_team_time_zone(prod: Any) -> None:
    serving = prod.config.serving
    assert serving.out_of_hours is not None
    _, target = the(prod, "AWS::ApplicationAutoScaling::ScalableTarget")
    actions = {a["ScheduledActionName"]: a for a in target["ScheduledActions"]}
    assert actions == {
        "LowerFloorOutOfHours": {
            "ScheduledActionName": "LowerFloorOutOfHours",
            "Schedule": serving.out_of_hours.scale_down,
            "ScalableTargetAction": {"MinCapacity": serving.out_of_hours.min_instances},
            "Timezone": "Europe/Berlin",
        },
        "RestoreFloorInWorkingHours": {
            "ScheduledActionName": "RestoreFloorInWorkingHours",
            "Schedule": serving.out_of_hours.scale_up,
            "ScalableTargetAction": {"MinCapacity": serving.min_instances},
            "Timezone": "Europe/Berlin",
        },
    }


def test_prod_updates_are_canary_blue_green_rolled_back_by_the_new_fleet_alarms(prod: Any) -> None:
    canary = prod.config.serving.canary
    assert canary is not None
    _, endpoint = the(prod, "AWS::SageMaker::Endpoint")
    deployment = endpoint["DeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": canary.canary_size_percent},
            "WaitIntervalInSeconds": canary.wait_interval_seconds,
        },
        "TerminationWaitInSeconds": canary.termination_wait_seconds,
        "MaximumExecutionTimeoutInSeconds": canary.maximum_execution_timeout_seconds,
    }
    alarms = of_type(prod, "AWS::CloudWatch::Alarm")
    named = [a["AlarmName"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]]
    assert sorted(named, key=str) == sorted(({"Ref": alarm_id} for alarm_id in alarms), key=str)
    names = {alarms[ref["Ref"]]["Properties"]["AlarmName"] for ref in named}
    endpoint_name = prod.config.endpoint_name
    assert names == {f"{endpoint_name}-rollback-5xx-errors", f"{endpoint_name}-rollback-model-latency"}
    assert names == set(prod.platform.serving.endpoint.rollback_alarm_names)
    assert [a.alarm_name for a in prod.platform.serving.endpoint.rollback_alarms] != []


def test_rollback_alarms_watch_the_new_fleet_with_the_configured_thresholds(prod: Any) -> None:
    canary = prod.config.serving.canary
    assert canary is not None
    (config_id,) = of_type(prod, "AWS::SageMaker::EndpointConfig")
    by_metric = {
        a["Properties"]["MetricName"]: a["Properties"] for a in of_type(prod, "AWS::CloudWatch::Alarm").values()
    }
    assert set(by_metric) == {"Invocation5XXErrors", "ModelLatency"}
    for alarm in by_metric.values():
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert alarm["Dimensions"] == [
            {"Name": "EndpointConfigName", "Value": {"Fn::GetAtt": [config_id, "EndpointConfigName"]}},
            {"Name": "EndpointName", "Value": prod.config.endpoint_name},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ]
        assert alarm["Period"] == 60
        assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == canary.rollback_evaluation_minutes
        assert alarm["TreatMissingData"] == "notBreaching"
    errors, latency = by_metric["Invocation5XXErrors"], by_metric["ModelLatency"]
    assert (errors["Statistic"], errors["Threshold"]) == ("Sum", canary.rollback_5xx_errors)
    assert errors["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # ModelLatency is in microseconds; the config says milliseconds.
    assert (latency["ExtendedStatistic"], latency["Threshold"]) == ("p99", canary.rollback_model_latency_ms * 1000)


def test_prod_role_may_read_exactly_the_rollback_alarms(prod: Any) -> None:
    (statement,) = [s for s in role_statements(prod) if s["Action"] == "cloudwatch:DescribeAlarms"]
    alarm_arns = [part["Fn::Join"][1][-1] for part in statement["Resource"]]
    assert alarm_arns == [f":alarm:{name}" for name in prod.platform.serving.endpoint.rollback_alarm_names]


def test_prod_updates_keep_the_autoscaled_instance_count(prod: Any) -> None:
    _, endpoint = the(prod, "AWS::SageMaker::Endpoint")
    assert endpoint["RetainAllVariantProperties"] is True
    assert "ExcludeRetainedVariantProperties" not in endpoint
    assert "RetainDeploymentConfig" not in endpoint  # each update applies this template's DeploymentConfig


def test_prod_endpoint_is_a_declared_vpc_consumer(prod: Any, dev: Any) -> None:
    assert "InferenceEndpoint" in {c.name for c in vpc_consumers(prod.config)}
    assert "InferenceEndpoint" not in {c.name for c in vpc_consumers(dev.config)}  # serverless: outside the VPC


def test_metrics_name_the_endpoint_and_variant(prod: Any) -> None:
    endpoint = prod.platform.serving.endpoint
    stack = prod.platform.serving
    latency = endpoint.metric_model_latency()
    assert (latency.namespace, latency.metric_name, latency.statistic) == ("AWS/SageMaker", "ModelLatency", "p99")
    assert stack.resolve(latency.dimensions) == {"EndpointName": "nlp-prod-inference", "VariantName": "AllTraffic"}
    for metric, name in (
        (endpoint.metric_cpu_utilization(), "CPUUtilization"),
        (endpoint.metric_gpu_utilization(), "GPUUtilization"),
        (endpoint.metric_memory_utilization(), "MemoryUtilization"),
    ):
        assert (metric.namespace, metric.metric_name) == ("/aws/sagemaker/Endpoints", name)
    assert endpoint.metric_invocation_5xx_errors().metric_name == "Invocation5XXErrors"
    assert endpoint.metric_invocations_per_instance().metric_name == "InvocationsPerInstance"


# --- no model, no Serving stack -------------------------------------------------------------------------------------


def test_without_a_model_the_stage_has_no_serving_stack() -> None:
    # Constructed, not synthesized: the stacks exist once build_app returns.
    app, platform = build_app(load_cdk_json_context(stage="dev"))
    assert platform.config.serving.model_package_arn is None and not platform.config.serving.has_model
    assert platform.serving is None
    stacks = [child.node.id for child in app.node.children if isinstance(child, cdk.Stack)]
    assert stacks == ["nlp-dev-data", "nlp-dev-network", "nlp-dev-pipeline", "nlp-dev-workbench"]
    assert [s.stack_name for s in platform.stacks] == stacks
    assert "InferenceEndpoint" not in {c.name for c in vpc_consumers(platform.config)}


# --- the component on its own (small stacks, no compliance packs) ---------------------------------------------------


def small_stack() -> tuple[cdk.Stack, kms.Key, s3.Bucket]:
    stack = cdk.Stack(cdk.App(), "Small")
    return stack, kms.Key(stack, "Key"), s3.Bucket(stack, "Artifacts")


def test_a_model_archive_is_served_by_its_image_and_only_that_object_is_readable() -> None:
    stack, key, bucket = small_stack()
    InferenceEndpoint(
        stack,
        "Endpoint",
        endpoint_name="small-inference",
        key=key,
        artifacts_bucket=bucket,
        image_repository_arns=["arn:aws:ecr:us-east-1:763104351884:repository/huggingface-pytorch-inference"],
        model_data_url="s3://my-models/runs/42/model.tar.gz",
        image_uri="763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.6.0-cpu",
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "Containers": [
                {
                    "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.6.0-cpu",
                    "ModelDataUrl": "s3://my-models/runs/42/model.tar.gz",
                }
            ]
        },
    )
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": "ReadTheModelArchive",
                            "Action": "s3:GetObject",
                            "Effect": "Allow",
                            "Resource": {
                                "Fn::Join": [
                                    "",
                                    ["arn:", {"Ref": "AWS::Partition"}, ":s3:::my-models/runs/42/model.tar.gz"],
                                ]
                            },
                        }
                    ]
                )
            }
        },
    )
    statements = template.find_resources("AWS::IAM::ManagedPolicy")
    assert "s3:GetObject*" not in str(statements)  # no bucket-wide grant for an archive


def test_the_variant_name_stays_the_same_whatever_the_model() -> None:
    names: set[str] = set()
    for version in (1, 2):
        stack, key, bucket = small_stack()
        InferenceEndpoint(
            stack,
            "Endpoint",
            endpoint_name="small-inference",
            key=key,
            artifacts_bucket=bucket,
            image_repository_arns=["arn:aws:ecr:us-east-1:763104351884:repository/r"],
            model_package_arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/g/{version}",
        )
        (config,) = Template.from_stack(stack).find_resources("AWS::SageMaker::EndpointConfig").values()
        names.update(v["VariantName"] for v in config["Properties"]["ProductionVariants"])
    assert names == {"AllTraffic"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"canary": CanaryDeploymentConfig()}, r"serverless endpoint \(instance_type=None\) takes no canary"),
        ({"model_data_url": "s3://b/m.tar.gz"}, r"exactly one of model_package_arn and model_data_url"),
        ({"instance_type": "ml.m5.xlarge"}, r"runs in the VPC; pass subnets and security_group"),
        ({"endpoint_name": "bad_name"}, r"endpoint_name='bad_name'"),
    ],
)
def test_the_component_refuses_what_it_cannot_build(extra: dict[str, Any], message: str) -> None:
    stack, key, bucket = small_stack()
    props: dict[str, Any] = {
        "endpoint_name": "small-inference",
        "key": key,
        "artifacts_bucket": bucket,
        "image_repository_arns": ["arn:aws:ecr:us-east-1:763104351884:repository/r"],
        "model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",
        **extra,
    }
    with pytest.raises(Exception, match=message):
        InferenceEndpoint(stack, "Endpoint", **props)


def test_an_instance_type_with_an_ebs_volume_gets_the_volume_key() -> None:
    stack, key, bucket = small_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, subnet_configuration=[
        ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)])  # fmt: skip
    InferenceEndpoint(
        stack,
        "Endpoint",
        endpoint_name="small-inference",
        key=key,
        artifacts_bucket=bucket,
        image_repository_arns=["arn:aws:ecr:us-east-1:763104351884:repository/r"],
        model_package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",
        instance_type="ml.m5.xlarge",
        subnets=vpc.isolated_subnets,
        security_group=ec2.SecurityGroup(stack, "Group", vpc=vpc),
    )
    (config,) = Template.from_stack(stack).find_resources("AWS::SageMaker::EndpointConfig").values()
    key_resource = key.node.default_child
    assert isinstance(key_resource, cdk.CfnElement)
    assert config["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [stack.get_logical_id(key_resource), "Arn"]}


def test_a_model_archive_on_gpu_instances_is_served_by_the_gpu_inference_container() -> None:
    app = cdk.App()
    base = cdk.Stack(app, "Base")
    vpc = ec2.Vpc(base, "Vpc", max_azs=1, subnet_configuration=[
        ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)])  # fmt: skip
    config = PlatformConfig(
        stage="dev",
        serving=ServingConfig(
            model_data_url="s3://my-models/runs/42/model.tar.gz", instance_type="ml.g5.xlarge", max_instances=2
        ),
    )
    serving = ServingStack(
        app,
        "Serving",
        config=config,
        key=kms.Key(base, "Key"),
        curated_bucket=s3.Bucket(base, "Curated"),
        artifacts_bucket=s3.Bucket(base, "Artifacts"),
        vpc=vpc,
        subnets=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        security_group=ec2.SecurityGroup(base, "Group", vpc=vpc),
    )
    (model,) = Template.from_stack(serving).find_resources("AWS::SageMaker::Model").values()
    (container,) = model["Properties"]["Containers"]
    images = config.training.images
    assert container["ModelDataUrl"] == "s3://my-models/runs/42/model.tar.gz"
    image = container["Image"]["Fn::Join"][1]
    assert image[-1] == f"/{images.inference_repository}:{images.inference_gpu_tag}"
