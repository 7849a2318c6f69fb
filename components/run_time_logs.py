"""The CloudWatch log groups that AWS services write at run time for the platform's workloads, in one place.

Services create these groups themselves the first time a workload logs, outside CloudFormation, so ``cdk destroy``
would leave them behind (with no retention: stored, and billed, for ever). Each one is handled in one of two ways:

- :attr:`Ownership.STACK`: the name is predictable and belongs to one stage (a Glue job's custom log group prefix, a
  Lambda function's group, an endpoint's group). The stack that creates the writer creates the group first, with the
  platform key, the stage's retention and its removal policy, so the service writes into it and ``cdk destroy``
  removes it in dev.
- :attr:`Ownership.SHARED`: SageMaker fixes the name and every notebook and job of the account and region writes
  there (dev and prod may share an account, other teams too), so no stack may own or delete the group. Each stream
  is named after the job or notebook that wrote it; in dev, the run-time cleanup
  (:class:`components.pipeline_cleanup.PipelineCleanup`) deletes the stage's own streams on stack deletion: those
  whose names start with ``<prefix>-`` (notebooks and the jobs that notebooks start, which the notebook role may only
  name so) and those of the jobs that the stage's pipelines ran (``pipelines-<execution>-<step>-<suffix>``, found
  through the executions' steps, never by a name pattern another stage's pipelines share).

Stream naming from the SageMaker Developer Guide ("Log groups and streams that Amazon SageMaker AI sends to Amazon
CloudWatch Logs") and, for notebooks, the CreateNotebookInstanceLifecycleConfig API reference (``[notebook-instance-
name]/[LifecycleConfigHook]``). Glue 5.0 writes only the ``error`` and ``output`` groups under
``--custom-logGroup-prefix`` (AWS Glue Developer Guide, "Logging for AWS Glue jobs"); see
:class:`components.data_preparation_job.DataPreparationJob`.

``tests/stacks/test_teardown.py`` reads the synthesized dev templates, finds every writer (functions, Glue jobs,
notebook instances, pipeline job steps, the roles that may start jobs, endpoints, flow logs) and checks that each
one's group is either a stack resource that dev deletes or covered by the cleanup's stream prefixes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from components.log_retention import retention_days


class Ownership(Enum):
    """Who may create and delete a run-time log group."""

    STACK = "created by the stack that creates the writer: key, retention and removal policy from config"
    SHARED = "named by the service and shared across the account and region: dev deletes only its own streams"


@dataclass(frozen=True)
class RunTimeLogGroup:
    """One log group a service writes at run time for a kind of workload.

    :param writer: the workload that makes the service write there.
    :param name: the log group's name; ``<...>`` marks a part that depends on the writer.
    :param ownership: see :class:`Ownership`.
    :param streams: how the service names the streams in the group.
    :param pipeline_step_type: for SageMaker jobs, the pipeline step ``Type`` that runs one (``Training``), else None.
    :param step_metadata_key: the key of ``ListPipelineExecutionSteps``' step ``Metadata`` that holds that job's ARN
        (``TrainingJob``), else None.
    """

    writer: str
    name: str
    ownership: Ownership
    streams: str
    pipeline_step_type: str | None = None
    step_metadata_key: str | None = None

    @property
    def shared(self) -> bool:
        return self.ownership is Ownership.SHARED


TRAINING_JOBS = RunTimeLogGroup(
    writer="SageMaker training jobs",
    name="/aws/sagemaker/TrainingJobs",
    ownership=Ownership.SHARED,
    streams="<training job name>/algo-<instance number>-<epoch>",
    pipeline_step_type="Training",
    step_metadata_key="TrainingJob",
)
PROCESSING_JOBS = RunTimeLogGroup(
    writer="SageMaker processing jobs",
    name="/aws/sagemaker/ProcessingJobs",
    ownership=Ownership.SHARED,
    streams="<processing job name>/<host>-<epoch>",
    pipeline_step_type="Processing",
    step_metadata_key="ProcessingJob",
)
TRANSFORM_JOBS = RunTimeLogGroup(
    writer="SageMaker batch transform jobs",
    name="/aws/sagemaker/TransformJobs",
    ownership=Ownership.SHARED,
    streams="<transform job name>/<instance id>-<epoch>, and .../data-log",
    pipeline_step_type="Transform",
    step_metadata_key="TransformJob",
)
NOTEBOOK_INSTANCES = RunTimeLogGroup(
    writer="SageMaker notebook instances",
    name="/aws/sagemaker/NotebookInstances",
    ownership=Ownership.SHARED,
    streams="<notebook instance name>/jupyter.log, <name>/LifecycleConfigOnCreate, <name>/LifecycleConfigOnStart",
)
GLUE_JOB_ERROR = RunTimeLogGroup(
    writer="Glue 5.0 job (driver, executor and Spark logs)",
    name="<--custom-logGroup-prefix>/<security configuration>-role/<role name>/error",
    ownership=Ownership.STACK,
    streams="<job run id>-driver, <job run id>-<executor number>",
)
GLUE_JOB_OUTPUT = RunTimeLogGroup(
    writer="Glue 5.0 job (stdout and stderr)",
    name="<--custom-logGroup-prefix>/<security configuration>-role/<role name>/output",
    ownership=Ownership.STACK,
    streams="<job run id>-driver, <job run id>-<executor number>",
)
LAMBDA_FUNCTION = RunTimeLogGroup(
    writer="Lambda functions (the platform's and aws-cdk-lib's custom-resource providers)",
    name="a group of the function's stack, named in its LoggingConfig (else Lambda writes /aws/lambda/<function>)",
    ownership=Ownership.STACK,
    streams="<date>/[<version>]<instance id>",
)
ENDPOINT = RunTimeLogGroup(
    writer="SageMaker real-time endpoints",
    name="/aws/sagemaker/Endpoints/<endpoint name>",
    ownership=Ownership.STACK,
    streams="<variant name>/<instance id>",
)

RUN_TIME_LOG_GROUPS: tuple[RunTimeLogGroup, ...] = (
    TRAINING_JOBS,
    PROCESSING_JOBS,
    TRANSFORM_JOBS,
    NOTEBOOK_INSTANCES,
    GLUE_JOB_ERROR,
    GLUE_JOB_OUTPUT,
    LAMBDA_FUNCTION,
    ENDPOINT,
)
SHARED_LOG_GROUPS: tuple[RunTimeLogGroup, ...] = tuple(group for group in RUN_TIME_LOG_GROUPS if group.shared)
# The shared group of each kind of SageMaker job, by the kind's name in IAM ARNs (``training-job``) and roles.
JOB_LOG_GROUPS: Mapping[str, RunTimeLogGroup] = {
    "training": TRAINING_JOBS,
    "processing": PROCESSING_JOBS,
    "transform": TRANSFORM_JOBS,
}


def give_functions_log_groups(
    stack: cdk.Stack, *, key: kms.IKey, log_retention_days: int, removal_policy: cdk.RemovalPolicy
) -> list[logs.LogGroup]:
    """Give every Lambda function of ``stack`` that names no log group one of its own; return the groups created.

    Meant for aws-cdk-lib's own custom-resource providers (``Custom::S3AutoDeleteObjects``,
    ``Custom::VpcRestrictDefaultSG``): they set no ``LoggingConfig``, so Lambda would create
    ``/aws/lambda/<function>`` at their first run, unencrypted, without retention, and keep it after ``cdk destroy``.
    The group is created next to the function (a ``Logs`` child of its parent) and named in the function's
    ``LoggingConfig``, which makes CloudFormation create it before the function and delete it after the function
    (and so after every custom resource the function serves). A platform function that sets ``log_group`` is left
    alone. Call once the stack is complete.
    """
    created = []
    for function in _functions_without_log_group(stack.node.find_all()):
        parent = function.node.scope
        assert isinstance(parent, Construct)  # a resource always has a parent construct
        log_group = logs.LogGroup(
            parent,
            "Logs",
            encryption_key=key,
            retention=retention_days(log_retention_days),
            removal_policy=removal_policy,
        )
        if isinstance(function, lambda_.CfnFunction):
            function.logging_config = lambda_.CfnFunction.LoggingConfigProperty(log_group=log_group.log_group_name)
        else:
            function.add_property_override("LoggingConfig.LogGroup", log_group.log_group_name)
        created.append(log_group)
    return created


def _functions_without_log_group(constructs: Iterable[object]) -> list[cdk.CfnResource]:
    found = []
    for construct in constructs:
        if not isinstance(construct, cdk.CfnResource) or construct.cfn_resource_type != "AWS::Lambda::Function":
            continue
        if isinstance(construct, lambda_.CfnFunction):
            config = construct.logging_config
            if config is not None and getattr(config, "log_group", None):
                continue
        # aws-cdk-lib's providers are plain CfnResources whose properties never include a LoggingConfig.
        found.append(construct)
    return found
