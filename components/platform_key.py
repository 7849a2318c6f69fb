"""The platform's customer-managed KMS key."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class PlatformKey(Construct):
    """A customer-managed KMS key with yearly rotation, usable by CloudWatch Logs in this account and region.

    One key encrypts the buckets, log groups, notebook volumes, Glue job data and SageMaker job volumes: one bill,
    one policy to review. Services reach it through grants; CloudWatch Logs needs a key-policy statement because
    log groups call KMS as the service principal, scoped here by the encryption-context condition to this account's
    log groups.

    :param removal_policy: RETAIN keeps the key when the stack is deleted; DESTROY schedules its deletion.
    :param pending_window_days: days before a scheduled deletion happens (7 to 30).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: cdk.RemovalPolicy,
        pending_window_days: int,
        alias: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        log_groups_of_this_account = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
        self.key = kms.Key(
            self,
            "Resource",
            description=f"{alias}: encrypts the data, logs and volumes of the SageMaker NLP platform",
            enable_key_rotation=True,
            removal_policy=removal_policy,
            pending_window=cdk.Duration.days(pending_window_days),
            alias=alias,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups_of_this_account}},
            )
        )
