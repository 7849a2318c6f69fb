"""Pipeline stack: data preparation (Glue), the SageMaker training and batch inference pipelines, the model registry,
their triggers and notifications, and (where the stage destroys its data on deletion) the run-time cleanup."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from components.compliance import justify_for_scanners
from components.data_preparation_job import DataPreparationJob
from components.pipeline_cleanup import PipelineCleanup
from components.pipeline_triggers import PipelineTriggers
from components.run_time_logs import SHARED_LOG_GROUPS
from components.training_pipeline import BatchInferencePipeline, JobPlacement, ModelRegistry, TrainingPipeline
from config import PlatformConfig
from config.accelerators import gpus_per_instance
from stacks.removal import removal_policy


class PipelineStack(cdk.Stack):
    """The Glue data preparation job, the training and batch inference pipelines, the registry and triggers.

    Attributes other stacks use: ``data_preparation`` (``job_name``, ``grant_start_run``), ``training`` and
    ``batch_inference`` (``grant_start_execution``), ``registry`` (``grant_read``, ``grant_approve``). ``cleanup`` is
    the :class:`PipelineCleanup` where the stage destroys its data on deletion (dev), else None.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        key: kms.IKey,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        vpc: ec2.IVpc,
        subnets: ec2.SelectedSubnets,
        security_group: ec2.ISecurityGroup,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        settings = config.data_preparation
        self.data_preparation = DataPreparationJob(
            self,
            "DataPreparation",
            name_prefix=config.prefix,
            raw_bucket=raw_bucket,
            curated_bucket=curated_bucket,
            key=key,
            subnet=subnets.subnets[0],
            security_group=security_group,
            worker_type=settings.worker_type,
            number_of_workers=settings.number_of_workers,
            timeout_minutes=settings.timeout_minutes,
            max_retries=settings.max_retries,
            log_retention_days=settings.log_retention_days,
            removal_policy=removal_policy(config),
            job_metrics=settings.job_metrics,
        )
        cdk.CfnOutput(self, "DataPreparationJobName", value=self.data_preparation.job_name)
        glue_policy = self.data_preparation.role.policy
        justify_for_scanners(
            glue_policy,
            "checkov",
            "CKV_AWS_111",
            "Write actions on Resource * that Glue needs for its VPC workers: ec2:CreateNetworkInterface and "
            "ec2:DeleteNetworkInterface (interfaces created and named at run time), and cloudwatch:PutMetricData, "
            "limited by condition to the Glue namespace.",
        )
        justify_for_scanners(
            glue_policy,
            "cfn_nag",
            "W13",
            "Resource * only for EC2 Describe* and network-interface actions Glue needs to place workers in the VPC, "
            "and cloudwatch:PutMetricData limited by condition to the Glue namespace.",
        )

        training = config.training
        placement = JobPlacement(vpc=vpc, subnets=subnets.subnets, security_group=security_group, key=key)
        self.registry = ModelRegistry(
            self, "ModelRegistry", group_name=config.model_package_group_name, removal_policy=removal_policy(config)
        )
        hosting = config.serving.instance_type
        self.training = TrainingPipeline(
            self,
            "TrainingPipeline",
            name_prefix=config.prefix,
            settings=training,
            hosting_instance_types=[hosting or training.batch_instance_type],
            cpu_hosting=hosting is None or gpus_per_instance(hosting) == 0,
            curated_bucket=curated_bucket,
            artifacts_bucket=artifacts_bucket,
            placement=placement,
            registry=self.registry,
            log_retention_days=config.log_retention_days,
            removal_policy=removal_policy(config),
        )
        self.batch_inference = BatchInferencePipeline(
            self,
            "BatchInferencePipeline",
            name_prefix=config.prefix,
            settings=training,
            default_model_package_arn=config.serving.model_package_arn,
            curated_bucket=curated_bucket,
            artifacts_bucket=artifacts_bucket,
            placement=placement,
            registry=self.registry,
        )
        self.triggers = PipelineTriggers(
            self,
            "Triggers",
            training=self.training,
            batch_inference=self.batch_inference,
            registry=self.registry,
            glue_job_name=self.data_preparation.job_name,
            schedule=training.schedule,
            emails=training.notification_emails,
            key=key,
        )
        self.cleanup: PipelineCleanup | None = None
        if removal_policy(config) == cdk.RemovalPolicy.DESTROY:
            # Where the group goes with the stack, its packages and the pipelines' running executions go first.
            self.cleanup = PipelineCleanup(
                self,
                "PipelineCleanup",
                pipelines=[self.training, self.batch_inference],
                registry=self.registry,
                placement=placement,
                shared_log_groups=SHARED_LOG_GROUPS,
                stream_name_prefix=f"{config.prefix}-",
                log_retention_days=config.log_retention_days,
                removal_policy=removal_policy(config),
            )
            # Deleted before the cleanup runs, so no trigger starts an execution while it waits.
            for rule in self.triggers.start_rules:
                rule.node.add_dependency(self.cleanup.resource)
        cdk.CfnOutput(self, "TrainingPipelineName", value=self.training.pipeline_name)
        cdk.CfnOutput(self, "BatchInferencePipelineName", value=self.batch_inference.pipeline_name)
        cdk.CfnOutput(self, "ModelPackageGroupName", value=self.registry.group_name)
        cdk.CfnOutput(self, "NotificationTopicArn", value=self.triggers.topic.topic_arn)
