"""The real-time inference endpoint: model, endpoint config, endpoint, its execution role, scaling and safe updates.

``InferenceEndpoint`` serves one model, either an approved model package of the registry or a ``model.tar.gz`` with
an inference image, on a serverless variant (dev: billed per request) or on instances (prod: autoscaled, canary
blue/green updates with automatic rollback, data capture). Other components code against its public attributes:
``endpoint_name``, ``endpoint_arn``, ``variant_name``, ``is_serverless``, ``max_instances``, ``rollback_alarms``,
``grant_invoke(grantee)`` and the ``metric_*`` methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from components.compliance import acknowledge, finding_reference, justify_for_scanners
from components.platform_role import PlatformRole
from components.vpc_services import VpcService, VpcServiceUse
from config import CanaryDeploymentConfig, OutOfHoursConfig, volume_kms_key_allowed
from config.settings import MODEL_DATA_URL
from config.validation import check_sagemaker_name

VARIANT_NAME = "AllTraffic"
"""The production variant's name, the same in every endpoint config: deployment guardrails (blue/green canary) need
the old and the new config to share it, and the scalable target and the metrics name it."""
ENDPOINT_NAMESPACE = "AWS/SageMaker"
"""Invocation metrics (Invocations, Invocation5XXErrors, ModelLatency, ...)."""
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
"""Instance metrics of instance endpoints (CPUUtilization, GPUUtilization, MemoryUtilization, ...)."""
DATA_CAPTURE_PREFIX = "data-capture"
"""Curated bucket prefix of captured requests and responses: ``data-capture/<endpoint>/<variant>/<yyyy>/...``."""
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def endpoint_log_group_name(endpoint_name: str) -> str:
    """The log group SageMaker writes an endpoint's container logs to."""
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


class InferenceEndpoint(Construct):
    """A SageMaker real-time endpoint serving one model, with its own least-privilege execution role.

    Children: ``role`` (a :class:`PlatformRole`), ``log_group`` (``/aws/sagemaker/Endpoints/<name>``, created here
    so retention, encryption and removal follow the stage and ``cdk destroy`` leaves nothing), ``model``
    (``CfnModel``, unnamed: a new model is a new resource, which a new endpoint config then references),
    ``endpoint_config`` (``CfnEndpointConfig``, unnamed for the same reason), ``resource`` (``CfnEndpoint`` named
    ``endpoint_name``: alarms, autoscaling and clients refer to it by that name), and for instance endpoints
    ``scalable_target`` and ``rollback_alarms``.

    **Instance variant** (``instance_type`` set): the model runs in ``subnets`` with ``security_group`` and network
    isolation (the container calls nothing; SageMaker fetches the model through the VPC's S3 gateway endpoint), the
    volume is encrypted with ``key`` unless the instance type has local NVMe storage (SageMaker encrypts that in
    hardware and rejects a key, see ``config/instance_storage.py``); optional data capture writes to
    ``data_capture_bucket`` under ``data-capture/`` with ``key``. Autoscaling tracks invocations per instance between
    ``min_instances`` and ``max_instances``; ``out_of_hours`` lowers the floor at night; ``canary`` turns updates
    into blue/green canary deployments that roll back on the ``rollback_alarms``. An update keeps the instance count
    that autoscaling chose (see ``RetainAllVariantProperties`` below). Changing the instance type of an autoscaled
    variant fails while the scalable target is registered: remove scaling in one deploy, change the type in the next.

    **Serverless variant** (``instance_type`` None): memory and concurrency from the props. SageMaker Serverless
    Inference offers no VPC placement, no network isolation, no data capture and no instances to scale or to shift in
    a canary, so none of those is configured; updates use SageMaker's default blue/green, all traffic at once. ``key``
    encrypts the copy of the image SageMaker keeps.

    :param endpoint_name: the endpoint's name, fixed (``<project>-<stage>-inference``).
    :param model_package_arn: an approved, versioned model package of the registry; its artifacts lie under
        ``artifacts_prefix`` of ``artifacts_bucket``. Exactly one of this and ``model_data_url``.
    :param model_data_url: ``s3://<bucket>/<key>.tar.gz``, served by ``image_uri``; the role may read that object only.
    :param image_uri: the inference image for ``model_data_url``. Default None (required with ``model_data_url``).
    :param image_repository_arns: ECR repositories the role may pull from (the model package's or ``image_uri``'s).
    :param artifacts_bucket: the platform's artifacts bucket (model packages' ``model.tar.gz``).
    :param artifacts_prefix: prefix of the registered models in ``artifacts_bucket``. Default ``models``.
    :param key: the platform key (model archives, volume, data capture, log group).
    :param instance_type: hosting instance type, or None for serverless. Default None.
    :param min_instances: autoscaling floor and the first deployment's instance count. Default 1.
    :param max_instances: autoscaling ceiling. Default 1.
    :param invocations_per_instance_target: target tracking goal per instance and minute. Default 100.
    :param scale_in_cooldown: seconds between scale-ins. Default 300.
    :param scale_out_cooldown: seconds between scale-outs. Default 300.
    :param out_of_hours: the lowered floor at night and weekends. Default None (none).
    :param canary: blue/green canary updates with rollback alarms. Default None (SageMaker's all-at-once update).
    :param subnets: isolated subnets of an instance endpoint. Default none (required for instances).
    :param security_group: the workload security group of an instance endpoint. Default None.
    :param data_capture_bucket: where an instance endpoint captures requests. Default None (no capture).
    :param data_capture_sampling_percent: share of requests captured, 0 to 100. Default 20.
    :param serverless_memory_mb: serverless memory, 1024 to 6144. Default 4096.
    :param serverless_max_concurrency: serverless concurrency. Default 5.
    :param log_retention: retention of the endpoint's log group. Default one month.
    :param removal_policy: what happens to the log group on stack deletion. Default DESTROY.
    """

    VPC_SERVICES = (
        VpcServiceUse(VpcService.S3, "SageMaker loads the model archive of an instance endpoint through the VPC"),
        VpcServiceUse(VpcService.S3, "data capture writes sampled requests and responses to the curated bucket"),
    )
    """What an instance endpoint calls from the VPC: S3 only. The model runs with network isolation, so its container
    calls nothing; SageMaker pulls the image from ECR and ships logs and metrics outside the customer VPC."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        key: kms.IKey,
        artifacts_bucket: s3.IBucket,
        image_repository_arns: Sequence[str],
        model_package_arn: str | None = None,
        model_data_url: str | None = None,
        image_uri: str | None = None,
        artifacts_prefix: str = "models",
        instance_type: str | None = None,
        min_instances: int = 1,
        max_instances: int = 1,
        invocations_per_instance_target: int = 100,
        scale_in_cooldown: cdk.Duration | None = None,
        scale_out_cooldown: cdk.Duration | None = None,
        out_of_hours: OutOfHoursConfig | None = None,
        canary: CanaryDeploymentConfig | None = None,
        subnets: Sequence[ec2.ISubnet] = (),
        security_group: ec2.ISecurityGroup | None = None,
        data_capture_bucket: s3.IBucket | None = None,
        data_capture_sampling_percent: int = 20,
        serverless_memory_mb: int = 4096,
        serverless_max_concurrency: int = 5,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        self._validate(
            endpoint_name=endpoint_name,
            model_package_arn=model_package_arn,
            model_data_url=model_data_url,
            image_uri=image_uri,
            instance_type=instance_type,
            min_instances=min_instances,
            max_instances=max_instances,
            subnets=subnets,
            security_group=security_group,
            out_of_hours=out_of_hours,
            canary=canary,
            data_capture_bucket=data_capture_bucket,
            image_repository_arns=image_repository_arns,
        )
        stack = cdk.Stack.of(self)
        self.endpoint_name = endpoint_name
        self.variant_name = VARIANT_NAME
        self.is_serverless = instance_type is None
        self.max_instances: int | None = None if instance_type is None else max_instances
        self.instance_type = instance_type

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=endpoint_log_group_name(endpoint_name),
            encryption_key=key,
            retention=log_retention,
            removal_policy=removal_policy,
        )
        self.role = PlatformRole(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker endpoint {endpoint_name}: read its model, pull its image, write its logs",
        )
        self._grant_runtime(image_repository_arns)
        if model_package_arn is not None:
            # The package's ModelDataUrl points into the registered models of the artifacts bucket.
            artifacts_bucket.grant_read(self.role, f"{artifacts_prefix}/*")
            self._acknowledge_bucket_prefix(artifacts_bucket, artifacts_prefix, "reads the registered model archive")
        else:
            # Exactly the configured archive, nothing else of its bucket (whose name the URL gives).
            match = MODEL_DATA_URL.fullmatch(model_data_url or "")
            assert match is not None  # checked in _validate
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ReadTheModelArchive",
                    actions=["s3:GetObject"],
                    resources=[f"arn:{stack.partition}:s3:::{match['bucket']}/{match['key']}"],
                )
            )
        key.grant_decrypt(self.role)

        container: dict[str, Any] = (
            {"modelPackageName": model_package_arn}
            if model_package_arn is not None
            else {"image": image_uri, "modelDataUrl": model_data_url}
        )
        vpc_config = None
        if not self.is_serverless:
            assert security_group is not None  # checked in _validate
            self._grant_network_interfaces(subnets, security_group)
            vpc_config = sagemaker.CfnModel.VpcConfigProperty(
                subnets=[subnet.subnet_id for subnet in subnets],
                security_group_ids=[security_group.security_group_id],
            )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            containers=[container],
            vpc_config=vpc_config,
            # Serverless Inference supports neither a VPC nor network isolation (see the class docstring).
            enable_network_isolation=None if self.is_serverless else True,
        )
        # SageMaker checks the role's access when it creates the model and the endpoint: the policy comes first.
        self.model.node.add_dependency(self.role.policy)

        data_capture = None
        if data_capture_bucket is not None and not self.is_serverless:
            data_capture = self._data_capture(data_capture_bucket, key, data_capture_sampling_percent)
        if self.is_serverless:
            variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=self.model.attr_model_name,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=serverless_memory_mb, max_concurrency=serverless_max_concurrency
                ),
            )
        else:
            variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=self.model.attr_model_name,
                instance_type=instance_type,
                initial_instance_count=min_instances,
                initial_variant_weight=1.0,
            )
        # Serverless: the key encrypts SageMaker's copy of the image. Instances: the ML storage volume, except on types
        # with local NVMe storage, which SageMaker encrypts in hardware and for which it rejects a KmsKeyId.
        volume_key = self.is_serverless or volume_kms_key_allowed(instance_type or "")
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[variant],
            kms_key_id=key.key_arn if volume_key else None,
            data_capture_config=data_capture,
        )
        if not volume_key:
            for rule in ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321"):
                acknowledge(
                    self.endpoint_config,
                    f"{rule}-SageMakerEndpointConfigurationKMSKeyConfigured",
                    f"{instance_type} has local NVMe instance storage, which SageMaker encrypts with a hardware module "
                    "(XTS-AES-256) and for which it rejects a KmsKeyId; captured data is encrypted with the platform "
                    "key.",
                )

        # Built before the endpoint: a deployment names them, and they watch the new endpoint config's fleet.
        rollback = canary is not None and not self.is_serverless
        self.rollback_alarm_names: tuple[str, ...] = (
            (f"{endpoint_name}-rollback-5xx-errors", f"{endpoint_name}-rollback-model-latency") if rollback else ()
        )
        self.rollback_alarms: list[cloudwatch.Alarm] = self._rollback_alarms(canary) if canary and rollback else []
        if self.rollback_alarms:
            # Deployment guardrails read the alarms with the execution role. By their fixed names: the alarms depend
            # on the endpoint config, which depends on the model, which waits for this policy.
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ReadTheRollbackAlarms",
                    actions=["cloudwatch:DescribeAlarms"],
                    resources=[
                        stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name=name,
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                        for name in self.rollback_alarm_names
                    ],
                )
            )

        self.resource = sagemaker.CfnEndpoint(
            self,
            "Resource",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=self._deployment_config(canary),
            # An update deploys the new endpoint config to a new fleet. RetainAllVariantProperties=true keeps the
            # variant's current DesiredInstanceCount and DesiredWeight (what autoscaling chose) instead of the new
            # config's InitialInstanceCount/InitialVariantWeight, so a model promotion neither shrinks a scaled-out
            # fleet to min_instances nor grows it. ExcludeRetainedVariantProperties would name properties to take from
            # the new config instead: none here (its DataCaptureConfig entry is "not currently supported", and data
            # capture comes from the new config anyway). RetainDeploymentConfig (reuse the previous update's
            # DeploymentConfig) stays off: every update applies the DeploymentConfig of this template.
            retain_all_variant_properties=None if self.is_serverless else True,
        )
        # The endpoint's log group exists before SageMaker would create it (unencrypted, kept forever).
        self.resource.node.add_dependency(self.log_group)
        self.endpoint_arn = self.resource.attr_endpoint_arn

        self.scalable_target: appscaling.ScalableTarget | None = None
        if not self.is_serverless:
            self.scalable_target = self._autoscaling(
                min_instances=min_instances,
                max_instances=max_instances,
                target=invocations_per_instance_target,
                scale_in_cooldown=scale_in_cooldown or cdk.Duration.seconds(300),
                scale_out_cooldown=scale_out_cooldown or cdk.Duration.seconds(300),
                out_of_hours=out_of_hours,
            )

    # --- public API -------------------------------------------------------------------------------------------------

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call this endpoint (``sagemaker:InvokeEndpoint`` on its ARN only)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
        )

    def grant_describe(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read this endpoint's status (``sagemaker:DescribeEndpoint`` on its ARN only)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:DescribeEndpoint"], resource_arns=[self.endpoint_arn]
        )

    def metric(
        self,
        metric_name: str,
        *,
        namespace: str = ENDPOINT_NAMESPACE,
        statistic: str = "Sum",
        period: cdk.Duration | None = None,
        label: str | None = None,
    ) -> cloudwatch.Metric:
        """A metric of this endpoint's variant (dimensions ``EndpointName`` and ``VariantName``). Period 1 minute."""
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=metric_name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": self.variant_name},
            statistic=statistic,
            period=period or cdk.Duration.minutes(1),
            label=label,
        )

    def metric_invocations(self, *, statistic: str = "Sum", period: cdk.Duration | None = None) -> cloudwatch.Metric:
        """Requests sent to the variant (``Invocations``), summed by default."""
        return self.metric("Invocations", statistic=statistic, period=period)

    def metric_invocation_5xx_errors(
        self, *, statistic: str = "Sum", period: cdk.Duration | None = None
    ) -> cloudwatch.Metric:
        """Requests the model answered with a 5xx (``Invocation5XXErrors``), summed by default."""
        return self.metric("Invocation5XXErrors", statistic=statistic, period=period)

    def metric_invocation_4xx_errors(
        self, *, statistic: str = "Sum", period: cdk.Duration | None = None
    ) -> cloudwatch.Metric:
        """Requests the model answered with a 4xx (``Invocation4XXErrors``), summed by default."""
        return self.metric("Invocation4XXErrors", statistic=statistic, period=period)

    def metric_model_latency(self, *, statistic: str = "p99", period: cdk.Duration | None = None) -> cloudwatch.Metric:
        """Time the model container took to answer (``ModelLatency``), **in microseconds**; p99 by default."""
        return self.metric("ModelLatency", statistic=statistic, period=period)

    def metric_overhead_latency(
        self, *, statistic: str = "p99", period: cdk.Duration | None = None
    ) -> cloudwatch.Metric:
        """SageMaker's own time per request beyond the model (``OverheadLatency``), in microseconds; p99 by default."""
        return self.metric("OverheadLatency", statistic=statistic, period=period)

    def metric_invocations_per_instance(
        self, *, statistic: str = "Sum", period: cdk.Duration | None = None
    ) -> cloudwatch.Metric:
        """Invocations per instance (``InvocationsPerInstance``), what target tracking scales on; summed by default."""
        return self.metric("InvocationsPerInstance", statistic=statistic, period=period)

    def metric_cpu_utilization(
        self, *, statistic: str = "Average", period: cdk.Duration | None = None
    ) -> cloudwatch.Metric:
        """CPU of the instances (``CPUUtilization``, 100% per core), instance endpoints; average by default."""
        return self.metric("CPUUtilization", namespace=INSTANCE_NAMESPACE, statistic=statistic, period=period)

    def metric_gpu_utilization(
        self, *, statistic: str = "Average", period: cdk.Duration | None = None
    ) -> cloudwatch.Metric:
        """GPU of the instances (``GPUUtilization``, 100% per GPU), GPU instance endpoints; average by default."""
        return self.metric("GPUUtilization", namespace=INSTANCE_NAMESPACE, statistic=statistic, period=period)

    def metric_memory_utilization(
        self, *, statistic: str = "Average", period: cdk.Duration | None = None
    ) -> cloudwatch.Metric:
        """Memory of the instances (``MemoryUtilization``, percent), instance endpoints; average by default."""
        return self.metric("MemoryUtilization", namespace=INSTANCE_NAMESPACE, statistic=statistic, period=period)

    def metric_model_setup_time(
        self, *, statistic: str = "Maximum", period: cdk.Duration | None = None
    ) -> cloudwatch.Metric:
        """Cold-start time of a serverless endpoint's compute (``ModelSetupTime``, microseconds); maximum by default."""
        return self.metric("ModelSetupTime", statistic=statistic, period=period)

    # --- parts ------------------------------------------------------------------------------------------------------

    def _validate(
        self,
        *,
        endpoint_name: str,
        model_package_arn: str | None,
        model_data_url: str | None,
        image_uri: str | None,
        instance_type: str | None,
        min_instances: int,
        max_instances: int,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup | None,
        out_of_hours: OutOfHoursConfig | None,
        canary: CanaryDeploymentConfig | None,
        data_capture_bucket: s3.IBucket | None,
        image_repository_arns: Sequence[str],
    ) -> None:
        path = self.node.path
        check_sagemaker_name(f"{path}: endpoint_name", endpoint_name)
        if (model_package_arn is None) == (model_data_url is None):
            raise ValueError(f"{path}: pass exactly one of model_package_arn and model_data_url")
        if model_data_url is not None and (image_uri is None or not MODEL_DATA_URL.fullmatch(model_data_url)):
            raise ValueError(
                f"{path}: model_data_url={model_data_url!r} needs the form s3://<bucket>/<key>.tar.gz and an image_uri"
            )
        if not image_repository_arns:
            raise ValueError(f"{path}: image_repository_arns is empty; name the ECR repositories of the model's image")
        if instance_type is None:
            extras = {"out_of_hours": out_of_hours, "canary": canary, "data_capture_bucket": data_capture_bucket}
            given = sorted(name for name, value in extras.items() if value is not None)
            if given or subnets or security_group is not None:
                raise ValueError(
                    f"{path}: a serverless endpoint (instance_type=None) takes no {', '.join(given) or 'VPC placement'}"
                    "; SageMaker Serverless Inference has no VPC, instances or data capture"
                )
            return
        if not subnets or security_group is None:
            raise ValueError(f"{path}: an instance endpoint runs in the VPC; pass subnets and security_group")
        if not 1 <= min_instances <= max_instances:
            raise ValueError(f"{path}: need 1 <= min_instances ({min_instances}) <= max_instances ({max_instances})")
        if out_of_hours is not None and out_of_hours.min_instances >= min_instances:
            raise ValueError(
                f"{path}: out_of_hours.min_instances={out_of_hours.min_instances} must be below min_instances="
                f"{min_instances}"
            )

    def _grant_runtime(self, image_repository_arns: Sequence[str]) -> None:
        """Pull the image, write the endpoint's own logs and metrics: what every SageMaker execution role needs."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PullTheInferenceImage",
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=list(image_repository_arns),
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteItsEndpointLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteItsEndpointMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}},
            )
        )
        reason = (
            "ecr:GetAuthorizationToken, cloudwatch:PutMetricData (limited by condition to the SageMaker namespaces)"
            + ("" if self.is_serverless else " and the EC2 Describe calls that place the instances in the VPC")
            + " support no resource-level scoping"
        )
        acknowledge(self.role.policy, "AwsSolutions-IAM5[Resource::*]", reason + ".")
        justify_for_scanners(self.role.policy, "cfn_nag", "W13", f"Resource * only where it must be: {reason}.")

    def _grant_network_interfaces(self, subnets: Sequence[ec2.ISubnet], security_group: ec2.ISecurityGroup) -> None:
        """The ENIs SageMaker creates with this role to place the model's instances in the platform's subnets."""
        stack = cdk.Stack.of(self)
        subnet_arns = [
            stack.format_arn(service="ec2", resource="subnet", resource_name=subnet.subnet_id) for subnet in subnets
        ]
        interfaces = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NetworkInterfacesOnlyInThePlatformSubnets",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                ],
                resources=[interfaces],
                conditions={"ArnEquals": {"ec2:Subnet": subnet_arns}},
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NetworkInterfacesUseThePlatformSubnetsAndGroup",
                actions=["ec2:CreateNetworkInterface"],
                resources=[
                    *subnet_arns,
                    stack.format_arn(
                        service="ec2", resource="security-group", resource_name=security_group.security_group_id
                    ),
                ],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeTheVpc",
                actions=[
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcs",
                ],
                resources=["*"],
            )
        )
        acknowledge(
            self.role.policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]",
            "SageMaker names the endpoint instances' network interfaces at run time; creating and managing them is "
            "limited by condition to the platform's subnets.",
        )

    def _acknowledge_bucket_prefix(self, bucket: s3.IBucket, prefix: str, what: str) -> None:
        policy = self.role.policy
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{finding_reference(policy, bucket.bucket_arn)}/{prefix}/*]",
            f"Objects under {prefix}/ only: the endpoint {what}, named at registration or run time.",
        )
        granted = {
            action
            for statement in policy.document.to_json().get("Statement", [])
            for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        }
        for action, scope in (
            ("s3:GetObject*", "read objects (and versions) under the named prefix only"),
            ("s3:GetBucket*", "bucket configuration the S3 client checks, on that bucket only"),
            ("s3:List*", "list the named prefix of that bucket"),
            ("s3:DeleteObject*", "replace its own captured objects under the named prefix"),
            ("s3:Abort*", "abort its own multipart uploads under the named prefix"),
            ("kms:GenerateDataKey*", "encrypt what it writes with the platform key (SSE-KMS), that key only"),
            ("kms:ReEncrypt*", "re-encrypt under the platform key when S3 copies objects, that key only"),
        ):
            if action in granted:
                acknowledge(policy, f"AwsSolutions-IAM5[Action::{action}]", f"From the CDK grant: {scope}.")

    def _data_capture(
        self, bucket: s3.IBucket, key: kms.IKey, sampling_percent: int
    ) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty:
        """Capture requests and responses under ``data-capture/<endpoint>/`` with the platform key."""
        # SageMaker writes the captured files with the execution role; the grant covers the bucket's key too.
        bucket.grant_put(self.role, f"{DATA_CAPTURE_PREFIX}/{self.endpoint_name}/*")
        self._acknowledge_bucket_prefix(
            bucket, f"{DATA_CAPTURE_PREFIX}/{self.endpoint_name}", "writes captured requests and responses"
        )
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=sampling_percent,
            destination_s3_uri=f"s3://{bucket.bucket_name}/{DATA_CAPTURE_PREFIX}",
            kms_key_id=key.key_arn,
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
            ],
            # JSON bodies are stored as text, readable by Athena and Model Monitor, rather than base64.
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                json_content_types=["application/json"]
            ),
        )

    def _new_fleet_metric(self, metric_name: str, statistic: str) -> cloudwatch.Metric:
        """A variant metric of the fleet running this template's endpoint config only.

        SageMaker also publishes the variant metrics with an ``EndpointConfigName`` dimension. During a blue/green
        deployment that tells the new (green) fleet from the old one, so the alarm judges the new model alone and an
        error-prone old fleet cannot stop its own replacement. The config is unnamed, so its generated name changes
        with every new config, and CloudFormation updates the alarm before it updates the endpoint.
        """
        return cloudwatch.Metric(
            namespace=ENDPOINT_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={
                "EndpointName": self.endpoint_name,
                "VariantName": self.variant_name,
                "EndpointConfigName": self.endpoint_config.attr_endpoint_config_name,
            },
            statistic=statistic,
            period=cdk.Duration.minutes(1),
        )

    def _rollback_alarms(self, canary: CanaryDeploymentConfig) -> list[cloudwatch.Alarm]:
        """The new fleet's 5XX errors and model latency p99, with fixed names the deployment config lists."""
        minutes = canary.rollback_evaluation_minutes
        errors = cloudwatch.Alarm(
            self,
            "RollbackOn5xxErrors",
            alarm_name=self.rollback_alarm_names[0],
            alarm_description=(
                f"Rolls back a deployment of {self.endpoint_name}: the new fleet answered at least "
                f"{canary.rollback_5xx_errors} requests with a 5xx in each of {minutes} minutes."
            ),
            metric=self._new_fleet_metric("Invocation5XXErrors", "Sum"),
            threshold=canary.rollback_5xx_errors,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=minutes,
            datapoints_to_alarm=minutes,
            # No requests on the new fleet is no evidence against it.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        latency = cloudwatch.Alarm(
            self,
            "RollbackOnModelLatency",
            alarm_name=self.rollback_alarm_names[1],
            alarm_description=(
                f"Rolls back a deployment of {self.endpoint_name}: the new fleet's model latency p99 stayed above "
                f"{canary.rollback_model_latency_ms} ms for {minutes} minutes."
            ),
            metric=self._new_fleet_metric("ModelLatency", "p99"),
            # ModelLatency is reported in microseconds.
            threshold=canary.rollback_model_latency_ms * 1000,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=minutes,
            datapoints_to_alarm=minutes,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # SageMaker's automatic rollback watches them through the deployment config; their notification action comes
        # from the Serving stack's monitoring (components/serving_monitoring.py), which the compliance packs require.
        return [errors, latency]

    def _deployment_config(
        self, canary: CanaryDeploymentConfig | None
    ) -> sagemaker.CfnEndpoint.DeploymentConfigProperty | None:
        """Canary blue/green with auto-rollback, or None: SageMaker's default blue/green, all traffic at once."""
        if canary is None or self.is_serverless:
            return None
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                    type="CANARY",
                    canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                        type="CAPACITY_PERCENT", value=canary.canary_size_percent
                    ),
                    wait_interval_in_seconds=canary.wait_interval_seconds,
                ),
                termination_wait_in_seconds=canary.termination_wait_seconds,
                maximum_execution_timeout_in_seconds=canary.maximum_execution_timeout_seconds,
            ),
            auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[
                    sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name) for alarm in self.rollback_alarms
                ]
            ),
        )

    def _autoscaling(
        self,
        *,
        min_instances: int,
        max_instances: int,
        target: int,
        scale_in_cooldown: cdk.Duration,
        scale_out_cooldown: cdk.Duration,
        out_of_hours: OutOfHoursConfig | None,
    ) -> appscaling.ScalableTarget:
        """Target tracking on invocations per instance, and the out-of-hours floor; the service-linked role scales."""
        scalable_target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            # The endpoint's attribute, not the plain name: the variant must exist before it is registered.
            resource_id=f"endpoint/{self.resource.attr_endpoint_name}/variant/{self.variant_name}",
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=min_instances,
            max_capacity=max_instances,
        )
        # Without RoleARN, Application Auto Scaling uses (and on first use creates) its service-linked role for
        # SageMaker endpoints, AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint, with exactly the calls it
        # needs. The role the L2 would create instead has no permissions and is dropped.
        resource = scalable_target.node.default_child
        assert isinstance(resource, appscaling.CfnScalableTarget)
        resource.add_property_deletion_override("RoleARN")
        scalable_target.node.try_remove_child("Role")
        scalable_target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=target,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=scale_in_cooldown,
            scale_out_cooldown=scale_out_cooldown,
        )
        if out_of_hours is not None:
            time_zone = cdk.TimeZone.of(out_of_hours.time_zone)
            scalable_target.scale_on_schedule(
                "LowerFloorOutOfHours",
                schedule=appscaling.Schedule.expression(out_of_hours.scale_down),
                min_capacity=out_of_hours.min_instances,
                time_zone=time_zone,
            )
            scalable_target.scale_on_schedule(
                "RestoreFloorInWorkingHours",
                schedule=appscaling.Schedule.expression(out_of_hours.scale_up),
                min_capacity=min_instances,
                time_zone=time_zone,
            )
        return scalable_target
