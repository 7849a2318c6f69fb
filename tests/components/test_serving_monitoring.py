"""Serving alarms, their KMS topic and the stage dashboard.

One small app: an instance endpoint with canary rollback alarms (prod-like, GPU) and a serverless endpoint without
them (dev-like), each with the real InferenceApi in front, synthesized once with the compliance packs registered.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import load_cdk_json_context
from components.compliance import compliance_packs, register_compliance_packs
from components.inference_api import InferenceApi
from components.serving_monitoring import ServingMonitoring, vcpus_per_instance
from config import load_config
from config.settings import ServingMonitoringConfig
from tests.components.serving_fakes import FakeEndpoint, placement

SETTINGS = dataclasses.replace(
    ServingMonitoringConfig(), emails=("ml-oncall@example.com", "team@example.org"), endpoint_4xx_rate_percent=7.5
)
INSTANCE_TYPE = "ml.g5.12xlarge"  # 48 vCPUs, 4 GPUs
TARGET = 100
MAX_INSTANCES = 6


class Synthesized:
    def __init__(self, outdir: Path) -> None:
        self.app = cdk.App(context=load_cdk_json_context(), outdir=str(outdir), stack_traces=False)
        self.monitoring: dict[str, ServingMonitoring] = {}
        self.endpoints: dict[str, FakeEndpoint] = {}
        serving = load_config("dev").serving
        for name, serverless in (("Instance", False), ("Serverless", True)):
            stack = cdk.Stack(self.app, f"Monitoring{name}")
            where = placement(stack)
            endpoint = FakeEndpoint(
                stack,
                "Endpoint",
                serverless=serverless,
                max_instances=None if serverless else MAX_INSTANCES,
                rollback=not serverless,
            )
            api = InferenceApi(
                stack,
                "Classify",
                endpoint=endpoint,
                serving=serving,
                placement=where,
                name_prefix="nlp-test",
                stage_name="test",
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
            self.endpoints[name] = endpoint
            self.monitoring[name] = ServingMonitoring(
                stack,
                "Monitoring",
                endpoint=endpoint,
                api=api,
                settings=SETTINGS,
                instance_type=None if serverless else INSTANCE_TYPE,
                invocations_per_instance_target=TARGET,
                key=where.key,
                dashboard_name=f"nlp-{name.lower()}-serving",
            )
        register_compliance_packs(self.app)
        self.app.synth()
        self.outdir = outdir
        self.templates = {name: Template.from_stack(cdk.Stack.of(m)) for name, m in self.monitoring.items()}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield Synthesized(tmp_path_factory.mktemp("monitoring"))


def alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in template.find_resources("AWS::CloudWatch::Alarm").items()}


def alarm(synth: Synthesized, variant: str, name: str) -> dict[str, Any]:
    monitoring = synth.monitoring[variant]
    stack = cdk.Stack.of(monitoring)
    resource = monitoring.alarms[name].node.default_child
    return alarms(synth.templates[variant])[stack.get_logical_id(resource)]  # type: ignore[arg-type]


def metric_names(properties: dict[str, Any]) -> set[str]:
    if "MetricName" in properties:
        return {properties["MetricName"]}
    return {m["MetricStat"]["Metric"]["MetricName"] for m in properties.get("Metrics", []) if "MetricStat" in m}


def test_the_compliance_packs_find_no_violation(synth: Synthesized) -> None:
    for pack in compliance_packs(synth.app):
        violations = pack.validate_scope(synth.app).violations  # type: ignore[attr-defined]
        assert violations == [], [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in violations]


def test_cfn_lint_reports_nothing(synth: Synthesized) -> None:
    templates = sorted(str(p) for p in synth.outdir.glob("*.template.json"))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable", *templates],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_topic_is_encrypted_tls_only_with_the_configured_emails(synth: Synthesized) -> None:
    template = synth.templates["Instance"]
    ((topic_id, topic),) = template.find_resources("AWS::SNS::Topic").items()
    assert "KmsMasterKeyId" in topic["Properties"]
    (policy,) = template.find_resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    subscriptions = template.find_resources("AWS::SNS::Subscription")
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions.values()) == sorted(SETTINGS.emails)
    assert all(s["Properties"]["TopicArn"] == {"Ref": topic_id} for s in subscriptions.values())
    key_policy = json.dumps(template.find_resources("AWS::KMS::Key"))
    assert "cloudwatch.amazonaws.com" in key_policy


def test_every_alarm_notifies_the_topic_and_treats_missing_data_as_not_breaching(synth: Synthesized) -> None:
    for variant, template in synth.templates.items():
        (topic_id,) = template.find_resources("AWS::SNS::Topic")
        found = alarms(template)
        assert len(found) == len(synth.monitoring[variant].alarms)
        for logical_id, properties in found.items():
            assert properties["AlarmActions"] == [{"Ref": topic_id}], logical_id
            assert properties["OKActions"] == [{"Ref": topic_id}], logical_id


def test_alarms_this_construct_creates_use_the_configured_windows(synth: Synthesized) -> None:
    for variant, monitoring in synth.monitoring.items():
        for name in monitoring.alarms:
            if name in ("Endpoint5xxRate", "ModelLatencyP99") and variant == "Instance":
                continue  # the endpoint's own rollback alarms
            properties = alarm(synth, variant, name)
            assert properties["EvaluationPeriods"] == SETTINGS.evaluation_periods, name
            assert properties["DatapointsToAlarm"] == SETTINGS.datapoints_to_alarm, name
            assert properties["TreatMissingData"] == "notBreaching", name
            assert properties["ComparisonOperator"] == "GreaterThanThreshold", name


def test_instance_endpoint_reuses_the_rollback_alarms_instead_of_duplicating_them(synth: Synthesized) -> None:
    monitoring = synth.monitoring["Instance"]
    rollback = list(synth.endpoints["Instance"].rollback_alarms)
    assert monitoring.alarms["Endpoint5xxRate"] is rollback[0]
    assert monitoring.alarms["ModelLatencyP99"] is rollback[1]
    found = alarms(synth.templates["Instance"]).values()
    assert sum("Invocation5XXErrors" in metric_names(p) for p in found) == 1
    assert sum("ModelLatency" in metric_names(p) for p in found) == 1


def test_instance_endpoint_alarm_set(synth: Synthesized) -> None:
    assert set(synth.monitoring["Instance"].alarms) == {
        "Endpoint5xxRate", "ModelLatencyP99", "Endpoint4xxRate", "CpuUtilization", "GpuUtilization",
        "MemoryUtilization", "ScalingCeiling", "FunctionErrors", "FunctionThrottles", "Api5xxRate", "ApiLatencyP99",
    }  # fmt: skip


def test_serverless_endpoint_has_its_own_5xx_and_latency_alarms_and_no_instance_alarms(synth: Synthesized) -> None:
    assert set(synth.monitoring["Serverless"].alarms) == {
        "Endpoint5xxRate", "ModelLatencyP99", "Endpoint4xxRate", "FunctionErrors", "FunctionThrottles",
        "Api5xxRate", "ApiLatencyP99",
    }  # fmt: skip
    rate = alarm(synth, "Serverless", "Endpoint5xxRate")
    assert rate["Threshold"] == SETTINGS.endpoint_5xx_rate_percent
    assert metric_names(rate) == {"Invocation5XXErrors", "Invocations"}
    latency = alarm(synth, "Serverless", "ModelLatencyP99")
    assert latency["MetricName"] == "ModelLatency" and latency["ExtendedStatistic"] == "p99"
    assert latency["Threshold"] == SETTINGS.model_latency_p99_ms * 1000  # microseconds


def test_rates_divide_errors_by_invocations(synth: Synthesized) -> None:
    rate = alarm(synth, "Instance", "Endpoint4xxRate")
    assert rate["Threshold"] == 7.5
    (expression,) = [m["Expression"] for m in rate["Metrics"] if "Expression" in m]
    assert expression == "100 * errors / invocations"
    assert metric_names(rate) == {"Invocation4XXErrors", "Invocations"}


def test_utilisation_thresholds_scale_with_the_instance_cores_and_gpus(synth: Synthesized) -> None:
    cpu = alarm(synth, "Instance", "CpuUtilization")
    assert cpu["MetricName"] == "CPUUtilization" and cpu["Namespace"] == "/aws/sagemaker/Endpoints"
    assert cpu["Threshold"] == SETTINGS.cpu_utilization_percent * 48
    assert alarm(synth, "Instance", "GpuUtilization")["Threshold"] == SETTINGS.gpu_utilization_percent * 4
    assert alarm(synth, "Instance", "MemoryUtilization")["Threshold"] == SETTINGS.memory_utilization_percent


def test_scaling_ceiling_is_the_target_times_max_instances(synth: Synthesized) -> None:
    ceiling = alarm(synth, "Instance", "ScalingCeiling")
    assert ceiling["Threshold"] == TARGET * MAX_INSTANCES * SETTINGS.scaling_ceiling_percent / 100
    assert metric_names(ceiling) == {"Invocations"}


def test_lambda_and_api_alarms(synth: Synthesized) -> None:
    errors = alarm(synth, "Serverless", "FunctionErrors")
    assert (errors["MetricName"], errors["Statistic"], errors["Threshold"]) == ("Errors", "Sum", 1)
    throttles = alarm(synth, "Serverless", "FunctionThrottles")
    assert (throttles["MetricName"], throttles["Threshold"]) == ("Throttles", SETTINGS.function_throttles)
    api_5xx = alarm(synth, "Serverless", "Api5xxRate")
    assert metric_names(api_5xx) == {"5XXError"} and api_5xx["Threshold"] == SETTINGS.api_5xx_rate_percent
    latency = alarm(synth, "Serverless", "ApiLatencyP99")
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("Latency", "p99")
    assert latency["Threshold"] == SETTINGS.api_latency_p99_ms


def test_one_dashboard_per_stage_shows_every_alarm(synth: Synthesized) -> None:
    for variant, template in synth.templates.items():
        (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
        assert dashboard["Properties"]["DashboardName"] == f"nlp-{variant.lower()}-serving"
        body = json.dumps(dashboard["Properties"]["DashboardBody"])
        stack = cdk.Stack.of(synth.monitoring[variant])
        for name, each in synth.monitoring[variant].alarms.items():
            logical_id = stack.get_logical_id(each.node.default_child)  # type: ignore[arg-type]
            assert body.count(logical_id) >= 2, name  # its graph (with the threshold) and the status widget


@pytest.mark.parametrize(
    ("instance_type", "vcpus"),
    [("ml.m5.large", 2), ("ml.g5.xlarge", 4), ("ml.g5.12xlarge", 48), ("ml.p4d.24xlarge", 96), ("ml.t2.medium", 2)],
)
def test_vcpus_follow_the_instance_size(instance_type: str, vcpus: int) -> None:
    assert vcpus_per_instance(instance_type) == vcpus


def test_vcpus_refuses_what_is_not_an_instance_type() -> None:
    with pytest.raises(ValueError, match="not a SageMaker instance type"):
        vcpus_per_instance("g5.xlarge")
