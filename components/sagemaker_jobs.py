"""What every SageMaker job of the platform shares: its container images, its execution role and the job rules.

- :func:`dlc_image_uri` builds an AWS Deep Learning Container image URI from the CDK's region facts (a mapping in an
  environment-agnostic stack) and the stack's URL suffix; :func:`dlc_repository_arn` is what a role may pull.
- :class:`JobExecutionRole` is a :class:`PlatformRole` that SageMaker assumes for one kind of job, with what every job
  needs to run in the platform's VPC (ENIs only in the platform's subnets), pull only the named DLC repositories,
  write its own logs and metrics. Data access comes from grants in the composing construct.
- :func:`volume_kms_key` decides per instance type whether a job sends ``VolumeKmsKeyId`` (EBS-backed types must;
  SageMaker rejects it for types with local NVMe storage, which the hardware encrypts).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import region_info
from constructs import Construct

from components.compliance import acknowledge, justify_for_scanners
from components.platform_role import PlatformRole
from components.run_time_logs import JOB_LOG_GROUPS as RUN_TIME_JOB_LOG_GROUPS
from config.instance_storage import volume_kms_key_allowed

# The shared log group SageMaker writes for each job kind (components/run_time_logs.py lists every run-time group).
JOB_LOG_GROUPS = {kind: group.name for kind, group in RUN_TIME_JOB_LOG_GROUPS.items()}


def dlc_account(scope: Construct) -> str:
    """The Deep Learning Containers registry account of the stack's region (a mapping lookup when agnostic)."""
    return cdk.Stack.of(scope).regional_fact(region_info.FactName.DLC_REPOSITORY_ACCOUNT)


def dlc_image_uri(scope: Construct, repository: str, tag: str) -> str:
    """``<account>.dkr.ecr.<region>.<url suffix>/<repository>:<tag>`` for the stack's region."""
    stack = cdk.Stack.of(scope)
    return f"{dlc_account(scope)}.dkr.ecr.{stack.region}.{stack.url_suffix}/{repository}:{tag}"


def dlc_repository_arn(scope: Construct, repository: str) -> str:
    """The ECR repository ARN of a Deep Learning Container, for pull permissions."""
    stack = cdk.Stack.of(scope)
    return f"arn:{stack.partition}:ecr:{stack.region}:{dlc_account(scope)}:repository/{repository}"


def volume_kms_key(instance_type: str, key: kms.IKey) -> str | None:
    """The key ARN for ``VolumeKmsKeyId`` where SageMaker accepts it (EBS-backed types), else None."""
    return key.key_arn if volume_kms_key_allowed(instance_type) else None


class JobExecutionRole(PlatformRole):
    """The role SageMaker assumes to run one kind of job (``training``, ``processing``, ``transform``).

    Named ``<name_prefix>-sagemaker-<kind>`` so the notebook role's ``iam:PassRole`` (limited to
    ``<prefix>-sagemaker-*``) can pass it. Grants for data go in through the usual CDK grants.

    :param kind: the job kind, which picks the log group SageMaker writes. :param repositories: DLC repositories the
    job pulls. :param subnets: the only subnets it may create network interfaces in. :param security_group: their group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        kind: str,
        repositories: Sequence[str],
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            role_name=f"{name_prefix}-sagemaker-{kind}",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker {kind} jobs of the {name_prefix} platform",
        )
        stack = cdk.Stack.of(self)
        log_group = JOB_LOG_GROUPS[kind]
        self.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PullTheDeepLearningContainers",
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[dlc_repository_arn(self, repository) for repository in repositories],
            )
        )
        self.add_to_principal_policy(
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        self.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteItsJobLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{log_group}:*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteItsJobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}},
            )
        )
        subnet_arns = [
            stack.format_arn(service="ec2", resource="subnet", resource_name=subnet.subnet_id) for subnet in subnets
        ]
        self.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NetworkInterfacesOnlyInThePlatformSubnets",
                actions=["ec2:CreateNetworkInterface"],
                resources=[stack.format_arn(service="ec2", resource="network-interface", resource_name="*")],
                conditions={"ArnEquals": {"ec2:Subnet": subnet_arns}},
            )
        )
        self.add_to_principal_policy(
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
        self.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ManageItsNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                ],
                resources=[stack.format_arn(service="ec2", resource="network-interface", resource_name="*")],
                conditions={"ArnEquals": {"ec2:Subnet": subnet_arns}},
            )
        )
        self.add_to_principal_policy(
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
        justify_for_scanners(
            self.policy,
            "cfn_nag",
            "W13",
            "Resource * only for ecr:GetAuthorizationToken, the EC2 Describe calls that place a job in the VPC and "
            "cloudwatch:PutMetricData limited by condition to /aws/sagemaker/ namespaces: none has a resource type.",
        )
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken, the EC2 Describe calls SageMaker makes to place the job in the VPC, and "
            "cloudwatch:PutMetricData (limited to the /aws/sagemaker/ namespaces by condition) support no "
            "resource-level scoping.",
        )
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]",
            "SageMaker names the job's network interfaces at run time; creating and managing them is limited by "
            "condition to the platform's subnets.",
        )
        acknowledge(
            self.policy,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            f"{log_group}:*]",
            f"SageMaker writes one log stream per job and instance, named at run time, in {log_group} only.",
        )
