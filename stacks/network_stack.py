"""Network stack: the isolated VPC every workload of the platform runs in."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct

from components.isolated_network import IsolatedNetwork
from components.vpc_services import VpcConsumer, VpcService, needed_by
from config import PlatformConfig
from stacks.removal import removal_policy


class NetworkStack(cdk.Stack):
    """The VPC, its endpoints and the security groups.

    :param consumers: the components of the stage that run in the VPC, with the services they call from there; the
        stack creates an interface endpoint for each service in their union and no other.

    Attributes other stacks use: ``vpc``, ``subnets`` (the isolated subnets), ``workload_security_group``.
    ``needed_by``: each service reached from the VPC to the consumers' reasons.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        key: kms.IKey,
        consumers: Sequence[VpcConsumer],
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.needed_by: dict[VpcService, tuple[str, ...]] = needed_by(consumers)
        network = IsolatedNetwork(
            self,
            "Network",
            needed_by=self.needed_by,
            az_count=config.network.az_count,
            cidr=config.network.cidr,
            encryption_key=key,
            flow_log_retention_days=config.network.flow_log_retention_days,
            log_removal_policy=removal_policy(config),
        )
        self.vpc: ec2.IVpc = network.vpc
        self.subnets: ec2.SelectedSubnets = network.subnets
        self.workload_security_group: ec2.ISecurityGroup = network.workload_security_group
        self.endpoint_security_group: ec2.ISecurityGroup = network.endpoint_security_group
        cdk.CfnOutput(self, "VpcId", value=self.vpc.vpc_id)
