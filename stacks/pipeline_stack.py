"""Pipeline stack: data preparation (Glue) now; the SageMaker training pipeline and registry build on it."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from components.data_preparation_job import DataPreparationJob
from config import PlatformConfig
from stacks.removal import removal_policy


class PipelineStack(cdk.Stack):
    """The Glue data preparation job, its security configuration, VPC connection, logs and role.

    Attribute other stacks use: ``data_preparation`` (``job_name``, ``grant_start_run``).
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
        )
        cdk.CfnOutput(self, "DataPreparationJobName", value=self.data_preparation.job_name)
