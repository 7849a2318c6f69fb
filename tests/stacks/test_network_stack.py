"""The Network stack: isolated subnets only, endpoints for every API, flow logs, locked-down security groups."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from components.isolated_network import INTERFACE_ENDPOINTS

EXPECTED_SERVICES = (
    "sagemaker.api",
    "sagemaker.runtime",
    "notebook",
    "sts",
    "logs",
    "monitoring",
    "ecr.api",
    "ecr.dkr",
    "kms",
    "glue",
    "codeartifact.api",
    "codeartifact.repositories",
)


def of_type(template: Any, resource_type: str) -> dict[str, Any]:
    return {k: v for k, v in template.to_json()["Resources"].items() if v["Type"] == resource_type}


def test_vpc_has_no_route_to_the_internet(stage: Any) -> None:
    template = stage.template("network")
    for forbidden in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EgressOnlyInternetGateway"):
        template.resource_count_is(forbidden, 0)
    for route in of_type(template, "AWS::EC2::Route").values():
        assert "GatewayId" not in route["Properties"] and "NatGatewayId" not in route["Properties"]
    for subnet in of_type(template, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def test_subnet_count_follows_the_configured_az_count(dev: Any, prod: Any) -> None:
    dev.template("network").resource_count_is("AWS::EC2::Subnet", 1)
    prod.template("network").resource_count_is("AWS::EC2::Subnet", 2)
    assert len(dev.platform.network.subnets.subnet_ids) == 1
    assert len(prod.platform.network.subnets.subnet_ids) == 2


@pytest.mark.parametrize("service", EXPECTED_SERVICES)
def test_interface_endpoint_exists_for_each_api_the_platform_calls(stage: Any, service: str) -> None:
    endpoints = of_type(stage.template("network"), "AWS::EC2::VPCEndpoint").values()
    interface = [e["Properties"] for e in endpoints if e["Properties"].get("VpcEndpointType") == "Interface"]
    matching = [e for e in interface if e["ServiceName"]["Fn::Join"][1][-1] == f".{service}"]
    assert len(matching) == 1, f"{service}: {[e['ServiceName'] for e in interface]}"
    assert matching[0]["PrivateDnsEnabled"] is True
    assert len(interface) == len(INTERFACE_ENDPOINTS)


def test_s3_is_reached_through_a_gateway_endpoint(stage: Any) -> None:
    stage.template("network").has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {"VpcEndpointType": "Gateway", "ServiceName": Match.object_like({"Fn::Join": Match.any_value()})},
    )


def test_endpoint_security_group_admits_https_only_from_the_workload_group(stage: Any) -> None:
    template = stage.template("network")
    groups = of_type(template, "AWS::EC2::SecurityGroup")
    endpoint_sg = next(k for k, v in groups.items() if "Interface VPC endpoints" in v["Properties"]["GroupDescription"])
    workload_sg = next(k for k, v in groups.items() if "Notebooks" in v["Properties"]["GroupDescription"])
    assert "SecurityGroupIngress" not in groups[endpoint_sg]["Properties"]  # no CIDR-based rule inline
    ingress = [
        r["Properties"]
        for r in of_type(template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [endpoint_sg, "GroupId"]}
    ]
    assert ingress == [
        {
            "Description": "HTTPS from platform workloads",
            "FromPort": 443,
            "GroupId": {"Fn::GetAtt": [endpoint_sg, "GroupId"]},
            "IpProtocol": "tcp",
            "SourceSecurityGroupId": {"Fn::GetAtt": [workload_sg, "GroupId"]},
            "ToPort": 443,
        }
    ]


def test_workload_group_egress_is_https_and_its_own_nodes_only(stage: Any) -> None:
    groups = of_type(stage.template("network"), "AWS::EC2::SecurityGroup")
    workload = next(v for v in groups.values() if "Notebooks" in v["Properties"]["GroupDescription"])
    inline_egress = workload["Properties"]["SecurityGroupEgress"]
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in inline_egress] == [("tcp", 443, 443)]
    for rule in of_type(stage.template("network"), "AWS::EC2::SecurityGroupEgress").values():
        props = rule["Properties"]
        assert "CidrIp" not in props and "DestinationSecurityGroupId" in props


def test_flow_logs_capture_all_traffic_into_an_encrypted_log_group(stage: Any) -> None:
    template = stage.template("network")
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )
    (group,) = of_type(template, "AWS::Logs::LogGroup").values()
    assert "KmsKeyId" in group["Properties"]
    assert "Fn::ImportValue" in str(group["Properties"]["KmsKeyId"])


def test_flow_log_retention_follows_the_stage(dev: Any, prod: Any) -> None:
    dev.template("network").has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 14})
    prod.template("network").has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 365})


def test_default_security_group_is_stripped_of_its_rules(stage: Any) -> None:
    stage.template("network").resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_roles_carry_no_inline_policies(stage: Any) -> None:
    for template in stage.templates.values():
        template.resource_count_is("AWS::IAM::Policy", 0)
