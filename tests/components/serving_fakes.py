"""A stand-in for the inference endpoint component, for the serving front-door and monitoring tests.

It implements the endpoint contract that ``components.inference_api.InvocableEndpoint`` and
``components.serving_monitoring.MonitoredEndpoint`` describe, with real CloudWatch metrics and alarms on a fixed
endpoint name, and the small stack around it (the platform key, an imported isolated VPC and security group).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from components.training_pipeline import JobPlacement

ENDPOINT_NAME = "nlp-test-inference"
VARIANT = "AllTraffic"


class FakeEndpoint(Construct):
    """An endpoint as the contract describes it; ``rollback`` adds the canary's 5XX and latency alarms."""

    def __init__(
        self, scope: Construct, construct_id: str, *, serverless: bool, max_instances: int | None, rollback: bool
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.endpoint_name = ENDPOINT_NAME
        self.endpoint_arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:endpoint/{ENDPOINT_NAME}"
        self.is_serverless = serverless
        self.max_instances = max_instances
        self.rollback_alarms: Sequence[cloudwatch.Alarm] = ()
        if rollback:
            self.rollback_alarms = (
                cloudwatch.Alarm(
                    self,
                    "Rollback5xx",
                    metric=self.metric_invocation_5xx_errors(statistic="Sum"),
                    threshold=1,
                    evaluation_periods=1,
                ),
                cloudwatch.Alarm(
                    self, "RollbackLatency", metric=self.metric_model_latency(), threshold=500_000, evaluation_periods=1
                ),
            )

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
        )

    def _metric(self, name: str, namespace: str = "AWS/SageMaker", **props: Any) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=name,
            dimensions_map={"EndpointName": ENDPOINT_NAME, "VariantName": VARIANT},
            **{"statistic": "Sum", **props},
        )

    def metric_invocations(self, **props: Any) -> cloudwatch.Metric:
        return self._metric("Invocations", **props)

    def metric_invocation_5xx_errors(self, **props: Any) -> cloudwatch.Metric:
        return self._metric("Invocation5XXErrors", **props)

    def metric_invocation_4xx_errors(self, **props: Any) -> cloudwatch.Metric:
        return self._metric("Invocation4XXErrors", **props)

    def metric_model_latency(self, **props: Any) -> cloudwatch.Metric:
        return self._metric("ModelLatency", **{"statistic": "p99", **props})

    def metric_invocations_per_instance(self, **props: Any) -> cloudwatch.Metric:
        return self._metric("InvocationsPerInstance", **props)

    def metric_cpu_utilization(self, **props: Any) -> cloudwatch.Metric:
        return self._metric("CPUUtilization", "/aws/sagemaker/Endpoints", **{"statistic": "Average", **props})

    def metric_gpu_utilization(self, **props: Any) -> cloudwatch.Metric:
        return self._metric("GPUUtilization", "/aws/sagemaker/Endpoints", **{"statistic": "Average", **props})

    def metric_memory_utilization(self, **props: Any) -> cloudwatch.Metric:
        return self._metric("MemoryUtilization", "/aws/sagemaker/Endpoints", **{"statistic": "Average", **props})


def placement(stack: cdk.Stack) -> JobPlacement:
    """The platform key and an imported isolated subnet and security group (no VPC resource to check)."""
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=["us-east-1a"],
        isolated_subnet_ids=["subnet-0123456789abcdef0"],
        isolated_subnet_route_table_ids=["rtb-0123456789abcdef0"],
    )
    security_group = ec2.SecurityGroup.from_security_group_id(stack, "WorkloadSecurityGroup", "sg-0123456789abcdef0")
    return JobPlacement(vpc=vpc, subnets=vpc.isolated_subnets, security_group=security_group, key=key)
