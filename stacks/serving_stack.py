"""Serving stack: the inference endpoint of the stage's model, its scaling and safe updates, the Lambda wrapper and
REST API in front of it, and their monitoring. Built only when the stage config names a model."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from components.inference_api import InferenceApi
from components.inference_endpoint import InferenceEndpoint
from components.log_retention import retention_days
from components.sagemaker_jobs import dlc_image_uri, dlc_repository_arn
from components.serving_monitoring import ServingMonitoring
from components.training_pipeline import MODELS_PREFIX, JobPlacement
from config import PlatformConfig
from config.accelerators import gpus_per_instance
from config.settings import ECR_IMAGE
from stacks.removal import removal_policy


class ServingStack(cdk.Stack):
    """The stage's real-time inference endpoint (:class:`InferenceEndpoint`), serverless or autoscaled instances.

    The model is ``config.serving.model_package_arn`` (an approved package; ``-c model_package_arn`` overrides it
    for one synth) or ``config.serving.model_data_url`` with ``inference_image`` (by default the stage's Hugging Face
    inference container, CPU or GPU after the hosting instance type). Instance endpoints run in the isolated subnets
    with the workload security group; data capture goes to the curated bucket.

    In front of it, :class:`InferenceApi` (the classify Lambda in the isolated subnets and the IAM-authenticated REST
    API ``POST /v1/classify``) and :class:`ServingMonitoring` (alarms, SNS topic, dashboard ``<prefix>-serving``).

    Attributes other stacks use: ``endpoint`` (``grant_invoke``, ``endpoint_name``, ``metric_*``) and ``api``
    (``grant_invoke``, ``url``). Outputs: the endpoint name, the API URL, the alarm topic.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        key: kms.IKey,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        vpc: ec2.IVpc,
        subnets: ec2.SelectedSubnets,
        security_group: ec2.ISecurityGroup,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        serving = config.serving
        if not serving.has_model:
            raise ValueError(
                f"{construct_id}: the stage names no model (serving.model_package_arn or serving.model_data_url); "
                "build no Serving stack for it"
            )
        images = config.training.images
        instances = not serving.is_serverless
        image_uri: str | None = None
        if serving.inference_image is not None:
            image_uri = serving.inference_image
            match = ECR_IMAGE.fullmatch(image_uri)
            assert match is not None  # validated by the config
            repository_arns = [
                f"arn:{self.partition}:ecr:{match['region']}:{match['account']}:repository/{match['repository']}"
            ]
        else:
            # The registered package names the platform's inference container too (TrainingPipeline), so pulling
            # from its repository covers both sources.
            repository_arns = [dlc_repository_arn(self, images.inference_repository)]
            if serving.model_data_url is not None:
                gpu = serving.instance_type is not None and gpus_per_instance(serving.instance_type) > 0
                tag = images.inference_gpu_tag if gpu else images.inference_cpu_tag
                image_uri = dlc_image_uri(self, images.inference_repository, tag)

        self.endpoint = InferenceEndpoint(
            self,
            "Endpoint",
            endpoint_name=config.endpoint_name,
            key=key,
            artifacts_bucket=artifacts_bucket,
            artifacts_prefix=MODELS_PREFIX,
            image_repository_arns=repository_arns,
            model_package_arn=serving.model_package_arn,
            model_data_url=serving.model_data_url,
            image_uri=image_uri,
            instance_type=serving.instance_type,
            min_instances=serving.min_instances,
            max_instances=serving.max_instances,
            invocations_per_instance_target=serving.invocations_per_instance_target,
            scale_in_cooldown=cdk.Duration.seconds(serving.scale_in_cooldown_seconds),
            scale_out_cooldown=cdk.Duration.seconds(serving.scale_out_cooldown_seconds),
            out_of_hours=serving.out_of_hours,
            canary=serving.canary,
            subnets=subnets.subnets if instances else (),
            security_group=security_group if instances else None,
            data_capture_bucket=curated_bucket if serving.data_capture else None,
            data_capture_sampling_percent=serving.data_capture_sampling_percent,
            serverless_memory_mb=serving.serverless_memory_mb,
            serverless_max_concurrency=serving.serverless_max_concurrency,
            # The endpoint's container logs follow the stage's log retention, like the platform's other log groups.
            log_retention=retention_days(config.log_retention_days),
            removal_policy=removal_policy(config),
        )

        # The front door: the classify Lambda (lambda_handlers/classify/) in the isolated subnets, granted
        # InvokeEndpoint through the endpoint, behind the IAM-authenticated REST API.
        self.api = InferenceApi(
            self,
            "Api",
            endpoint=self.endpoint,
            serving=serving,
            placement=JobPlacement(vpc=vpc, subnets=subnets.subnets, security_group=security_group, key=key),
            name_prefix=config.prefix,
            stage_name=config.stage,
            removal_policy=removal_policy(config),
        )
        # Alarms on the endpoint, the function and the API, one SNS topic and one dashboard; the endpoint's canary
        # rollback alarms get the topic as their action instead of being duplicated.
        self.monitoring = ServingMonitoring(
            self,
            "Monitoring",
            endpoint=self.endpoint,
            api=self.api,
            settings=serving.monitoring,
            instance_type=serving.instance_type,
            invocations_per_instance_target=serving.invocations_per_instance_target,
            key=key,
            dashboard_name=f"{config.prefix}-serving",
        )

        cdk.CfnOutput(
            self,
            "EndpointName",
            value=self.endpoint.endpoint_name,
            description="The SageMaker endpoint serving the stage's model (sagemaker-runtime InvokeEndpoint)",
        )
        cdk.CfnOutput(
            self,
            "ApiUrl",
            value=self.api.url,
            description='POST {"inputs": str | [str]} here, signed with SigV4 (service execute-api)',
        )
        cdk.CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.monitoring.topic.topic_arn,
            description="Serving alarms are published here; subscribe with serving.monitoring.emails",
        )
