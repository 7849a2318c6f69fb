#!/usr/bin/env python3
"""What each stage costs: idle per month, and per unit of use, from its synthesized templates and a dated price table.

Usage (``make cost`` synthesizes dev and prod first, then runs this)::

    python scripts/cost_report.py dev=.build/cost/dev prod=.build/cost/prod [--prices config/prices_us_east_1.json]

Each ``STAGE=DIR`` names a cloud assembly (the ``-o`` folder of ``cdk synth -c stage=STAGE``). For every stack, every
resource that is billed while nothing runs gets a line: interface endpoints per AZ-hour (with the consumers that need
them, from the endpoint's ``NeededBy`` metadata), KMS keys, notebook volumes (billed while stopped), endpoints with
instances (at their floor, all month: an out-of-hours schedule only lowers it), alarms, dashboards, WAF web ACLs and
their rules, NAT gateways, flow logs (no fixed charge). Then the usage rates: per training, processing and transform
hour of each job's instance type, per notebook hour, per Glue job hour, per 1M requests through Lambda, API Gateway,
WAF and a serverless endpoint. Each line is the table's price times a quantity read from the template.

Exits 1 when a stage's idle total is above its ``idle_cost_goal_usd`` (config/stages.py), 2 on a bad argument, an
unreadable assembly or a price missing from the table (the message names it and the source page to take it from).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from config import ConfigError, load_config  # noqa: E402

DEFAULT_PRICES = REPO_ROOT / "config" / "prices_us_east_1.json"
NEEDED_BY_METADATA = "NeededBy"  # components/isolated_network.py writes it; this script never imports aws_cdk
DEFAULT_NOTEBOOK_VOLUME_GB = 5  # SageMaker's default when VolumeSizeInGB is absent
PER_MILLION = 1_000_000
DURATION_STEP_SECONDS = 0.1  # Lambda and serverless compute: quoted per 100 ms of average duration


class CostReportError(Exception):
    """A bad argument, assembly or price table; the message names the value and the fix."""


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


@dataclass(frozen=True)
class PriceTable:
    path: Path
    region: str
    as_of: str
    provenance: str
    hours_per_month: float
    prices: Mapping[str, Price]
    glue_worker_dpus: Mapping[str, float]

    def price(self, key: str) -> Price:
        if key not in self.prices:
            family = key.split("/", 1)[0]
            sources = sorted({p.source for k, p in self.prices.items() if k.startswith(f"{family}/")})
            where = sources[0] if sources else "the service's pricing page"
            raise CostReportError(
                f"no price {key!r} in {self.path}: add it (usd, unit, source) from {where} for {self.region}"
            )
        return self.prices[key]


def load_prices(path: Path) -> PriceTable:
    """Read and check the price table: every entry has a number, a unit and a source URL."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CostReportError(f"cannot read the price table {path}: {error}") from error
    for field in ("region", "as_of", "provenance", "hours_per_month", "prices", "glue_worker_dpus"):
        if field not in raw:
            raise CostReportError(f"{path} has no {field!r}; see config/prices_us_east_1.json for the layout")
    prices = {}
    for key, entry in raw["prices"].items():
        usd = entry.get("usd")
        source = str(entry.get("source", ""))
        if not isinstance(usd, int | float) or usd < 0 or not entry.get("unit") or not source.startswith("https://"):
            raise CostReportError(
                f"{path}: price {key!r}={entry!r} needs a non-negative 'usd', a 'unit' and an https 'source'"
            )
        prices[key] = Price(usd=float(usd), unit=str(entry["unit"]), source=source)
    return PriceTable(
        path=path,
        region=str(raw["region"]),
        as_of=str(raw["as_of"]),
        provenance=str(raw["provenance"]),
        hours_per_month=float(raw["hours_per_month"]),
        prices=prices,
        glue_worker_dpus={k: float(v) for k, v in raw["glue_worker_dpus"].items()},
    )


@dataclass(frozen=True)
class LineItem:
    """One priced line: ``usd`` is the table's ``price_key`` times ``quantity``."""

    stack: str
    resource: str
    what: str
    price_key: str
    quantity: float
    quantity_unit: str
    usd: float
    needed_by: tuple[str, ...] = ()


def read_assembly(assembly_dir: Path) -> dict[str, dict[str, Any]]:
    """Stack name to template, for every CloudFormation stack of a cloud assembly."""
    manifest_path = assembly_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CostReportError(
            f"{assembly_dir} is not a cloud assembly ({error}); synthesize into it with "
            f"'cdk synth -c stage=<stage> -o {assembly_dir}'"
        ) from error
    templates = {}
    for name, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") == "aws:cloudformation:stack":
            template_file = assembly_dir / artifact["properties"]["templateFile"]
            templates[name] = json.loads(template_file.read_text(encoding="utf-8"))
    if not templates:
        raise CostReportError(f"{manifest_path} lists no CloudFormation stack; synthesize the stage again")
    return templates


def _resources(templates: Mapping[str, Mapping[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for stack, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            yield stack, logical_id, resource


def _item(
    prices: PriceTable,
    stack: str,
    resource: str,
    what: str,
    key: str,
    quantity: float,
    unit: str,
    needed_by: Sequence[str] = (),
) -> LineItem:
    return LineItem(stack, resource, what, key, quantity, unit, prices.price(key).usd * quantity, tuple(needed_by))


def _endpoint_service(properties: Mapping[str, Any]) -> str:
    """The endpoint's service short name (``sagemaker.api``) from ``com.amazonaws.<region>.<name>``."""
    name = properties["ServiceName"]
    if isinstance(name, dict) and "Fn::Join" in name:
        return str(name["Fn::Join"][1][-1]).lstrip(".")
    return str(name).split(".", 3)[-1]


def idle_items(templates: Mapping[str, Mapping[str, Any]], prices: PriceTable) -> list[LineItem]:
    """Every resource billed per month while nothing runs, one line each."""
    hours = prices.hours_per_month
    items: list[LineItem] = []
    for stack, logical_id, resource in _resources(templates):
        kind, props = resource["Type"], resource.get("Properties", {})
        add = items.append
        if kind == "AWS::EC2::VPCEndpoint":
            service = _endpoint_service(props)
            needed = resource.get("Metadata", {}).get(NEEDED_BY_METADATA) or ["no consumer declared"]
            if props.get("VpcEndpointType") == "Gateway":
                add(
                    _item(
                        prices,
                        stack,
                        logical_id,
                        f"gateway endpoint {service}",
                        "vpc-gateway-endpoint/month",
                        1,
                        "endpoint-months",
                        needed,
                    )
                )
            else:
                azs = len(props.get("SubnetIds", []))
                add(
                    _item(
                        prices,
                        stack,
                        logical_id,
                        f"interface endpoint {service} in {azs} AZ",
                        "vpc-interface-endpoint/az-hour",
                        azs * hours,
                        "AZ-hours",
                        needed,
                    )
                )
        elif kind == "AWS::EC2::NatGateway":
            add(_item(prices, stack, logical_id, "NAT gateway", "nat-gateway/hour", hours, "hours"))
        elif kind == "AWS::KMS::Key":
            add(_item(prices, stack, logical_id, "KMS key", "kms-key/month", 1, "key-months"))
        elif kind == "AWS::SageMaker::NotebookInstance":
            size = float(props.get("VolumeSizeInGB", DEFAULT_NOTEBOOK_VOLUME_GB))
            add(
                _item(
                    prices,
                    stack,
                    logical_id,
                    f"stopped notebook's {size:g} GB volume",
                    "sagemaker-ml-storage/gb-month",
                    size,
                    "GB-months",
                )
            )
        elif kind == "AWS::CloudWatch::Alarm":
            add(_item(prices, stack, logical_id, "CloudWatch alarm", "cloudwatch-alarm/month", 1, "alarm-months"))
        elif kind == "AWS::CloudWatch::Dashboard":
            add(_item(prices, stack, logical_id, "CloudWatch dashboard", "cloudwatch-dashboard/month", 1, "months"))
        elif kind == "AWS::WAFv2::WebACL":
            rules = len(props.get("Rules", []))
            add(_item(prices, stack, logical_id, "WAF web ACL", "wafv2-web-acl/month", 1, "ACL-months"))
            add(
                _item(
                    prices, stack, logical_id, f"WAF web ACL: {rules} rules", "wafv2-rule/month", rules, "rule-months"
                )
            )
        elif kind == "AWS::EC2::FlowLog":
            add(
                _item(
                    prices,
                    stack,
                    logical_id,
                    "flow log (no fixed charge; per GB ingested, see usage)",
                    "cloudwatch-logs/ingested-gb",
                    0,
                    "GB",
                )
            )
        elif kind == "AWS::SageMaker::Endpoint":
            for variant in _endpoint_variants(templates[stack], props):
                if "InstanceType" in variant:
                    count = float(variant.get("InitialInstanceCount", 1))
                    name, instance_type = variant.get("VariantName", "?"), variant["InstanceType"]
                    add(
                        _item(
                            prices,
                            stack,
                            logical_id,
                            f"endpoint variant {name}: {count:g} x {instance_type}",
                            f"sagemaker-hosting/{instance_type}",
                            count * hours,
                            "instance-hours",
                        )
                    )
    return items


def _endpoint_variants(template: Mapping[str, Any], endpoint: Mapping[str, Any]) -> list[dict[str, Any]]:
    config = endpoint.get("EndpointConfigName")
    if isinstance(config, dict) and "Fn::GetAtt" in config:
        config = {"Ref": config["Fn::GetAtt"][0]}
    if not (isinstance(config, dict) and "Ref" in config):
        raise CostReportError(f"endpoint config {config!r} is not a resource of the same stack; cannot price it")
    variants: list[dict[str, Any]] = template["Resources"][config["Ref"]]["Properties"]["ProductionVariants"]
    return variants


def _pipeline_steps(definition: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    pending = list(definition.get("Steps", []))
    while pending:
        step = pending.pop(0)
        yield step
        if step["Type"] == "Condition":
            pending += step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", [])


def _flatten(value: Any) -> str:
    """A ``Fn::Join`` as text; tokens become quoted placeholders (prices never depend on them)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_flatten(part) for part in parts)
    return "<token>"


_STEP_RESOURCES = {
    "Training": ("ResourceConfig", "sagemaker-training", "training"),
    "Processing": ("ProcessingResources", "sagemaker-processing", "processing"),
    "Transform": ("TransformResources", "sagemaker-transform", "batch transform"),
}


def _pipeline_items(prices: PriceTable, stack: str, logical_id: str, props: Mapping[str, Any]) -> list[LineItem]:
    definition = json.loads(_flatten(props["PipelineDefinition"]["PipelineDefinitionBody"]))
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and str(value.get("Get", "")).startswith("Parameters."):
            return defaults[value["Get"].removeprefix("Parameters.")]
        return value

    items: list[LineItem] = []
    for step in _pipeline_steps(definition):
        if step["Type"] not in _STEP_RESOURCES:
            continue
        field, family, label = _STEP_RESOURCES[step["Type"]]
        resources = step["Arguments"][field]
        resources = resources.get("ClusterConfig", resources)
        instance_type, count = resolve(resources["InstanceType"]), float(resolve(resources["InstanceCount"]))
        spot = " (on demand; spot bills less)" if step["Arguments"].get("EnableManagedSpotTraining") else ""
        items.append(
            _item(
                prices,
                stack,
                logical_id,
                f"{props.get('PipelineName', logical_id)} {step['Name']}: per {label} hour, "
                f"{count:g} x {instance_type}{spot}",
                f"{family}/{instance_type}",
                count,
                "instance-hours per hour",
            )
        )
    return items


def usage_items(templates: Mapping[str, Mapping[str, Any]], prices: PriceTable) -> list[LineItem]:
    """What one unit of use costs on top of idle: an hour of a job or notebook, 1M requests, a GB of logs."""
    items: list[LineItem] = []
    for stack, logical_id, resource in _resources(templates):
        kind, props = resource["Type"], resource.get("Properties", {})
        add = items.append
        if kind == "AWS::SageMaker::Pipeline":
            items += _pipeline_items(prices, stack, logical_id, props)
        elif kind == "AWS::SageMaker::NotebookInstance":
            add(
                _item(
                    prices,
                    stack,
                    logical_id,
                    f"notebook: per running hour, {props['InstanceType']}",
                    f"sagemaker-notebook/{props['InstanceType']}",
                    1,
                    "instance-hours per hour",
                )
            )
        elif kind == "AWS::Glue::Job":
            worker = props["WorkerType"]
            if worker not in prices.glue_worker_dpus:
                raise CostReportError(f"no DPU count for Glue worker type {worker!r} in {prices.path} glue_worker_dpus")
            dpus = float(props["NumberOfWorkers"]) * prices.glue_worker_dpus[worker]
            add(
                _item(
                    prices,
                    stack,
                    logical_id,
                    f"Glue job: per run hour, {props['NumberOfWorkers']} x {worker}",
                    "glue/dpu-hour",
                    dpus,
                    "DPU-hours per hour",
                )
            )
        elif kind == "AWS::Lambda::Function":
            memory_gb = float(props.get("MemorySize", 128)) / 1024
            add(_item(prices, stack, logical_id, "Lambda: per 1M requests", "lambda/1m-requests", 1, "1M requests"))
            add(
                _item(
                    prices,
                    stack,
                    logical_id,
                    f"Lambda: per 1M requests, each 100 ms of average duration at {memory_gb * 1024:g} MB",
                    "lambda/gb-second",
                    PER_MILLION * memory_gb * DURATION_STEP_SECONDS,
                    "GB-seconds",
                )
            )
        elif kind == "AWS::ApiGateway::RestApi":
            add(
                _item(
                    prices,
                    stack,
                    logical_id,
                    "REST API: per 1M requests",
                    "api-gateway-rest/1m-requests",
                    1,
                    "1M requests",
                )
            )
        elif kind == "AWS::WAFv2::WebACL":
            add(
                _item(
                    prices, stack, logical_id, "WAF: per 1M requests inspected", "wafv2/1m-requests", 1, "1M requests"
                )
            )
        elif kind == "AWS::SageMaker::Endpoint":
            for variant in _endpoint_variants(templates[stack], props):
                serverless = variant.get("ServerlessConfig")
                if serverless:
                    memory_gb = float(serverless["MemorySizeInMB"]) / 1024
                    add(
                        _item(
                            prices,
                            stack,
                            logical_id,
                            f"serverless endpoint: per 1M requests, each 100 ms at {memory_gb * 1024:g} MB",
                            "sagemaker-serverless/gb-second",
                            PER_MILLION * memory_gb * DURATION_STEP_SECONDS,
                            "GB-seconds",
                        )
                    )
        elif kind == "AWS::EC2::FlowLog":
            add(_item(prices, stack, logical_id, "flow log records: per GB", "cloudwatch-logs/ingested-gb", 1, "GB"))
        elif kind == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType") != "Gateway":
            add(
                _item(
                    prices,
                    stack,
                    logical_id,
                    f"interface endpoint {_endpoint_service(props)}: per GB",
                    "vpc-interface-endpoint/gb",
                    1,
                    "GB",
                )
            )
    return items


@dataclass(frozen=True)
class StageReport:
    stage: str
    idle: list[LineItem]
    usage: list[LineItem]
    goal_usd: float | None

    @property
    def idle_usd(self) -> float:
        return sum(item.usd for item in self.idle)

    @property
    def over_goal(self) -> bool:
        return self.goal_usd is not None and round(self.idle_usd, 2) > self.goal_usd


def stage_report(stage: str, assembly_dir: Path, prices: PriceTable) -> StageReport:
    """The report of one stage from its cloud assembly; the goal comes from the stage's config."""
    try:
        goal = load_config(stage).idle_cost_goal_usd
    except ConfigError as error:
        raise CostReportError(str(error)) from error
    templates = read_assembly(assembly_dir)
    return StageReport(stage, idle_items(templates, prices), usage_items(templates, prices), goal)


def format_report(report: StageReport, prices: PriceTable) -> str:
    lines = [f"== stage {report.stage}: idle per month (nothing running)"]
    for item in report.idle:
        quantity = f"{item.quantity:g} {item.quantity_unit} x ${prices.price(item.price_key).usd:g}"
        lines.append(f"  {item.stack:<20} {item.resource:<44} {item.what:<56} {quantity:<28} ${item.usd:>9.2f}")
        lines += [f"      needed by {reason}" for reason in item.needed_by]
    verdict = ""
    if report.goal_usd is not None:
        verdict = f" (goal ${report.goal_usd:.2f}: {'OVER' if report.over_goal else 'ok'})"
    lines.append(f"  total idle: ${report.idle_usd:.2f} per month{verdict}")
    lines.append(
        "  everything else in the templates (buckets, roles, pipelines, rules, topics, ...) costs nothing idle"
    )
    lines.append(f"== stage {report.stage}: usage, on top of idle")
    for item in report.usage:
        lines.append(f"  {item.stack:<20} {item.resource:<44} {item.what:<96} ${item.usd:>10.4f}")
    return "\n".join(lines)


def parse_stage(value: str) -> tuple[str, Path]:
    stage, sep, directory = value.partition("=")
    if not sep or not stage or not directory:
        raise argparse.ArgumentTypeError(f"{value!r}: expected STAGE=DIR, e.g. dev=.build/cost/dev")
    return stage, Path(directory)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stages", nargs="+", type=parse_stage, help="STAGE=DIR: a stage and its cloud assembly")
    parser.add_argument("--prices", type=Path, default=DEFAULT_PRICES, help="price table (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        prices = load_prices(args.prices)
        print(f"prices: {prices.path} ({prices.region}, on demand, as of {prices.as_of}; {prices.provenance})")
        reports = []
        for stage, directory in args.stages:
            print(f"==> reading stage {stage} from {directory}", file=sys.stderr)
            reports.append(stage_report(stage, directory, prices))
            print(format_report(reports[-1], prices))
    except CostReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    over = [r for r in reports if r.over_goal]
    for report in over:
        print(
            f"error: stage {report.stage} costs ${report.idle_usd:.2f} per month idle, above its goal "
            f"${report.goal_usd:.2f} (idle_cost_goal_usd in config/stages.py): remove what the idle lines above "
            "show is not needed, or raise the goal on purpose",
            file=sys.stderr,
        )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
