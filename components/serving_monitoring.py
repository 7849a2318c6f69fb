"""Alarms on the serving path (endpoint, Lambda wrapper, API), their SNS topic, and one dashboard per stage.

:class:`ServingMonitoring` adds the topic as the action of every alarm, including the endpoint's own rollback alarms
(5XX and model latency, which the canary deployment watches): those are reused, not duplicated, so one incident pages
once. Where the endpoint has no rollback alarm for 5XX or latency (a serverless endpoint has no deployment
guardrails), this construct creates it with the thresholds of ``config.serving.monitoring``.

Thresholds come from config. Rates are math expressions (errors per 100 invocations), so a quiet hour with one
failed call does not look like an outage and a busy one is judged by its share. Windows without data do not breach:
no traffic is not an incident, and error counts are only published when something happened.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from config.accelerators import gpus_per_instance
from config.settings import ServingMonitoringConfig

LATENCY_METRIC = "ModelLatency"
ERRORS_5XX_METRIC = "Invocation5XXErrors"
_SIZE = re.compile(r"^ml\.[a-z0-9-]+\.(?:(?P<multiple>\d*)xlarge|(?P<large>large)|(?P<medium>medium))$")


class MonitoredEndpoint(Protocol):
    """What monitoring needs of an endpoint (``components.inference_endpoint.InferenceEndpoint`` is one)."""

    @property
    def endpoint_name(self) -> str: ...

    @property
    def is_serverless(self) -> bool: ...

    @property
    def max_instances(self) -> int | None: ...

    @property
    def rollback_alarms(self) -> Sequence[cloudwatch.Alarm]: ...

    def metric_invocations(self) -> cloudwatch.Metric: ...

    def metric_invocation_5xx_errors(self) -> cloudwatch.Metric: ...

    def metric_invocation_4xx_errors(self) -> cloudwatch.Metric: ...

    def metric_model_latency(self) -> cloudwatch.Metric: ...

    def metric_invocations_per_instance(self) -> cloudwatch.Metric: ...

    def metric_cpu_utilization(self) -> cloudwatch.Metric: ...

    def metric_gpu_utilization(self) -> cloudwatch.Metric: ...

    def metric_memory_utilization(self) -> cloudwatch.Metric: ...


class MonitoredApi(Protocol):
    """What monitoring needs of the front door (``components.inference_api.InferenceApi`` is one)."""

    def metric_server_errors(self) -> cloudwatch.Metric: ...

    def metric_client_errors(self) -> cloudwatch.Metric: ...

    def metric_latency(self) -> cloudwatch.Metric: ...

    def metric_requests(self) -> cloudwatch.Metric: ...

    def metric_function_errors(self) -> cloudwatch.Metric: ...

    def metric_function_throttles(self) -> cloudwatch.Metric: ...

    def metric_function_duration(self) -> cloudwatch.Metric: ...


def vcpus_per_instance(instance_type: str) -> int:
    """vCPUs of a SageMaker instance type from its size, the EC2 naming rule: ``large`` 2, ``xlarge`` 4,
    ``<n>xlarge`` 4n (``medium`` 2). SageMaker reports ``CPUUtilization`` summed over the vCPUs (up to 100 x vCPUs),
    so a per-core threshold is scaled by this."""
    match = _SIZE.fullmatch(instance_type)
    if match is None:
        raise ValueError(f"{instance_type!r} is not a SageMaker instance type like ml.g5.xlarge or ml.m5.large")
    if match["large"] or match["medium"]:
        return 2
    return 4 * int(match["multiple"] or 1)


def alarm_watches(alarm: cloudwatch.Alarm, metric_name: str) -> bool:
    """True when ``alarm`` watches ``metric_name``, directly or inside a math expression."""
    config = alarm.metric.to_metric_config()
    if config.metric_stat is not None:
        return bool(config.metric_stat.metric_name == metric_name)
    if config.math_expression is not None:
        for used in config.math_expression.using_metrics.values():
            used_config = used.to_metric_config()
            if used_config.metric_stat is not None and used_config.metric_stat.metric_name == metric_name:
                return True
    return False


class ServingMonitoring(Construct):
    """The serving alarms, the topic they notify, and the stage's dashboard ``<prefix>-serving``.

    :param endpoint: the inference endpoint (its metrics, rollback alarms, ``is_serverless``, ``max_instances``).
    :param api: the front door (``InferenceApi``): API and Lambda wrapper metrics.
    :param settings: ``config.serving.monitoring``: thresholds, windows, email subscriptions.
    :param instance_type: ``config.serving.instance_type`` (None for serverless): scales the CPU and GPU thresholds
        by the instance's vCPUs and GPUs (SageMaker sums utilisation over them).
    :param invocations_per_instance_target: ``config.serving.invocations_per_instance_target``, the autoscaling goal
        per instance and minute: with ``max_instances`` it places the scaling ceiling.
    :param key: the platform key that encrypts the topic; CloudWatch is allowed to use it to publish.
    :param dashboard_name: ``<prefix>-serving``.

    Attributes: ``topic``, ``alarms`` (name → alarm, the endpoint's rollback alarms included), ``dashboard``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: MonitoredEndpoint,
        api: MonitoredApi,
        settings: ServingMonitoringConfig,
        instance_type: str | None,
        invocations_per_instance_target: int,
        key: kms.IKey,
        dashboard_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self.topic = sns.Topic(self, "Alarms", master_key=key, enforce_ssl=True)
        # CloudWatch encrypts what it publishes to the topic with the platform key.
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        for email in settings.emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self._action = cloudwatch_actions.SnsAction(self.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        period = cdk.Duration.seconds(settings.period_seconds)
        rollback = list(endpoint.rollback_alarms)
        for index, alarm in enumerate(rollback):
            if alarm_watches(alarm, ERRORS_5XX_METRIC):
                self._notify("Endpoint5xxRate", alarm)
            elif alarm_watches(alarm, LATENCY_METRIC):
                self._notify("ModelLatencyP99", alarm)
            else:
                self._notify(f"EndpointRollback{index + 1}", alarm)
        if not any(alarm_watches(alarm, ERRORS_5XX_METRIC) for alarm in rollback):
            self._alarm(
                "Endpoint5xxRate",
                self._rate(endpoint.metric_invocation_5xx_errors(), endpoint.metric_invocations(), period),
                settings.endpoint_5xx_rate_percent,
                f"{endpoint.endpoint_name}: more than {settings.endpoint_5xx_rate_percent}% of invocations failed "
                "with 5XX (the model or its container failed)",
            )
        if not any(alarm_watches(alarm, LATENCY_METRIC) for alarm in rollback):
            self._alarm(
                "ModelLatencyP99",
                endpoint.metric_model_latency().with_(statistic="p99", period=period),
                settings.model_latency_p99_ms * 1000,  # ModelLatency is in microseconds
                f"{endpoint.endpoint_name}: p99 model latency above {settings.model_latency_p99_ms} ms",
            )
        self._alarm(
            "Endpoint4xxRate",
            self._rate(endpoint.metric_invocation_4xx_errors(), endpoint.metric_invocations(), period),
            settings.endpoint_4xx_rate_percent,
            f"{endpoint.endpoint_name}: more than {settings.endpoint_4xx_rate_percent}% of invocations rejected with "
            "4XX (a client or the wrapper sends bad requests)",
        )
        if not endpoint.is_serverless:
            self._instance_alarms(endpoint, instance_type, invocations_per_instance_target, period)
        self._alarm(
            "FunctionErrors",
            api.metric_function_errors().with_(statistic="Sum", period=period),
            settings.function_errors,
            f"The classify wrapper raised at least {settings.function_errors} unhandled errors in a window (every "
            "expected failure is an answer, so this is a bug or a broken deployment)",
        )
        self._alarm(
            "FunctionThrottles",
            api.metric_function_throttles().with_(statistic="Sum", period=period),
            settings.function_throttles,
            f"Lambda throttled at least {settings.function_throttles} classify invocations in a window (clients got "
            "500): raise the concurrency quota or the reservation",
        )
        self._alarm(
            "Api5xxRate",
            cloudwatch.MathExpression(
                expression="100 * errors",
                using_metrics={"errors": api.metric_server_errors().with_(statistic="Average", period=period)},
                label="API 5XX per 100 requests",
                period=period,
            ),
            settings.api_5xx_rate_percent,
            f"More than {settings.api_5xx_rate_percent}% of API requests answered 5XX (endpoint failures, timeouts, "
            "throttled Lambda)",
        )
        self._alarm(
            "ApiLatencyP99",
            api.metric_latency().with_(statistic="p99", period=period),
            settings.api_latency_p99_ms,
            f"p99 latency of POST /v1/classify above {settings.api_latency_p99_ms} ms",
        )
        self.dashboard = self._dashboard(dashboard_name, endpoint, api, period)

    def _instance_alarms(
        self, endpoint: MonitoredEndpoint, instance_type: str | None, target: int, period: cdk.Duration
    ) -> None:
        """Utilisation and scaling-ceiling alarms: only instance endpoints publish them."""
        settings = self._settings
        if instance_type is None:
            raise ValueError("ServingMonitoring: an instance endpoint needs instance_type (config.serving)")
        vcpus = vcpus_per_instance(instance_type)
        self._alarm(
            "CpuUtilization",
            endpoint.metric_cpu_utilization().with_(statistic="Average", period=period),
            settings.cpu_utilization_percent * vcpus,
            f"{endpoint.endpoint_name}: CPU above {settings.cpu_utilization_percent}% per vCPU "
            f"({vcpus} vCPUs per {instance_type})",
        )
        gpus = gpus_per_instance(instance_type)
        if gpus:
            self._alarm(
                "GpuUtilization",
                endpoint.metric_gpu_utilization().with_(statistic="Average", period=period),
                settings.gpu_utilization_percent * gpus,
                f"{endpoint.endpoint_name}: GPU above {settings.gpu_utilization_percent}% per GPU "
                f"({gpus} per {instance_type})",
            )
        self._alarm(
            "MemoryUtilization",
            endpoint.metric_memory_utilization().with_(statistic="Average", period=period),
            settings.memory_utilization_percent,
            f"{endpoint.endpoint_name}: memory above {settings.memory_utilization_percent}%",
        )
        max_instances = endpoint.max_instances
        if max_instances is None:
            raise ValueError("ServingMonitoring: an instance endpoint needs max_instances for the scaling ceiling")
        # Target tracking counts invocations per instance and minute; the fleet cannot grow past max_instances.
        ceiling = target * max_instances * settings.scaling_ceiling_percent / 100
        per_minute = cloudwatch.MathExpression(
            expression="invocations / (PERIOD(invocations) / 60)",
            using_metrics={"invocations": endpoint.metric_invocations().with_(statistic="Sum", period=period)},
            label="Invocations per minute",
            period=period,
        )
        self._alarm(
            "ScalingCeiling",
            per_minute,
            ceiling,
            f"{endpoint.endpoint_name}: {ceiling:g} invocations per minute, {settings.scaling_ceiling_percent}% of "
            f"the target {target} x {max_instances} instances: autoscaling is at its ceiling, raise max_instances",
        )

    def _rate(self, errors: cloudwatch.Metric, total: cloudwatch.Metric, period: cdk.Duration) -> cloudwatch.IMetric:
        """Errors per 100 invocations over each window."""
        return cloudwatch.MathExpression(
            expression="100 * errors / invocations",
            using_metrics={
                "errors": errors.with_(statistic="Sum", period=period),
                "invocations": total.with_(statistic="Sum", period=period),
            },
            label=f"{errors.metric_name} per 100 invocations",
            period=period,
        )

    def _alarm(self, name: str, metric: cloudwatch.IMetric, threshold: float, description: str) -> cloudwatch.Alarm:
        settings = self._settings
        alarm = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=settings.evaluation_periods,
            datapoints_to_alarm=settings.datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        self._notify(name, alarm)
        return alarm

    def _notify(self, name: str, alarm: cloudwatch.Alarm) -> None:
        if name in self.alarms:
            raise ValueError(f"ServingMonitoring: two alarms named {name!r} (two rollback alarms on one metric?)")
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[name] = alarm

    def _dashboard(
        self, name: str, endpoint: MonitoredEndpoint, api: MonitoredApi, period: cdk.Duration
    ) -> cloudwatch.Dashboard:
        """One row per layer (API, wrapper, endpoint), each alarm's graph with its threshold line."""
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=name,
            default_interval=cdk.Duration.hours(3),
            period_override=cloudwatch.PeriodOverride.AUTO,
        )
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {name}\nAPI → Lambda wrapper → endpoint `{endpoint.endpoint_name}`. Alarms notify "
                "the serving topic; red lines are alarm thresholds.",
                width=24,
                height=2,
            )
        )
        traffic = {
            "API requests": api.metric_requests().with_(statistic="Sum", period=period),
            "Endpoint invocations": endpoint.metric_invocations().with_(statistic="Sum", period=period),
        }
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(title=title, left=[metric], width=6, height=6) for title, metric in traffic.items()
        ]
        widgets += [
            cloudwatch.AlarmWidget(alarm=alarm, title=alarm_name, width=6, height=6)
            for alarm_name, alarm in self.alarms.items()
        ]
        for start in range(0, len(widgets), 4):
            dashboard.add_widgets(*widgets[start : start + 4])
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarm states", alarms=list(self.alarms.values()), width=24, height=3)
        )
        return dashboard
