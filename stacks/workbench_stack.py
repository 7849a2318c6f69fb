"""Workbench stack: the team's notebook instances and the package repository they install from."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from components.data_preparation_job import DataPreparationJob
from components.inference_api import InferenceApi
from components.inference_endpoint import InferenceEndpoint
from components.notebook_workbench import NotebookWorkbench
from components.package_repository import PackageRepository
from components.training_pipeline import BatchInferencePipeline, ModelRegistry, TrainingPipeline
from config import PlatformConfig
from stacks.removal import removal_policy


class WorkbenchStack(cdk.Stack):
    """One notebook instance per configured user, their shared role and lifecycle configs, and the CodeArtifact
    repository that proxies PyPI for notebooks and training jobs.

    The notebooks' role is wired here to what the other stacks hold, through their grants: the data preparation
    job (start and follow runs), both pipelines (start and follow executions), the training pipeline's evaluation
    reports (read), the model registry (read and approve), the inference endpoint where the stage has one (invoke,
    through its ``grant_invoke``: the Serving stack deploys first), and SageMaker jobs under the conditions of
    :meth:`NotebookWorkbench.allow_sagemaker_jobs`.

    Attributes other stacks use: ``workbench`` (``role``; None when the stage configures no users) and
    ``package_repository`` (``grant_read``).
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
        subnets: ec2.SelectedSubnets,
        security_group: ec2.ISecurityGroup,
        data_preparation: DataPreparationJob,
        training_pipeline: TrainingPipeline,
        batch_inference_pipeline: BatchInferencePipeline,
        model_registry: ModelRegistry,
        endpoint: InferenceEndpoint | None = None,
        api: InferenceApi | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        removal = removal_policy(config)
        self.package_repository = PackageRepository(
            self, "PackageRepository", domain_name=f"{config.prefix}-packages", key=key, removal_policy=removal
        )
        cdk.CfnOutput(self, "PackageRepositoryDomain", value=self.package_repository.domain_name)
        cdk.CfnOutput(self, "PackageRepositoryName", value=self.package_repository.repository_name)
        # A stage without users still gets the package repository, which training jobs use too.
        self.workbench: NotebookWorkbench | None = None
        if config.workbench.users:
            self.workbench = self._notebooks(
                config=config,
                key=key,
                raw_bucket=raw_bucket,
                curated_bucket=curated_bucket,
                artifacts_bucket=artifacts_bucket,
                subnets=subnets,
                security_group=security_group,
                data_preparation=data_preparation,
                pipelines=(training_pipeline, batch_inference_pipeline),
                model_registry=model_registry,
                endpoint=endpoint,
                api=api,
                removal=removal,
            )

    def _notebooks(
        self,
        *,
        config: PlatformConfig,
        key: kms.IKey,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        subnets: ec2.SelectedSubnets,
        security_group: ec2.ISecurityGroup,
        data_preparation: DataPreparationJob,
        pipelines: tuple[TrainingPipeline, BatchInferencePipeline],
        model_registry: ModelRegistry,
        endpoint: InferenceEndpoint | None,
        api: InferenceApi | None,
        removal: cdk.RemovalPolicy,
    ) -> NotebookWorkbench:
        """The users' notebook instances, their role wired to the platform's resources, and one output per user."""
        # The endpoint exists only while the stage config names a model; the environment file leaves it empty then.
        endpoint_name = endpoint.endpoint_name if endpoint is not None else ""
        workbench = NotebookWorkbench(
            self,
            "Notebooks",
            notebooks={config.notebook_name(user): user for user in config.workbench.users},
            platform_identifier=config.workbench.platform_identifier,
            subnets=subnets.subnets,
            security_group=security_group,
            key=key,
            raw_bucket=raw_bucket,
            curated_bucket=curated_bucket,
            artifacts_bucket=artifacts_bucket,
            package_repository=self.package_repository,
            parameters={
                "GLUE_JOB_NAME": data_preparation.job_name,
                "PIPELINE_NAME": pipelines[0].pipeline_name,
                "MODEL_PACKAGE_GROUP_NAME": model_registry.group_name,
                "ENDPOINT_NAME": endpoint_name,
                "INFERENCE_API_URL": api.url if api is not None else "",
            },
            removal_policy=removal,
        )
        data_preparation.grant_start_run(workbench.role)
        for pipeline in pipelines:
            pipeline.grant_start_execution(workbench.role)
        # The metrics of a model before approving it (notebooks/02_train_and_register.ipynb).
        pipelines[0].grant_read_evaluations(workbench.role)
        model_registry.grant_approve(workbench.role)
        if endpoint is not None:
            endpoint.grant_invoke(workbench.role)
            endpoint.grant_describe(workbench.role)
        # No execute-api grant: the API is public and regional, and the notebooks have no route to it (no internet;
        # an execute-api VPC endpoint reaches private APIs only). They call the endpoint directly.
        workbench.allow_sagemaker_jobs(
            job_name_prefix=config.prefix,
            subnets=subnets.subnets,
            security_group=security_group,
            key=key,
            training_instance_types=[config.training.instance_type],
            processing_instance_types=[config.training.processing_instance_type],
            execution_role_name_prefix=f"{config.prefix}-sagemaker-",
        )

        cdk.CfnOutput(self, "NotebookRoleArn", value=workbench.role.role_arn)
        for user in config.workbench.users:
            name = config.notebook_name(user)
            cdk.CfnOutput(
                self,
                "Notebook" + "".join(part.capitalize() for part in user.name.split("-")),
                value=workbench.instances[name].attr_notebook_instance_name,
                description=f"Open with: aws sagemaker create-presigned-notebook-instance-url "
                f"--notebook-instance-name {name}",
            )
        return workbench
