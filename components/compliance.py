"""The compliance gate: the cdk-nag packs every synth runs, and the one way to acknowledge a finding.

cdk-nag 3 registers as a validation plugin: an unacknowledged finding makes ``cdk synth`` exit 1 and makes
``Template.from_stack`` raise. Acknowledgments are written into the resource metadata (``cdk_nag.rules_to_suppress``)
so auditors see each one, with its reason, in the synthesized template.
"""

from __future__ import annotations

import re

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
