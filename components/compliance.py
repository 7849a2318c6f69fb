"""The compliance gate: the cdk-nag packs every synth runs, and the one way to acknowledge a finding.

cdk-nag 3 registers as a validation plugin: an unacknowledged finding makes ``cdk synth`` exit 1 and makes
``Template.from_stack`` raise. Acknowledgments are written into the resource metadata (``cdk_nag.rules_to_suppress``)
so auditors see each one, with its reason, in the synthesized template.
"""

from __future__ import annotations

import os
import re
from functools import cache

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks
from constructs import IConstruct

# Rules whose findings carry a detail (a wildcard action or resource, a managed policy): the detail must be named, so an
# acknowledgment never silences the whole rule on a resource.
_RULES_WITH_FINDING_IDS = ("AwsSolutions-IAM4", "AwsSolutions-IAM5")
_FINDING_ID = re.compile(r"^(?P<rule>[A-Za-z0-9.]+-[A-Za-z0-9]+)(\[(?P<finding>[^\]]+)\])?$")


def compliance_packs(app: cdk.App) -> list[cdk.IPolicyValidationPlugin]:
    """AwsSolutions, HIPAA Security, NIST 800-53 rev 5 and PCI DSS 3.2.1, writing acknowledgments into metadata."""
    return [
        pack(app, write_suppressions_to_cloud_formation=True)
        for pack in (AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks)
    ]


def register_template_validation(app: cdk.App) -> None:
    """Register aws-cdk-lib's own CloudFormation template validation now, before any construct exists.

    aws-cdk-lib runs ``CloudFormationValidatePlugin`` (schema checks and its default rules) on every synth anyway,
    creating it at synth time, when the JavaScript heap holds the whole construct tree. Its engine (WebAssembly)
    initialises markedly slower in a large heap, so registering the same plugin, with the same default rules, while the
    heap is still small makes a synth faster (scripts/bench_synth.py measures the whole synth) and checks exactly the
    same. An explicit registration replaces
    the automatic one (aws-cdk-lib allows only one), and the usual switches that turn it off still do:
    ``cdk synth --no-validation`` and ``CDK_VALIDATION=false`` both reach the app as ``CDK_VALIDATION=false``.
    """
    if os.environ.get("CDK_VALIDATION") == "false":
        return
    cdk.Validations.of(app).add_plugins(_template_validation_plugin())


@cache
def _template_validation_plugin() -> cdk.CloudFormationValidatePlugin:
    """One engine per process, like aws-cdk-lib's own singleton: tests synthesize several apps in one process."""
    return cdk.CloudFormationValidatePlugin(include_default_rules=True)


def register_compliance_packs(app: cdk.App) -> None:
    """Run every pack on every synth of ``app``."""
    cdk.Validations.of(app).add_plugins(*compliance_packs(app))


def acknowledge(scope: IConstruct, finding_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` (and its children), with a reason a security reviewer accepts.

    ``finding_id`` is a plain rule id (``HIPAA.Security-S3BucketReplicationEnabled``) or, for rules that report a
    detail, the rule id with that detail (``AwsSolutions-IAM5[Action::s3:GetObject*]``); those rules cannot be
    acknowledged without one.
    """
    match = _FINDING_ID.match(finding_id)
    if match is None:
        raise ValueError(
            f"acknowledge: {finding_id!r} is not a cdk-nag rule id like 'AwsSolutions-S1' or 'Rule[detail]'"
        )
    if match["rule"] in _RULES_WITH_FINDING_IDS and match["finding"] is None:
        raise ValueError(
            f"acknowledge: {finding_id!r} names a whole rule; name one finding, "
            f"e.g. {match['rule']}[Action::s3:GetObject*]"
        )
    if len(reason.strip()) < 30:
        raise ValueError(
            f"acknowledge {finding_id}: the reason {reason!r} is too short to convince a security reviewer"
        )
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=finding_id, reason=reason))


def finding_reference(scope: IConstruct, value: str) -> str:
    """How cdk-nag spells the token ``value`` (an ARN or name of a resource) in a finding id, seen from ``scope``.

    A value from another stack reaches ``scope``'s template as ``Fn::ImportValue`` of a generated export name, which
    cdk-nag prints as is and which includes the producing stack's name (so it differs per stage). The export is the
    one CDK creates for the reference anyway.
    """
    consumer = cdk.Stack.of(scope)
    reference = cdk.Tokenization.reverse(value)
    if isinstance(reference, cdk.Reference) and cdk.Stack.of(reference.target) is not consumer:
        producer = cdk.Stack.of(reference.target)
        return str(producer.resolve(producer.export_value(value))["Fn::ImportValue"])
    resolved = consumer.resolve(value)
    if isinstance(resolved, dict) and "Fn::GetAtt" in resolved:
        logical_id, attribute = resolved["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    if isinstance(resolved, dict) and "Ref" in resolved:
        return f"<{resolved['Ref']}>"
    raise ValueError(f"finding_reference: {value!r} is not a reference to a resource")


# How other IaC scanners read a justification from a resource's template metadata: the metadata key, the list in it,
# the field of the reason, and what their check ids look like. (KICS reads comments, which JSON templates cannot hold.)
_SCANNERS = {
    "checkov": ("skip", "comment", re.compile(r"^CKV2?_AWS_\d+$"), "CKV_AWS_116"),
    "cfn_nag": ("rules_to_suppress", "reason", re.compile(r"^[WF]\d+$"), "W89"),
}


def justify_for_scanners(resource: IConstruct, scanner: str, check_id: str, reason: str) -> None:
    """Record why ``resource`` does not satisfy one check of another IaC scanner, where that scanner reads it.

    ``scanner`` is ``checkov`` (written as ``Metadata.checkov.skip: [{id, comment}]``) or ``cfn_nag``
    (``Metadata.cfn_nag.rules_to_suppress: [{id, reason}]``); ``check_id`` is one check (``CKV_AWS_116``, ``W89``).
    ``resource`` is a ``CfnResource`` or an L2 construct whose default child is one. Like :func:`acknowledge`, one
    check per call with a reason a reviewer can judge; ``tests/stacks/test_compliance.py`` lists every justification.
    The same justification given twice (a provider shared by several constructs) is recorded once.
    """
    target = resource if isinstance(resource, cdk.CfnResource) else resource.node.default_child
    if not isinstance(target, cdk.CfnResource):
        raise ValueError(
            f"justify_for_scanners: {resource.node.path} is not a CloudFormation resource; pass the CfnResource"
        )
    if scanner not in _SCANNERS:
        raise ValueError(f"justify_for_scanners: scanner {scanner!r} is not one of {', '.join(sorted(_SCANNERS))}")
    list_key, reason_key, id_pattern, example = _SCANNERS[scanner]
    if not id_pattern.match(check_id):
        raise ValueError(f"justify_for_scanners: {check_id!r} is not a {scanner} check id like {example!r}")
    if len(reason.strip()) < 30:
        raise ValueError(
            f"justify_for_scanners {scanner} {check_id}: the reason {reason!r} is too short to convince a reviewer"
        )
    metadata = target.get_metadata(scanner) or {}
    entries = list(metadata.get(list_key, []))
    for entry in entries:
        if entry["id"] == check_id:
            if entry[reason_key] == reason:
                return
            raise ValueError(
                f"justify_for_scanners: {target.node.path} already justifies {scanner} {check_id} with another "
                f"reason ({entry[reason_key]!r}); give one reason per check"
            )
    entries.append({"id": check_id, reason_key: reason})
    target.add_metadata(scanner, {**metadata, list_key: entries})


def justify_cdk_provider_handler(stack: cdk.Stack, provider_id: str, *, vpc_reason: str) -> None:
    """Justify, for Checkov and cfn_nag, what aws-cdk-lib's own custom-resource handler ``provider_id`` lacks.

    aws-cdk-lib creates these Lambda functions itself (``Custom::S3AutoDeleteObjectsCustomResourceProvider``, ...)
    and offers no setting for a dead-letter queue, a VPC or reserved concurrency. ``vpc_reason`` says why this
    handler does not belong in the VPC.
    """
    provider = stack.node.try_find_child(provider_id)
    handler = provider.node.try_find_child("Handler") if provider is not None else None
    if not isinstance(handler, cdk.CfnResource):
        raise ValueError(
            f"justify_cdk_provider_handler: {stack.stack_name} has no aws-cdk-lib provider {provider_id!r}"
        )
    dead_letters = (
        "CloudFormation invokes this aws-cdk-lib custom-resource handler during a stack operation and waits for its "
        "answer; a failure or no answer fails that operation visibly, so a dead-letter queue would keep events "
        "nobody replays."
    )
    concurrency = (
        "Runs only while this stack deploys or is deleted, a few invocations at a time; AWS keeps a minimum of "
        "unreserved concurrency, so a reservation fails deploys on new accounts with a low quota (10 to 50)."
    )
    logs_permission = (
        "The handler's role has the AWS managed policy AWSLambdaBasicExecutionRole (logs:CreateLogGroup, "
        "CreateLogStream, PutLogEvents), written by aws-cdk-lib as Fn::Sub, which cfn_nag does not resolve."
    )
    for scanner, check_id, reason in (
        ("checkov", "CKV_AWS_116", dead_letters),
        ("checkov", "CKV_AWS_117", vpc_reason),
        ("checkov", "CKV_AWS_115", concurrency),
        ("cfn_nag", "W89", vpc_reason),
        ("cfn_nag", "W92", concurrency),
        ("cfn_nag", "W58", logs_permission),
    ):
        justify_for_scanners(handler, scanner, check_id, reason)
