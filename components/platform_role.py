"""An IAM role whose granted permissions go into a customer-managed policy instead of an inline one."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_iam as iam
from constructs import Construct


class PlatformRole(iam.Role):
    """``iam.Role`` for the platform's services, with every grant collected in one customer-managed policy.

    HIPAA, NIST 800-53 and PCI DSS ask for no inline policies (each CDK grant normally writes one), because managed
    policies are versioned and reviewable on their own. This role keeps the aws-cdk grant model (``bucket.grant_read(
    role)``, CDK internals that call ``add_to_principal_policy``) and redirects each statement into ``policy``, an
    ``AWS::IAM::ManagedPolicy`` attached to this role only. Takes the same keyword arguments as ``iam.Role``.
    """

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.policy = iam.ManagedPolicy(
            self, "Permissions", roles=[self], description=f"Permissions of {self.node.path}, granted by the platform"
        )

    def add_to_principal_policy(self, statement: iam.PolicyStatement) -> iam.AddToPrincipalPolicyResult:
        self.policy.add_statements(statement)
        return iam.AddToPrincipalPolicyResult(statement_added=True, policy_dependable=self.policy)
