"""The SageMaker pipelines of the platform: training (train, evaluate, gate, register) and batch inference.

Both definitions are built with :mod:`components.pipeline_definition` at synth, so the template holds the exact JSON
SageMaker runs and a PR diff shows every change. The jobs run in the isolated subnets with network isolation, KMS on
outputs and (where the instance type has EBS volumes) on volumes, under one execution role per job kind. The pipeline
role may create jobs only with those settings (SageMaker condition keys) and pass only those roles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from components import pipeline_definition as pd
from components.compliance import acknowledge, finding_reference, justify_for_scanners
from components.log_retention import retention_days
from components.platform_role import PlatformRole
from components.sagemaker_jobs import JobExecutionRole, dlc_image_uri, volume_kms_key
from components.source_bundle import SourceBundle
from components.vpc_function import create_after_role_policy, grant_network_interfaces, justify_synchronous_vpc_function
from components.vpc_services import VpcService, VpcServiceUse
from config import PRETRAINED_PREFIX, TrainingConfig
from config.instance_storage import volume_kms_key_allowed

ROOT = Path(__file__).resolve().parent.parent
TRAINING_CODE = ROOT / "training_code"
RESOLVER_CODE = ROOT / "lambda_handlers" / "resolve_dataset"

# Where things live in the buckets (the contract the roles are scoped to).
CURATED_DATASETS = "datasets/default"
# PRETRAINED_PREFIX comes from config: scripts/stage_base_model.py writes there without importing the CDK.
MODELS_PREFIX = "models"
CHECKPOINTS_PREFIX = "checkpoints"
EVALUATION_PREFIX = "evaluation"
BATCH_INPUT_PREFIX = "batch-inference/input"
BATCH_OUTPUT_PREFIX = "batch-inference/predictions"

JSON_LINES = "application/jsonlines"
PROCESSING = "/opt/ml/processing"
# The code channel: with network isolation the container cannot download sagemaker_submit_directory from S3, so
# the archive arrives as an input channel (what the SageMaker SDK does for isolated jobs), under its object's name.
CODE_CHANNEL_DIR = "/opt/ml/input/data/code"
# What the training job's log reports: train.py logs the splits of its channels (test accuracy is measured and gated
# by the Evaluate step, the job never sees the test split).
METRIC_DEFINITIONS = (
    {"Name": "train:loss", "Regex": r"\| loss ([0-9.]+) \|"},
    {"Name": "train:samples_per_second", "Regex": r"\| ([0-9.]+) samples/s \|"},
    {"Name": "validation:accuracy", "Regex": r"validation: accuracy ([0-9.]+)"},
    {"Name": "validation:macro_f1", "Regex": r"validation: accuracy [0-9.]+, macro F1 ([0-9.]+)"},
)
# Extracts the evaluation bundle (the asset object is <hash>.gz) and runs evaluate.py; "$@" carries the flags.
EVALUATE_ENTRYPOINT = (
    "set -euo pipefail; mkdir -p /tmp/code; tar -xzf /opt/ml/processing/input/code/*.gz -C /tmp/code; "
    'exec python3 /tmp/code/evaluate.py "$@"'
)


@dataclass(frozen=True)
class JobPlacement:
    """Where and how every job runs: the isolated subnets, their security group and the platform key."""

    vpc: ec2.IVpc
    subnets: Sequence[ec2.ISubnet]
    security_group: ec2.ISecurityGroup
    key: kms.IKey

    def vpc_config(self) -> dict[str, Any]:
        return {
            "Subnets": [subnet.subnet_id for subnet in self.subnets],
            "SecurityGroupIds": [self.security_group.security_group_id],
        }


def _acknowledge_for(grantee: iam.IGrantable, finding_id: str, reason: str) -> None:
    """Acknowledge a wildcard a grant wrote into a platform role's policy, where the finding lands."""
    if isinstance(grantee, PlatformRole):
        acknowledge(grantee.policy, finding_id, reason)


_ACCOUNT_ARN = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"


class ModelRegistry(Construct):
    """The model package group models are registered in, with grants for readers and approvers.

    :param group_name: ``<prefix>-models``. :param removal_policy: RETAIN keeps the group (and its versions) in prod.
    """

    def __init__(self, scope: Construct, construct_id: str, *, group_name: str, removal_policy: cdk.RemovalPolicy):
        super().__init__(scope, construct_id)
        self.group_name = group_name
        self.resource = sagemaker.CfnModelPackageGroup(
            self,
            "Resource",
            model_package_group_name=group_name,
            model_package_group_description="Fine-tuned text classifiers; the training pipeline registers each one",
        )
        self.resource.apply_removal_policy(removal_policy)
        stack = cdk.Stack.of(self)
        self.group_arn = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group_name)
        self.packages_arn = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{group_name}/*"
        )

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Describe the group and its versions, list them."""
        _acknowledge_for(
            grantee,
            f"AwsSolutions-IAM5[Resource::{_ACCOUNT_ARN}:model-package/{self.group_name}/*]",
            f"Versions of the {self.group_name} group only; version numbers are assigned at registration.",
        )
        _acknowledge_for(
            grantee,
            "AwsSolutions-IAM5[Resource::*]",
            "sagemaker:ListModelPackages has no resource type; it lists package metadata, not model data.",
        )
        return (
            iam.Grant.add_to_principal(
                grantee=grantee, actions=["sagemaker:DescribeModelPackageGroup"], resource_arns=[self.group_arn]
            )
            .combine(
                iam.Grant.add_to_principal(
                    grantee=grantee, actions=["sagemaker:DescribeModelPackage"], resource_arns=[self.packages_arn]
                )
            )
            .combine(
                # ListModelPackages has no resource type.
                iam.Grant.add_to_principal(
                    grantee=grantee, actions=["sagemaker:ListModelPackages"], resource_arns=["*"]
                )
            )
        )

    def grant_delete_packages(self, grantee: iam.IGrantable) -> iam.Grant:
        """List the group's versions and delete them (what empties the group before CloudFormation deletes it)."""
        _acknowledge_for(
            grantee,
            f"AwsSolutions-IAM5[Resource::{_ACCOUNT_ARN}:model-package/{self.group_name}/*]",
            f"Versions of the {self.group_name} group only; version numbers are assigned at registration.",
        )
        _acknowledge_for(
            grantee,
            "AwsSolutions-IAM5[Resource::*]",
            "sagemaker:ListModelPackages has no resource type; it lists package metadata, not model data.",
        )
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:DeleteModelPackage"], resource_arns=[self.packages_arn]
        ).combine(
            # ListModelPackages has no resource type.
            iam.Grant.add_to_principal(grantee=grantee, actions=["sagemaker:ListModelPackages"], resource_arns=["*"])
        )

    def grant_approve(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read the registry and set the approval status of its versions (how a model is approved)."""
        return self.grant_read(grantee).combine(
            iam.Grant.add_to_principal(
                grantee=grantee, actions=["sagemaker:UpdateModelPackage"], resource_arns=[self.packages_arn]
            )
        )


class _Pipeline(Construct):
    """An ``AWS::SageMaker::Pipeline`` with its role and the grants every pipeline offers."""

    def _create(self, *, name: str, description: str, definition: pd.PipelineDefinition, role: iam.IRole) -> None:
        stack = cdk.Stack.of(self)
        self.pipeline_name = name
        self.definition = definition
        self.resource = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=name,
            pipeline_display_name=name,
            pipeline_description=description,
            role_arn=role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": stack.to_json_string(definition.render())},
        )
        self.pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=name)

    def grant_start_execution(self, grantee: iam.IGrantable) -> iam.Grant:
        """Start, follow and stop executions (and read their steps)."""
        _acknowledge_for(
            grantee,
            f"AwsSolutions-IAM5[Resource::{_ACCOUNT_ARN}:pipeline/{self.pipeline_name}/execution/*]",
            f"Executions of the {self.pipeline_name} pipeline only: their ids are generated when a run starts.",
        )
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "sagemaker:StartPipelineExecution",
                "sagemaker:DescribePipeline",
                "sagemaker:ListPipelineExecutions",
            ],
            resource_arns=[self.pipeline_arn],
        ).combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=[
                    "sagemaker:DescribePipelineExecution",
                    "sagemaker:ListPipelineExecutionSteps",
                    "sagemaker:StopPipelineExecution",
                    "sagemaker:RetryPipelineExecution",
                ],
                resource_arns=[f"{self.pipeline_arn}/execution/*"],
            )
        )

    def grant_stop_executions(self, grantee: iam.IGrantable) -> iam.Grant:
        """List the executions and their steps and stop the executions, nothing else.

        What a cleanup before deletion needs: the steps name the jobs whose log streams it deletes.
        """
        _acknowledge_for(
            grantee,
            f"AwsSolutions-IAM5[Resource::{_ACCOUNT_ARN}:pipeline/{self.pipeline_name}/execution/*]",
            f"Executions of the {self.pipeline_name} pipeline only: their ids are generated when a run starts.",
        )
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:ListPipelineExecutions"], resource_arns=[self.pipeline_arn]
        ).combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["sagemaker:StopPipelineExecution", "sagemaker:ListPipelineExecutionSteps"],
                resource_arns=[f"{self.pipeline_arn}/execution/*"],
            )
        )


def _job_arn(scope: Construct, kind: str) -> str:
    # Pipelines name jobs pipelines-<execution id>-<step>-<suffix>.
    return cdk.Stack.of(scope).format_arn(service="sagemaker", resource=kind, resource_name="pipelines-*")


def _create_job_conditions(
    placement: JobPlacement, instance_types: Sequence[str], *, vpc: bool, output_key: bool
) -> dict[str, Any]:
    """Condition keys that make a create call match the platform's rules (see the module docstring)."""
    null = {"sagemaker:InstanceTypes": "false"}
    for_all: dict[str, Any] = {"sagemaker:InstanceTypes": sorted(set(instance_types))}
    equals: dict[str, Any] = {}
    if output_key:
        equals["sagemaker:OutputKmsKey"] = placement.key.key_arn
    if all(volume_kms_key_allowed(t) for t in instance_types):
        equals["sagemaker:VolumeKmsKey"] = placement.key.key_arn
    conditions: dict[str, Any] = {"Null": null, "ForAllValues:StringEquals": for_all}
    if vpc:
        null.update({"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"})
        for_all.update(_vpc_condition_values(placement))
        conditions["Bool"] = {"sagemaker:NetworkIsolation": "true"}
    if equals:
        conditions["StringEquals"] = equals
    return conditions


def _vpc_condition_values(placement: JobPlacement) -> dict[str, Any]:
    return {
        "sagemaker:VpcSubnets": [subnet.subnet_id for subnet in placement.subnets],
        "sagemaker:VpcSecurityGroupIds": [placement.security_group.security_group_id],
    }


class TrainingPipeline(_Pipeline):
    """``<prefix>-training``: resolve the data run, train on GPUs (spot, checkpoints), evaluate, gate, register.

    :param name_prefix: ``<project>-<stage>``. :param settings: ``config.training``.
    :param hosting_instance_types: instance types a registered model supports for real-time hosting.
    :param cpu_hosting: True when the stage hosts on CPU (serverless): the package names the CPU inference image.
    :param curated_bucket: curated data (read). :param artifacts_bucket: base models (read), models, checkpoints and
    evaluations (write). :param placement: subnets, security group, key. :param registry: the model package group.
    :param log_retention_days: retention of the resolver function's logs. :param removal_policy: for that log group.

    ``VPC_SERVICES``: S3 only. The training and evaluation jobs run with network isolation, so their containers call
    nothing; SageMaker pulls the images from ECR and ships the logs and metrics outside the customer VPC, and moves
    the channels, checkpoints and outputs through the job's VPC interfaces to S3. The resolver Lambda reads S3 only;
    Lambda itself writes its logs.
    """

    VPC_SERVICES = (
        VpcServiceUse(VpcService.S3, "SageMaker moves the jobs' channels, checkpoints and outputs through the VPC"),
        VpcServiceUse(VpcService.S3, "the resolver Lambda reads the _LATEST pointer and lists the run's channels"),
    )

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        settings: TrainingConfig,
        hosting_instance_types: Sequence[str],
        cpu_hosting: bool,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        placement: JobPlacement,
        registry: ModelRegistry,
        log_retention_days: int,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        images = settings.images
        self.training_image = dlc_image_uri(self, images.training_repository, images.training_tag)
        inference_tag = images.inference_cpu_tag if cpu_hosting else images.inference_gpu_tag
        self.inference_image = dlc_image_uri(self, images.inference_repository, inference_tag)
        self.code = SourceBundle(self, "TrainingCode", source=TRAINING_CODE)
        self.evaluation_code = SourceBundle(
            self,
            "EvaluationCode",
            source=TRAINING_CODE,
            archive_name="evaluate.tar.gz",
            include=["evaluate.py", "nlp_data.py"],
        )
        repositories = [images.training_repository]
        self.training_role = JobExecutionRole(
            self,
            "TrainingRole",
            name_prefix=name_prefix,
            kind="training",
            repositories=repositories,
            subnets=placement.subnets,
            security_group=placement.security_group,
        )
        self.evaluation_role = JobExecutionRole(
            self,
            "EvaluationRole",
            name_prefix=name_prefix,
            kind="processing",
            repositories=repositories,
            subnets=placement.subnets,
            security_group=placement.security_group,
        )
        self._artifacts_bucket = artifacts_bucket
        self._key = placement.key
        self._grant_job_data(curated_bucket, artifacts_bucket, placement.key)

        self.resolver = _DatasetResolver(
            self,
            "ResolveInputs",
            curated_bucket=curated_bucket,
            placement=placement,
            log_retention_days=log_retention_days,
            removal_policy=removal_policy,
        )
        definition = self._definition(
            settings=settings,
            hosting_instance_types=hosting_instance_types,
            curated_bucket=curated_bucket,
            artifacts_bucket=artifacts_bucket,
            placement=placement,
            registry=registry,
        )
        self.role = PlatformRole(
            self,
            "PipelineRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Runs the {name_prefix}-training pipeline: creates its jobs, registers models",
        )
        self._grant_pipeline(settings, placement, registry, artifacts_bucket)
        self._create(
            name=f"{name_prefix}-training",
            description="Fine-tune, evaluate, gate on accuracy, register (training_code/)",
            definition=definition,
            role=self.role,
        )
        self.resource.node.add_dependency(self.role.policy)

    def grant_read_evaluations(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read the evaluation reports that registered models' metrics point to, and nothing else of the bucket.

        Each execution writes ``evaluation/<execution id>/evaluation.json`` to the artifacts bucket; a registered
        package names it in ``ModelMetrics.ModelQuality.Statistics.S3Uri``. The grant is ``s3:GetObject`` on
        ``evaluation/*`` and decrypt with the platform key (the reports are SSE-KMS). No listing: a reader follows
        the URI of a package, and the reports hold metrics only, no data or model.
        """
        bucket = self._artifacts_bucket
        if isinstance(grantee, PlatformRole):
            acknowledge(
                grantee.policy,
                f"AwsSolutions-IAM5[Resource::{finding_reference(grantee.policy, bucket.bucket_arn)}"
                f"/{EVALUATION_PREFIX}/*]",
                f"Evaluation reports under {EVALUATION_PREFIX}/ only (one per execution, named by the execution id "
                "at run time), read only: metrics of registered models, no data or model files.",
            )
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:GetObject"],
            resource_arns=[bucket.arn_for_objects(f"{EVALUATION_PREFIX}/*")],
        ).combine(self._key.grant_decrypt(grantee))

    def _definition(
        self,
        *,
        settings: TrainingConfig,
        hosting_instance_types: Sequence[str],
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        placement: JobPlacement,
        registry: ModelRegistry,
    ) -> pd.PipelineDefinition:
        artifacts = f"s3://{artifacts_bucket.bucket_name}"
        curated = f"s3://{curated_bucket.bucket_name}/{CURATED_DATASETS}"
        input_prefix = pd.ParameterString("InputPrefix", "latest")
        data_run_id = pd.ParameterString("DataPreparationRunId", "")
        run_id = pd.ParameterString("RunId", "")
        base_model = pd.ParameterString("BaseModel", settings.base_model_name)
        instance_type = pd.ParameterString("TrainingInstanceType", settings.instance_type)
        instance_count = pd.ParameterInteger("TrainingInstanceCount", settings.instance_count)
        epochs = pd.ParameterInteger("Epochs", settings.epochs)
        learning_rate = pd.ParameterFloat("LearningRate", settings.learning_rate)
        threshold = pd.ParameterFloat("AccuracyThreshold", settings.accuracy_threshold)
        approval = pd.ParameterString("ModelApprovalStatus", settings.approval_status)
        parameters: list[pd.Parameter] = [
            input_prefix,
            data_run_id,
            run_id,
            base_model,
            instance_type,
            instance_count,
            epochs,
            learning_rate,
            threshold,
            approval,
        ]

        resolve = pd.LambdaStep(
            name="ResolveInputs",
            arguments={
                "input_prefix": input_prefix,
                "data_run_id": data_run_id,
                "runs_uri": f"{curated}/runs",
                "pointer_uri": f"{curated}/_LATEST",
                "run_id": run_id,
                "execution_id": pd.EXECUTION_ID,
            },
            function_arn=self.resolver.function.function_arn,
            output_names=("RunPrefix", "RunId"),
        )
        run_prefix = resolve.output("RunPrefix")

        def channel(name: str, uri: Any, content_type: str | None = JSON_LINES) -> dict[str, Any]:
            spec: dict[str, Any] = {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            if content_type:
                spec["ContentType"] = content_type
            return spec

        hyperparameters = {
            "sagemaker_program": pd.hyperparameter("train.py"),
            "sagemaker_submit_directory": pd.hyperparameter(f"{CODE_CHANNEL_DIR}/{self.code.asset.s3_object_key}"),
            "sagemaker_container_log_level": pd.hyperparameter(20),
            "epochs": pd.hyperparameter(epochs),
            "learning_rate": pd.hyperparameter(learning_rate),
        }
        if settings.distributed:
            hyperparameters["sagemaker_torch_distributed_enabled"] = pd.hyperparameter(True)
        resources: dict[str, Any] = {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeSizeInGB": settings.volume_size_gb,
        }
        volume_key = volume_kms_key(settings.instance_type, placement.key)
        if volume_key:
            resources["VolumeKmsKeyId"] = volume_key
        stopping: dict[str, Any] = {"MaxRuntimeInSeconds": settings.max_runtime_seconds}
        if settings.use_spot:
            stopping["MaxWaitTimeInSeconds"] = settings.max_wait_seconds
        train = pd.TrainingStep(
            name="Train",
            arguments={
                "AlgorithmSpecification": {
                    "TrainingImage": self.training_image,
                    "TrainingInputMode": "File",
                    "MetricDefinitions": list(METRIC_DEFINITIONS),
                    "EnableSageMakerMetricsTimeSeries": True,
                },
                "RoleArn": self.training_role.role_arn,
                "HyperParameters": hyperparameters,
                "InputDataConfig": [
                    channel("code", self.code.s3_object_url, None),
                    channel("train", pd.join("", run_prefix, "/train/")),
                    channel("validation", pd.join("", run_prefix, "/validation/")),
                    channel("labels", pd.join("", run_prefix, "/labels.json"), "application/json"),
                    channel("pretrained", pd.join("", f"{artifacts}/{PRETRAINED_PREFIX}/", base_model, "/"), None),
                ],
                "OutputDataConfig": {
                    "S3OutputPath": f"{artifacts}/{MODELS_PREFIX}/",
                    "KmsKeyId": placement.key.key_arn,
                },
                "ResourceConfig": resources,
                "StoppingCondition": stopping,
                "EnableManagedSpotTraining": settings.use_spot,
                "CheckpointConfig": {
                    "S3Uri": pd.join("/", f"{artifacts}/{CHECKPOINTS_PREFIX}", resolve.output("RunId")),
                    "LocalPath": "/opt/ml/checkpoints",
                },
                "VpcConfig": placement.vpc_config(),
                "EnableNetworkIsolation": True,
                # Free on one instance; on several it keeps gradients encrypted between them.
                "EnableInterContainerTrafficEncryption": True,
            },
        )

        evaluation_uri = pd.join("/", f"{artifacts}/{EVALUATION_PREFIX}", pd.EXECUTION_ID)
        evaluation_resources: dict[str, Any] = {
            "InstanceType": settings.processing_instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        }
        evaluation_volume_key = volume_kms_key(settings.processing_instance_type, placement.key)
        if evaluation_volume_key:
            evaluation_resources["VolumeKmsKeyId"] = evaluation_volume_key

        def processing_input(name: str, uri: Any, local: str) -> dict[str, Any]:
            return {
                "InputName": name,
                "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File"},
            }

        evaluate = pd.ProcessingStep(
            name="Evaluate",
            arguments={
                "ProcessingResources": {"ClusterConfig": evaluation_resources},
                "AppSpecification": {
                    "ImageUri": self.training_image,
                    "ContainerEntrypoint": ["/bin/bash", "-c", EVALUATE_ENTRYPOINT, "evaluate"],
                    "ContainerArguments": [
                        "--model_dir",
                        f"{PROCESSING}/model",
                        "--test_dir",
                        f"{PROCESSING}/test",
                        "--output_dir",
                        f"{PROCESSING}/evaluation",
                    ],
                },
                "RoleArn": self.evaluation_role.role_arn,
                "ProcessingInputs": [
                    processing_input("code", self.evaluation_code.s3_object_url, f"{PROCESSING}/input/code"),
                    processing_input("model", train.model_artifacts, f"{PROCESSING}/model"),
                    processing_input("test", pd.join("", run_prefix, "/test/"), f"{PROCESSING}/test"),
                ],
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {
                            "OutputName": "evaluation",
                            "S3Output": {
                                "S3Uri": evaluation_uri,
                                "LocalPath": f"{PROCESSING}/evaluation",
                                "S3UploadMode": "EndOfJob",
                            },
                        }
                    ],
                    "KmsKeyId": placement.key.key_arn,
                },
                "NetworkConfig": {
                    "EnableNetworkIsolation": True,
                    "EnableInterContainerTrafficEncryption": True,
                    "VpcConfig": placement.vpc_config(),
                },
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            },
            property_files=[pd.PropertyFile("EvaluationReport", "evaluation", "evaluation.json")],
        )
        accuracy = evaluate.json_get("EvaluationReport", "metrics.accuracy.value")
        register = pd.RegisterModelStep(
            name="RegisterModel",
            arguments={
                "ModelPackageGroupName": registry.group_name,
                "ModelApprovalStatus": approval,
                "ModelPackageDescription": pd.join(" ", "Trained by pipeline execution", pd.EXECUTION_ID),
                "InferenceSpecification": {
                    "Containers": [
                        {
                            "Image": self.inference_image,
                            "ModelDataUrl": train.model_artifacts,
                            "Environment": {"SAGEMAKER_CONTAINER_LOG_LEVEL": "20"},
                        }
                    ],
                    "SupportedContentTypes": ["application/json", JSON_LINES],
                    "SupportedResponseMIMETypes": ["application/json", JSON_LINES],
                    "SupportedRealtimeInferenceInstanceTypes": list(hosting_instance_types),
                    "SupportedTransformInstanceTypes": [settings.batch_instance_type],
                },
                "ModelMetrics": {
                    "ModelQuality": {
                        "Statistics": {
                            "ContentType": "application/json",
                            "S3Uri": pd.join("/", evaluation_uri, "evaluation.json"),
                        }
                    }
                },
            },
        )
        too_weak = pd.FailStep(
            name="AccuracyBelowThreshold",
            error_message=pd.join(
                "", "Test accuracy ", accuracy, " is below the threshold ", threshold, "; the model was not registered"
            ),
        )
        gate = pd.ConditionStep(
            name="AccuracyGate",
            conditions=[pd.Condition("GreaterThanOrEqualTo", accuracy, threshold)],
            if_steps=[register],
            else_steps=[too_weak],
        )
        return pd.PipelineDefinition(parameters=parameters, steps=[resolve, train, evaluate, gate])

    def _grant_job_data(self, curated: s3.IBucket, artifacts: s3.IBucket, key: kms.IKey) -> None:
        training, evaluation = self.training_role, self.evaluation_role
        curated.grant_read(training, f"{CURATED_DATASETS}/*")
        artifacts.grant_read(training, f"{PRETRAINED_PREFIX}/*")
        artifacts.grant_read_write(training, f"{MODELS_PREFIX}/*")
        artifacts.grant_read_write(training, f"{CHECKPOINTS_PREFIX}/*")
        curated.grant_read(evaluation, f"{CURATED_DATASETS}/*")
        artifacts.grant_read(evaluation, f"{MODELS_PREFIX}/*")
        artifacts.grant_write(evaluation, f"{EVALUATION_PREFIX}/*")
        for role, bundle in ((training, self.code), (evaluation, self.evaluation_code)):
            key.grant_encrypt_decrypt(role)
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ReadItsCodeAsset",
                    actions=["s3:GetObject"],
                    resources=[bundle.asset.bucket.arn_for_objects(bundle.asset.s3_object_key)],
                )
            )
        _acknowledge_bucket_grants(
            training.policy,
            {curated: [CURATED_DATASETS], artifacts: [PRETRAINED_PREFIX, MODELS_PREFIX, CHECKPOINTS_PREFIX]},
        )
        _acknowledge_bucket_grants(
            evaluation.policy, {curated: [CURATED_DATASETS], artifacts: [MODELS_PREFIX, EVALUATION_PREFIX]}
        )

    def _grant_pipeline(
        self,
        settings: TrainingConfig,
        placement: JobPlacement,
        registry: ModelRegistry,
        artifacts: s3.IBucket,
    ) -> None:
        role = self.role
        jobs = (
            ("training-job", "Training", [settings.instance_type]),
            ("processing-job", "Processing", [settings.processing_instance_type]),
        )
        for kind, title, instance_types in jobs:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=f"Create{title}JobsOnlyTheWayThePlatformRunsThem",
                    actions=[f"sagemaker:Create{title}Job"],
                    resources=[_job_arn(self, kind)],
                    conditions=_create_job_conditions(placement, instance_types, vpc=True, output_key=True),
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=f"Follow{title}Jobs",
                    actions=[f"sagemaker:Describe{title}Job", f"sagemaker:Stop{title}Job", "sagemaker:AddTags"],
                    resources=[_job_arn(self, kind)],
                )
            )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RegisterModelsInTheGroup",
                actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:AddTags"],
                resources=[registry.packages_arn, registry.group_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassOnlyTheJobRoles",
                actions=["iam:PassRole"],
                resources=[self.training_role.role_arn, self.evaluation_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        self.resolver.function.grant_invoke(role)
        acknowledge(
            role.policy,
            f"AwsSolutions-IAM5[Resource::{finding_reference(role.policy, self.resolver.function.function_arn)}:*]",
            "The invoke grant covers the resolver function and its versions and aliases; nothing else.",
        )
        # The gate reads evaluation.json (the property file) with the pipeline's role.
        artifacts.grant_read(role, f"{EVALUATION_PREFIX}/*")
        placement.key.grant_decrypt(role)
        _acknowledge_pipeline_role(role, registry, artifacts, ("training-job", "processing-job"))


class BatchInferencePipeline(_Pipeline):
    """``<prefix>-batch-inference``: a model from a registered package, then a batch transform job over JSON Lines.

    Parameters: ``ModelPackageArn`` (a version of the group), ``InputPrefix`` (JSON Lines under the curated bucket's
    ``batch-inference/input/`` or ``datasets/``), ``InstanceType``, ``InstanceCount``. Predictions go to
    ``s3://<curated>/batch-inference/predictions/<execution id>/``, one line per input line.

    ``VPC_SERVICES``: S3 only; the model runs with network isolation (see :class:`TrainingPipeline`).
    """

    VPC_SERVICES = (
        VpcServiceUse(VpcService.S3, "the transform job reads inputs and the model, writes predictions via the VPC"),
    )

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        settings: TrainingConfig,
        default_model_package_arn: str | None,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        placement: JobPlacement,
        registry: ModelRegistry,
    ) -> None:
        super().__init__(scope, construct_id)
        images = settings.images
        self.model_role = JobExecutionRole(
            self,
            "ModelRole",
            name_prefix=name_prefix,
            kind="transform",
            repositories=[images.inference_repository],
            subnets=placement.subnets,
            security_group=placement.security_group,
        )
        curated_bucket.grant_read(self.model_role, f"{BATCH_INPUT_PREFIX}/*")
        curated_bucket.grant_read(self.model_role, f"{CURATED_DATASETS}/*")
        curated_bucket.grant_write(self.model_role, f"{BATCH_OUTPUT_PREFIX}/*")
        artifacts_bucket.grant_read(self.model_role, f"{MODELS_PREFIX}/*")
        placement.key.grant_encrypt_decrypt(self.model_role)
        _acknowledge_bucket_grants(
            self.model_role.policy,
            {
                curated_bucket: [BATCH_INPUT_PREFIX, CURATED_DATASETS, BATCH_OUTPUT_PREFIX],
                artifacts_bucket: [MODELS_PREFIX],
            },
        )

        curated = f"s3://{curated_bucket.bucket_name}"
        package = pd.ParameterString("ModelPackageArn", default_model_package_arn or "")
        input_prefix = pd.ParameterString("InputPrefix", f"{curated}/{BATCH_INPUT_PREFIX}/")
        instance_type = pd.ParameterString("InstanceType", settings.batch_instance_type)
        instance_count = pd.ParameterInteger("InstanceCount", settings.batch_instance_count)
        model = pd.ModelStep(
            name="CreateModel",
            arguments={
                "ExecutionRoleArn": self.model_role.role_arn,
                # A 1 MB mini-batch of the shortest JSON Lines ({"inputs":"x"}) is under 80,000 lines; the realtime
                # cap on texts per request (256 by default) must not fail a batch job.
                "Containers": [{"ModelPackageName": package, "Environment": {"INFERENCE_MAX_INPUTS": "80000"}}],
                "VpcConfig": placement.vpc_config(),
                "EnableNetworkIsolation": True,
            },
        )
        resources: dict[str, Any] = {"InstanceType": instance_type, "InstanceCount": instance_count}
        volume_key = volume_kms_key(settings.batch_instance_type, placement.key)
        if volume_key:
            resources["VolumeKmsKeyId"] = volume_key
        transform = pd.TransformStep(
            name="Predict",
            arguments={
                "ModelName": model.model_name,
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_prefix}},
                    "ContentType": JSON_LINES,
                    "SplitType": "Line",
                    "CompressionType": "None",
                },
                "TransformOutput": {
                    "S3OutputPath": pd.join("/", f"{curated}/{BATCH_OUTPUT_PREFIX}", pd.EXECUTION_ID),
                    "Accept": JSON_LINES,
                    "AssembleWith": "Line",
                    "KmsKeyId": placement.key.key_arn,
                },
                "TransformResources": resources,
                "BatchStrategy": "MultiRecord",
                "MaxPayloadInMB": 1,
            },
        )
        definition = pd.PipelineDefinition(
            parameters=[package, input_prefix, instance_type, instance_count], steps=[model, transform]
        )
        self.role = PlatformRole(
            self,
            "PipelineRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Runs the {name_prefix}-batch-inference pipeline: creates its model and transform jobs",
        )
        stack = cdk.Stack.of(self)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CreateModelsOnlyInTheVpcAndIsolated",
                actions=["sagemaker:CreateModel"],
                resources=[stack.format_arn(service="sagemaker", resource="model", resource_name="pipelines-*")],
                conditions={
                    "Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"},
                    "ForAllValues:StringEquals": _vpc_condition_values(placement),
                    "Bool": {"sagemaker:NetworkIsolation": "true"},
                },
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CreateTransformJobsOnlyTheWayThePlatformRunsThem",
                actions=["sagemaker:CreateTransformJob"],
                resources=[_job_arn(self, "transform-job")],
                conditions=_create_job_conditions(
                    placement, [settings.batch_instance_type], vpc=False, output_key=True
                ),
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="FollowItsJobsAndModels",
                actions=["sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob", "sagemaker:AddTags"],
                resources=[
                    _job_arn(self, "transform-job"),
                    stack.format_arn(service="sagemaker", resource="model", resource_name="pipelines-*"),
                ],
            )
        )
        registry.grant_read(self.role)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassOnlyTheModelRole",
                actions=["iam:PassRole"],
                resources=[self.model_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        _acknowledge_pipeline_role(self.role, registry, None, ("transform-job", "model"))
        self._create(
            name=f"{name_prefix}-batch-inference",
            description="Batch predictions for JSON Lines with a registered model",
            definition=definition,
            role=self.role,
        )
        self.resource.node.add_dependency(self.role.policy)


class _DatasetResolver(Construct):
    """The Lambda step that turns ``InputPrefix``/``DataPreparationRunId`` into a checked run prefix and a RunId."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        curated_bucket: s3.IBucket,
        placement: JobPlacement,
        log_retention_days: int,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = PlatformRole(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Training pipeline: reads the data preparation pointer and lists the run's channels",
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=placement.key,
            retention=retention_days(log_retention_days),
            removal_policy=removal_policy,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(RESOLVER_CODE), exclude=["__pycache__", "*.pyc"]),
            description="Training pipeline step: which data preparation run to train on",
            timeout=cdk.Duration.seconds(30),
            memory_size=256,
            role=self.role,
            log_group=self.log_group,
            vpc_subnets=ec2.SubnetSelection(subnets=list(placement.subnets)),
            vpc=placement.vpc,
            security_groups=[placement.security_group],
        )
        curated_bucket.grant_read(self.role, f"{CURATED_DATASETS}/*")
        placement.key.grant_decrypt(self.role)
        grant_network_interfaces(self.role)
        self.log_group.grant_write(self.role)
        _acknowledge_bucket_grants(self.role.policy, {curated_bucket: [CURATED_DATASETS]})
        function_resource = create_after_role_policy(self.function, self.role)
        dlq_reason = (
            "SageMaker Pipelines invokes this function synchronously and fails the step with its error; a dead-letter "
            "queue only receives failed asynchronous invocations."
        )
        concurrency_reason = (
            "One invocation per pipeline execution; a reservation would subtract from the account's unreserved pool "
            "and fails deploys on new accounts whose concurrency quota is 10."
        )
        justify_synchronous_vpc_function(
            function_resource,
            self.role,
            dlq_reason=dlq_reason,
            concurrency_reason=concurrency_reason,
            wildcard_reason="Resource * only for the EC2 network-interface calls Lambda makes for a VPC function, "
            "which support no resource-level scoping.",
        )
        acknowledge(
            self.role.policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Lambda manages the network interfaces of a VPC function with these EC2 calls, which have no "
            "resource-level scoping (the same statement AWS's AWSLambdaVPCAccessExecutionRole grants).",
        )


def _acknowledge_bucket_grants(policy: iam.ManagedPolicy, prefixes: dict[s3.IBucket, list[str]]) -> None:
    """The wildcards that CDK's bucket and key grants write, each acknowledged with the prefix it is limited to."""
    for bucket, names in prefixes.items():
        for name in names:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{finding_reference(policy, bucket.bucket_arn)}/{name}/*]",
                f"Objects under {name}/ only: the job reads or writes the files of one run there, named at run time.",
            )
    grant_actions = {
        "s3:GetObject*": "read objects (and their versions) under the named prefixes only",
        "s3:GetBucket*": "bucket configuration the S3 client checks, on the platform buckets only",
        "s3:List*": "list the named prefixes of the platform buckets",
        "s3:DeleteObject*": "replace its own objects (checkpoints, outputs) under the named prefixes",
        "s3:Abort*": "abort its own multipart uploads of large files under the named prefixes",
        "kms:GenerateDataKey*": "encrypt what it writes with the platform key (SSE-KMS), that key only",
        "kms:ReEncrypt*": "re-encrypt under the platform key when S3 copies objects, that key only",
    }
    granted = {
        action
        for statement in policy.document.to_json().get("Statement", [])
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    for action, scope in grant_actions.items():
        if action in granted:
            acknowledge(policy, f"AwsSolutions-IAM5[Action::{action}]", f"From the CDK grant: {scope}.")


def _acknowledge_pipeline_role(
    role: PlatformRole,
    registry: ModelRegistry,
    artifacts: s3.IBucket | None,
    job_kinds: Sequence[str],
) -> None:
    for kind in job_kinds:
        acknowledge(
            role.policy,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:{kind}/pipelines-*]",
            f"SageMaker Pipelines names each {kind} pipelines-<execution id>-<step>-<suffix> at run time; creation "
            "is limited by condition keys to the platform's subnets, key, isolation and instance types.",
        )
    acknowledge(
        role.policy,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/"
        f"{registry.group_name}/*]",
        f"Versions of the {registry.group_name} group only; version numbers are assigned at registration.",
    )
    reason = "sagemaker:ListModelPackages has no resource type; it lists package metadata, not model data."
    acknowledge(role.policy, "AwsSolutions-IAM5[Resource::*]", reason)
    justify_for_scanners(role.policy, "cfn_nag", "W13", reason)
    if artifacts is not None:
        _acknowledge_bucket_grants(role.policy, {artifacts: [EVALUATION_PREFIX]})
