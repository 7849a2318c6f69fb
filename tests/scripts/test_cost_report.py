"""scripts/cost_report.py prices the synthesized stages with config/prices_us_east_1.json.

The reports are built from the session's dev and prod cloud assemblies (tests/conftest.py), not a new synth. Each
expected number is recomputed here from the template JSON and the price table, resource by resource, so a report
line that drifts from "price x quantity in the template" fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.vpc_services import VpcService, needed_by
from config import load_config
from stacks.platform import vpc_consumers
from tests.training_code.harness_support import REPO_ROOT, load_module

cost_report = load_module("cost_report_script", REPO_ROOT / "scripts" / "cost_report.py")

PRICES_PATH = REPO_ROOT / "config" / "prices_us_east_1.json"
RAW_PRICES = json.loads(PRICES_PATH.read_text(encoding="utf-8"))
HOURS = RAW_PRICES["hours_per_month"]


def usd(key: str) -> float:
    value: float = RAW_PRICES["prices"][key]["usd"]
    return value


@pytest.fixture(scope="module")
def prices() -> Any:
    return cost_report.load_prices(PRICES_PATH)


def templates_of(stage: Any) -> dict[str, dict[str, Any]]:
    """The stage's templates as JSON, read from its cloud assembly folder."""
    return {
        path.name.removesuffix(".template.json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(Path(stage.assembly_dir).glob("*.template.json"))
    }


def resources(stage: Any, kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for template in templates_of(stage).values()
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def report_of(stage: Any, prices: Any) -> Any:
    name = stage.app.node.try_get_context("stage")
    return cost_report.stage_report(name, Path(stage.assembly_dir), prices)


def by_resource(items: list[Any]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for item in items:
        totals[item.resource] = totals.get(item.resource, 0.0) + item.usd
    return totals


def expected_idle(stage: Any) -> dict[str, float]:
    """Resource to its idle monthly cost, straight from the templates and the price table."""
    expected = {}
    for logical_id, endpoint in resources(stage, "AWS::EC2::VPCEndpoint").items():
        props = endpoint["Properties"]
        if props["VpcEndpointType"] == "Interface":
            expected[logical_id] = len(props["SubnetIds"]) * HOURS * usd("vpc-interface-endpoint/az-hour")
        else:
            expected[logical_id] = 0.0
    for logical_id in resources(stage, "AWS::KMS::Key"):
        expected[logical_id] = usd("kms-key/month")
    for logical_id, notebook in resources(stage, "AWS::SageMaker::NotebookInstance").items():
        expected[logical_id] = notebook["Properties"]["VolumeSizeInGB"] * usd("sagemaker-ml-storage/gb-month")
    for logical_id in resources(stage, "AWS::CloudWatch::Alarm"):
        expected[logical_id] = usd("cloudwatch-alarm/month")
    for logical_id in resources(stage, "AWS::CloudWatch::Dashboard"):
        expected[logical_id] = usd("cloudwatch-dashboard/month")
    for logical_id, acl in resources(stage, "AWS::WAFv2::WebACL").items():
        expected[logical_id] = usd("wafv2-web-acl/month") + len(acl["Properties"]["Rules"]) * usd("wafv2-rule/month")
    for logical_id in resources(stage, "AWS::EC2::FlowLog"):
        expected[logical_id] = 0.0
    for logical_id in resources(stage, "AWS::EC2::NatGateway"):
        expected[logical_id] = HOURS * usd("nat-gateway/hour")
    configs = resources(stage, "AWS::SageMaker::EndpointConfig")
    for logical_id, endpoint in resources(stage, "AWS::SageMaker::Endpoint").items():
        config_id = endpoint["Properties"]["EndpointConfigName"]["Fn::GetAtt"][0]
        instances = [v for v in configs[config_id]["Properties"]["ProductionVariants"] if "InstanceType" in v]
        if instances:  # a serverless endpoint bills per request only
            expected[logical_id] = sum(
                v["InitialInstanceCount"] * HOURS * usd(f"sagemaker-hosting/{v['InstanceType']}") for v in instances
            )
    return expected


def test_dev_idle_is_at_most_60_dollars_a_month(dev: Any, prices: Any) -> None:
    report = report_of(dev, prices)
    assert report.goal_usd == 60.0 == load_config("dev").idle_cost_goal_usd
    assert report.idle_usd <= 60.0
    assert not report.over_goal
    # Private networking intact: no NAT, and the interface endpoints are still there.
    assert not resources(dev, "AWS::EC2::NatGateway")
    assert any("interface endpoint" in item.what for item in report.idle)


def test_each_idle_line_is_the_table_price_times_the_template_quantity(stage: Any, prices: Any) -> None:
    report = report_of(stage, prices)
    for item in report.idle:
        assert item.usd == pytest.approx(usd(item.price_key) * item.quantity), item
    assert by_resource(report.idle) == pytest.approx(expected_idle(stage))
    assert report.idle_usd == pytest.approx(sum(expected_idle(stage).values()))


def test_prod_idle_lists_every_line_item(prod: Any, prices: Any) -> None:
    config = prod.config  # with the session's example model: the Serving stack's floor of instances is idle cost
    report = report_of(prod, prices)
    interface = [s for s in needed_by(vpc_consumers(config)) if not s.is_gateway]
    endpoint_lines = [item for item in report.idle if item.what.startswith("interface endpoint")]
    assert len(endpoint_lines) == len(interface) == 8  # with sagemaker.runtime for the notebooks
    assert {item.quantity for item in endpoint_lines} == {config.network.az_count * HOURS}
    volumes = sum(user.volume_size_gb for user in config.workbench.users)
    serving = config.serving
    (hosting,) = [item for item in report.idle if item.what.startswith("endpoint variant AllTraffic")]
    assert hosting.price_key == f"sagemaker-hosting/{serving.instance_type}"
    assert hosting.quantity == serving.min_instances * HOURS
    alarms = len(resources(prod, "AWS::CloudWatch::Alarm"))
    assert len(resources(prod, "AWS::CloudWatch::Dashboard")) == 1
    ((acl_id, acl),) = resources(prod, "AWS::WAFv2::WebACL").items()  # prod's API has WAF
    rules = len(acl["Properties"]["Rules"])
    assert {item.price_key for item in report.idle if item.resource == acl_id} == {
        "wafv2-web-acl/month",
        "wafv2-rule/month",
    }
    assert report.idle_usd == pytest.approx(
        len(interface) * config.network.az_count * HOURS * usd("vpc-interface-endpoint/az-hour")
        + usd("kms-key/month")
        + volumes * usd("sagemaker-ml-storage/gb-month")
        + serving.min_instances * HOURS * usd(f"sagemaker-hosting/{serving.instance_type}")
        + alarms * usd("cloudwatch-alarm/month")
        + usd("cloudwatch-dashboard/month")
        + usd("wafv2-web-acl/month")
        + rules * usd("wafv2-rule/month")
    )
    text = cost_report.format_report(report, prices)
    for item in report.idle:
        assert item.resource in text and f"${item.usd:>9.2f}" in text


def test_each_endpoint_has_a_declared_consumer_and_each_declared_service_an_endpoint(stage: Any, prices: Any) -> None:
    config = stage.config
    declared = needed_by(vpc_consumers(config))
    report = report_of(stage, prices)
    reported = {
        item.what.split()[2]: item.needed_by for item in report.idle if item.what.startswith("interface endpoint")
    }
    assert reported == {service.value: lines for service, lines in declared.items() if not service.is_gateway}
    consumer_names = {consumer.name for consumer in vpc_consumers(config)}
    for lines in reported.values():
        assert lines and all(line.split(": ", 1)[0] in consumer_names for line in lines)
    (s3_line,) = [item for item in report.idle if item.what == "gateway endpoint s3"]
    assert s3_line.needed_by == declared[VpcService.S3] and s3_line.usd == 0


def test_usage_rates_follow_the_stage_instance_types(stage: Any, prices: Any) -> None:
    config = stage.config
    usage = report_of(stage, prices).usage
    for item in usage:
        assert item.usd == pytest.approx(usd(item.price_key) * item.quantity), item
    (train,) = [item for item in usage if " Train: per training hour" in item.what]
    training = config.training
    assert train.price_key == f"sagemaker-training/{training.instance_type}"
    assert train.usd == pytest.approx(training.instance_count * usd(train.price_key))
    (evaluate,) = [item for item in usage if " Evaluate: per processing hour" in item.what]
    assert evaluate.usd == pytest.approx(usd(f"sagemaker-processing/{training.processing_instance_type}"))
    (glue,) = [item for item in usage if item.what.startswith("Glue job")]
    dpus = RAW_PRICES["glue_worker_dpus"][config.data_preparation.worker_type]
    assert glue.usd == pytest.approx(config.data_preparation.number_of_workers * dpus * usd("glue/dpu-hour"))
    notebooks = sorted(item.price_key for item in usage if item.what.startswith("notebook: per running hour"))
    assert notebooks == sorted(f"sagemaker-notebook/{user.instance_type}" for user in config.workbench.users)
    lambdas = resources(stage, "AWS::Lambda::Function")
    per_request = [item for item in usage if item.what == "Lambda: per 1M requests"]
    assert {item.resource for item in per_request} == set(lambdas)
    for item in usage:
        if item.price_key == "lambda/gb-second":
            memory_gb = lambdas[item.resource]["Properties"].get("MemorySize", 128) / 1024
            assert item.usd == pytest.approx(1_000_000 * 0.1 * memory_gb * usd("lambda/gb-second"))


def test_price_table_is_dated_sourced_and_marked_as_not_fetched() -> None:
    assert RAW_PRICES["region"] == "us-east-1" and RAW_PRICES["as_of"] == "2026-12-04"
    assert "NOT FETCHED" in RAW_PRICES["provenance"] and "Re-check" in RAW_PRICES["provenance"]
    for key, entry in RAW_PRICES["prices"].items():
        assert entry["source"].startswith("https://aws.amazon.com/"), key
        assert entry["unit"] and entry["usd"] >= 0, key
    assert usd("vpc-interface-endpoint/az-hour") == 0.01 and usd("kms-key/month") == 1.0


ENDPOINT_TEMPLATE = {
    "Resources": {
        "Config": {
            "Type": "AWS::SageMaker::EndpointConfig",
            "Properties": {
                "ProductionVariants": [
                    {"VariantName": "Blue", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 2},
                    {"VariantName": "Small", "ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 5}},
                ]
            },
        },
        "Endpoint": {"Type": "AWS::SageMaker::Endpoint", "Properties": {"EndpointConfigName": {"Ref": "Config"}}},
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "inference"}},
        "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
        "Nat": {"Type": "AWS::EC2::NatGateway", "Properties": {}},
    }
}


def test_serving_resources_are_priced_idle_and_per_million_requests(prices: Any) -> None:
    templates = {"nlp-x-serving": ENDPOINT_TEMPLATE}
    idle = by_resource(cost_report.idle_items(templates, prices))
    assert idle == pytest.approx(
        {
            "Endpoint": 2 * HOURS * usd("sagemaker-hosting/ml.g5.xlarge"),
            "Alarm": usd("cloudwatch-alarm/month"),
            "Nat": HOURS * usd("nat-gateway/hour"),
        }
    )
    usage = {item.price_key: item.usd for item in cost_report.usage_items(templates, prices)}
    assert usage["api-gateway-rest/1m-requests"] == usd("api-gateway-rest/1m-requests")
    assert usage["sagemaker-serverless/gb-second"] == pytest.approx(1_000_000 * 0.1 * 4 * 0.00002)


def test_missing_price_names_the_key_and_where_to_find_it(prices: Any) -> None:
    notebook = {"Type": "AWS::SageMaker::NotebookInstance", "Properties": {"InstanceType": "ml.p4d.24xlarge"}}
    with pytest.raises(cost_report.CostReportError) as error:
        cost_report.usage_items({"s": {"Resources": {"Nb": notebook}}}, prices)
    message = str(error.value)
    assert "'sagemaker-notebook/ml.p4d.24xlarge'" in message and str(PRICES_PATH) in message
    assert "https://aws.amazon.com/sagemaker/pricing/" in message


def test_exits_1_naming_the_stage_when_idle_is_over_its_goal(
    dev: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dearer = json.loads(PRICES_PATH.read_text(encoding="utf-8"))
    dearer["prices"]["vpc-interface-endpoint/az-hour"]["usd"] = 0.02
    table = tmp_path / "prices.json"
    table.write_text(json.dumps(dearer), encoding="utf-8")
    assert cost_report.main([f"dev={dev.assembly_dir}", "--prices", str(table)]) == 1
    err = capsys.readouterr().err
    assert "stage dev costs $" in err and "above its goal $60.00" in err and "idle_cost_goal_usd" in err
    assert cost_report.main([f"dev={dev.assembly_dir}"]) == 0
    out = capsys.readouterr().out
    assert "== stage dev: idle per month" in out and "(goal $60.00: ok)" in out and "NOT FETCHED" in out


def test_bad_assembly_folder_is_named_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cost_report.main([f"dev={tmp_path / 'missing'}"]) == 2
    err = capsys.readouterr().err
    assert "missing is not a cloud assembly" in err and "cdk synth -c stage=<stage> -o" in err
