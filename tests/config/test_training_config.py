"""Training settings: every bad value fails with one line naming the dotted key; GPU counts drive distribution."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from config import ConfigError, TrainingConfig
from config.accelerators import gpus_per_instance
from config.settings import DeepLearningContainersConfig, check_schedule


def _error(build: Callable[[], Any]) -> str:
    with pytest.raises(ConfigError) as raised:
        build()
    message = str(raised.value)
    assert "\n" not in message
    return message


def _starts_with_setting(message: str, key: str, value: object) -> None:
    assert message.startswith(f"invalid setting {key}={value!r}: "), message


def test_defaults_are_valid_single_gpu_spot_training() -> None:
    config = TrainingConfig()
    assert config.instance_type == "ml.g5.xlarge"
    assert config.use_spot
    assert not config.distributed


def test_training_instance_type_without_a_gpu_is_rejected() -> None:
    message = _error(lambda: TrainingConfig(instance_type="ml.m5.xlarge"))
    _starts_with_setting(message, "training.instance_type", "ml.m5.xlarge")
    assert "GPUs" in message


def test_several_instances_without_spot_are_rejected_naming_instance_count() -> None:
    message = _error(lambda: TrainingConfig(instance_count=2, use_spot=False))
    _starts_with_setting(message, "training.instance_count", 2)
    assert "training.use_spot" in message


def test_several_instances_with_spot_are_accepted() -> None:
    assert TrainingConfig(instance_count=2, use_spot=True).instance_count == 2


def test_without_spot_max_wait_is_not_checked() -> None:
    assert not TrainingConfig(use_spot=False, max_runtime_seconds=7200, max_wait_seconds=0).use_spot


@pytest.mark.parametrize("threshold", [1.5, -0.1])
def test_accuracy_threshold_outside_zero_to_one_is_rejected(threshold: float) -> None:
    _starts_with_setting(
        _error(lambda: TrainingConfig(accuracy_threshold=threshold)), "training.accuracy_threshold", threshold
    )


@pytest.mark.parametrize("rate", [0, -1e-5, 1.5])
def test_learning_rate_not_above_zero_and_at_most_one_is_rejected(rate: float) -> None:
    message = _error(lambda: TrainingConfig(learning_rate=rate))
    _starts_with_setting(message, "training.learning_rate", rate)
    assert "above 0" in message


def test_learning_rate_of_one_is_accepted() -> None:
    assert TrainingConfig(learning_rate=1).learning_rate == 1


def test_unknown_approval_status_is_rejected_listing_the_allowed_ones() -> None:
    message = _error(lambda: TrainingConfig(approval_status="Rejected"))
    _starts_with_setting(message, "training.approval_status", "Rejected")
    assert "'PendingManualApproval', 'Approved'" in message


@pytest.mark.parametrize("name", ["All-MiniLM", "../minilm", "", "model name", "-leading"])
def test_bad_base_model_name_is_rejected(name: str) -> None:
    _starts_with_setting(_error(lambda: TrainingConfig(base_model_name=name)), "training.base_model_name", name)


@pytest.mark.parametrize("schedule", ["cron(0 3 * * *)", "cron(0 3 * * MON *)", "rate(1 days)", "every day"])
def test_schedule_that_eventbridge_would_not_parse_is_rejected(schedule: str) -> None:
    _starts_with_setting(_error(lambda: TrainingConfig(schedule=schedule)), "training.schedule", schedule)


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("cron(0 3 * * *)", "six space-separated fields"),
        ("cron(0 3 * * MON *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 3 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("rate(1 days)", "1 takes a singular unit"),
        ("rate(7 day)", "1 takes a singular unit"),
        ("rate(0 days)", "an EventBridge expression"),
        ("every day", "an EventBridge expression"),
    ],
)
def test_check_schedule_says_why_a_schedule_is_rejected(schedule: str, reason: str) -> None:
    message = _error(lambda: check_schedule("training.schedule", schedule))
    _starts_with_setting(message, "training.schedule", schedule)
    assert reason in message


@pytest.mark.parametrize(
    "schedule", ["cron(0 3 ? * MON *)", "cron(15 2 1 * ? *)", "rate(7 days)", "rate(1 day)", "rate(30 minutes)"]
)
def test_valid_schedules_are_accepted(schedule: str) -> None:
    check_schedule("training.schedule", schedule)
    assert TrainingConfig(schedule=schedule).schedule == schedule


@pytest.mark.parametrize("email", ["team", "team@example", "two@@example.com", "a b@example.com"])
def test_bad_notification_email_is_rejected(email: str) -> None:
    _starts_with_setting(
        _error(lambda: TrainingConfig(notification_emails=("ok@example.com", email))),
        "training.notification_emails",
        email,
    )


def test_good_notification_emails_are_accepted() -> None:
    assert TrainingConfig(notification_emails=("ml-team@example.co.uk",)).notification_emails


TRANSFORMERS_4_GPU = "2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04"


@pytest.mark.parametrize(
    ("field", "tag"),
    [
        ("training_tag", TRANSFORMERS_4_GPU),
        ("inference_gpu_tag", TRANSFORMERS_4_GPU),
        ("inference_cpu_tag", "2.1.0-transformers4.36.0-cpu-py310-ubuntu22.04"),
    ],
)
def test_dlc_tag_with_transformers_4_is_rejected_naming_the_tag_key(field: str, tag: str) -> None:
    message = _error(lambda: DeepLearningContainersConfig(**{field: tag}))
    _starts_with_setting(message, f"training.images.{field}", tag)
    assert "transformers 5.x" in message


def test_cpu_tag_for_training_is_rejected() -> None:
    cpu = "2.6.0-transformers5.5.3-cpu-py312-ubuntu22.04"
    _starts_with_setting(_error(lambda: DeepLearningContainersConfig(training_tag=cpu)), "training.images", cpu)


def test_gpu_tag_for_cpu_hosting_is_rejected() -> None:
    gpu = "2.6.0-transformers5.5.3-gpu-py312-cu124-ubuntu22.04"
    _starts_with_setting(
        _error(lambda: DeepLearningContainersConfig(inference_cpu_tag=gpu)), "training.images.inference_cpu_tag", gpu
    )


@pytest.mark.parametrize(
    ("instance_type", "count", "distributed"),
    [("ml.g5.12xlarge", 1, True), ("ml.g5.xlarge", 2, True), ("ml.g5.xlarge", 1, False)],
)
def test_distributed_when_several_gpus_or_several_instances(instance_type: str, count: int, distributed: bool) -> None:
    assert TrainingConfig(instance_type=instance_type, instance_count=count).distributed is distributed


@pytest.mark.parametrize(
    ("instance_type", "gpus"),
    [
        ("ml.g5.xlarge", 1),
        ("ml.g5.12xlarge", 4),
        ("ml.g5.48xlarge", 8),
        ("ml.g4dn.12xlarge", 4),
        ("ml.p3.8xlarge", 4),
        ("ml.p4d.24xlarge", 8),
        ("ml.g6e.2xlarge", 1),
        ("ml.m5.xlarge", 0),
        ("ml.c5.large", 0),
    ],
)
def test_gpus_per_instance(instance_type: str, gpus: int) -> None:
    assert gpus_per_instance(instance_type) == gpus


@pytest.mark.parametrize("instance_type", ["g5.xlarge", "ml.g5", "ml.G5.xlarge", "ml.g5.xlarge ", ""])
def test_gpus_per_instance_of_a_malformed_type_raises_naming_it(instance_type: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(instance_type))):
        gpus_per_instance(instance_type)


def test_gpus_per_instance_of_a_type_with_a_trailing_newline_raises() -> None:
    with pytest.raises(ValueError, match="not a SageMaker instance type"):
        gpus_per_instance("ml.g5.xlarge\n")
