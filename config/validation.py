"""Validation rules for the stage configuration.

Every rule raises :class:`ConfigError` with one line that names the setting, the bad value and what is allowed, so a
typo in a stage definition fails ``cdk synth`` before any template is written. Allowed values come from the AWS API
models that ship with botocore (offline, no credentials), so they stay current with the pinned boto3.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from functools import cache

import botocore.model
import botocore.session

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy "Days"); the API model documents them in
# prose rather than as an enum, so they are listed here.
CLOUDWATCH_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# SageMaker resource names (notebooks, models, endpoints, jobs, pipelines): at most 63 characters.
SAGEMAKER_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
SAGEMAKER_NAME_MAX = 63


class ConfigError(ValueError):
    """A setting in the stage configuration is invalid. The message is one line: key, bad value, what is allowed."""


def fail(key: str, value: object, allowed: str) -> ConfigError:
    """Build the one-line error used by every rule."""
    return ConfigError(f"invalid setting {key}={value!r}: {allowed}")


@cache
def _session() -> botocore.session.Session:
    """One botocore session per process: its loader keeps each parsed API model, which takes tens of milliseconds to
    load, so every rule after the first reads it from memory."""
    return botocore.session.get_session()


@cache
def _service_model(service: str) -> botocore.model.ServiceModel:
    return _session().get_service_model(service)


@cache
def _service_enum(service: str, shape: str) -> frozenset[str]:
    return frozenset(_service_model(service).shape_for(shape).enum)


@cache
def available_regions() -> frozenset[str]:
    """Regions where SageMaker is offered, from botocore's bundled endpoint data (no network)."""
    return frozenset(_session().get_available_regions("sagemaker"))


def _suggest(value: str, allowed: Iterable[str], limit: int = 6) -> str:
    """A short list of allowed values, nearest to the bad one first, for the error message."""
    family = value.rsplit(".", 1)[0] if "." in value else value
    close = sorted(v for v in allowed if v.startswith(family))
    pool = close or sorted(allowed)
    shown = ", ".join(pool[:limit])
    return shown + (", ..." if len(pool) > limit else "")


def check_instance_type(key: str, value: str, use: str) -> None:
    """Check ``value`` against the SageMaker API enum for ``use`` (notebook, training, processing, ...)."""
    shapes = {
        "notebook": "InstanceType",
        "training": "TrainingInstanceType",
        "processing": "ProcessingInstanceType",
        "hosting": "ProductionVariantInstanceType",
        "transform": "TransformInstanceType",
    }
    allowed = _service_enum("sagemaker", shapes[use])
    if value not in allowed:
        raise fail(key, value, f"not a SageMaker {use} instance type; for example {_suggest(value, allowed)}")


def check_glue_worker_type(key: str, value: str) -> None:
    allowed = _service_enum("glue", "WorkerType") - {"Standard"}
    if value not in allowed:
        raise fail(key, value, f"Glue 5.0 Spark jobs accept worker types {', '.join(sorted(allowed))}")


def check_retention(key: str, value: int) -> None:
    if value not in CLOUDWATCH_RETENTION_DAYS:
        raise fail(
            key, value, f"CloudWatch Logs accepts retention days {', '.join(map(str, CLOUDWATCH_RETENTION_DAYS))}"
        )


def check_range(key: str, value: int | float, low: int | float, high: int | float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise fail(key, value, f"must be a number from {low} to {high}")


def check_min_max(min_key: str, min_value: int, max_key: str, max_value: int) -> None:
    if min_value > max_value:
        raise fail(min_key, min_value, f"must not exceed {max_key}={max_value}")


def check_one_of(key: str, value: object, allowed: Collection[object]) -> None:
    if value not in allowed:
        raise fail(key, value, f"allowed values are {', '.join(map(repr, allowed))}")


def check_sagemaker_name(key: str, value: str) -> None:
    if len(value) > SAGEMAKER_NAME_MAX or not SAGEMAKER_NAME_PATTERN.match(value):
        raise fail(
            key,
            value,
            f"SageMaker names are 1-{SAGEMAKER_NAME_MAX} letters, digits and single hyphens, "
            f"starting and ending with a letter or digit (this one is {len(value)} characters)",
        )


def check_account(key: str, value: str | None) -> None:
    if value is not None and not re.fullmatch(r"\d{12}", value):
        raise fail(key, value, "an AWS account id is exactly 12 digits, or None for an environment-agnostic synth")


def check_region(key: str, value: str | None) -> None:
    if value is not None and value not in available_regions():
        raise fail(key, value, f"not a region with SageMaker; one of {', '.join(sorted(available_regions()))}")


@cache
def schedule_time_zones() -> frozenset[str]:
    """The IANA time zones AWS schedulers accept, as aws-cdk-lib lists them (``cdk.TimeZone``'s members).

    Not the machine's tz database (``zoneinfo``), which differs between machines and may be missing: the list must be
    the same wherever the config is built. Imported here, on first use, so configs without a schedule never load it.
    """
    import aws_cdk as cdk

    # The CDK lists Etc/UTC; the schedulers take the plain UTC too (and default to it).
    listed = {getattr(cdk.TimeZone, name).timezone_name for name in dir(cdk.TimeZone) if name.isupper()}
    return frozenset(listed | {"UTC"})


def check_time_zone(key: str, value: str) -> None:
    if value not in schedule_time_zones():
        close = sorted(zone for zone in schedule_time_zones() if zone.split("/")[0] == value.split("/")[0])
        example = ", ".join(close[:6]) if close else "UTC, Europe/Berlin, America/New_York"
        raise fail(key, value, f"an IANA time zone name AWS schedulers accept, for example {example}")
