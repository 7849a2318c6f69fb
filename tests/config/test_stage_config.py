"""Stage configuration: the stages load, and every invalid setting fails with one line naming key, value and fix."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from config import (
    STAGES,
    CanaryDeploymentConfig,
    ConfigError,
    DataConfig,
    DataPreparationConfig,
    NetworkConfig,
    NotebookUserConfig,
    OutOfHoursConfig,
    PlatformConfig,
    ServingConfig,
    TrainingConfig,
    WorkbenchConfig,
    load_config,
)

REPO = Path(__file__).resolve().parents[2]
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/nlp-dev-models/7"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.6.0-cpu"


def test_default_stage_is_dev() -> None:
    assert load_config(None).stage == "dev"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_stage_builds(name: str) -> None:
    config = load_config(name)
    assert config.stage == name
    assert config.prefix == f"nlp-{name}"


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_config("dev").stage = "prod"  # type: ignore[misc]


def test_dev_is_cheap_and_prod_is_durable() -> None:
    dev, prod = load_config("dev"), load_config("prod")
    assert dev.network.az_count < prod.network.az_count
    assert not dev.data.retain_on_delete and prod.data.retain_on_delete
    assert not dev.termination_protection and prod.termination_protection
    assert dev.training.use_spot


def test_fails_for_unknown_stage() -> None:
    with pytest.raises(ConfigError, match=r"stage='qa'.*known stages are dev, prod"):
        load_config("qa")


# (builder, expected fragment of the one-line error)
BAD_SETTINGS: dict[str, tuple[Any, str]] = {
    "account_not_12_digits": (lambda: PlatformConfig(stage="dev", account="12345", region="us-east-1"),
                              "account='12345'.*12 digits"),
    "unknown_region": (lambda: PlatformConfig(stage="dev", account="123456789012", region="us-east-9"),
                       "region='us-east-9'.*not a region"),
    "account_without_region": (lambda: PlatformConfig(stage="dev", account="123456789012"), "region=None.*both"),
    "bad_stage_name": (lambda: PlatformConfig(stage="Dev_1"), "stage='Dev_1'"),
    "bad_project_name": (lambda: PlatformConfig(stage="dev", project="NLP Platform"), "project='NLP Platform'"),
    "log_retention_not_accepted_by_cloudwatch": (lambda: PlatformConfig(stage="dev", log_retention_days=10),
                                                 "log_retention_days=10.*1, 3, 5, 7, 14"),
    "flow_log_retention_not_accepted": (lambda: NetworkConfig(flow_log_retention_days=2),
                                        "network.flow_log_retention_days=2"),
    "az_count_zero": (lambda: NetworkConfig(az_count=0), "network.az_count=0.*1 to 3"),
    "az_count_three_without_env": (lambda: PlatformConfig(stage="dev", network=NetworkConfig(az_count=3)),
                                   "network.az_count=3.*account and region"),
    "public_cidr": (lambda: NetworkConfig(cidr="8.8.0.0/16"), "network.cidr='8.8.0.0/16'.*private"),
    "cidr_too_small": (lambda: NetworkConfig(cidr="10.0.0.0/28"), "network.cidr='10.0.0.0/28'"),
    "key_pending_window_too_short": (lambda: DataConfig(key_pending_window_days=3),
                                     "data.key_pending_window_days=3.*7 to 30"),
    "noncurrent_expiry_zero": (lambda: DataConfig(noncurrent_version_expiration_days=0),
                               "data.noncurrent_version_expiration_days=0"),
    "notebook_type_not_for_notebooks": (lambda: NotebookUserConfig(name="ann", instance_type="ml.p5e.48xlarge"),
                                        r"workbench.users\['ann'\].instance_type='ml.p5e.48xlarge'.*notebook"),
    "notebook_type_typo": (lambda: NotebookUserConfig(name="ann", instance_type="ml.t3.medum"),
                           "ml.t3.medum.*for example ml.t3"),
    "notebook_user_name_invalid": (lambda: NotebookUserConfig(name="Ann Smith"), r"name='Ann Smith'"),
    "notebook_volume_too_small": (lambda: NotebookUserConfig(name="ann", volume_size_gb=1), "volume_size_gb=1"),
    "notebook_idle_too_short": (lambda: NotebookUserConfig(name="ann", idle_minutes=1), "idle_minutes=1.*5 to 1440"),
    "notebook_git_url_not_https": (lambda: NotebookUserConfig(name="ann", git_repository_url="git@host:r.git"),
                                   "git_repository_url='git@host:r.git'.*https"),
    "duplicate_users": (lambda: WorkbenchConfig(users=(NotebookUserConfig(name="ann"), NotebookUserConfig(name="ann"))),
                        r"workbench.users=\['ann'\].*once"),
    "old_notebook_platform": (lambda: WorkbenchConfig(platform_identifier="notebook-al1-v1"),
                              "platform_identifier='notebook-al1-v1'.*notebook-al2023-v1"),
    "notebook_name_over_63_characters": (
        lambda: PlatformConfig(stage="dev", project="nlpplatform1",
                               workbench=WorkbenchConfig(users=(NotebookUserConfig(name="a" * 50),))),
        "1-63 letters"),
    "glue_worker_type_unknown": (lambda: DataPreparationConfig(worker_type="G.3X"), "worker_type='G.3X'.*G.1X"),
    "glue_workers_below_two": (lambda: DataPreparationConfig(number_of_workers=1), "number_of_workers=1.*2 to 299"),
    "glue_timeout_zero": (lambda: DataPreparationConfig(timeout_minutes=0), "timeout_minutes=0"),
    "glue_retries_too_many": (lambda: DataPreparationConfig(max_retries=11), "max_retries=11"),
    "training_type_not_for_training": (lambda: TrainingConfig(instance_type="ml.c5.large"),
                                       "training.instance_type='ml.c5.large'.*training instance type"),
    "processing_type_unknown": (lambda: TrainingConfig(processing_instance_type="ml.x9.large"),
                                "processing_instance_type='ml.x9.large'"),
    "spot_wait_below_runtime": (lambda: TrainingConfig(max_runtime_seconds=7200, max_wait_seconds=3600),
                                "max_runtime_seconds=7200.*must not exceed training.max_wait_seconds=3600"),
    "training_instance_count_zero": (lambda: TrainingConfig(instance_count=0), "instance_count=0"),
    "accuracy_threshold_above_one": (lambda: TrainingConfig(accuracy_threshold=1.5), "accuracy_threshold=1.5"),
    "serving_min_above_max": (lambda: ServingConfig(instance_type="ml.g5.xlarge", min_instances=3, max_instances=2),
                              "serving.min_instances=3.*must not exceed serving.max_instances=2"),
    "serving_type_not_for_hosting": (lambda: ServingConfig(instance_type="ml.t3.nano"), "serving.instance_type"),
    "serverless_memory_not_a_step": (lambda: ServingConfig(serverless_memory_mb=1500), "serverless_memory_mb=1500"),
    "serving_text_limit_zero": (lambda: ServingConfig(max_text_chars=0), "serving.max_text_chars=0.*1 to 100000"),
    "serving_batch_too_large": (lambda: ServingConfig(max_batch_size=257), "serving.max_batch_size=257.*1 to 256"),
    "serving_timeout_not_below_api": (lambda: ServingConfig(endpoint_timeout_seconds=13),
                                      "serving.endpoint_timeout_seconds=13.*1 to 12"),
    "serving_batch_over_6_mib": (lambda: ServingConfig(max_text_chars=100000, max_batch_size=32),
                                 "serving.max_text_chars=100000.*max_batch_size=32.*6 MiB"),
    "model_package_arn_malformed": (lambda: ServingConfig(model_package_arn="my-model"),
                                    "model_package_arn='my-model'.*model-package"),
    "model_package_arn_without_version": (
        lambda: ServingConfig(model_package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/g"),
        "serving.model_package_arn=.*<group>/<version>"),
    "model_data_url_not_s3": (lambda: ServingConfig(model_data_url="https://x/model.tar.gz"),
                              "serving.model_data_url='https://x/model.tar.gz'.*s3://"),
    "model_data_url_not_a_tar_gz": (lambda: ServingConfig(model_data_url="s3://my-models/model.zip"),
                                    "serving.model_data_url='s3://my-models/model.zip'.*model.tar.gz"),
    "model_package_and_archive": (
        lambda: ServingConfig(model_package_arn=ARN, model_data_url="s3://my-models/model.tar.gz"),
        "serving.model_data_url=.*either serving.model_package_arn or serving.model_data_url, not both"),
    "inference_image_not_ecr": (
        lambda: ServingConfig(model_data_url="s3://my-models/model.tar.gz", inference_image="docker.io/me/img:1"),
        "serving.inference_image='docker.io/me/img:1'.*ECR image URI"),
    "inference_image_with_a_package": (lambda: ServingConfig(model_package_arn=ARN, inference_image=IMAGE),
                                       "serving.inference_image=.*only with serving.model_data_url"),
    "scale_in_cooldown_negative": (lambda: ServingConfig(scale_in_cooldown_seconds=-1),
                                   "serving.scale_in_cooldown_seconds=-1.*0 to 3600"),
    "scale_out_cooldown_too_long": (lambda: ServingConfig(scale_out_cooldown_seconds=3601),
                                    "serving.scale_out_cooldown_seconds=3601.*0 to 3600"),
    "data_capture_sampling_over_100": (lambda: ServingConfig(data_capture_sampling_percent=101),
                                       "serving.data_capture_sampling_percent=101.*0 to 100"),
    "data_capture_on_serverless": (lambda: ServingConfig(data_capture=True),
                                   "serving.data_capture=True.*instance endpoint.*no data capture"),
    "canary_on_serverless": (lambda: ServingConfig(canary=CanaryDeploymentConfig()),
                             r"serving.canary=CanaryDeploymentConfig\(.*instance endpoint"),
    "out_of_hours_on_serverless": (lambda: ServingConfig(out_of_hours=OutOfHoursConfig()),
                                   r"serving.out_of_hours=OutOfHoursConfig\(.*instance endpoint"),
    "out_of_hours_floor_not_lower": (
        lambda: ServingConfig(instance_type="ml.g5.xlarge", min_instances=2, max_instances=4,
                              out_of_hours=OutOfHoursConfig(min_instances=2)),
        "serving.out_of_hours.min_instances=2.*below serving.min_instances=2"),
    "out_of_hours_floor_zero": (lambda: OutOfHoursConfig(min_instances=0),
                                "serving.out_of_hours.min_instances=0.*1 to 100"),
    "out_of_hours_rate_expression": (lambda: OutOfHoursConfig(scale_down="rate(12 hours)"),
                                     r"serving.out_of_hours.scale_down='rate\(12 hours\)'.*cron expression"),
    "out_of_hours_cron_five_fields": (lambda: OutOfHoursConfig(scale_up="cron(0 7 * * MON-FRI)"),
                                      "serving.out_of_hours.scale_up=.*six space-separated fields"),
    "out_of_hours_cron_both_days": (lambda: OutOfHoursConfig(scale_up="cron(0 7 * * MON-FRI *)"),
                                    "serving.out_of_hours.scale_up=.*exactly one of day-of-month and day-of-week"),
    "out_of_hours_same_times": (
        lambda: OutOfHoursConfig(scale_down="cron(0 7 ? * MON-FRI *)", scale_up="cron(0 7 ? * MON-FRI *)"),
        "serving.out_of_hours.scale_up=.*different time than scale_down"),
    "out_of_hours_unknown_time_zone": (lambda: OutOfHoursConfig(time_zone="Europe/Berln"),
                                       "serving.out_of_hours.time_zone='Europe/Berln'.*Europe/Berlin"),
    "out_of_hours_offset_time_zone": (lambda: OutOfHoursConfig(time_zone="GMT+1"),
                                      "serving.out_of_hours.time_zone='GMT\\+1'.*IANA time zone"),
    "canary_size_over_half": (lambda: CanaryDeploymentConfig(canary_size_percent=60),
                              "serving.canary.canary_size_percent=60.*1 to 50"),
    "canary_wait_too_long": (lambda: CanaryDeploymentConfig(wait_interval_seconds=4000),
                             "serving.canary.wait_interval_seconds=4000.*0 to 3600"),
    "canary_termination_wait_negative": (lambda: CanaryDeploymentConfig(termination_wait_seconds=-1),
                                         "serving.canary.termination_wait_seconds=-1"),
    "canary_timeout_too_short": (lambda: CanaryDeploymentConfig(maximum_execution_timeout_seconds=500),
                                 "serving.canary.maximum_execution_timeout_seconds=500.*600 to 28800"),
    "canary_timeout_not_above_waits": (
        lambda: CanaryDeploymentConfig(wait_interval_seconds=600, termination_wait_seconds=600,
                                       maximum_execution_timeout_seconds=1200),
        "serving.canary.maximum_execution_timeout_seconds=1200.*exceed .* = 1200"),
    "canary_rollback_errors_zero": (lambda: CanaryDeploymentConfig(rollback_5xx_errors=0),
                                    "serving.canary.rollback_5xx_errors=0"),
    "canary_rollback_latency_zero": (lambda: CanaryDeploymentConfig(rollback_model_latency_ms=0),
                                     "serving.canary.rollback_model_latency_ms=0"),
    "canary_rollback_minutes_too_many": (lambda: CanaryDeploymentConfig(rollback_evaluation_minutes=11),
                                         "serving.canary.rollback_evaluation_minutes=11.*1 to 10"),
    "tag_key_reserved": (lambda: PlatformConfig(stage="dev", tags=(("aws:owner", "x"),)), "tags=.*aws:"),
    "idle_cost_goal_zero": (lambda: PlatformConfig(stage="dev", idle_cost_goal_usd=0), "idle_cost_goal_usd=0.*above 0"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_fails_with_one_clear_line(case: str) -> None:
    build, expected = BAD_SETTINGS[case]
    with pytest.raises(ConfigError, match=expected) as raised:
        build()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("invalid setting ")


def synth_cli(tmp_path: Path, context: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    return subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_app_exits_non_zero_with_one_line_for_an_unknown_stage(tmp_path: Path) -> None:
    result = synth_cli(tmp_path, {"stage": "staging"})
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: invalid setting stage='staging': known stages are dev, prod (select one with -c stage=<name>)"
    ]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.template.json"))


def test_stages_name_no_model_so_a_fresh_clone_has_no_endpoint() -> None:
    for name in STAGES:
        assert not load_config(name).serving.has_model


def test_dev_serves_serverless_and_prod_scales_instances_with_schedule_canary_and_capture() -> None:
    dev, prod = load_config("dev").serving, load_config("prod").serving
    assert dev.is_serverless and dev.out_of_hours is None and dev.canary is None and not dev.data_capture
    assert prod.instance_type == "ml.g5.xlarge" and (prod.min_instances, prod.max_instances) == (2, 6)
    assert prod.out_of_hours is not None and prod.out_of_hours.time_zone == "Europe/Berlin"
    assert prod.canary is not None and prod.data_capture


def test_a_model_package_arn_from_the_context_replaces_the_stage_model() -> None:
    config = load_config("prod", model_package_arn=ARN)
    assert config.serving.model_package_arn == ARN and config.serving.has_model
    assert config.serving.instance_type == "ml.g5.xlarge"  # everything else stays the stage's
    assert load_config("prod").serving.model_package_arn is None


def test_a_context_arn_replaces_a_configured_model_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    def with_archive() -> PlatformConfig:
        return PlatformConfig(
            stage="dev", serving=ServingConfig(model_data_url="s3://my-models/model.tar.gz", inference_image=IMAGE)
        )

    monkeypatch.setitem(STAGES, "dev", with_archive)
    serving = load_config("dev", model_package_arn=ARN).serving
    assert (serving.model_package_arn, serving.model_data_url, serving.inference_image) == (ARN, None, None)


@pytest.mark.parametrize("bad", ["my-model", "", "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/x"])
def test_a_bad_context_arn_fails_with_one_line_naming_the_option(bad: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config("dev", model_package_arn=bad)
    message = str(raised.value)
    assert message.startswith(f"invalid setting serving.model_package_arn={bad!r}: ")
    assert message.endswith("(given with -c model_package_arn)") and "\n" not in message


def test_a_non_text_context_arn_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"model_package_arn=42: pass the ARN as text"):
        load_config("dev", model_package_arn=42)  # type: ignore[arg-type]


def test_the_app_takes_the_model_package_arn_from_the_cdk_context() -> None:
    from app import build_app, load_cdk_json_context

    with pytest.raises(ConfigError, match=r"serving.model_package_arn='nlp-dev-models/3'.*-c model_package_arn"):
        build_app(load_cdk_json_context(stage="dev", model_package_arn="nlp-dev-models/3"))
