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
    ConfigError,
    DataConfig,
    DataPreparationConfig,
    NetworkConfig,
    NotebookUserConfig,
    PlatformConfig,
    ServingConfig,
    TrainingConfig,
    WorkbenchConfig,
    load_config,
)

REPO = Path(__file__).resolve().parents[2]


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
