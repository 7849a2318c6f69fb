"""The inference front door: API Gateway (REST, IAM auth) → the Lambda wrapper → the SageMaker endpoint.

:class:`InferenceApi` builds

- the function of ``lambda_handlers/classify/`` (asset = that folder only, no Docker, no network at synth), with
  Powertools from the AWS-published Powertools v3 Lambda layer, in the isolated subnets with the workload security
  group, its log group created by the stack (KMS, retention and removal from config), X-Ray active tracing and
  permission to invoke the endpoint through the endpoint's ``grant_invoke``;
- a regional REST API with ``POST /v1/classify``: IAM (SigV4) authorization, a request validator whose model is the
  handler's request schema without its size limits (see :func:`gateway_request_schema`), Lambda proxy integration,
  stage throttling and a usage plan, JSON access logs without any body in a KMS log group, execution logs at the
  configured level (never data traces) in a log group the stack owns, X-Ray tracing on the stage, gateway responses
  that answer in the handler's ``{"error", "message"}`` shape, and, where the config says so, a WAF web ACL.

The Powertools layer: the handler's docstring chooses it (one AWS-maintained artefact, no dependency bundling, so
the asset is the handler folder and synth stays hermetic). Its ARN names AWS's publishing account and the region;
it is built from the ``AWS::Partition`` and ``AWS::Region`` pseudo parameters, so the template stays
environment-agnostic, with the account and version from ``config.serving.api``. Lambda resolves the layer at deploy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from components.compliance import acknowledge
from components.log_retention import retention_days
from components.platform_role import PlatformRole
from components.training_pipeline import JobPlacement
from components.vpc_function import create_after_role_policy, grant_network_interfaces, justify_synchronous_vpc_function
from components.vpc_services import VpcService, VpcServiceUse
from config.settings import ServingConfig

CLASSIFY_CODE = Path(__file__).resolve().parent.parent / "lambda_handlers" / "classify"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.X86_64
API_PATH = ("v1", "classify")
# The handler's botocore settings (lambda_handlers/classify/handler.py: CONNECT_TIMEOUT_SECONDS, MAX_ATTEMPTS);
# infrastructure does not import runtime code, tests/components/test_inference_api.py checks they agree.
HANDLER_CONNECT_TIMEOUT_SECONDS = 2
HANDLER_MAX_ATTEMPTS = 2
# API Gateway's default (and, without a quota increase, maximum) integration timeout for a REST API.
INTEGRATION_TIMEOUT_SECONDS = 29
# Headroom for the handler's own work (cold start, JSON, logging) after its endpoint calls.
FUNCTION_HEADROOM_SECONDS = 2
MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")
# The common rule set blocks bodies over 8 KB (SizeRestrictions_BODY); a full batch is larger by design, and the API
# and the handler enforce the real limits (413), so that one rule only counts.
COUNTED_MANAGED_RULES = {"AWSManagedRulesCommonRuleSet": ("SizeRestrictions_BODY",)}


class InvocableEndpoint(Protocol):
    """What the wrapper needs of an endpoint (``components.inference_endpoint.InferenceEndpoint`` is one)."""

    @property
    def endpoint_name(self) -> str: ...

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant: ...


def powertools_layer_name(runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> str:
    """``AWSLambdaPowertoolsPythonV3-python314-x86_64``: Powertools v3 publishes one layer per Python and CPU."""
    python = runtime.name.replace(".", "")
    return f"AWSLambdaPowertoolsPythonV3-{python}-{architecture.name}"


def gateway_request_schema(max_text_chars: int, max_batch_size: int) -> dict[str, Any]:
    """The API's request model: the handler's ``request_schema(limits)`` in JSON Schema draft 4, without size limits.

    API Gateway validates models with draft 4 and answers every failure with one status (400), so the gateway checks
    the shape (an object with only ``inputs``, a non-empty string or a non-empty array of non-empty strings) and the
    handler keeps the size rules (``maxLength``, ``maxItems``), which it answers with 413 ``TextTooLong`` /
    ``TooManyInputs`` as the API contract says. The limits are still taken to document the contract in the model
    description; the test compares this schema with the handler's, keyword by keyword.
    """
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "ClassifyRequest",
        "description": (
            f'{{"inputs": "text"}} or {{"inputs": ["text", ...]}}: 1 to {max_batch_size} texts of 1 to '
            f"{max_text_chars} characters (sizes are checked by the function: 413 above them)"
        ),
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {
            "inputs": {
                "type": ["string", "array"],
                "minLength": 1,
                "minItems": 1,
                "items": {"type": "string", "minLength": 1},
            }
        },
    }


def _json_schema(schema: dict[str, Any]) -> apigw.JsonSchema:
    """The CDK form of :func:`gateway_request_schema` (only the keywords it uses)."""
    types = {"object": apigw.JsonSchemaType.OBJECT, "string": apigw.JsonSchemaType.STRING}
    types["array"] = apigw.JsonSchemaType.ARRAY
    inputs = schema["properties"]["inputs"]
    items = inputs["items"]
    return apigw.JsonSchema(
        schema=apigw.JsonSchemaVersion.DRAFT4,
        title=schema["title"],
        description=schema["description"],
        type=types[schema["type"]],
        required=list(schema["required"]),
        additional_properties=schema["additionalProperties"],
        properties={
            "inputs": apigw.JsonSchema(
                type=[types[name] for name in inputs["type"]],
                min_length=inputs["minLength"],
                min_items=inputs["minItems"],
                items=apigw.JsonSchema(type=types[items["type"]], min_length=items["minLength"]),
            )
        },
    )


# Answers API Gateway gives itself, in the handler's error shape. ``$context.error.messageString`` is API Gateway's
# own message, already JSON-quoted; the validator's detail is left out (it can quote the request text).
GATEWAY_RESPONSES: dict[str, tuple[str, str, str | None]] = {
    # response type: (status, error code, fixed message or None for API Gateway's message)
    "BAD_REQUEST_BODY": (
        "400",
        "InvalidRequest",
        'the body is not a classify request: send {"inputs": "text"} or {"inputs": ["text", ...]} with non-empty '
        "texts and no other field",
    ),
    "UNSUPPORTED_MEDIA_TYPE": ("415", "UnsupportedMediaType", "send Content-Type: application/json (UTF-8)"),
    "REQUEST_TOO_LARGE": ("413", "PayloadTooLarge", "the request is too large: send fewer or shorter texts"),
    "MISSING_AUTHENTICATION_TOKEN": (
        "403",
        "MissingAuthentication",
        "sign the request with AWS SigV4 (service execute-api) and call POST /v1/classify",
    ),
    "INVALID_SIGNATURE": ("403", "InvalidSignature", "the SigV4 signature does not match: check the signing key"),
    "EXPIRED_TOKEN": ("403", "ExpiredToken", "the credentials have expired: refresh them and sign again"),
    "ACCESS_DENIED": ("403", "AccessDenied", "the caller may not invoke this API: ask for execute-api:Invoke"),
    "INVALID_API_KEY": ("403", "InvalidApiKey", "send a valid x-api-key header"),
    "WAF_FILTERED": ("403", "Forbidden", "the request was blocked by the web application firewall"),
    "THROTTLED": ("429", "TooManyRequests", "too many requests to the API: retry later with backoff"),
    "QUOTA_EXCEEDED": ("429", "QuotaExceeded", "the API key's quota is used up for this period"),
    "INTEGRATION_TIMEOUT": ("504", "IntegrationTimeout", "the classifier did not answer in time: retry later"),
    "DEFAULT_4XX": ("", "ClientError", None),
    "DEFAULT_5XX": ("", "InternalError", None),
}
RETRY_AFTER_SECONDS = {"THROTTLED": 1}


def gateway_response_body(code: str, message: str | None) -> str:
    """The JSON body template of a gateway response: ``{"error": code, "message": text}``."""
    if message is None:
        return '{"error":' + json.dumps(code) + ',"message":$context.error.messageString}'
    return json.dumps({"error": code, "message": message}, separators=(",", ":"))


# Access log fields: who called, what happened, how long it took. Never the body, the query or any header value.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTimeEpoch",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integration.status",
    "errorType": "$context.error.responseType",
    "errorMessage": "$context.error.message",
    "sourceIp": "$context.identity.sourceIp",
    "caller": "$context.identity.userArn",
    "apiKeyId": "$context.identity.apiKeyId",
    "wafStatus": "$context.waf.status",
    "xrayTraceId": "$context.xrayTraceId",
}


class InferenceApi(Construct):
    """``POST /v1/classify`` behind IAM auth, served by the classify Lambda wrapper in the VPC.

    :param endpoint: the SageMaker endpoint the function invokes (its ``grant_invoke`` gives the permission).
    :param serving: ``config.serving``: the request limits and endpoint timeout reach the function's environment;
        ``serving.api`` holds the throttling, usage plan, WAF, log retention, log levels, memory, reserved
        concurrency and Powertools layer.
    :param placement: the isolated subnets and workload security group the function runs in, and the platform key
        that encrypts its log groups.
    :param name_prefix: ``<project>-<stage>``: names the API, the usage plan, the Powertools service.
    :param stage_name: the API stage, the first path segment of the URL (``dev`` → ``.../dev/v1/classify``).
    :param removal_policy: of the log groups (DESTROY in dev, RETAIN in prod).

    Attributes: ``function``, ``role``, ``log_group``, ``api`` (the ``RestApi``), ``stage``, ``method``,
    ``request_model``, ``access_log_group``, ``execution_log_group``, ``usage_plan``, ``api_key`` (or None),
    ``web_acl`` (or None), ``url`` (the full URL of ``POST /v1/classify``).
    """

    VPC_SERVICES = (
        VpcServiceUse(VpcService.SAGEMAKER_RUNTIME, "the classify function calls InvokeEndpoint"),
        # Not CloudWatch Logs, X-Ray or CloudWatch metrics: Lambda ships the function's logs (EMF metrics included)
        # and the X-Ray daemon's segments from outside the function's network interface.
    )

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: InvocableEndpoint,
        serving: ServingConfig,
        placement: JobPlacement,
        name_prefix: str,
        stage_name: str,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = serving.api
        stack = cdk.Stack.of(self)
        service_name = f"{name_prefix}-classify"

        self.role = PlatformRole(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Classify API wrapper: invokes the endpoint {endpoint.endpoint_name}",
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=placement.key,
            retention=retention_days(settings.function_log_retention_days),
            removal_policy=removal_policy,
        )
        layer_arn = (
            f"arn:{stack.partition}:lambda:{stack.region}:{settings.powertools_layer_account}:layer:"
            f"{powertools_layer_name(RUNTIME, ARCHITECTURE)}:{settings.powertools_layer_version}"
        )
        # Two attempts of connect + read, then the handler's own work: the function answers before the API's 29 s.
        attempt = HANDLER_CONNECT_TIMEOUT_SECONDS + serving.endpoint_timeout_seconds
        timeout = min(INTEGRATION_TIMEOUT_SECONDS, HANDLER_MAX_ATTEMPTS * attempt + FUNCTION_HEADROOM_SECONDS)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="handler.lambda_handler",
            code=lambda_.Code.from_asset(str(CLASSIFY_CODE), exclude=["__pycache__", "*.pyc", "README.md"]),
            layers=[lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", layer_arn)],
            description=f"POST /v1/classify: validates the request, calls {endpoint.endpoint_name}, maps errors",
            timeout=cdk.Duration.seconds(timeout),
            memory_size=settings.function_memory_mb,
            reserved_concurrent_executions=settings.reserved_concurrency,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            vpc=placement.vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(placement.subnets)),
            security_groups=[placement.security_group],
            environment={
                "ENDPOINT_NAME": endpoint.endpoint_name,
                "MAX_TEXT_CHARS": str(serving.max_text_chars),
                "MAX_BATCH_SIZE": str(serving.max_batch_size),
                "ENDPOINT_TIMEOUT_SECONDS": str(serving.endpoint_timeout_seconds),
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": "NlpPlatform/Classify",
                "POWERTOOLS_LOG_LEVEL": settings.function_log_level,
            },
        )
        # Before the grants, whose acknowledgment of the same finding names only their own statement (the first wins).
        acknowledge(
            self.role.policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Only the X-Ray PutTraceSegments/PutTelemetryRecords calls of active tracing and the EC2 network-interface "
            "calls Lambda makes for a VPC function, none of which supports resource-level scoping.",
        )
        endpoint.grant_invoke(self.role)
        grant_network_interfaces(self.role)
        self.log_group.grant_write(self.role)
        self._function_resource = create_after_role_policy(self.function, self.role)
        self._justify_function(reserved=settings.reserved_concurrency is not None)

        self._build_api(serving, placement, name_prefix, stage_name, removal_policy)

    # --- the REST API ------------------------------------------------------------------------------------------------

    def _build_api(
        self,
        serving: ServingConfig,
        placement: JobPlacement,
        name_prefix: str,
        stage_name: str,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        settings = serving.api
        self.access_log_group = logs.LogGroup(
            self,
            "AccessLogs",
            encryption_key=placement.key,
            retention=retention_days(settings.access_log_retention_days),
            removal_policy=removal_policy,
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{name_prefix}-inference",
            description=f"{name_prefix}: POST /v1/classify (IAM auth) in front of the inference endpoint",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # The account-wide CloudWatch role is set up below (the CDK's own is off by feature flag).
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                tracing_enabled=True,
                throttling_rate_limit=settings.throttle_rate_limit,
                throttling_burst_limit=settings.throttle_burst_limit,
                logging_level=apigw.MethodLoggingLevel[settings.execution_log_level],
                # Never: it would write request and response bodies (the texts) into the execution log.
                data_trace_enabled=False,
                metrics_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":"))),
            ),
        )
        self.stage = self.api.deployment_stage
        self._execution_logging(stage_name, placement, settings.access_log_retention_days, removal_policy)

        self.request_model = self.api.add_model(
            "ClassifyRequest",
            content_type="application/json",
            model_name="ClassifyRequest",
            schema=_json_schema(gateway_request_schema(serving.max_text_chars, serving.max_batch_size)),
        )
        validator = self.api.add_request_validator(
            # Parameters too: the method declares none, so nothing else is required, and a checker sees both on.
            "Validator",
            validate_request_body=True,
            validate_request_parameters=True,
        )
        resource = self.api.root
        for part in API_PATH:
            resource = resource.add_resource(part)
        self.method = resource.add_method(
            "POST",
            apigw.LambdaIntegration(self.function, proxy=True),
            authorization_type=apigw.AuthorizationType.IAM,
            api_key_required=settings.api_key_required,
            request_validator=validator,
            request_models={"application/json": self.request_model},
        )
        for response_type, (status, code, message) in GATEWAY_RESPONSES.items():
            headers = {"Content-Type": "'application/json'"}
            if response_type in RETRY_AFTER_SECONDS:
                headers["Retry-After"] = f"'{RETRY_AFTER_SECONDS[response_type]}'"
            self.api.add_gateway_response(
                _pascal(response_type),
                type=apigw.ResponseType.of(response_type),
                status_code=status or None,
                response_headers=headers,
                templates={"application/json": gateway_response_body(code, message)},
            )
        self.url = self.api.url_for_path("/" + "/".join(API_PATH))

        self.usage_plan = self.api.add_usage_plan(
            "UsagePlan",
            name=f"{name_prefix}-inference",
            description="Throttling (and, with API keys, the quota) of the classify API",
            throttle=apigw.ThrottleSettings(
                rate_limit=settings.throttle_rate_limit, burst_limit=settings.throttle_burst_limit
            ),
            quota=(
                apigw.QuotaSettings(limit=settings.quota_limit, period=apigw.Period[settings.quota_period])
                if settings.quota_limit is not None
                else None
            ),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.stage)],
        )
        self.api_key: apigw.IApiKey | None = None
        if settings.api_key_required:
            self.api_key = self.api.add_api_key("ApiKey", description=f"{name_prefix}: key of the classify API")
            self.usage_plan.add_api_key(self.api_key)

        self.web_acl: wafv2.CfnWebACL | None = None
        if settings.waf_enabled:
            self.web_acl = self._web_acl(name_prefix, settings.waf_rate_limit_per_5_minutes)
            self._waf_logging(name_prefix, placement, settings.access_log_retention_days, removal_policy)
        self._justify_api(waf=settings.waf_enabled)

    def _execution_logging(
        self, stage_name: str, placement: JobPlacement, retention: int, removal_policy: cdk.RemovalPolicy
    ) -> None:
        """The execution log group, created before the stage so it has KMS and a retention (API Gateway would create
        it without either), and the account's CloudWatch role that API Gateway needs to write execution logs.

        The role is account-wide (``AWS::ApiGateway::Account``): every stage in the account sets the same kind of
        role; it is retained on deletion like the CDK's own, so deleting one stage cannot break another's logging.
        """
        self.execution_log_group = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{self.api.rest_api_id}/{stage_name}",
            encryption_key=placement.key,
            retention=retention_days(retention),
            removal_policy=removal_policy,
        )
        self.cloudwatch_role = iam.Role(
            self,
            "CloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway (account-wide): writes execution and access logs to CloudWatch Logs",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonAPIGatewayPushToCloudWatchLogs")
            ],
        )
        self.cloudwatch_role.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        account = apigw.CfnAccount(self, "Account", cloud_watch_role_arn=self.cloudwatch_role.role_arn)
        account.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        stage_resource = self.stage.node.default_child
        assert isinstance(stage_resource, cdk.CfnResource)
        stage_resource.add_resource_dependency(account)
        log_group_resource = self.execution_log_group.node.default_child
        assert isinstance(log_group_resource, cdk.CfnResource)
        stage_resource.add_resource_dependency(log_group_resource)
        acknowledge(
            self.cloudwatch_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The AWS-maintained policy API Gateway documents for its account-wide logging role; API Gateway creates "
            "the execution log groups under names it chooses, so the policy follows the service's needs.",
        )

    def _web_acl(self, name_prefix: str, rate_limit: int) -> wafv2.CfnWebACL:
        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=False
            )

        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=group,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=group,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                            )
                            for rule in COUNTED_MANAGED_RULES.get(group, ())
                        ]
                        or None,
                    )
                ),
                visibility_config=visibility(group),
            )
            for priority, group in enumerate(MANAGED_RULE_GROUPS)
        ]
        rules.append(
            wafv2.CfnWebACL.RuleProperty(
                name="RatePerClientIp",
                priority=len(rules),
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=rate_limit, aggregate_key_type="IP", evaluation_window_sec=300
                    )
                ),
                visibility_config=visibility("RatePerClientIp"),
            )
        )
        web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            description=f"{name_prefix}: AWS managed common and known-bad-input rules, a per-IP rate limit",
            # Sampled requests would keep request bodies (the texts) in the WAF console: off.
            visibility_config=visibility(f"{name_prefix}-inference"),
            rules=rules,
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=self.stage.stage_arn, web_acl_arn=web_acl.attr_arn
        )
        return web_acl

    def _waf_logging(
        self, name_prefix: str, placement: JobPlacement, retention: int, removal_policy: cdk.RemovalPolicy
    ) -> None:
        """WAF's request log (which rule matched, never the body) in a KMS log group; WAF wants the name
        ``aws-waf-logs-*`` and the ARN without the ``:*`` suffix. The SigV4 ``Authorization`` header is redacted."""
        assert self.web_acl is not None
        name = f"aws-waf-logs-{name_prefix}-inference"
        self.waf_log_group = logs.LogGroup(
            self,
            "WafLogs",
            log_group_name=name,
            encryption_key=placement.key,
            retention=retention_days(retention),
            removal_policy=removal_policy,
        )
        destination = cdk.Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        logging = wafv2.CfnLoggingConfiguration(
            self,
            "WafLogging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[destination],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "authorization"})
            ],
        )
        log_group_resource = self.waf_log_group.node.default_child
        assert isinstance(log_group_resource, cdk.CfnResource)
        logging.add_resource_dependency(log_group_resource)

    # --- compliance --------------------------------------------------------------------------------------------------

    def _justify_function(self, *, reserved: bool) -> None:
        function_resource = self._function_resource
        dlq_reason = (
            "API Gateway invokes this function synchronously and returns its answer (or error) to the caller, who "
            "retries; Lambda sends only asynchronous invocations to a dead-letter queue, so one would stay empty."
        )
        concurrency_reason = (
            "Reserved concurrency is a stage setting (serving.api.reserved_concurrency), off by default: new accounts "
            "have a concurrency quota of 10 to 50 with 10 kept unreserved, so a reservation can fail the deploy; the "
            "API's stage throttling bounds the concurrency instead."
        )
        justify_synchronous_vpc_function(
            function_resource,
            self.role,
            dlq_reason=dlq_reason,
            concurrency_reason=None if reserved else concurrency_reason,
            wildcard_reason="Resource * only for the EC2 network-interface calls Lambda makes for a VPC function and "
            "the X-Ray PutTraceSegments/PutTelemetryRecords calls of active tracing, none of which supports resource "
            "scoping.",
        )

    def _justify_api(self, *, waf: bool) -> None:
        stage = self.stage.node.default_child
        assert isinstance(stage, cdk.CfnResource)
        caching = (
            "Every request is a new classification of private texts: a cache would hold those texts' results keyed "
            "by the body and answer other callers from it, for no hit rate; caching stays off."
        )
        client_certificate = (
            "The backend is a Lambda proxy integration, invoked by API Gateway with AWS-signed calls; a client "
            "certificate authenticates API Gateway to an HTTP backend, which this API does not have."
        )
        for pack in ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321"):
            acknowledge(stage, f"{pack}-APIGWCacheEnabledAndEncrypted", caching)
            acknowledge(stage, f"{pack}-APIGWSSLEnabled", client_certificate)
        if not waf:
            no_waf = (
                "The stage config turns WAF off here (serving.api.waf_enabled, on in prod): callers must sign every "
                "request with IAM credentials and the stage is throttled, and a web ACL bills monthly per stage."
            )
            acknowledge(stage, "AwsSolutions-APIG3", no_waf)
            acknowledge(stage, "NIST.800.53.R5-APIGWAssociatedWithWAF", no_waf)
            acknowledge(stage, "PCI.DSS.321-APIGWAssociatedWithWAF", no_waf)
        method = self.method.node.default_child
        assert isinstance(method, cdk.CfnResource)
        acknowledge(
            method,
            "AwsSolutions-COG4",
            "The method uses IAM (SigV4) authorization: its callers are AWS principals (notebook roles, services, "
            "people with roles), authorized by execute-api:Invoke policies; a Cognito user pool would add a second "
            "identity store for end users this API does not have.",
        )

    # --- grants and metrics ------------------------------------------------------------------------------------------

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call ``POST /v1/classify`` (``execute-api:Invoke`` on that method of this API only)."""
        return self.method.grant_execute(grantee)

    def metric_server_errors(self, **props: Any) -> cloudwatch.Metric:
        """API 5XX answers per request (Average of ``5XXError``: 0 to 1) on the stage."""
        return self.stage.metric_server_error(**{"statistic": "Average", **props})

    def metric_client_errors(self, **props: Any) -> cloudwatch.Metric:
        """API 4XX answers per request (Average of ``4XXError``: 0 to 1) on the stage."""
        return self.stage.metric_client_error(**{"statistic": "Average", **props})

    def metric_latency(self, **props: Any) -> cloudwatch.Metric:
        """p99 of the API's end-to-end latency (ms) on the stage."""
        return self.stage.metric_latency(**{"statistic": "p99", **props})

    def metric_requests(self, **props: Any) -> cloudwatch.Metric:
        """Requests to the stage (Sum of ``Count``)."""
        return self.stage.metric_count(**{"statistic": "Sum", **props})

    def metric_function_errors(self, **props: Any) -> cloudwatch.Metric:
        """Invocations of the wrapper that ended in an unhandled error (Sum)."""
        return self.function.metric_errors(**{"statistic": "Sum", **props})

    def metric_function_throttles(self, **props: Any) -> cloudwatch.Metric:
        """Invocations of the wrapper that Lambda throttled (Sum)."""
        return self.function.metric_throttles(**{"statistic": "Sum", **props})

    def metric_function_duration(self, **props: Any) -> cloudwatch.Metric:
        """p99 of the wrapper's duration (ms)."""
        return self.function.metric_duration(**{"statistic": "p99", **props})


def _pascal(name: str) -> str:
    """``BAD_REQUEST_BODY`` → ``BadRequestBody``: stable construct ids for the gateway responses."""
    return "".join(part.capitalize() for part in name.split("_"))
