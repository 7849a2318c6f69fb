"""A VPC with no route to the internet, reached by the platform's workloads through VPC endpoints."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from components.compliance import justify_cdk_provider_handler
from components.log_retention import retention_days
from components.platform_role import PlatformRole

# Every AWS API that notebooks, training and processing jobs, Glue and the inference Lambda call from inside the VPC.
# S3 goes through the (free) gateway endpoint.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "SageMakerNotebook": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_NOTEBOOK,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "CloudWatchLogs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "CloudWatchMonitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
    "CodeArtifactApi": ec2.InterfaceVpcEndpointAwsService.CODEARTIFACT_API,
    "CodeArtifactRepositories": ec2.InterfaceVpcEndpointAwsService.CODEARTIFACT_REPOSITORIES,
}


class IsolatedNetwork(Construct):
    """VPC with isolated subnets only, endpoints for every API the platform calls, flow logs, locked-down SGs.

    - no internet gateway and no NAT: nothing inside can reach the internet, nothing outside can reach in;
    - an S3 gateway endpoint and the interface endpoints in ``INTERFACE_ENDPOINTS`` with private DNS;
    - ``workload_security_group``: for notebooks, jobs and functions. It may reach the endpoints and S3 on 443 and
      itself on any port (multi-node training and Spark talk between their own nodes), nothing else;
    - ``endpoint_security_group``: admits 443 only from the workload group (a rule between groups, not the VPC CIDR);
    - the VPC's default security group loses all its rules;
    - flow logs of all traffic into a log group encrypted with ``encryption_key``.

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

        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {
            name: self.vpc.add_interface_endpoint(
                name,
                service=service,
                private_dns_enabled=True,
                open=False,
                security_groups=[self.endpoint_security_group],
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            )
            for name, service in INTERFACE_ENDPOINTS.items()
        }
