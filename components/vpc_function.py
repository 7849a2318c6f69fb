"""What a platform Lambda function placed in the isolated VPC needs besides its own permissions.

Lambda creates the function's network interfaces with the function's role when the function is created, so the role
needs the EC2 network-interface calls (which have no resource-level scoping: the same statement as AWS's
``AWSLambdaVPCAccessExecutionRole``) and the function must wait for the role's policy, not only for the role.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from components.compliance import acknowledge, justify_for_scanners
from components.platform_role import PlatformRole

NETWORK_INTERFACE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def grant_network_interfaces(role: PlatformRole) -> None:
    """Let Lambda manage the network interfaces of a VPC function that runs with ``role``."""
    role.add_to_principal_policy(
        iam.PolicyStatement(sid="FunctionNetworkInterfaces", actions=list(NETWORK_INTERFACE_ACTIONS), resources=["*"])
    )


def create_after_role_policy(function: lambda_.Function, role: PlatformRole) -> cdk.CfnResource:
    """Make ``function`` wait for ``role``'s policy at creation; returns the function's ``CfnResource``.

    The function already waits for its role through ``Fn::GetAtt`` (cfn-lint W3005 on an explicit edge to it), so
    the dependency lists the policy only.
    """
    function_resource = function.node.default_child
    assert isinstance(function_resource, cdk.CfnResource)  # an L2 Function always has its CfnFunction
    policy_resource = role.policy.node.default_child
    assert isinstance(policy_resource, cdk.CfnResource)
    function_resource.add_override("DependsOn", [cdk.Stack.of(function).get_logical_id(policy_resource)])
    return function_resource


def justify_synchronous_vpc_function(
    function_resource: cdk.CfnResource,
    role: PlatformRole,
    *,
    dlq_reason: str,
    concurrency_reason: str | None,
    wildcard_reason: str,
) -> None:
    """Record, for the compliance packs and the other scanners, why a synchronously invoked VPC function has no
    dead-letter queue and (``concurrency_reason`` given) no reserved concurrency, and why its role's policy has
    ``Resource *`` (``wildcard_reason``: the EC2 network-interface calls and anything else that cannot be scoped).

    Each reason is written once for every scanner that asks (cdk-nag HIPAA and NIST, Checkov, cfn_nag).
    """
    justify_for_scanners(function_resource, "checkov", "CKV_AWS_116", dlq_reason)
    if concurrency_reason is not None:
        justify_for_scanners(function_resource, "checkov", "CKV_AWS_115", concurrency_reason)
        justify_for_scanners(function_resource, "cfn_nag", "W92", concurrency_reason)
    for pack in ("HIPAA.Security", "NIST.800.53.R5"):
        acknowledge(function_resource, f"{pack}-LambdaDLQ", dlq_reason)
        if concurrency_reason is not None:
            acknowledge(function_resource, f"{pack}-LambdaConcurrency", concurrency_reason)
    justify_for_scanners(
        role.policy,
        "checkov",
        "CKV_AWS_111",
        "ec2:CreateNetworkInterface and DeleteNetworkInterface on Resource *: Lambda creates the interfaces of a "
        "VPC function under names chosen at run time; the same statement as AWSLambdaVPCAccessExecutionRole.",
    )
    justify_for_scanners(role.policy, "cfn_nag", "W13", wildcard_reason)
