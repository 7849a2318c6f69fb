"""SageMaker notebook instances for the team: VPC-only, encrypted, no root, idle auto-stop, one least-privilege role."""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from components.compliance import acknowledge, finding_reference, justify_for_scanners
from components.package_repository import PackageRepository
from components.platform_role import PlatformRole
from components.run_time_logs import JOB_LOG_GROUPS, NOTEBOOK_INSTANCES
from components.vpc_services import VpcService, VpcServiceUse
from config import NotebookUserConfig, volume_kms_key_allowed

LIFECYCLE_DIR = Path(__file__).resolve().parent.parent / "notebook_lifecycle"
PARAMETER_MARKER = "# @PLATFORM_PARAMETERS@"
# SageMaker's limit on one lifecycle script, counted in characters of its base64 encoding.
LIFECYCLE_SCRIPT_LIMIT = 16_384
# Longest value a deploy-time token can resolve to (bucket names, ARNs, the asset URI all stay far below), used to
# check the size limit at synth, when token values are not known yet.
RESOLVED_TOKEN_BOUND = 256
NOTEBOOK_LOG_GROUP = NOTEBOOK_INSTANCES.name
# How cdk-nag prints a log group ARN of this account and region in a finding id.
LOGS_FINDING_PREFIX = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"

# The notebooks' prefixes in each bucket (see notebook_lifecycle/README.md and notebooks/).
RAW_PREFIXES = ("notebooks/", "datasets/")
CURATED_PREFIXES = ("notebooks/", "datasets/")
ARTIFACTS_PREFIXES = ("notebooks/",)
# What notebooks do with objects under their prefixes. A delete adds a delete marker; removing versions for good
# (s3:DeleteObjectVersion) is left to the buckets' lifecycle rules. Multipart uploads are covered by s3:PutObject.
DATA_READ_ACTIONS = ("s3:GetObject",)
DATA_WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")


class NotebookWorkbench(Construct):
    """One SageMaker notebook instance per user, their lifecycle configs and the role they share.

    Each instance:

    - runs in an isolated subnet with the workload security group; ``DirectInternetAccess`` and ``RootAccess`` are
      Disabled, IMDSv2 is required, the ML storage volume is encrypted with ``key``;
    - has its own lifecycle config built at synth from ``notebook_lifecycle/on_create.sh`` and ``on_start.sh``: the
      ``# @PLATFORM_PARAMETERS@`` line becomes ``export NAME='value'`` lines (the contract in
      ``notebook_lifecycle/README.md``), ``notebook_lifecycle/helpers/`` ships as a zip asset;
    - gets an ``AWS::SageMaker::CodeRepository`` as its default repository when the user configures a Git URL.

    The role (``role``, a :class:`PlatformRole`; pass it to other components' grants, e.g.
    ``endpoint.grant_invoke(workbench.role)``) may, from the start: read and write ``notebooks/`` and ``datasets/``
    of the raw bucket, read the same prefixes of the curated bucket, read and write ``notebooks/`` of the artifacts
    bucket, use ``key``, read the helpers zip, install packages from ``package_repository``, write its lifecycle and
    Jupyter logs, and stop its own instances (idle auto-stop). The ``allow_*`` methods add what the stack wires in.

    :param notebooks: instance name to the user's settings (instance type, volume, idle minutes, Git URL).
    :param platform_identifier: notebook platform, e.g. ``notebook-al2023-v1``.
    :param subnets: isolated subnets; users are spread over them in order.
    :param security_group: the workload security group.
    :param key: the platform key (volumes, S3 uploads).
    :param parameters: the resource names the lifecycle scripts export (``GLUE_JOB_NAME``, ``PIPELINE_NAME``,
        ``MODEL_PACKAGE_GROUP_NAME``, ``ENDPOINT_NAME``); the component adds the buckets, key, region, package
        repository, helpers URI, and per instance ``IDLE_MINUTES`` and ``NOTEBOOK_INSTANCE_NAME``.
    :param removal_policy: what happens to the instances (and their volumes), lifecycle configs and code
        repositories when the stack is deleted.

    ``VPC_SERVICES`` (see :meth:`vpc_services`): what the instances call from the VPC. Not the ``notebook``
    endpoint: it serves clients inside the VPC that open a notebook's UI, and users open it from the console.
    """

    VPC_SERVICES = (
        VpcServiceUse(VpcService.S3, "notebooks' data prefixes and the lifecycle helpers zip"),
        VpcServiceUse(VpcService.SAGEMAKER_API, "pipelines, jobs, model approval and idle auto-stop"),
        VpcServiceUse(VpcService.GLUE, "start and follow data preparation runs (notebooks/01_prepare_data.ipynb)"),
        VpcServiceUse(VpcService.CLOUDWATCH_LOGS, "lifecycle and Jupyter logs; reading jobs' log streams"),
        *PackageRepository.CLIENT_VPC_SERVICES,
    )
    ENDPOINT_CLIENT_SERVICES = (
        VpcServiceUse(VpcService.SAGEMAKER_RUNTIME, "InvokeEndpoint on the stage's inference endpoint"),
    )
    """Added where the stage has an inference endpoint."""

    @classmethod
    def vpc_services(cls, *, invokes_endpoint: bool) -> tuple[VpcServiceUse, ...]:
        """What the notebooks call from the VPC; the runtime API only where the stage has an endpoint to call."""
        return cls.VPC_SERVICES + (cls.ENDPOINT_CLIENT_SERVICES if invokes_endpoint else ())

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        notebooks: Mapping[str, NotebookUserConfig],
        platform_identifier: str,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        package_repository: PackageRepository,
        parameters: Mapping[str, str],
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        if not notebooks:
            raise ValueError(
                f"{self.node.path}: notebooks is empty; a stage without workbench.users needs no NotebookWorkbench"
            )
        if not subnets:
            raise ValueError(f"{self.node.path}: subnets is empty; pass the isolated subnets of the Network stack")
        stack = cdk.Stack.of(self)
        self._stack = stack
        self.notebook_names = tuple(notebooks)

        self.helpers = s3_assets.Asset(
            self,
            "LifecycleHelpers",
            path=str(LIFECYCLE_DIR / "helpers"),
            # Bytecode that a local test run leaves behind must not change the asset hash or ship to the instance.
            exclude=["__pycache__", "*.pyc"],
        )
        self.role = PlatformRole(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Workbench notebooks: their data prefixes, the platform key, packages, their own auto-stop",
        )
        self._grant_data(raw_bucket, curated_bucket, artifacts_bucket, key)
        package_repository.grant_read(self.role)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadLifecycleHelpers",
                actions=["s3:GetObject"],
                resources=[self.helpers.bucket.arn_for_objects(self.helpers.s3_object_key)],
            )
        )
        self._grant_notebook_runtime()

        common_parameters = {
            "AWS_REGION_NAME": stack.region,
            "RAW_BUCKET": raw_bucket.bucket_name,
            "CURATED_BUCKET": curated_bucket.bucket_name,
            "ARTIFACTS_BUCKET": artifacts_bucket.bucket_name,
            "KMS_KEY_ARN": key.key_arn,
            **parameters,
            "CODEARTIFACT_DOMAIN": package_repository.domain_name,
            "CODEARTIFACT_DOMAIN_OWNER": package_repository.domain_owner,
            "CODEARTIFACT_REPOSITORY": package_repository.repository_name,
            "HELPERS_S3_URI": self.helpers.s3_object_url,
        }
        self.instances: dict[str, sagemaker.CfnNotebookInstance] = {}
        self.lifecycle_configs: dict[str, sagemaker.CfnNotebookInstanceLifecycleConfig] = {}
        self.code_repositories: dict[str, sagemaker.CfnCodeRepository] = {}
        for index, (name, user) in enumerate(notebooks.items()):
            # The user name, not the position, identifies the construct: removing one user leaves the others alone.
            user_scope = Construct(self, user.name)
            script_parameters = {
                **common_parameters,
                "IDLE_MINUTES": str(user.idle_minutes),
                "NOTEBOOK_INSTANCE_NAME": name,
            }
            lifecycle = sagemaker.CfnNotebookInstanceLifecycleConfig(
                user_scope,
                "LifecycleConfig",
                notebook_instance_lifecycle_config_name=name,
                on_create=[{"content": lifecycle_script("on_create.sh", script_parameters)}],
                on_start=[{"content": lifecycle_script("on_start.sh", script_parameters)}],
            )
            repository = None
            if user.git_repository_url is not None:
                repository = sagemaker.CfnCodeRepository(
                    user_scope,
                    "CodeRepository",
                    code_repository_name=name,
                    git_config=sagemaker.CfnCodeRepository.GitConfigProperty(repository_url=user.git_repository_url),
                )
                self.code_repositories[name] = repository
            instance = sagemaker.CfnNotebookInstance(
                user_scope,
                "Resource",
                notebook_instance_name=name,
                instance_type=user.instance_type,
                role_arn=self.role.role_arn,
                subnet_id=subnets[index % len(subnets)].subnet_id,
                security_group_ids=[security_group.security_group_id],
                direct_internet_access="Disabled",
                root_access="Disabled",
                kms_key_id=key.key_arn,
                volume_size_in_gb=user.volume_size_gb,
                platform_identifier=platform_identifier,
                lifecycle_config_name=lifecycle.attr_notebook_instance_lifecycle_config_name,
                instance_metadata_service_configuration=(
                    sagemaker.CfnNotebookInstance.InstanceMetadataServiceConfigurationProperty(
                        minimum_instance_metadata_service_version="2"
                    )
                ),
                default_code_repository=repository.attr_code_repository_name if repository else None,
            )
            # The lifecycle scripts need every permission at the first start, which follows creation at once.
            instance.node.add_dependency(self.role.policy)
            for resource in (instance, lifecycle, *([repository] if repository else [])):
                resource.apply_removal_policy(removal_policy)
            self.instances[name] = instance
            self.lifecycle_configs[name] = lifecycle

    def allow_sagemaker_jobs(
        self,
        *,
        job_name_prefix: str,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        training_instance_types: Sequence[str],
        processing_instance_types: Sequence[str],
        execution_role_name_prefix: str,
    ) -> iam.Grant:
        """Let the notebooks run training and processing jobs named ``<job_name_prefix>-*`` the way the platform does.

        A create call is allowed only when the request puts the job in ``subnets`` with ``security_group``, enables
        network isolation, encrypts the output with ``key`` (its ARN) and uses the listed instance types: the
        condition keys the SageMaker security guide recommends. The volume follows the instance type
        (:func:`config.instance_storage.volume_kms_key_allowed`): an EBS volume must be encrypted with ``key``; a type
        with local NVMe storage, which SageMaker encrypts in hardware and for which it rejects ``VolumeKmsKeyId``,
        must be requested without one. Each kind of type gets its own statement. ``iam:PassRole`` is limited to roles
        named ``<execution_role_name_prefix>*`` passed to SageMaker.
        """
        subnet_ids = [subnet.subnet_id for subnet in subnets]
        security_group_ids = [security_group.security_group_id]
        grants = []
        for job_type, instance_types in (
            ("training", training_instance_types),
            ("processing", processing_instance_types),
        ):
            title = job_type.capitalize()
            job_arn = f"{self._sagemaker_arn(f'{job_type}-job', job_name_prefix)}-*"
            # SageMaker rejects VolumeKmsKeyId for types with local NVMe storage (encrypted in hardware) and EBS volumes
            # need the platform key: one statement per group, so neither kind of job is denied.
            by_storage: dict[bool, list[str]] = {}
            for instance_type in sorted(set(instance_types)):
                by_storage.setdefault(volume_kms_key_allowed(instance_type), []).append(instance_type)
            create: iam.Grant | None = None
            for key_allowed, group in sorted(by_storage.items()):
                volume_key: dict[str, dict[str, str]] = (
                    {"StringEquals": {"sagemaker:VolumeKmsKey": key.key_arn}}
                    if key_allowed
                    else {"Null": {"sagemaker:VolumeKmsKey": "true"}}
                )
                statement = iam.Grant.add_to_principal(
                    grantee=self.role,
                    actions=[f"sagemaker:Create{title}Job"],
                    resource_arns=[job_arn],
                    conditions={
                        # ForAllValues holds vacuously when the key is absent, so each list key must also be present.
                        "Null": {
                            "sagemaker:VpcSubnets": "false",
                            "sagemaker:VpcSecurityGroupIds": "false",
                            "sagemaker:InstanceTypes": "false",
                            **volume_key.get("Null", {}),
                        },
                        "ForAllValues:StringEquals": {
                            "sagemaker:VpcSubnets": subnet_ids,
                            "sagemaker:VpcSecurityGroupIds": security_group_ids,
                            "sagemaker:InstanceTypes": group,
                        },
                        "Bool": {"sagemaker:NetworkIsolation": "true"},
                        "StringEquals": {**volume_key.get("StringEquals", {}), "sagemaker:OutputKmsKey": key.key_arn},
                    },
                )
                create = statement if create is None else create.combine(statement)
            if create is None:
                raise ValueError(
                    f"{self.node.path}: {job_type}_instance_types is empty; pass the instance types the stage "
                    f"configures for {job_type} jobs"
                )
            follow = iam.Grant.add_to_principal(
                grantee=self.role,
                actions=[f"sagemaker:Describe{title}Job", f"sagemaker:Stop{title}Job"],
                resource_arns=[job_arn],
            )
            # The SDK follows a job by reading its log streams (named after the job) while it waits.
            log_group = JOB_LOG_GROUPS[job_type].name
            logs = iam.Grant.add_to_principal(
                grantee=self.role,
                actions=["logs:DescribeLogStreams"],
                resource_arns=[self._log_arn(f"{log_group}:*")],
            ).combine(
                iam.Grant.add_to_principal(
                    grantee=self.role,
                    actions=["logs:GetLogEvents"],
                    resource_arns=[self._log_arn(f"{log_group}:log-stream:{job_name_prefix}-*")],
                )
            )
            grants.append(create.combine(follow).combine(logs))
            acknowledge(
                self.role.policy,
                f"AwsSolutions-IAM5[Resource::{self._finding_arn(f'{job_type}-job', job_name_prefix)}-*]",
                f"{title} jobs whose names start with {job_name_prefix}-; creation is further limited by conditions to "
                "the platform subnets, security group, key, network isolation and configured instance types.",
            )
            acknowledge(
                self.role.policy,
                f"AwsSolutions-IAM5[Resource::{LOGS_FINDING_PREFIX}{log_group}:*]",
                f"The {log_group} log group itself (CloudWatch Logs writes a log group's ARN with a :* suffix), to "
                "find the streams of a job; SageMaker fixes the group's name.",
            )
            acknowledge(
                self.role.policy,
                f"AwsSolutions-IAM5[Resource::{LOGS_FINDING_PREFIX}{log_group}:log-stream:{job_name_prefix}-*]",
                f"Read the log streams of {job_type} jobs whose names start with {job_name_prefix}- (SageMaker names "
                "each stream after its job).",
            )
        stack = self._stack
        pass_role = iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["iam:PassRole"],
            resource_arns=[
                stack.format_arn(
                    service="iam", region="", resource="role", resource_name=f"{execution_role_name_prefix}*"
                )
            ],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
        acknowledge(
            self.role.policy,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/{execution_role_name_prefix}*]",
            f"Pass only the platform's SageMaker execution roles (named {execution_role_name_prefix}*), and only to "
            "SageMaker (iam:PassedToService condition).",
        )
        return functools.reduce(iam.Grant.combine, grants, pass_role)

    def _grant_data(
        self, raw_bucket: s3.IBucket, curated_bucket: s3.IBucket, artifacts_bucket: s3.IBucket, key: kms.IKey
    ) -> None:
        """Objects and listings under the notebooks' prefixes only, and the platform key.

        CDK's ``grant_read`` cannot scope a listing: it grants ``s3:List*`` on the bucket itself, which lists every
        key of the bucket whatever the object prefix. So the statements are written here: object actions on
        ``<prefix>*``, ``s3:ListBucket`` with an ``s3:prefix`` condition, and ``s3:GetBucketLocation``, which clients
        call before anything else and which reveals no object.
        """
        policy = self.role.policy
        buckets = (("raw", raw_bucket, RAW_PREFIXES, True), ("curated", curated_bucket, CURATED_PREFIXES, False),
                   ("artifacts", artifacts_bucket, ARTIFACTS_PREFIXES, True))  # fmt: skip
        for name, bucket, prefixes, writable in buckets:
            actions = [*DATA_READ_ACTIONS, *(DATA_WRITE_ACTIONS if writable else ())]
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=actions, resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]
                )
            )
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    # "notebooks/*" also matches the prefix "notebooks/" itself; a bare "notebooks" is refused, as it
                    # would list keys such as "notebooks-old/..." outside the prefix.
                    conditions={"StringLike": {"s3:prefix": sorted(f"{prefix}*" for prefix in prefixes)}},
                )
            )
            self.role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:GetBucketLocation"], resources=[bucket.bucket_arn])
            )
            for prefix in prefixes:
                acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::{finding_reference(policy, bucket.bucket_arn)}/{prefix}*]",
                    f"Objects under the {prefix} prefix of the {name} bucket, where notebooks keep their uploads and "
                    f"results ({'read and write' if writable else 'read only'}); listing is limited to the same "
                    "prefixes by an s3:prefix condition.",
                )
        key.grant_encrypt_decrypt(self.role)
        grant_actions = {
            "kms:GenerateDataKey*": "encrypt uploads with the platform key (SSE-KMS), that key only",
            "kms:ReEncrypt*": "re-encrypt under the platform key when S3 copies objects, that key only",
        }
        for action, scope in grant_actions.items():
            acknowledge(policy, f"AwsSolutions-IAM5[Action::{action}]", f"From the CDK grant: {scope}.")

    def _grant_notebook_runtime(self) -> None:
        """What every instance needs to run: its logs in CloudWatch and the idle auto-stop of its own instance."""
        log_group_arn = self._log_arn(f"{NOTEBOOK_LOG_GROUP}:*")
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NotebookLogGroup",
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=[log_group_arn],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NotebookLogStreams",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self._log_arn(f"{NOTEBOOK_LOG_GROUP}:log-stream:{name}/*") for name in self.notebook_names],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="IdleAutoStopOfItsOwnInstances",
                actions=["sagemaker:StopNotebookInstance"],
                resources=[self._sagemaker_arn("notebook-instance", name) for name in self.notebook_names],
            )
        )
        policy = self.role.policy
        logs_prefix = LOGS_FINDING_PREFIX
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{logs_prefix}{NOTEBOOK_LOG_GROUP}:*]",
            "The SageMaker notebook log group itself (CloudWatch Logs writes a log group's ARN with a :* suffix); "
            "SageMaker fixes its name, so the stack cannot create it with its own key.",
        )
        for name in self.notebook_names:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{logs_prefix}{NOTEBOOK_LOG_GROUP}:log-stream:{name}/*]",
                f"The log streams of instance {name} only (lifecycle-config output and jupyter.log, named by "
                "SageMaker after the instance).",
            )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Actions without a resource type: sts:GetServiceBearerToken (limited by condition to CodeArtifact) for "
            "the package index, and sagemaker:ListModelPackages for the model registry.",
        )
        justify_for_scanners(
            policy,
            "cfn_nag",
            "W13",
            "Resource * only for actions without a resource type: sts:GetServiceBearerToken (limited by condition to "
            "CodeArtifact) for the package index, and sagemaker:ListModelPackages for the model registry.",
        )

    def _log_arn(self, resource_name: str) -> str:
        return self._stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=resource_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def _sagemaker_arn(self, resource: str, name: str) -> str:
        # SageMaker writes resource names in lower case in its ARNs; the platform's names already are.
        return self._stack.format_arn(service="sagemaker", resource=resource, resource_name=name.lower())

    @staticmethod
    def _finding_arn(resource: str, name: str) -> str:
        return f"arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:{resource}/{name.lower()}"


def lifecycle_script(file_name: str, parameters: Mapping[str, str]) -> str:
    """The base64 content of one lifecycle script: ``notebook_lifecycle/<file_name>`` with its parameter marker
    replaced by ``export NAME='value'`` lines. Values may be deploy-time tokens; the result is an ``Fn::Base64``.

    Fails at synth when a literal value holds a single quote, when the marker is missing or repeated, or when the
    script could exceed SageMaker's limit of 16,384 base64 characters with every token at its longest.
    """
    path = LIFECYCLE_DIR / file_name
    text = path.read_text(encoding="utf-8")
    marker_lines = [line for line in text.splitlines() if line.strip() == PARAMETER_MARKER]
    if len(marker_lines) != 1:
        raise ValueError(
            f"{path} must contain the line {PARAMETER_MARKER!r} exactly once (found {len(marker_lines)}); "
            "see the contract in notebook_lifecycle/README.md"
        )
    for name, value in parameters.items():
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise ValueError(f"lifecycle parameter name {name!r} is not an upper-case shell variable name")
        if not cdk.Token.is_unresolved(value) and ("'" in value or "\n" in value):
            raise ValueError(
                f"lifecycle parameter {name}={value!r} contains a quote or a line break, which the scripts' "
                "export NAME='value' lines cannot hold; change the setting that produces it"
            )

    def render(values: Mapping[str, str]) -> str:
        block = "\n".join(f"export {name}='{value}'" for name, value in values.items())
        return "".join(
            f"{block}\n" if line.strip() == PARAMETER_MARKER else line for line in text.splitlines(keepends=True)
        )

    longest = {name: "x" * RESOLVED_TOKEN_BOUND if cdk.Token.is_unresolved(v) else v for name, v in parameters.items()}
    size = len(base64.b64encode(render(longest).encode("utf-8")))
    if size > LIFECYCLE_SCRIPT_LIMIT:
        raise ValueError(
            f"{path} would be up to {size} base64 characters once deployed; SageMaker accepts at most "
            f"{LIFECYCLE_SCRIPT_LIMIT}. Move code into notebook_lifecycle/helpers/ (shipped as a zip)"
        )
    return cdk.Fn.base64(render(parameters))
