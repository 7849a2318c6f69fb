"""A VPC with no route to the internet, reached by the platform's workloads through VPC endpoints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from components.compliance import justify_cdk_provider_handler
from components.log_retention import retention_days
from components.platform_role import PlatformRole
from components.vpc_services import VpcService

# Template metadata key on each VPC endpoint: who needs it and why (read by scripts/cost_report.py).
NEEDED_BY_METADATA = "NeededBy"


class IsolatedNetwork(Construct):
    """VPC with isolated subnets only, endpoints for the APIs its workloads call, flow logs, locked-down SGs.

    - no internet gateway and no NAT: nothing inside can reach the internet, nothing outside can reach in;
    - an S3 gateway endpoint, and one interface endpoint with private DNS per service of ``needed_by`` (each costs per
      AZ-hour, so only those a workload declares it calls; see ``components/vpc_services.py``). Each endpoint's
      template metadata ``NeededBy`` lists its consumers with their reasons;
    - ``workload_security_group``: for notebooks, jobs and functions. It may reach the endpoints and S3 on 443 and
      itself on any port (multi-node training and Spark talk between their own nodes), nothing else;
    - ``endpoint_security_group``: admits 443 only from the workload group (a rule between groups, not the VPC CIDR);
    - the VPC's default security group loses all its rules;
    - flow logs of all traffic into a log group encrypted with ``encryption_key``.

    :param needed_by: every service the stage's workloads call from the VPC, to ``"<consumer>: <reason>"`` lines.
    :param az_count: availability zones, one isolated subnet each.
    :param cidr: the VPC's private address range.
    :param flow_log_retention_days: retention of the flow-log group.
    :param log_removal_policy: what happens to the flow-log group when the stack is deleted.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        needed_by: Mapping[VpcService, Sequence[str]],
        az_count: int,
        cidr: str,
        encryption_key: kms.IKey,
        flow_log_retention_days: int,
        log_removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=encryption_key,
            retention=retention_days(flow_log_retention_days),
            removal_policy=log_removal_policy,
        )
        flow_log_role = PlatformRole(
            self,
            "FlowLogRole",
            assumed_by=iam.ServicePrincipal("vpc-flow-logs.amazonaws.com"),
            description="Lets VPC Flow Logs write to the platform's flow-log group",
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=az_count,
            nat_gateways=0,
            create_internet_gateway=False,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20)
            ],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
            flow_logs={
                "AllTraffic": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group, flow_log_role),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self.subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        justify_cdk_provider_handler(
            cdk.Stack.of(self),
            "Custom::VpcRestrictDefaultSGCustomResourceProvider",
            vpc_reason=(
                "aws-cdk-lib's handler removes the rules of this VPC's default security group through the EC2 API; "
                "the isolated VPC has no internet route and no EC2 endpoint, so from inside it the call would fail."
            ),
        )

        self.workload_security_group = ec2.SecurityGroup(
            self,
            "WorkloadSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="Notebooks, training and processing jobs, Glue and Lambda: AWS APIs through endpoints only",
        )
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="Interface VPC endpoints: HTTPS from the platform workloads only",
        )
        self.endpoint_security_group.add_ingress_rule(
            self.workload_security_group, ec2.Port.tcp(443), "HTTPS from platform workloads"
        )
        self.workload_security_group.add_egress_rule(
            self.endpoint_security_group, ec2.Port.tcp(443), "HTTPS to the interface endpoints"
        )
        # The subnets have no route but the S3 gateway endpoint's prefix list; its id cannot be known at synth without
        # an AWS lookup, so 443 egress is open and the route table is what confines it to S3.
        self.workload_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to S3 through the gateway endpoint (no other route exists)"
        )
        self.workload_security_group.add_ingress_rule(
            self.workload_security_group, ec2.Port.all_tcp(), "Between nodes of one distributed job"
        )
        self.workload_security_group.add_egress_rule(
            self.workload_security_group, ec2.Port.all_tcp(), "Between nodes of one distributed job"
        )

        self.interface_endpoints: dict[VpcService, ec2.InterfaceVpcEndpoint] = {}
        for service in VpcService:
            if service.is_gateway or service not in needed_by:
                continue
            endpoint = self.vpc.add_interface_endpoint(
                service.construct_id,
                service=service.endpoint_service,
                private_dns_enabled=True,
                open=False,
                security_groups=[self.endpoint_security_group],
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            )
            _record_consumers(endpoint, needed_by[service])
            self.interface_endpoints[service] = endpoint
        s3_gateway = self.vpc.node.find_child("S3")
        assert isinstance(s3_gateway, ec2.GatewayVpcEndpoint)  # created above through gateway_endpoints
        _record_consumers(s3_gateway, needed_by.get(VpcService.S3, ()))


def _record_consumers(endpoint: ec2.GatewayVpcEndpoint | ec2.InterfaceVpcEndpoint, lines: Sequence[str]) -> None:
    """Write who needs ``endpoint`` into its template metadata, for reviewers and the cost report."""
    resource = endpoint.node.default_child
    assert isinstance(resource, cdk.CfnResource)
    resource.add_metadata(NEEDED_BY_METADATA, list(lines))
