"""The classify front door: an IAM-auth REST API validating the handler's schema, in front of the VPC Lambda wrapper.

One small app with a dev-like stack (no WAF, no reservation) and a prod-like stack (WAF, reserved concurrency, API
key with a quota), synthesized once with the compliance packs registered.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from app import load_cdk_json_context
from components import inference_api
from components.compliance import compliance_packs, register_compliance_packs
from components.inference_api import ACCESS_LOG_FIELDS, GATEWAY_RESPONSES, InferenceApi, gateway_request_schema
from components.vpc_services import VpcService
from config import load_config
from config.settings import ServingConfig
from tests.components.serving_fakes import ENDPOINT_NAME, FakeEndpoint, placement

HANDLER = Path(__file__).resolve().parents[2] / "lambda_handlers" / "classify" / "handler.py"
DEV = load_config("dev").serving
PROD = dataclasses.replace(
    load_config("prod").serving,
    api=dataclasses.replace(
        load_config("prod").serving.api, reserved_concurrency=5, api_key_required=True, quota_limit=50_000
    ),
)


def _load_handler() -> ModuleType:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    spec = importlib.util.spec_from_file_location("classify_handler_for_infra_tests", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Synthesized:
    def __init__(self, outdir: Path) -> None:
        self.app = cdk.App(context=load_cdk_json_context(), outdir=str(outdir), stack_traces=False)
        self.apis: dict[str, InferenceApi] = {}
        for name, serving in (("Dev", DEV), ("Prod", PROD)):
            stack = cdk.Stack(self.app, f"Front{name}")
            endpoint = FakeEndpoint(stack, "Endpoint", serverless=False, max_instances=2, rollback=False)
            self.apis[name] = InferenceApi(
                stack,
                "Classify",
                endpoint=endpoint,
                serving=serving,
                placement=placement(stack),
                name_prefix=f"nlp-{name.lower()}",
                stage_name=name.lower(),
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
        register_compliance_packs(self.app)
        self.assembly = self.app.synth()
        self.outdir = outdir
        self.templates = {name: Template.from_stack(cdk.Stack.of(api)) for name, api in self.apis.items()}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield Synthesized(tmp_path_factory.mktemp("front"))


@pytest.fixture(scope="module")
def handler() -> ModuleType:
    return _load_handler()


def one(template: Template, resource_type: str) -> dict[str, Any]:
    (resource,) = template.find_resources(resource_type).values()
    return dict(resource["Properties"])


def the_function(template: Template) -> dict[str, Any]:
    return one(template, "AWS::Lambda::Function")


# --- compliance and lint ---------------------------------------------------------------------------------------------


def test_the_compliance_packs_find_no_violation(synth: Synthesized) -> None:
    for pack in compliance_packs(synth.app):
        violations = pack.validate_scope(synth.app).violations  # type: ignore[attr-defined]
        assert violations == [], [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in violations]


def test_cfn_lint_reports_nothing(synth: Synthesized) -> None:
    templates = sorted(str(p) for p in synth.outdir.glob("*.template.json"))
    assert len(templates) == 2
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable", *templates],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def acknowledged(template: Template) -> set[tuple[str, str]]:
    return {
        (resource["Type"], rule["id"])
        for resource in template.to_json()["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        if not rule["id"].startswith("CloudFormation-Validate::")
    }


def test_acknowledgments_are_the_reviewed_ones(synth: Synthesized) -> None:
    always = {
        ("AWS::IAM::ManagedPolicy", "AwsSolutions-IAM5[Resource::*]"),
        ("AWS::IAM::Role", "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                           "AmazonAPIGatewayPushToCloudWatchLogs]"),
        ("AWS::ApiGateway::Method", "AwsSolutions-COG4"),
        *(("AWS::Lambda::Function", f"{pack}-LambdaDLQ") for pack in ("HIPAA.Security", "NIST.800.53.R5")),
        *(("AWS::ApiGateway::Stage", f"{pack}-{rule}") for pack in ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321")
          for rule in ("APIGWCacheEnabledAndEncrypted", "APIGWSSLEnabled")),
    }  # fmt: skip
    no_reservation = {("AWS::Lambda::Function", f"{p}-LambdaConcurrency") for p in ("HIPAA.Security", "NIST.800.53.R5")}
    no_waf = {
        ("AWS::ApiGateway::Stage", rule)
        for rule in (
            "AwsSolutions-APIG3",
            "NIST.800.53.R5-APIGWAssociatedWithWAF",
            "PCI.DSS.321-APIGWAssociatedWithWAF",
        )
    }
    assert acknowledged(synth.templates["Dev"]) == always | no_reservation | no_waf
    assert acknowledged(synth.templates["Prod"]) == always


# --- the function ----------------------------------------------------------------------------------------------------


def test_function_runs_the_handler_on_the_newest_python_runtime_cdk_knows(synth: Synthesized) -> None:
    versions = [
        tuple(int(part) for part in name.split("_")[1:])
        for name in dir(lambda_.Runtime)
        if name.startswith("PYTHON_3_") and name.replace("PYTHON_", "").replace("_", "").isdigit()
    ]
    newest = "python" + ".".join(map(str, max(versions)))
    function = the_function(synth.templates["Dev"])
    assert function["Runtime"] == newest
    assert function["Handler"] == "handler.lambda_handler"
    assert function["Architectures"] == ["x86_64"]


def test_function_asset_is_the_handler_folder_only(synth: Synthesized) -> None:
    (function,) = synth.templates["Dev"].find_resources("AWS::Lambda::Function").values()
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    asset = synth.outdir / f"asset.{asset_hash}"
    assert sorted(p.name for p in asset.iterdir()) == ["handler.py"]
    assert (asset / "handler.py").read_bytes() == HANDLER.read_bytes()


def test_powertools_comes_from_the_aws_layer_of_the_stack_region_and_partition(synth: Synthesized) -> None:
    (layer,) = the_function(synth.templates["Prod"])["Layers"]
    settings = PROD.api
    assert layer == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":lambda:",
                {"Ref": "AWS::Region"},
                f":{settings.powertools_layer_account}:layer:AWSLambdaPowertoolsPythonV3-python314-x86_64:"
                f"{settings.powertools_layer_version}",
            ],
        ]
    }


def test_function_environment_comes_from_the_serving_config(synth: Synthesized) -> None:
    variables = the_function(synth.templates["Prod"])["Environment"]["Variables"]
    assert variables == {
        "ENDPOINT_NAME": ENDPOINT_NAME,
        "MAX_TEXT_CHARS": str(PROD.max_text_chars),
        "MAX_BATCH_SIZE": str(PROD.max_batch_size),
        "ENDPOINT_TIMEOUT_SECONDS": str(PROD.endpoint_timeout_seconds),
        "POWERTOOLS_SERVICE_NAME": "nlp-prod-classify",
        "POWERTOOLS_METRICS_NAMESPACE": "NlpPlatform/Classify",
        "POWERTOOLS_LOG_LEVEL": PROD.api.function_log_level,
    }


def test_function_is_traced_and_placed_in_the_isolated_subnets(synth: Synthesized) -> None:
    function = the_function(synth.templates["Dev"])
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["VpcConfig"] == {
        "SubnetIds": ["subnet-0123456789abcdef0"],
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
    }
    assert function["MemorySize"] == DEV.api.function_memory_mb


def test_function_vpc_services_are_only_the_sagemaker_runtime() -> None:
    assert {use.service for use in InferenceApi.VPC_SERVICES} == {VpcService.SAGEMAKER_RUNTIME}


def test_reserved_concurrency_only_when_configured(synth: Synthesized) -> None:
    assert "ReservedConcurrentExecutions" not in the_function(synth.templates["Dev"])
    assert the_function(synth.templates["Prod"])["ReservedConcurrentExecutions"] == 5


@pytest.mark.parametrize("read_timeout", [1, 10, 12])
def test_function_timeout_covers_both_endpoint_attempts_and_stays_under_the_api_timeout(read_timeout: int) -> None:
    serving = ServingConfig(endpoint_timeout_seconds=read_timeout)
    worst_case = inference_api.HANDLER_MAX_ATTEMPTS * (inference_api.HANDLER_CONNECT_TIMEOUT_SECONDS + read_timeout)
    stack = cdk.Stack(cdk.App(), "Timeout")
    InferenceApi(
        stack,
        "Classify",
        endpoint=FakeEndpoint(stack, "Endpoint", serverless=True, max_instances=None, rollback=False),
        serving=serving,
        placement=placement(stack),
        name_prefix="nlp-test",
        stage_name="test",
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    function = stack.node.find_child("Classify").node.find_child("Function").node.default_child
    timeout = stack.resolve(function.timeout)  # type: ignore[union-attr]
    assert worst_case <= timeout <= 29


def test_infra_timeouts_match_the_handler(handler: ModuleType) -> None:
    assert inference_api.HANDLER_CONNECT_TIMEOUT_SECONDS == handler.CONNECT_TIMEOUT_SECONDS
    assert inference_api.HANDLER_MAX_ATTEMPTS == handler.MAX_ATTEMPTS


def test_function_log_group_is_encrypted_with_retention_from_config(synth: Synthesized) -> None:
    template = synth.templates["Dev"]
    function = the_function(template)
    group_id = function["LoggingConfig"]["LogGroup"]["Ref"]
    group = template.find_resources("AWS::Logs::LogGroup")[group_id]
    assert group["Properties"]["RetentionInDays"] == DEV.api.function_log_retention_days
    assert "KmsKeyId" in group["Properties"]
    assert group["DeletionPolicy"] == "Delete"


def test_function_role_may_invoke_the_endpoint_through_its_grant(synth: Synthesized) -> None:
    template = synth.templates["Dev"]
    role_id = the_function(template)["Role"]["Fn::GetAtt"][0]
    (policy,) = [
        p["Properties"]
        for p in template.find_resources("AWS::IAM::ManagedPolicy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    invoke = [s for s in policy["PolicyDocument"]["Statement"] if s["Action"] == "sagemaker:InvokeEndpoint"]
    assert len(invoke) == 1
    assert ENDPOINT_NAME in json.dumps(invoke[0]["Resource"])
    assert template.find_resources("AWS::IAM::Policy") == {}  # no inline policies
    role = template.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role


# --- the API ---------------------------------------------------------------------------------------------------------


def test_api_is_regional(synth: Synthesized) -> None:
    assert one(synth.templates["Dev"], "AWS::ApiGateway::RestApi")["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_post_v1_classify_uses_iam_auth_the_validator_the_model_and_a_lambda_proxy(synth: Synthesized) -> None:
    template = synth.templates["Dev"]
    resources = template.find_resources("AWS::ApiGateway::Resource")
    assert sorted(r["Properties"]["PathPart"] for r in resources.values()) == ["classify", "v1"]
    method = one(template, "AWS::ApiGateway::Method")
    assert method["HttpMethod"] == "POST"
    assert method["AuthorizationType"] == "AWS_IAM"
    assert method["Integration"]["Type"] == "AWS_PROXY"
    function_id = next(iter(template.find_resources("AWS::Lambda::Function")))
    assert function_id in json.dumps(method["Integration"]["Uri"])
    (validator_id,) = template.find_resources("AWS::ApiGateway::RequestValidator")
    assert method["RequestValidatorId"] == {"Ref": validator_id}
    (model_id,) = template.find_resources("AWS::ApiGateway::Model")
    assert method["RequestModels"] == {"application/json": {"Ref": model_id}}
    assert method.get("ApiKeyRequired", False) is False
    assert one(synth.templates["Prod"], "AWS::ApiGateway::Method")["ApiKeyRequired"] is True


def test_validator_checks_the_body(synth: Synthesized) -> None:
    validator = one(synth.templates["Dev"], "AWS::ApiGateway::RequestValidator")
    assert validator["ValidateRequestBody"] is True


def _without_size_limits(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_size_limits(v) for k, v in schema.items() if k not in ("maxLength", "maxItems")}
    return schema


def test_the_api_model_is_the_handlers_schema_without_the_size_limits(synth: Synthesized, handler: ModuleType) -> None:
    model = one(synth.templates["Prod"], "AWS::ApiGateway::Model")
    assert model["ContentType"] == "application/json"
    schema = model["Schema"]
    expected = _without_size_limits(
        handler.request_schema(handler.Limits(max_text_chars=PROD.max_text_chars, max_batch_size=PROD.max_batch_size))
    )
    # API Gateway validates JSON Schema draft 4; the description only documents the limits.
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert str(PROD.max_text_chars) in schema["description"] and str(PROD.max_batch_size) in schema["description"]
    comparable = {k: v for k, v in schema.items() if k not in ("$schema", "description")}
    assert comparable == {k: v for k, v in expected.items() if k != "$schema"}
    assert gateway_request_schema(PROD.max_text_chars, PROD.max_batch_size) == schema


def test_the_gateway_rejects_only_what_the_handler_answers_with_400(handler: ModuleType) -> None:
    # Every rule the API model keeps is a 400 in the handler too; the size rules it leaves out are the handler's 413s.
    def rules(schema: Any) -> set[str]:
        if not isinstance(schema, dict):
            return set()
        found = set(schema) & set(handler._RULE_CODES)
        return found | {r for value in schema.values() for r in rules(value)}

    gateway_rules = rules(gateway_request_schema(10, 2))
    assert gateway_rules == {"required", "additionalProperties", "type", "minLength", "minItems"}
    assert {handler.ERROR_STATUS[handler._RULE_CODES[rule]] for rule in gateway_rules} == {400}
    left_out = rules(handler.request_schema(handler.Limits())) - gateway_rules
    assert {handler.ERROR_STATUS[handler._RULE_CODES[rule]] for rule in left_out} == {413}
    assert GATEWAY_RESPONSES["BAD_REQUEST_BODY"][0] == "400"


def test_gateway_responses_answer_in_the_handlers_error_shape(synth: Synthesized, handler: ModuleType) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synth.templates["Dev"].find_resources("AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(responses) == set(GATEWAY_RESPONSES)
    for response_type, response in responses.items():
        status, code, message = GATEWAY_RESPONSES[response_type]
        assert response.get("StatusCode", "") == status
        assert response["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"
        body = response["ResponseTemplates"]["application/json"]
        if message is None:
            assert body.startswith(f'{{"error":"{code}","message":$context.error.messageString')
        else:
            assert json.loads(body) == {"error": code, "message": message}
        assert "validationErrorString" not in body  # it can quote the request text
    # Where the gateway and the handler answer the same condition, they use the same code and status.
    for response_type, code in (
        ("UNSUPPORTED_MEDIA_TYPE", "UnsupportedMediaType"),
        ("REQUEST_TOO_LARGE", "PayloadTooLarge"),
    ):
        assert GATEWAY_RESPONSES[response_type][1] == code
        assert int(GATEWAY_RESPONSES[response_type][0]) == handler.ERROR_STATUS[code]
    assert responses["THROTTLED"]["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"


def test_stage_is_traced_throttled_and_logs_without_data_traces(synth: Synthesized) -> None:
    stage = one(synth.templates["Prod"], "AWS::ApiGateway::Stage")
    assert stage["StageName"] == "prod"
    assert stage["TracingEnabled"] is True
    (settings,) = stage["MethodSettings"]
    assert settings == {
        "DataTraceEnabled": False,
        "HttpMethod": "*",
        "LoggingLevel": PROD.api.execution_log_level,
        "MetricsEnabled": True,
        "ResourcePath": "/*",
        "ThrottlingBurstLimit": PROD.api.throttle_burst_limit,
        "ThrottlingRateLimit": PROD.api.throttle_rate_limit,
    }
    assert "CacheClusterEnabled" not in stage or stage["CacheClusterEnabled"] is False


def test_access_logs_are_json_without_any_body_in_a_kms_log_group(synth: Synthesized) -> None:
    template = synth.templates["Prod"]
    stage = one(template, "AWS::ApiGateway::Stage")
    access = stage["AccessLogSetting"]
    fields = json.loads(access["Format"])
    assert fields == ACCESS_LOG_FIELDS
    assert {"requestId", "status", "responseLatency", "caller"} <= set(fields)
    for value in fields.values():
        assert not value.startswith("$input") and "body" not in value.lower() and "requestOverride" not in value
    (group_id,) = [
        part["Ref"] for part in access["DestinationArn"]["Fn::Join"][1] if "Ref" in part and "::" not in part["Ref"]
    ]
    group = template.find_resources("AWS::Logs::LogGroup")[group_id]["Properties"]
    assert "KmsKeyId" in group
    assert group["RetentionInDays"] == PROD.api.access_log_retention_days


def test_execution_logs_go_to_a_kms_group_the_stack_creates_before_the_stage(synth: Synthesized) -> None:
    template = synth.templates["Dev"]
    groups = template.find_resources(
        "AWS::Logs::LogGroup",
        {"Properties": {"LogGroupName": Match.object_like({"Fn::Join": Match.any_value()})}},
    )
    ((group_id, group),) = groups.items()
    assert "API-Gateway-Execution-Logs_" in json.dumps(group["Properties"]["LogGroupName"])
    assert json.dumps(group["Properties"]["LogGroupName"]).endswith('"/dev"]]}')
    assert "KmsKeyId" in group["Properties"]
    (stage,) = template.find_resources("AWS::ApiGateway::Stage").values()
    (account_id,) = template.find_resources("AWS::ApiGateway::Account")
    assert {group_id, account_id} <= set(stage["DependsOn"])


def test_usage_plan_applies_the_configured_throttling_and_quota(synth: Synthesized) -> None:
    dev = one(synth.templates["Dev"], "AWS::ApiGateway::UsagePlan")
    assert dev["Throttle"] == {"RateLimit": DEV.api.throttle_rate_limit, "BurstLimit": DEV.api.throttle_burst_limit}
    assert "Quota" not in dev
    assert synth.templates["Dev"].find_resources("AWS::ApiGateway::ApiKey") == {}
    prod = one(synth.templates["Prod"], "AWS::ApiGateway::UsagePlan")
    assert prod["Quota"] == {"Limit": 50_000, "Period": PROD.api.quota_period}
    assert len(synth.templates["Prod"].find_resources("AWS::ApiGateway::ApiKey")) == 1
    synth.templates["Prod"].resource_count_is("AWS::ApiGateway::UsagePlanKey", 1)


def test_waf_guards_the_prod_like_stage_and_is_absent_in_dev(synth: Synthesized) -> None:
    assert synth.templates["Dev"].find_resources("AWS::WAFv2::WebACL") == {}
    assert synth.templates["Dev"].find_resources("AWS::WAFv2::WebACLAssociation") == {}
    template = synth.templates["Prod"]
    acl = one(template, "AWS::WAFv2::WebACL")
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    groups = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]: r["Statement"]["ManagedRuleGroupStatement"]
        for r in acl["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert set(groups) == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    # A full batch is larger than the common rule set's 8 KB body limit: that rule only counts.
    assert groups["AWSManagedRulesCommonRuleSet"]["RuleActionOverrides"] == [
        {"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}
    ]
    (rate,) = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == PROD.api.waf_rate_limit_per_5_minutes
    association = one(template, "AWS::WAFv2::WebACLAssociation")
    (stage_id,) = template.find_resources("AWS::ApiGateway::Stage")
    assert stage_id in json.dumps(association["ResourceArn"])
    logging = one(template, "AWS::WAFv2::LoggingConfiguration")
    assert logging["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}]
    assert "aws-waf-logs-nlp-prod-inference" in json.dumps(logging["LogDestinationConfigs"])


def test_url_and_metrics_are_exposed(synth: Synthesized) -> None:
    api = synth.apis["Dev"]
    stack = cdk.Stack.of(api)
    assert json.dumps(stack.resolve(api.url)).endswith('"/v1/classify"]]}')
    assert api.metric_server_errors().metric_name == "5XXError"
    assert api.metric_latency().statistic == "p99"
    assert api.metric_function_throttles().metric_name == "Throttles"


def test_grant_invoke_allows_only_post_v1_classify_of_this_api() -> None:
    app = cdk.App(context=load_cdk_json_context(), stack_traces=False)
    stack = cdk.Stack(app, "Grant")
    endpoint = FakeEndpoint(stack, "Endpoint", serverless=True, max_instances=None, rollback=False)
    api = InferenceApi(
        stack,
        "Classify",
        endpoint=endpoint,
        serving=DEV,
        placement=placement(stack),
        name_prefix="nlp-dev",
        stage_name="dev",
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    api.grant_invoke(caller)
    (policy,) = [
        p["Properties"] for p in Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
        if {"Ref": stack.get_logical_id(caller.node.default_child)} in p["Properties"]["Roles"]
    ]  # fmt: skip
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    parts = statement["Resource"]["Fn::Join"][1]
    assert {"Ref": stack.get_logical_id(api.api.node.default_child)} in parts
    assert parts[-1] == "/POST/v1/classify"
