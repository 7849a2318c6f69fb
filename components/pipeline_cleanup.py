"""Run-time cleanup on stack deletion: what the pipelines create outside CloudFormation must go before they can.

CloudFormation cannot delete a SageMaker pipeline with running executions nor a model package group that still holds
packages, and both are created at run time. :class:`PipelineCleanup` is a custom resource whose function
(``lambda_handlers/pipeline_cleanup/``) does nothing on Create and Update and, on Delete, stops the pipelines'
running executions, waits until they have stopped, deletes the group's model packages and then deletes the stage's
own log streams in the log groups SageMaker shares across the account (``components/run_time_logs.py``): those named
after the jobs the pipelines ran and those starting with the stage's prefix (its notebooks, the jobs they start). It
depends on the pipelines and the group (and on its own role's policy), so CloudFormation creates it after them and
deletes it before them. The Workbench stack depends on this stack, so its notebooks are gone by then and write no
more streams.

Only stages that destroy their data on deletion (dev) have it: where the group is retained (prod), its packages are
kept too. Note that CloudFormation also deletes the resource when a deploy removes it from the template (switching a
stage to ``data.retain_on_delete``), which runs the cleanup then.

A plain ``CustomResource`` whose service token is this function, rather than ``custom_resources.Provider``: the
Provider adds a framework function of its own (outside the VPC, AWSLambdaBasicExecutionRole, an inline policy, no
dead-letter queue or reserved concurrency), 12 more cdk-nag findings across the four packs on a minimal stack, for
what the handler does itself in a few lines: answer CloudFormation's pre-signed response URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from components.compliance import acknowledge
from components.log_retention import retention_days
from components.platform_role import PlatformRole
from components.run_time_logs import RunTimeLogGroup
from components.training_pipeline import BatchInferencePipeline, JobPlacement, ModelRegistry, TrainingPipeline
from components.vpc_function import create_after_role_policy, grant_network_interfaces, justify_synchronous_vpc_function
from components.vpc_services import VpcService, VpcServiceUse

CLEANUP_CODE = Path(__file__).resolve().parent.parent / "lambda_handlers" / "pipeline_cleanup"
# The most Lambda allows: stopping a running training job takes minutes. The handler stops waiting 150 s before this.
FUNCTION_TIMEOUT = cdk.Duration.minutes(15)
# How long CloudFormation waits for an answer: past the function's timeout, so only a function that died unanswered
# reaches it (instead of CloudFormation's default hour).
ANSWER_TIMEOUT = cdk.Duration.minutes(20)
RESOURCE_TYPE = "Custom::PipelineCleanup"
# SageMaker Pipelines name the jobs they run pipelines-<execution id>-<step name>-<suffix>.
PIPELINE_JOB_PREFIX = "pipelines-"


def _by_name(group: RunTimeLogGroup) -> str:
    return group.name


def _step_job(group: RunTimeLogGroup) -> dict[str, str]:
    """The step-metadata key naming the group's jobs in ListPipelineExecutionSteps, for groups of job kinds."""
    return {"PipelineStepJob": group.step_metadata_key} if group.step_metadata_key else {}


class PipelineCleanup(Construct):
    """On stack deletion, stop the running executions of ``pipelines``, delete the model packages of ``registry``
    and delete the stage's log streams in ``shared_log_groups``.

    :param pipelines: the pipelines whose executions are stopped (both of the stage).
    :param registry: the model package group that is emptied.
    :param placement: the isolated subnets and workload security group the function runs in (it reaches SageMaker
        through the ``sagemaker.api`` endpoint and CloudFormation's response URL through the S3 gateway endpoint),
        and the key of its log group.
    :param shared_log_groups: the SageMaker log groups shared across the account whose streams of this stage are
        deleted (``run_time_logs.SHARED_LOG_GROUPS``); the function may describe those groups and delete only streams
        whose names start with ``stream_name_prefix`` or, in job groups, ``pipelines-`` (it deletes only the ones its
        pipelines' execution steps name).
    :param stream_name_prefix: the start of every notebook and notebook-started job name of the stage
        (``<prefix>-``).
    :param log_retention_days: retention of the function's log group. :param removal_policy: for that log group.

    Attributes: ``resource`` (the custom resource), ``function``, ``role``, ``log_group``.
    """

    VPC_SERVICES = (
        VpcServiceUse(VpcService.SAGEMAKER_API, "stops pipeline executions, deletes model packages on stack deletion"),
        VpcServiceUse(VpcService.S3, "answers CloudFormation's pre-signed S3 response URL"),
        VpcServiceUse(VpcService.CLOUDWATCH_LOGS, "deletes the stage's streams in SageMaker's shared log groups"),
    )

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipelines: Sequence[TrainingPipeline | BatchInferencePipeline],
        registry: ModelRegistry,
        placement: JobPlacement,
        shared_log_groups: Sequence[RunTimeLogGroup],
        stream_name_prefix: str,
        log_retention_days: int,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        names = [pipeline.pipeline_name for pipeline in pipelines]
        if not stream_name_prefix.endswith("-") or len(stream_name_prefix) < 3:
            raise ValueError(
                f"{self.node.path}: stream_name_prefix={stream_name_prefix!r} must be the stage's '<prefix>-' (ending "
                "in '-'), so that no other stage's streams match it"
            )
        shared = [group for group in shared_log_groups if group.shared]
        if len(shared) != len(shared_log_groups):
            raise ValueError(
                f"{self.node.path}: shared_log_groups may only hold groups SageMaker shares across the account; "
                f"{sorted(g.name for g in shared_log_groups if not g.shared)} belong to a stack, which deletes them"
            )
        self.role = PlatformRole(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Stack deletion: stops executions of {', '.join(names)}, empties {registry.group_name}",
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
            code=lambda_.Code.from_asset(str(CLEANUP_CODE), exclude=["__pycache__", "*.pyc"]),
            description="Stack deletion: stop running pipeline executions, delete the model packages",
            timeout=FUNCTION_TIMEOUT,
            memory_size=256,
            role=self.role,
            log_group=self.log_group,
            vpc=placement.vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(placement.subnets)),
            security_groups=[placement.security_group],
        )
        # Before the grants, whose acknowledgment of the same finding names only their own statement (the first wins).
        acknowledge(
            self.role.policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Only sagemaker:ListModelPackages (no resource type; package metadata, not model data) and the EC2 "
            "network-interface calls Lambda makes for a VPC function, which have no resource-level scoping.",
        )
        for pipeline in pipelines:
            pipeline.grant_stop_executions(self.role)
        registry.grant_delete_packages(self.role)
        self._grant_delete_streams(shared, stream_name_prefix)
        grant_network_interfaces(self.role)
        self.log_group.grant_write(self.role)
        function_resource = create_after_role_policy(self.function, self.role)

        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=self.function.function_arn,
            resource_type=RESOURCE_TYPE,
            properties={
                "PipelineNames": names,
                "ModelPackageGroupName": registry.group_name,
                "LogStreams": {
                    "StreamNamePrefix": stream_name_prefix,
                    "LogGroups": [
                        {"LogGroupName": group.name, **_step_job(group)} for group in sorted(shared, key=_by_name)
                    ],
                },
            },
            service_timeout=ANSWER_TIMEOUT,
        )
        # Deleted before what it cleans up, and before its own permissions (the function still needs them then).
        self.resource.node.add_dependency(*(pipeline.resource for pipeline in pipelines), registry.resource)
        self.resource.node.add_dependency(self.role.policy)
        self._justify(function_resource)

    def _grant_delete_streams(self, groups: Sequence[RunTimeLogGroup], stream_name_prefix: str) -> None:
        """Describe the shared groups' streams; delete only those that start with the stage's prefix or, in the job
        groups, ``pipelines-`` (pipelines name their jobs so; the function deletes only its own pipelines' ones)."""
        stack = cdk.Stack.of(self)

        def group_arn(name: str, suffix: str) -> str:
            return stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"{name}{suffix}",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )

        finding = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        stream_arns = []
        for group in sorted(groups, key=_by_name):
            prefixes = [stream_name_prefix, *((PIPELINE_JOB_PREFIX,) if group.step_metadata_key else ())]
            for prefix in prefixes:
                stream_arns.append(group_arn(group.name, f":log-stream:{prefix}*"))
                acknowledge(
                    self.role.policy,
                    f"AwsSolutions-IAM5[Resource::{finding}{group.name}:log-stream:{prefix}*]",
                    f"Delete log streams of {group.name} whose names start with {prefix} only: SageMaker names each "
                    "stream after its job or notebook; the function deletes only the streams of this stage's "
                    "notebooks and jobs, on stack deletion in dev.",
                )
            acknowledge(
                self.role.policy,
                f"AwsSolutions-IAM5[Resource::{finding}{group.name}:*]",
                f"Describe the streams of {group.name} (CloudWatch Logs writes a group's ARN with a :* suffix) to find "
                "this stage's streams; SageMaker fixes the group's name and shares it across the account.",
            )
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["logs:DescribeLogStreams"],
            resource_arns=[group_arn(group.name, ":*") for group in sorted(groups, key=_by_name)],
        )
        iam.Grant.add_to_principal(grantee=self.role, actions=["logs:DeleteLogStream"], resource_arns=stream_arns)

    def _justify(self, function_resource: cdk.CfnResource) -> None:
        dlq_reason = (
            "CloudFormation invokes this custom-resource function during stack deletion and waits for the answer it "
            "sends to the response URL; every failure is answered as FAILED with its reason, so a dead-letter queue "
            "would keep events nobody replays."
        )
        concurrency_reason = (
            "Runs once per deletion of the stack; a reservation would subtract from the account's unreserved pool "
            "and fails deploys on new accounts whose concurrency quota is 10."
        )
        justify_synchronous_vpc_function(
            function_resource,
            self.role,
            dlq_reason=dlq_reason,
            concurrency_reason=concurrency_reason,
            wildcard_reason="Resource * only for the EC2 network-interface calls Lambda makes for a VPC function and "
            "for sagemaker:ListModelPackages, neither of which supports resource-level scoping.",
        )
