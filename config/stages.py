"""The stages of the platform, defined in code. ``app.py`` picks one with ``-c stage=<name>`` (default ``dev``).

dev is cheap and disposable: one AZ, spot training, serverless or no endpoint, everything destroyed with the stack.
prod is durable and scalable: two AZs, key and buckets retained, termination protection, longer log retention.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from config.settings import (
    ApiConfig,
    CanaryDeploymentConfig,
    DataConfig,
    DataPreparationConfig,
    NetworkConfig,
    NotebookUserConfig,
    OutOfHoursConfig,
    PlatformConfig,
    ServingConfig,
    ServingMonitoringConfig,
    TrainingConfig,
    WorkbenchConfig,
)
from config.validation import ConfigError

DEFAULT_STAGE = "dev"


def dev() -> PlatformConfig:
    """A cheap, disposable stage for building and trying the platform."""
    return PlatformConfig(
        stage="dev",
        termination_protection=False,
        log_retention_days=14,
        tags=(("project", "sagemaker-nlp-platform"), ("stage", "dev")),
        # One AZ halves the hourly cost of the interface endpoints, the largest fixed cost of an idle platform.
        network=NetworkConfig(az_count=1, cidr="10.40.0.0/16", flow_log_retention_days=14),
        data=DataConfig(retain_on_delete=False, key_pending_window_days=7, noncurrent_version_expiration_days=7),
        workbench=WorkbenchConfig(
            users=(NotebookUserConfig(name="data-scientist", instance_type="ml.t3.medium", idle_minutes=60),),
        ),
        # No Glue job metrics: their CloudWatch interface endpoint would be the only reason for one in dev (run
        # status, logs and the data report still say how a run went).
        data_preparation=DataPreparationConfig(
            worker_type="G.1X", number_of_workers=2, timeout_minutes=60, job_metrics=False
        ),
        training=TrainingConfig(instance_type="ml.g5.xlarge", instance_count=1, use_spot=True),
        # Serverless: billed per request only, no VPC, no instances to scale; no model until one is promoted.
        serving=ServingConfig(
            model_package_arn=None,
            instance_type=None,
            serverless_memory_mb=4096,
            # No WAF in dev (a web ACL bills monthly); IAM auth and throttling stay.
            api=ApiConfig(
                throttle_rate_limit=5,
                throttle_burst_limit=10,
                waf_enabled=False,
                access_log_retention_days=14,
                function_log_retention_days=14,
                execution_log_level="ERROR",
            ),
            monitoring=ServingMonitoringConfig(period_seconds=300, evaluation_periods=3, datapoints_to_alarm=2),
        ),
        # Private networking stays: the interface endpoints are the ones a workload declares it calls.
        idle_cost_goal_usd=60.0,
    )


def prod() -> PlatformConfig:
    """The durable stage: data retained, protected stacks, capacity for the team."""
    return PlatformConfig(
        stage="prod",
        termination_protection=True,
        log_retention_days=365,
        tags=(("project", "sagemaker-nlp-platform"), ("stage", "prod")),
        network=NetworkConfig(az_count=2, cidr="10.41.0.0/16", flow_log_retention_days=365),
        data=DataConfig(retain_on_delete=True, key_pending_window_days=30, noncurrent_version_expiration_days=90),
        workbench=WorkbenchConfig(
            users=(
                NotebookUserConfig(name="alice", instance_type="ml.t3.large", volume_size_gb=50, idle_minutes=120),
                NotebookUserConfig(name="bob", instance_type="ml.t3.large", volume_size_gb=50, idle_minutes=120),
            ),
        ),
        data_preparation=DataPreparationConfig(
            worker_type="G.2X", number_of_workers=10, timeout_minutes=240, max_retries=1, log_retention_days=365
        ),
        training=TrainingConfig(
            instance_type="ml.g5.12xlarge",
            instance_count=1,
            use_spot=True,
            max_runtime_seconds=12 * 3600,
            max_wait_seconds=24 * 3600,
            volume_size_gb=200,
            accuracy_threshold=0.8,
        ),
        serving=ServingConfig(
            model_package_arn=None,
            instance_type="ml.g5.xlarge",
            min_instances=2,
            max_instances=6,
            invocations_per_instance_target=100,
            # Scale out fast when traffic grows, scale in slowly so a short lull does not drop warm capacity.
            scale_out_cooldown_seconds=60,
            scale_in_cooldown_seconds=600,
            # One instance at nights and weekends, team time.
            out_of_hours=OutOfHoursConfig(
                scale_down="cron(0 20 ? * MON-FRI *)",
                scale_up="cron(0 7 ? * MON-FRI *)",
                min_instances=1,
                time_zone="Europe/Berlin",
            ),
            canary=CanaryDeploymentConfig(
                canary_size_percent=10,
                wait_interval_seconds=600,
                termination_wait_seconds=600,
                maximum_execution_timeout_seconds=3600,
                rollback_5xx_errors=5,
                rollback_model_latency_ms=1000,
            ),
            data_capture=True,
            data_capture_sampling_percent=20,
            api=ApiConfig(
                throttle_rate_limit=100,
                throttle_burst_limit=200,
                waf_enabled=True,
                waf_rate_limit_per_5_minutes=3000,
                access_log_retention_days=365,
                function_log_retention_days=365,
                execution_log_level="ERROR",
            ),
            monitoring=ServingMonitoringConfig(period_seconds=60, evaluation_periods=5, datapoints_to_alarm=3),
        ),
    )


STAGES: dict[str, Callable[[], PlatformConfig]] = {"dev": dev, "prod": prod}


def load_config(stage: str | None, *, model_package_arn: str | None = None) -> PlatformConfig:
    """Build and validate the configuration of ``stage`` (``None`` means the default stage).

    ``model_package_arn`` (``cdk synth -c model_package_arn=<arn>``) replaces the stage's model for this build only,
    to preview a promotion in a pull request before the stage config changes; it is validated like the config value
    and takes the place of a configured ``model_data_url`` too.
    """
    name = DEFAULT_STAGE if stage is None else stage
    if name not in STAGES:
        raise ConfigError(
            f"invalid setting stage={name!r}: known stages are {', '.join(STAGES)} (select one with -c stage=<name>)"
        )
    config = STAGES[name]()
    if model_package_arn is None:
        return config
    if not isinstance(model_package_arn, str):
        raise ConfigError(
            f"invalid setting model_package_arn={model_package_arn!r}: pass the ARN as text, "
            "-c model_package_arn=arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>"
        )
    # dataclasses.replace runs __post_init__ again, so the override is checked like the stage's own value.
    try:
        serving = dataclasses.replace(
            config.serving, model_package_arn=model_package_arn, model_data_url=None, inference_image=None
        )
    except ConfigError as error:
        raise ConfigError(f"{error} (given with -c model_package_arn)") from None
    return dataclasses.replace(config, serving=serving)
