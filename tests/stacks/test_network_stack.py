"""The Network stack: isolated subnets only, endpoints for every API, flow logs, locked-down security groups."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Match

from components.isolated_network import NEEDED_BY_METADATA
from components.vpc_services import VpcService, needed_by
from stacks.platform import vpc_consumers

# The interface endpoints of dev with a model (the sessions' stages serve one), reviewed for cost (each is $7.30 a
# month per AZ). A change to a consumer's declaration that adds or drops one must change this line too, on purpose.
# sagemaker.runtime is there for the notebooks' InvokeEndpoint; without a model dev has no runtime endpoint.
DEV_INTERFACE_SERVICES = {
    "sagemaker.runtime",
    "sagemaker.api",
    "logs",
    "kms",
    "glue",
    "codeartifact.api",
    "codeartifact.repositories",
}


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


def interface_endpoints(template: Any) -> dict[str, dict[str, Any]]:
    """Service short name (``sagemaker.api``) to the interface endpoint resource."""
    endpoints = of_type(template, "AWS::EC2::VPCEndpoint").values()
    found: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        if endpoint["Properties"].get("VpcEndpointType") == "Interface":
            service = endpoint["Properties"]["ServiceName"]["Fn::Join"][1][-1].lstrip(".")
            assert service not in found, f"two endpoints for {service}"
            found[service] = endpoint
    return found


def declared_services(stage: Any) -> dict[VpcService, tuple[str, ...]]:
    return needed_by(vpc_consumers(stage.config))


def test_interface_endpoints_are_exactly_the_services_consumers_declare(stage: Any) -> None:
    expected = {service.value for service in declared_services(stage) if not service.is_gateway}
    endpoints = interface_endpoints(stage.template("network"))
    assert set(endpoints) == expected
    for service, endpoint in endpoints.items():
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True, service
        # One network interface per AZ: the endpoint serves every isolated subnet.
        assert len(endpoint["Properties"]["SubnetIds"]) == len(stage.platform.network.subnets.subnet_ids)


def test_dev_interface_endpoints_are_the_reviewed_set(dev: Any) -> None:
    # No CloudWatch metrics endpoint: dev turns Glue job metrics off (data_preparation.job_metrics), its only caller.
    assert set(interface_endpoints(dev.template("network"))) == DEV_INTERFACE_SERVICES


def test_no_endpoint_for_services_no_workload_calls(stage: Any) -> None:
    # Network isolation: SageMaker pulls the job images from ECR itself; CodeArtifact clients never call STS; the
    # notebook endpoint serves UI clients inside the VPC, and there are none.
    endpoints = interface_endpoints(stage.template("network"))
    assert not {"sts", "ecr.api", "ecr.dkr", "notebook"} & set(endpoints)
    # No consumer calls the runtime API where the stage has no inference endpoint.
    assert ("sagemaker.runtime" in endpoints) is stage.config.serving.has_model


def test_each_endpoint_records_the_consumers_that_need_it(stage: Any) -> None:
    declared = declared_services(stage)
    for service, endpoint in interface_endpoints(stage.template("network")).items():
        assert endpoint["Metadata"][NEEDED_BY_METADATA] == list(declared[VpcService(service)])
        assert all(": " in line for line in endpoint["Metadata"][NEEDED_BY_METADATA])


def vpc_placed_resources(stage: Any) -> dict[tuple[str, str], str]:
    """(stack part, logical id) to a description, for every resource that puts a workload in the VPC."""
    placed = {}
    for part, template in stage.templates.items():
        for logical_id, resource in template.to_json()["Resources"].items():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::Lambda::Function" and "VpcConfig" in props:
                placed[part, logical_id] = "Lambda function"
            elif kind == "AWS::SageMaker::NotebookInstance" and "SubnetId" in props:
                placed[part, logical_id] = "notebook instance"
            elif kind == "AWS::Glue::Job" and "Connections" in props:
                placed[part, logical_id] = "Glue job"
            elif kind == "AWS::SageMaker::Pipeline" and "VpcConfig" in json.dumps(props["PipelineDefinition"]):
                placed[part, logical_id] = "SageMaker jobs of a pipeline"
            elif kind == "AWS::SageMaker::Model" and "VpcConfig" in props:
                placed[part, logical_id] = "SageMaker model"
    return placed


def owners(stage: Any) -> dict[tuple[str, str], str]:
    """(stack part, logical id) of every resource to the class name of its nearest ancestor declaring VPC_SERVICES."""
    found = {}
    for part, stack in zip(stage.templates, stage.platform.stacks, strict=True):
        for construct in stack.node.find_all():
            if not isinstance(construct, cdk.CfnResource):
                continue
            scope = construct.node.scope
            while scope is not None and not hasattr(type(scope), "VPC_SERVICES"):
                scope = scope.node.scope
            if scope is not None:
                found[part, stack.resolve(construct.logical_id)] = type(scope).__name__
    return found


def test_every_vpc_workload_is_a_declared_consumer_whose_endpoints_exist(stage: Any) -> None:
    config = stage.config
    consumers = {consumer.name: consumer for consumer in vpc_consumers(config)}
    endpoints = set(interface_endpoints(stage.template("network")))
    owner_of = owners(stage)
    placed = vpc_placed_resources(stage)
    assert len(placed) >= 4  # the Glue job, both pipelines, the resolver Lambda (and the notebooks, the cleanup)
    for (part, logical_id), what in placed.items():
        owner = owner_of.get((part, logical_id))
        assert owner in consumers, f"{what} {part}/{logical_id} is in the VPC but no declared consumer owns it"
        missing = {s.value for s in consumers[owner].services if not s.is_gateway} - endpoints
        assert not missing, f"{owner} calls {sorted(missing)} from the VPC, which has no endpoint for it"
    # And no declaration for a component the stage does not build in the VPC.
    assert {owner_of[key] for key in placed} == set(consumers)


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
    (flow_log,) = of_type(template, "AWS::EC2::FlowLog").values()
    # The network also holds the log group of aws-cdk-lib's restrict-default-SG function: pick the flow logs' one.
    group = of_type(template, "AWS::Logs::LogGroup")[flow_log["Properties"]["LogGroupName"]["Ref"]]
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


# What an action in a VPC workload's role means it calls from the VPC (an action prefix, or one action).
SERVICE_OF_ACTION = {
    "s3": VpcService.S3,
    "sagemaker": VpcService.SAGEMAKER_API,
    "sagemaker:InvokeEndpoint": VpcService.SAGEMAKER_RUNTIME,
    "glue": VpcService.GLUE,
    "logs": VpcService.CLOUDWATCH_LOGS,
    "cloudwatch": VpcService.CLOUDWATCH_MONITORING,
    "kms": VpcService.KMS,
    "sts": VpcService.STS,
    "codeartifact": VpcService.CODEARTIFACT_API,
    "codeartifact:ReadFromRepository": VpcService.CODEARTIFACT_REPOSITORIES,
    "ecr": VpcService.ECR_API,
}
# Permissions that AWS uses on the workload's behalf, outside the VPC: no endpoint needed for them.
NOT_CALLED_FROM_THE_VPC = {
    "ec2": "Lambda and Glue create the workload's network interfaces with its role",
    "iam:PassRole": "checked by SageMaker when the workload creates a job",
    "sts:GetServiceBearerToken": "checked by CodeArtifact when the workload calls GetAuthorizationToken",
    "kms": "S3 uses the key server-side for SSE-KMS objects (a consumer that calls KMS itself declares it)",
}
LAMBDA_SERVICE_WRITES = {
    "logs": "Lambda ships a function's logs itself",
    "xray": "Lambda's X-Ray daemon sends an actively traced function's segments itself",
}


def role_actions(template: dict[str, Any], role: dict[str, Any]) -> set[str]:
    """Every action of the managed policies attached to the role that ``role`` (a ``Fn::GetAtt``) names."""
    role_id = role["Fn::GetAtt"][0]
    actions: set[str] = set()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                action = statement["Action"]
                actions.update([action] if isinstance(action, str) else action)
    return actions


def test_what_each_vpc_workload_may_call_is_declared(stage: Any) -> None:
    config = stage.config
    consumers = {consumer.name: consumer for consumer in vpc_consumers(config)}
    owner_of = owners(stage)
    has_endpoint = config.serving.has_model
    checked = 0
    for (part, logical_id), what in vpc_placed_resources(stage).items():
        template = stage.templates[part].to_json()
        props = template["Resources"][logical_id]["Properties"]
        if what == "SageMaker jobs of a pipeline":  # network isolation: the jobs call nothing (test_training_pipeline)
            continue
        if what == "SageMaker model":  # network isolation: the model's container calls nothing
            assert props["EnableNetworkIsolation"] is True, logical_id
            continue
        exempt = {**NOT_CALLED_FROM_THE_VPC, **(LAMBDA_SERVICE_WRITES if what == "Lambda function" else {})}
        if not has_endpoint:
            exempt["sagemaker:InvokeEndpoint"] = "no endpoint exists to call in this stage"
        owner = consumers[owner_of[part, logical_id]]
        for action in role_actions(template, props.get("Role") or props["RoleArn"]):
            prefix = action.split(":")[0]
            if action in exempt or (prefix in exempt and action not in SERVICE_OF_ACTION):
                continue
            service = SERVICE_OF_ACTION.get(action) or SERVICE_OF_ACTION.get(prefix)
            assert service is not None, f"{owner.name} may call {action}: map its service in SERVICE_OF_ACTION"
            assert service in owner.services, f"{owner.name} may call {action} but does not declare {service.name}"
        checked += 1
    assert checked >= 3  # the Glue job, the resolver Lambda, and the notebooks or the cleanup Lambda
