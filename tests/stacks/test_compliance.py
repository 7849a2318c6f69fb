"""The compliance gate: four cdk-nag packs on every synth, acknowledgments one finding at a time, cfn-lint clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from components.compliance import acknowledge, compliance_packs, justify_for_scanners, register_compliance_packs

PACKS = ("AwsSolutions", "HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321")


def test_every_pack_reports_no_violation_on_the_stage(stage: Any) -> None:
    for pack in compliance_packs(stage.app):
        violations = pack.validate_scope(stage.app).violations  # type: ignore[attr-defined]
        assert violations == [], [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in violations]


def test_an_unacknowledged_finding_fails_synth() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Naive")
    s3.Bucket(stack, "Plain")  # no logging, no KMS, no TLS policy
    register_compliance_packs(app)
    with pytest.raises(Exception, match=r"(?i)validation"):
        Template.from_stack(stack)


def test_acknowledgments_are_written_into_the_template_with_their_reason(dev: Any) -> None:
    found = []
    for template in dev.templates.values():
        for logical_id, resource in template.to_json()["Resources"].items():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                if rule["id"].startswith("CloudFormation-Validate::"):
                    continue  # aws-cdk-lib's own acknowledgment of its built-in template check, not ours
                found.append((logical_id, rule["id"], rule["reason"]))
    assert found, "expected the audited acknowledgments in the template metadata"
    for logical_id, rule_id, reason in found:
        assert rule_id.split("-", 1)[0] in PACKS, (logical_id, rule_id)
        assert len(reason) >= 30, (logical_id, rule_id)


def our_acknowledgments(template: Template) -> set[tuple[str, str]]:
    return {
        (logical_id, rule["id"])
        for logical_id, resource in template.to_json()["Resources"].items()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        if not rule["id"].startswith("CloudFormation-Validate::")
    }


def test_acknowledged_findings_are_exactly_the_reviewed_ones(stage: Any) -> None:
    # A new acknowledgment must be added here too, so it shows up for review in the pull request.
    replication = {"HIPAA.Security-S3BucketReplicationEnabled", "NIST.800.53.R5-S3BucketReplicationEnabled",
                   "PCI.DSS.321-S3BucketReplicationEnabled"}  # fmt: skip
    log_bucket_sse_s3 = {"HIPAA.Security-S3DefaultEncryptionKMS", "NIST.800.53.R5-S3DefaultEncryptionKMS",
                         "PCI.DSS.321-S3DefaultEncryptionKMS"}  # fmt: skip
    expected = {
        *((bucket, rule) for bucket in ("RawBucket", "CuratedBucket", "ArtifactsBucket") for rule in replication),
        *(("AccessLogsBucket", rule) for rule in replication | log_bucket_sse_s3),
    }
    assert our_acknowledgments(stage.template("data")) == expected
    assert our_acknowledgments(stage.template("network")) == set()

    # Workbench: the notebook role's wildcards, each one acknowledged in components/notebook_workbench.py (the
    # evaluation reports in TrainingPipeline.grant_read_evaluations).
    config = stage.config
    prefix = config.prefix
    account_arn = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"
    exports = (("RawBucket", "B017A9BA"), ("CuratedBucket", "285BEC9B"), ("ArtifactsBucket", "D46760D3"))
    bucket_arns = {name: f"{prefix}-data:ExportsOutputFnGetAtt{name}Arn{suffix}" for name, suffix in exports}
    notebook_log_group = account_arn.format(service="logs", resource="log-group:/aws/sagemaker/NotebookInstances")
    workbench_findings = {
        f"{bucket_arns['RawBucket']}/notebooks/*", f"{bucket_arns['RawBucket']}/datasets/*",
        f"{bucket_arns['CuratedBucket']}/notebooks/*", f"{bucket_arns['CuratedBucket']}/datasets/*",
        f"{bucket_arns['ArtifactsBucket']}/notebooks/*", f"{bucket_arns['ArtifactsBucket']}/evaluation/*",
        "*",
        f"{notebook_log_group}:*",
        *(account_arn.format(service="logs", resource=f"log-group:/aws/sagemaker/{kind}Jobs{suffix}")
          for kind in ("Training", "Processing") for suffix in (":*", f":log-stream:{prefix}-*")),
        *(f"{notebook_log_group}:log-stream:{config.notebook_name(user)}/*" for user in config.workbench.users),
        *(account_arn.format(service="sagemaker", resource=f"pipeline/{name}/execution/*")
          for name in (config.training_pipeline_name, config.batch_inference_pipeline_name)),
        account_arn.format(service="sagemaker", resource=f"model-package/{config.model_package_group_name}/*"),
        account_arn.format(service="sagemaker", resource=f"training-job/{prefix}-*"),
        account_arn.format(service="sagemaker", resource=f"processing-job/{prefix}-*"),
        f"arn:<AWS::Partition>:iam::<AWS::AccountId>:role/{prefix}-sagemaker-*",
    }  # fmt: skip
    grant_actions = ("kms:GenerateDataKey*", "kms:ReEncrypt*")
    assert our_acknowledgments(stage.template("workbench")) == {
        *(("NotebooksRolePermissions282D0675", f"AwsSolutions-IAM5[Resource::{f}]") for f in workbench_findings),
        *(("NotebooksRolePermissions282D0675", f"AwsSolutions-IAM5[Action::{a}]") for a in grant_actions),
    }

    # Serving (components/inference_endpoint.py): the endpoint role's wildcards; on instance endpoints also the
    # network interfaces, the data capture prefix and the volume key that local NVMe storage refuses.
    # (components/inference_api.py): the function role's "*" (X-Ray and network interfaces have no resource scope),
    # API Gateway's managed logging role, IAM auth instead of Cognito, no DLQ for a synchronous function, no reserved
    # concurrency by default, no response cache and no client certificate (a Lambda proxy over HTTPS), and in stages
    # without WAF the three WAF findings.
    role = "EndpointRolePermissions62B18C28"
    serving_findings = {"*", f"{bucket_arns['ArtifactsBucket']}/models/*"}
    serving_actions = {"s3:GetObject*", "s3:GetBucket*", "s3:List*"}
    serving_other: set[tuple[str, str]] = set()
    if not config.serving.is_serverless:
        serving_findings |= {
            account_arn.format(service="ec2", resource="network-interface/*"),
            f"{bucket_arns['CuratedBucket']}/data-capture/{config.endpoint_name}/*",
        }
        serving_actions |= {"s3:Abort*", "kms:GenerateDataKey*", "kms:ReEncrypt*"}
        serving_other |= {
            ("EndpointConfig24AD0A28", f"{rule}-SageMakerEndpointConfigurationKMSKeyConfigured")
            for rule in ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321")
        }
    api_stage = f"ApiDeploymentStage{config.stage}" + {"dev": "0C9DF900", "prod": "95EFE650"}[config.stage]
    serving_other |= {
        ("ApiRolePermissions97EFE995", "AwsSolutions-IAM5[Resource::*]"),
        ("ApiCloudWatchRole73EC6FC4", "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
         "AmazonAPIGatewayPushToCloudWatchLogs]"),
        ("Apiv1classifyPOSTA2FDB378", "AwsSolutions-COG4"),
        *(("ApiFunction6BF808ED", f"{pack}-{rule}") for pack in ("HIPAA.Security", "NIST.800.53.R5")
          for rule in ("LambdaDLQ", "LambdaConcurrency")),
        *((api_stage, f"{pack}-{rule}") for pack in ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321")
          for rule in ("APIGWCacheEnabledAndEncrypted", "APIGWSSLEnabled")),
    }  # fmt: skip
    if not config.serving.api.waf_enabled:
        serving_other |= {(api_stage, rule) for rule in ("AwsSolutions-APIG3", "NIST.800.53.R5-APIGWAssociatedWithWAF",
                                                         "PCI.DSS.321-APIGWAssociatedWithWAF")}  # fmt: skip
    assert our_acknowledgments(stage.template("serving")) == {
        *((role, f"AwsSolutions-IAM5[Resource::{f}]") for f in serving_findings),
        *((role, f"AwsSolutions-IAM5[Action::{a}]") for a in serving_actions),
        *serving_other,
    }


# --- justifications for other IaC scanners (Checkov, cfn_nag), read from the resources' metadata ---------------------

SCANNER_LISTS = {"checkov": ("skip", "comment"), "cfn_nag": ("rules_to_suppress", "reason")}
CDK_PROVIDER_HANDLER_CHECKS = {("checkov", "CKV_AWS_115"), ("checkov", "CKV_AWS_116"), ("checkov", "CKV_AWS_117"),
                               ("cfn_nag", "W58"), ("cfn_nag", "W89"), ("cfn_nag", "W92")}  # fmt: skip


# The training pipeline's Lambda step runs in the VPC; it has no DLQ or reserved concurrency (reasons in the metadata).
RESOLVER_FUNCTION = "TrainingPipelineResolveInputsFunction094282E2"
RESOLVER_FUNCTION_CHECKS = {("checkov", "CKV_AWS_115"), ("checkov", "CKV_AWS_116"), ("cfn_nag", "W92")}
# Dev only: the custom resource that stops executions and deletes model packages on stack deletion, also in the VPC.
CLEANUP_FUNCTION = "PipelineCleanupFunctionAA41629E"
CLEANUP_FUNCTION_CHECKS = RESOLVER_FUNCTION_CHECKS
CLEANUP_POLICY = "PipelineCleanupRolePermissions35605BF4"
# The classify Lambda behind the API: in the VPC, synchronous (no DLQ), no reserved concurrency unless configured.
API_FUNCTION = "ApiFunction6BF808ED"
API_FUNCTION_CHECKS = RESOLVER_FUNCTION_CHECKS


def scanner_justifications(template: Template) -> dict[tuple[str, str, str], str]:
    """(logical id, scanner, check id) to the reason, for every justification in ``template``."""
    found = {}
    for logical_id, resource in template.to_json()["Resources"].items():
        for scanner, (list_key, reason_key) in SCANNER_LISTS.items():
            for entry in resource.get("Metadata", {}).get(scanner, {}).get(list_key, []):
                assert set(entry) == {"id", reason_key}, (logical_id, scanner, entry)
                found[(logical_id, scanner, entry["id"])] = entry[reason_key]
    return found


def test_scanner_justifications_are_exactly_the_reviewed_ones(stage: Any) -> None:
    # A new justification must be added here too, so it shows up for review in the pull request.
    dev = stage.app.node.try_get_context("stage") == "dev"
    auto_delete = "CustomS3AutoDeleteObjectsCustomResourceProviderHandler9D90184F"  # dev only: prod retains buckets
    expected = {
        "data": {
            ("AccessLogsBucket", "checkov", "CKV_AWS_18"), ("AccessLogsBucket", "cfn_nag", "W35"),
            *(((auto_delete, *check) for check in CDK_PROVIDER_HANDLER_CHECKS) if dev else ()),
        },
        "network": {
            ("CustomVpcRestrictDefaultSGCustomResourceProviderHandlerDC833E5E", *check)
            for check in CDK_PROVIDER_HANDLER_CHECKS
        },
        "pipeline": {
            ("DataPreparationRolePermissionsA3F74332", "checkov", "CKV_AWS_111"),
            ("DataPreparationRolePermissionsA3F74332", "cfn_nag", "W13"),
            ("TrainingPipelineResolveInputsRolePermissions51CBCE80", "checkov", "CKV_AWS_111"),
            ("TrainingPipelineResolveInputsRolePermissions51CBCE80", "cfn_nag", "W13"),
            *((RESOLVER_FUNCTION, *check) for check in RESOLVER_FUNCTION_CHECKS),
            *(((CLEANUP_FUNCTION, *check) for check in CLEANUP_FUNCTION_CHECKS) if dev else ()),
            *(((CLEANUP_POLICY, "checkov", "CKV_AWS_111"), (CLEANUP_POLICY, "cfn_nag", "W13")) if dev else ()),
            *((policy, "cfn_nag", "W13") for policy in (
                "TrainingPipelineTrainingRolePermissions9AFEECF8",
                "TrainingPipelineEvaluationRolePermissionsFC9DEAA2",
                "TrainingPipelinePipelineRolePermissions9552B1F6",
                "BatchInferencePipelineModelRolePermissions3D64AE9D",
                "BatchInferencePipelinePipelineRolePermissions3816699A",
            )),
        },
        "serving": {
            ("EndpointRolePermissions62B18C28", "cfn_nag", "W13"),
            ("ApiRolePermissions97EFE995", "checkov", "CKV_AWS_111"),
            ("ApiRolePermissions97EFE995", "cfn_nag", "W13"),
            *((API_FUNCTION, *check) for check in API_FUNCTION_CHECKS),
        },
        "workbench": {("NotebooksRolePermissions282D0675", "cfn_nag", "W13")},
    }  # fmt: skip
    found = {part: scanner_justifications(template) for part, template in stage.templates.items()}
    assert {part: set(justifications) for part, justifications in found.items()} == expected
    for justifications in found.values():
        assert all(len(reason) >= 30 for reason in justifications.values()), justifications


def test_every_lambda_function_in_the_templates_is_justified_or_reviewed(stage: Any) -> None:
    # aws-cdk-lib's own provider handlers carry the six justifications; the pipeline's VPC functions three each.
    vpc_functions = {
        RESOLVER_FUNCTION: RESOLVER_FUNCTION_CHECKS,
        CLEANUP_FUNCTION: CLEANUP_FUNCTION_CHECKS,
        API_FUNCTION: API_FUNCTION_CHECKS,
    }
    for part, template in stage.templates.items():
        justifications = scanner_justifications(template)
        for logical_id in template.find_resources("AWS::Lambda::Function"):
            expected = vpc_functions.get(logical_id, CDK_PROVIDER_HANDLER_CHECKS)
            assert {(scanner, check) for (lid, scanner, check) in justifications if lid == logical_id} == (expected), (
                part,
                logical_id,
            )


def test_justify_for_scanners_writes_the_metadata_each_scanner_reads() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    bucket = s3.CfnBucket(stack, "Bucket")
    reason = "A reason long enough for a reviewer to judge it."
    justify_for_scanners(bucket, "checkov", "CKV_AWS_18", reason)
    justify_for_scanners(bucket, "checkov", "CKV_AWS_21", reason)
    justify_for_scanners(bucket, "cfn_nag", "W35", reason)
    justify_for_scanners(bucket, "cfn_nag", "W35", reason)  # the same justification again is recorded once
    metadata = Template.from_stack(stack).to_json()["Resources"]["Bucket"]["Metadata"]
    assert metadata["checkov"] == {
        "skip": [{"id": "CKV_AWS_18", "comment": reason}, {"id": "CKV_AWS_21", "comment": reason}]
    }
    assert metadata["cfn_nag"] == {"rules_to_suppress": [{"id": "W35", "reason": reason}]}


def test_justify_for_scanners_accepts_an_l2_construct_by_its_resource() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    s3.Bucket(stack, "Bucket")
    justify_for_scanners(stack.node.find_child("Bucket"), "cfn_nag", "W35", "A reason long enough for a reviewer.")
    resources = Template.from_stack(stack).to_json()["Resources"]
    assert [r["Metadata"]["cfn_nag"] for r in resources.values() if r["Type"] == "AWS::S3::Bucket"] == [
        {"rules_to_suppress": [{"id": "W35", "reason": "A reason long enough for a reviewer."}]}
    ]


@pytest.mark.parametrize(
    ("scanner", "check_id", "reason", "message"),
    [
        ("kics", "W35", "A reason long enough for a reviewer.", r"scanner 'kics' is not one of cfn_nag, checkov"),
        (
            "checkov",
            "W35",
            "A reason long enough for a reviewer.",
            r"'W35' is not a checkov check id like 'CKV_AWS_116'",
        ),
        ("cfn_nag", "CKV_AWS_18", "A reason long enough for a reviewer.", r"'CKV_AWS_18' is not a cfn_nag check id"),
        ("cfn_nag", "W35", "not needed", r"the reason 'not needed' is too short"),
    ],
)
def test_justify_for_scanners_refuses_what_a_reviewer_could_not_use(
    scanner: str, check_id: str, reason: str, message: str
) -> None:
    bucket = s3.CfnBucket(cdk.Stack(cdk.App(), "S"), "Bucket")
    with pytest.raises(ValueError, match=message):
        justify_for_scanners(bucket, scanner, check_id, reason)


def test_justify_for_scanners_refuses_a_second_reason_for_the_same_check() -> None:
    bucket = s3.CfnBucket(cdk.Stack(cdk.App(), "S"), "Bucket")
    justify_for_scanners(bucket, "cfn_nag", "W35", "The first reason, long enough for a reviewer.")
    with pytest.raises(ValueError, match=r"already justifies cfn_nag W35 with another reason"):
        justify_for_scanners(bucket, "cfn_nag", "W35", "A different reason, also long enough to pass.")


def test_acknowledge_refuses_a_whole_rule_where_findings_have_ids() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    with pytest.raises(ValueError, match=r"names a whole rule.*AwsSolutions-IAM5\[Action::"):
        acknowledge(role, "AwsSolutions-IAM5", "Wildcards are scoped to one bucket prefix by the grant.")
    acknowledge(role, "AwsSolutions-IAM5[Action::s3:GetObject*]", "Object-level read on one bucket, from a CDK grant.")


def test_acknowledge_refuses_a_reason_a_reviewer_would_not_accept() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match="too short"):
        acknowledge(stack, "AwsSolutions-S1", "not needed")


def test_acknowledge_refuses_a_malformed_rule_id() -> None:
    with pytest.raises(ValueError, match="not a cdk-nag rule id"):
        acknowledge(cdk.Stack(cdk.App(), "S"), "S1 please", "A reason long enough to pass the length check.")


def test_cfn_lint_reports_nothing_on_any_template(stage: Any) -> None:
    templates = sorted(str(p) for p in Path(stage.assembly_dir).glob("*.template.json"))
    assert len(templates) == len(stage.platform.stacks)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable", *templates],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
