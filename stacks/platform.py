"""The whole platform for one stage: its stacks, in deploy order, wired by passing objects."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from constructs import Construct

from components.data_preparation_job import DataPreparationJob
from components.inference_api import InferenceApi
from components.inference_endpoint import InferenceEndpoint
from components.notebook_workbench import NotebookWorkbench
from components.pipeline_cleanup import PipelineCleanup
from components.run_time_logs import give_functions_log_groups
from components.template_hygiene import drop_redundant_provider_dependencies
from components.training_pipeline import BatchInferencePipeline, TrainingPipeline
from components.vpc_services import VpcConsumer
from config import PlatformConfig
from stacks.data_stack import DataStack
from stacks.network_stack import NetworkStack
from stacks.pipeline_stack import PipelineStack
from stacks.removal import removal_policy
from stacks.serving_stack import ServingStack
from stacks.workbench_stack import WorkbenchStack


@dataclass(frozen=True)
class Platform:
    """The stacks of one stage, and the configuration they were built from."""

    config: PlatformConfig
    data: DataStack
    network: NetworkStack
    pipeline: PipelineStack
    serving: ServingStack | None
    """None where the stage names no model (no endpoint to serve)."""
    workbench: WorkbenchStack

    @property
    def stacks(self) -> tuple[cdk.Stack, ...]:
        """Every stack, in deploy order."""
        serving = (self.serving,) if self.serving is not None else ()
        return (self.data, self.network, self.pipeline, *serving, self.workbench)


def vpc_consumers(config: PlatformConfig) -> tuple[VpcConsumer, ...]:
    """The components ``config``'s stage builds inside the VPC, each with the services it calls from there.

    The Network stack is built first, so this follows the conditions under which the Pipeline, Serving and Workbench
    stacks create each component; a serverless endpoint runs outside the VPC (tests/stacks/test_network_stack.py
    checks every VPC-placed resource of the synthesized templates against it).
    """
    consumers = [
        VpcConsumer.of(
            DataPreparationJob, DataPreparationJob.vpc_services(job_metrics=config.data_preparation.job_metrics)
        ),
        *(VpcConsumer.of(component) for component in (TrainingPipeline, BatchInferencePipeline)),
    ]
    if removal_policy(config) == cdk.RemovalPolicy.DESTROY:
        consumers.append(VpcConsumer.of(PipelineCleanup))
    if config.serving.has_model:
        # The classify Lambda runs in the VPC whatever the endpoint's kind; a serverless endpoint itself does not.
        consumers.append(VpcConsumer.of(InferenceApi))
        if not config.serving.is_serverless:
            consumers.append(VpcConsumer.of(InferenceEndpoint))
    if config.workbench.users:
        consumers.append(
            VpcConsumer.of(NotebookWorkbench, NotebookWorkbench.vpc_services(invokes_endpoint=config.serving.has_model))
        )
    return tuple(consumers)


def build_platform(scope: Construct, config: PlatformConfig) -> Platform:
    """Create every stack of ``config``'s stage under ``scope``.

    Stack names are ``<project>-<stage>-<part>`` so two stages can live in one account. The Data stack comes first:
    it holds the key that encrypts the network's flow logs. The Network stack gets the interface endpoints that
    :func:`vpc_consumers` declares.
    """
    env = cdk.Environment(account=config.account, region=config.region) if config.account else None
    common = {"env": env, "termination_protection": config.termination_protection}

    data = DataStack(
        scope,
        config.stack_name("data"),
        config=config,
        description=f"SageMaker NLP platform ({config.stage}): key, buckets, Glue database",
        **common,
    )
    network = NetworkStack(
        scope,
        config.stack_name("network"),
        config=config,
        key=data.key,
        consumers=vpc_consumers(config),
        description=f"SageMaker NLP platform ({config.stage}): isolated VPC and endpoints",
        **common,
    )
    pipeline = PipelineStack(
        scope,
        config.stack_name("pipeline"),
        config=config,
        key=data.key,
        raw_bucket=data.raw_bucket,
        curated_bucket=data.curated_bucket,
        artifacts_bucket=data.artifacts_bucket,
        vpc=network.vpc,
        subnets=network.subnets,
        security_group=network.workload_security_group,
        description=f"SageMaker NLP platform ({config.stage}): data preparation, training, batch inference",
        **common,
    )
    # Before the workbench: the notebooks' role is granted InvokeEndpoint on the endpoint object.
    serving = None
    if config.serving.has_model:
        serving = ServingStack(
            scope,
            config.stack_name("serving"),
            config=config,
            key=data.key,
            curated_bucket=data.curated_bucket,
            artifacts_bucket=data.artifacts_bucket,
            vpc=network.vpc,
            subnets=network.subnets,
            security_group=network.workload_security_group,
            description=f"SageMaker NLP platform ({config.stage}): inference endpoint, API and alarms",
            **common,
        )
    workbench = WorkbenchStack(
        scope,
        config.stack_name("workbench"),
        config=config,
        key=data.key,
        raw_bucket=data.raw_bucket,
        curated_bucket=data.curated_bucket,
        artifacts_bucket=data.artifacts_bucket,
        subnets=network.subnets,
        security_group=network.workload_security_group,
        data_preparation=pipeline.data_preparation,
        training_pipeline=pipeline.training,
        batch_inference_pipeline=pipeline.batch_inference,
        model_registry=pipeline.registry,
        endpoint=serving.endpoint if serving is not None else None,
        api=serving.api if serving is not None else None,
        description=f"SageMaker NLP platform ({config.stage}): notebook instances and package repository",
        **common,
    )
    platform = Platform(
        config=config, data=data, network=network, pipeline=pipeline, serving=serving, workbench=workbench
    )
    for stack in platform.stacks:
        # aws-cdk-lib's own provider functions (auto-delete objects, restrict default SG) would otherwise log to
        # groups Lambda creates at run time, which cdk destroy leaves behind (components/run_time_logs.py).
        give_functions_log_groups(
            stack, key=data.key, log_retention_days=config.log_retention_days, removal_policy=removal_policy(config)
        )
        drop_redundant_provider_dependencies(stack)
        for key, value in config.tags:
            cdk.Tags.of(stack).add(key, value)
    return platform
