"""What ``cdk destroy --all -c stage=dev`` leaves behind: nothing the stacks' users pay for.

Read from the synthesized dev templates: every resource is deleted with its stack, every bucket is emptied first, and
every log group that the platform's workloads make a service write at run time is either a resource of a stack (and
deleted with it) or one of SageMaker's account-wide groups in which the dev cleanup deletes the stage's own streams
(``components/run_time_logs.py`` lists them). The writers are found in the templates themselves: Lambda functions,
Glue jobs, notebook instances, the pipelines' job steps, the roles that may start SageMaker jobs, endpoints and flow
logs. The assertion message lists what would be left.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from components.run_time_logs import JOB_LOG_GROUPS, NOTEBOOK_INSTANCES, RUN_TIME_LOG_GROUPS, SHARED_LOG_GROUPS
from config import load_config
from config.stages import STAGES

KEPT_POLICIES = ("Retain", "RetainExceptOnCreate", "Snapshot")
JOB_STEP_TYPES = {group.pipeline_step_type: group for group in JOB_LOG_GROUPS.values()}
CREATE_JOB_ACTION = re.compile(r"^sagemaker:Create(Training|Processing|Transform)Job$")

Templates = dict[str, dict[str, Any]]


def text(value: Any) -> str:
    """A template value as text, each token written as ``<Ref:Id>`` or ``<GetAtt:Id.Attr>``."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(text(part) for part in parts)
    if "Ref" in value:
        return f"<Ref:{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<GetAtt:{'.'.join(value['Fn::GetAtt'])}>"
    if "Fn::ImportValue" in value:
        return f"<Import:{text(value['Fn::ImportValue'])}>"
    return f"<{next(iter(value))}>"


def of_type(templates: Templates, resource_type: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == resource_type:
                yield stack, logical_id, resource


def deleted_log_groups(templates: Templates) -> dict[str, dict[str, str]]:
    """Stack to (logical id to name as text) of the log groups deleted with their stack."""
    found: dict[str, dict[str, str]] = {stack: {} for stack in templates}
    for stack, logical_id, resource in of_type(templates, "AWS::Logs::LogGroup"):
        if resource.get("DeletionPolicy") not in KEPT_POLICIES:
            found[stack][logical_id] = text(
                resource.get("Properties", {}).get("LogGroupName", f"<generated:{logical_id}>")
            )
    return found


def stream_cleanup(templates: Templates) -> tuple[str | None, dict[str, str | None], set[str]]:
    """The dev cleanup's stream prefix, its shared groups (name to step-metadata key) and the pipelines it covers."""
    cleanups = [resource["Properties"] for _, _, resource in of_type(templates, "Custom::PipelineCleanup")]
    if not cleanups:
        return None, {}, set()
    (properties,) = cleanups
    streams = properties.get("LogStreams", {})
    groups = {group["LogGroupName"]: group.get("PipelineStepJob") for group in streams.get("LogGroups", [])}
    return streams.get("StreamNamePrefix"), groups, set(properties["PipelineNames"])


def pipeline_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        arguments = step.get("Arguments", {})
        for branch in ("IfSteps", "ElseSteps"):
            yield from pipeline_steps(arguments.get(branch, []))


def statements(templates: Templates) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for policy_type in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
        for stack, logical_id, resource in of_type(templates, policy_type):
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                yield stack, logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def account_wide_free_settings(template: dict[str, Any]) -> set[str]:
    """API Gateway's account-wide CloudWatch setting and the role it names: free, shared by every stage and API of the
    account and region, so a stage retains them (components/inference_api.py): deleting dev must not break prod's
    API logging. Nothing in them is billed."""
    found = set()
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::ApiGateway::Account":
            found.add(logical_id)
            role = resource["Properties"]["CloudWatchRoleArn"]
            found.add(role["Fn::GetAtt"][0])
    return found


def leftovers(templates: Templates) -> list[str]:
    """What deleting every stack of ``templates`` would leave that is billed, one line each (empty: nothing)."""
    left: list[str] = []
    for stack, template in templates.items():
        free = account_wide_free_settings(template)
        for logical_id, resource in template["Resources"].items():
            if resource.get("DeletionPolicy") in KEPT_POLICIES and logical_id not in free:
                left.append(
                    f"{stack}: {logical_id} ({resource['Type']}) has DeletionPolicy {resource['DeletionPolicy']}"
                )

    emptied = {
        text(resource["Properties"]["BucketName"])
        for _, _, resource in of_type(templates, "Custom::S3AutoDeleteObjects")
    }
    for stack, logical_id, _ in of_type(templates, "AWS::S3::Bucket"):
        if f"<Ref:{logical_id}>" not in emptied:
            left.append(f"{stack}: bucket {logical_id} is not emptied before deletion (no auto-delete), so it stays")

    groups = deleted_log_groups(templates)
    all_group_names = {name for names in groups.values() for name in names.values()}
    for stack, logical_id, resource in of_type(templates, "AWS::Lambda::Function"):
        target = resource["Properties"].get("LoggingConfig", {}).get("LogGroup")
        if target is None or text(target).removeprefix("<Ref:").removesuffix(">") not in groups[stack]:
            left.append(f"{stack}: function {logical_id} logs to /aws/lambda/<its name>, created by Lambda at run time")

    for stack, logical_id, resource in of_type(templates, "AWS::Glue::Job"):
        properties = resource["Properties"]
        prefix = properties.get("DefaultArguments", {}).get("--custom-logGroup-prefix")
        configuration_id = properties.get("SecurityConfiguration", {}).get("Ref")
        configuration = templates[stack]["Resources"].get(configuration_id, {}).get("Properties", {}).get("Name")
        role_id = properties["Role"]["Fn::GetAtt"][0] if "Fn::GetAtt" in properties["Role"] else None
        for kind in ("error", "output"):
            expected = f"{prefix}/{configuration}-role/<Ref:{role_id}>/{kind}"
            if prefix is None or configuration is None or expected not in groups[stack].values():
                left.append(f"{stack}: Glue job {logical_id} writes its {kind} logs to a group no stack holds")

    prefix, shared, covered_pipelines = stream_cleanup(templates)
    for stack, _, resource in of_type(templates, "AWS::SageMaker::NotebookInstance"):
        name = text(resource["Properties"].get("NotebookInstanceName", "<generated>"))
        if NOTEBOOK_INSTANCES.name not in shared or prefix is None or not name.startswith(prefix):
            left.append(f"{stack}: notebook {name} leaves its streams in {NOTEBOOK_INSTANCES.name}")

    for stack, _, resource in of_type(templates, "AWS::SageMaker::Pipeline"):
        name = resource["Properties"]["PipelineName"]
        definition = json.loads(text(resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]))
        for step in pipeline_steps(definition["Steps"]):
            group = JOB_STEP_TYPES.get(step["Type"])
            if group is None:
                continue
            if name not in covered_pipelines or shared.get(group.name, "<absent>") != group.step_metadata_key:
                left.append(f"{stack}: step {step['Name']} of pipeline {name} leaves its job's streams in {group.name}")

    for stack, logical_id, statement in statements(templates):
        actions = [a for a in as_list(statement["Action"]) if CREATE_JOB_ACTION.match(a)]
        for action in actions:
            kind = CREATE_JOB_ACTION.match(action).group(1).lower()  # type: ignore[union-attr]
            group = JOB_LOG_GROUPS[kind]
            for arn in map(text, as_list(statement["Resource"])):
                if f":{kind}-job/" not in arn:
                    continue  # the subnets and security group of a CreateNetworkInterface-style statement
                job_names = arn.split(f":{kind}-job/", 1)[1]
                # Pipelines' jobs are found through the executions' steps (checked above); others by the prefix.
                by_pipeline = job_names == "pipelines-*" and bool(covered_pipelines)
                by_prefix = prefix is not None and job_names.startswith(prefix)
                if group.name not in shared or not (by_pipeline or by_prefix):
                    left.append(f"{stack}: {logical_id} may start {kind} jobs {job_names} whose streams stay")

    for stack, logical_id, resource in of_type(templates, "AWS::SageMaker::Endpoint"):
        # SageMaker names the group after the endpoint: written as the name itself or as a reference to it.
        names = (text(resource["Properties"].get("EndpointName", "<generated>")),
                 f"<GetAtt:{logical_id}.EndpointName>", f"<Ref:{logical_id}>")  # fmt: skip
        expected = f"/aws/sagemaker/Endpoints/{names[0]}"
        if not any(f"/aws/sagemaker/Endpoints/{name}" in all_group_names for name in names):
            left.append(f"{stack}: endpoint {logical_id} logs to {expected}, created by SageMaker at run time")

    for stack, logical_id, resource in of_type(templates, "AWS::EC2::FlowLog"):
        properties = resource["Properties"]
        if properties.get("LogDestinationType", "cloud-watch-logs") != "cloud-watch-logs":
            continue
        target = text(properties.get("LogGroupName", properties.get("LogDestination", "")))
        if not any(target in (f"<Ref:{lid}>", f"<GetAtt:{lid}.Arn>") for lid in groups[stack]):
            left.append(f"{stack}: flow log {logical_id} writes to a group no stack holds")
    return left


def dev_templates(dev: Any) -> Templates:
    return {stack.stack_name: stack_template for stack, stack_template in _stack_templates(dev)}


def _stack_templates(synthesized: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    for stack in synthesized.platform.stacks:
        yield stack, synthesized.template(stack.stack_name.rsplit("-", 1)[1]).to_json()


# --- the real stages -------------------------------------------------------------------------------------------------


def test_destroying_dev_leaves_nothing_its_users_pay_for(dev: Any) -> None:
    left = leftovers(dev_templates(dev))
    assert left == [], "cdk destroy of dev would leave:\n" + "\n".join(left)


def test_dev_writers_are_all_found(dev: Any) -> None:
    # The check above is only as good as the writers it finds: each kind is present in dev.
    templates = dev_templates(dev)
    for resource_type in ("AWS::Lambda::Function", "AWS::Glue::Job", "AWS::SageMaker::NotebookInstance",
                          "AWS::SageMaker::Pipeline", "AWS::EC2::FlowLog", "AWS::S3::Bucket"):  # fmt: skip
        assert list(of_type(templates, resource_type)), resource_type
    job_starters = {
        CREATE_JOB_ACTION.match(action).group(1)  # type: ignore[union-attr]
        for _, _, statement in statements(templates)
        for action in as_list(statement["Action"])
        if CREATE_JOB_ACTION.match(action)
    }
    assert job_starters == {"Training", "Processing", "Transform"}


def test_the_cleanup_covers_exactly_the_shared_groups_of_the_registry(dev: Any) -> None:
    prefix, shared, _ = stream_cleanup(dev_templates(dev))
    assert prefix == f"{load_config('dev').prefix}-"
    assert shared == {group.name: group.step_metadata_key for group in SHARED_LOG_GROUPS}
    # Every other run-time group belongs to a stack: none of them is shared.
    assert {group.name for group in RUN_TIME_LOG_GROUPS if not group.shared}.isdisjoint(shared)


# What prod keeps on purpose when its stacks are deleted; docs/runbook.md ("Decommission prod") deletes each by hand.
PROD_KEPT = {
    ("data", "AWS::KMS::Key"): 1,
    ("data", "AWS::S3::Bucket"): 4,
    ("data", "AWS::Glue::Database"): 1,
    ("network", "AWS::Logs::LogGroup"): 2,  # flow logs, the restrict-default-SG provider's log group
    ("pipeline", "AWS::Logs::LogGroup"): 3,  # the Glue job's error and output groups, the resolver function's
    ("pipeline", "AWS::SageMaker::ModelPackageGroup"): 1,
    ("workbench", "AWS::CodeArtifact::Domain"): 1,
    ("workbench", "AWS::CodeArtifact::Repository"): 1,
    ("workbench", "AWS::SageMaker::NotebookInstance"): 2,
    ("workbench", "AWS::SageMaker::NotebookInstanceLifecycleConfig"): 2,
    # The endpoint's, the function's, the API's access and execution and the WAF log groups, and API Gateway's
    # account-wide CloudWatch setting with its role (shared by every API of the account and region).
    ("serving", "AWS::Logs::LogGroup"): 5,
    ("serving", "AWS::ApiGateway::Account"): 1,
    ("serving", "AWS::IAM::Role"): 1,
}


def test_prod_keeps_exactly_what_the_runbook_deletes_by_hand(prod: Any) -> None:
    kept: dict[tuple[str, str], int] = {}
    for stack, template in _stack_templates(prod):
        for resource in template["Resources"].values():
            if resource.get("DeletionPolicy") in KEPT_POLICIES:
                key = (stack.stack_name.rsplit("-", 1)[1], resource["Type"])
                kept[key] = kept.get(key, 0) + 1
    assert kept == PROD_KEPT


def test_no_stage_prefix_starts_another_stages_names() -> None:
    # The cleanup deletes streams starting with "<prefix>-"; another stage's names must never start so.
    prefixes = {name: f"{factory().prefix}-" for name, factory in STAGES.items()}
    for name, prefix in prefixes.items():
        for other, other_prefix in prefixes.items():
            assert other == name or not other_prefix.startswith(prefix), (name, other)


# --- the check itself, on small templates ----------------------------------------------------------------------------


def test_the_check_names_what_would_be_left() -> None:
    templates: Templates = {
        "nlp-dev-x": {
            "Resources": {
                "Kept": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
                "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
                "Nb": {"Type": "AWS::SageMaker::NotebookInstance", "Properties": {"NotebookInstanceName": "other-a"}},
            }
        }
    }
    left = leftovers(templates)
    assert left == [
        "nlp-dev-x: Kept (AWS::S3::Bucket) has DeletionPolicy Retain",
        "nlp-dev-x: bucket Kept is not emptied before deletion (no auto-delete), so it stays",
        "nlp-dev-x: function Fn logs to /aws/lambda/<its name>, created by Lambda at run time",
        "nlp-dev-x: notebook other-a leaves its streams in /aws/sagemaker/NotebookInstances",
    ]


# --- give_functions_log_groups, on a small stack ---------------------------------------------------------------------


def test_a_function_without_a_log_group_gets_an_encrypted_one_and_one_with_a_group_keeps_it() -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_logs as logs
    from aws_cdk.assertions import Template

    from components.run_time_logs import give_functions_log_groups

    stack = cdk.Stack(cdk.App(), "Small")
    key = kms.Key(stack, "Key")
    code = lambda_.Code.from_inline("def handler(event, context):\n    return None\n")
    runtime = lambda_.Runtime.PYTHON_3_14
    lambda_.Function(stack, "Bare", runtime=runtime, handler="index.handler", code=code)
    own = logs.LogGroup(stack, "Own", removal_policy=cdk.RemovalPolicy.DESTROY)
    lambda_.Function(stack, "Logged", runtime=runtime, handler="index.handler", code=code, log_group=own)
    created = give_functions_log_groups(stack, key=key, log_retention_days=14, removal_policy=cdk.RemovalPolicy.DESTROY)
    assert len(created) == 1

    resources = Template.from_stack(stack).to_json()["Resources"]
    functions = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    targets = {
        name: function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        for lid, function in functions.items()
        for name in ("Bare", "Logged")
        if lid.startswith(name)
    }
    assert targets["Logged"].startswith("Own")
    new_group = resources[targets["Bare"]]
    assert targets["Bare"].startswith("BareLogs")
    assert new_group["DeletionPolicy"] == "Delete"
    assert new_group["Properties"]["RetentionInDays"] == 14
    assert new_group["Properties"]["KmsKeyId"] == {
        "Fn::GetAtt": [next(k for k in resources if k.startswith("Key")), "Arn"]
    }
