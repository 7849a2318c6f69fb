"""API and serving-monitoring settings: every bad value fails with one line naming the dotted key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from config import ConfigError, load_config
from config.settings import ApiConfig, ServingConfig, ServingMonitoringConfig


def _error(build: Callable[[], Any]) -> str:
    with pytest.raises(ConfigError) as raised:
        build()
    message = str(raised.value)
    assert "\n" not in message
    return message


def _starts_with_setting(message: str, key: str, value: object) -> None:
    assert message.startswith(f"invalid setting {key}={value!r}: "), message


def test_defaults_are_valid_and_nested_in_the_serving_config() -> None:
    serving = ServingConfig()
    assert serving.api == ApiConfig()
    assert serving.monitoring == ServingMonitoringConfig()
    assert serving.api.reserved_concurrency is None  # new accounts have small concurrency quotas
    assert serving.api.waf_enabled is False


def test_prod_turns_waf_on_and_throttles_higher_than_dev() -> None:
    dev, prod = load_config("dev").serving.api, load_config("prod").serving.api
    assert not dev.waf_enabled and prod.waf_enabled
    assert prod.throttle_rate_limit > dev.throttle_rate_limit
    assert prod.throttle_burst_limit > dev.throttle_burst_limit


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("throttle_rate_limit", 0),
        ("throttle_burst_limit", 0),
        ("quota_period", "YEAR"),
        ("waf_rate_limit_per_5_minutes", 50),
        ("access_log_retention_days", 13),
        ("function_log_retention_days", 0),
        ("execution_log_level", "DEBUG"),
        ("function_log_level", "TRACE"),
        ("function_memory_mb", 64),
        ("reserved_concurrency", 0),
        ("powertools_layer_version", 0),
        ("powertools_layer_account", "01700080144"),
    ],
)
def test_bad_api_settings_name_their_key(field: str, value: object) -> None:
    _starts_with_setting(_error(lambda: ApiConfig(**{field: value})), f"serving.api.{field}", value)


def test_burst_below_the_rate_is_rejected() -> None:
    message = _error(lambda: ApiConfig(throttle_rate_limit=50, throttle_burst_limit=20))
    _starts_with_setting(message, "serving.api.throttle_burst_limit", 20)
    assert "serving.api.throttle_rate_limit=50" in message


def test_a_quota_needs_api_keys() -> None:
    message = _error(lambda: ApiConfig(quota_limit=1000))
    _starts_with_setting(message, "serving.api.quota_limit", 1000)
    assert "api_key_required" in message
    assert ApiConfig(quota_limit=1000, api_key_required=True).quota_limit == 1000


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two words@example.com"])
def test_bad_alarm_emails_are_rejected(email: str) -> None:
    _starts_with_setting(
        _error(lambda: ServingMonitoringConfig(emails=("ok@example.com", email))), "serving.monitoring.emails", email
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("period_seconds", 120),
        ("evaluation_periods", 0),
        ("endpoint_5xx_rate_percent", 101),
        ("endpoint_4xx_rate_percent", -1),
        ("api_5xx_rate_percent", 150),
        ("cpu_utilization_percent", 0),
        ("gpu_utilization_percent", 120),
        ("memory_utilization_percent", 0.5),
        ("scaling_ceiling_percent", 101),
        ("model_latency_p99_ms", 0),
        ("api_latency_p99_ms", 30000),
        ("function_errors", 0),
        ("function_throttles", 0),
    ],
)
def test_bad_monitoring_settings_name_their_key(field: str, value: object) -> None:
    _starts_with_setting(
        _error(lambda: ServingMonitoringConfig(**{field: value})), f"serving.monitoring.{field}", value
    )


def test_more_breaching_windows_than_windows_is_rejected() -> None:
    message = _error(lambda: ServingMonitoringConfig(evaluation_periods=3, datapoints_to_alarm=4))
    _starts_with_setting(message, "serving.monitoring.datapoints_to_alarm", 4)
    assert "serving.monitoring.evaluation_periods=3" in message
