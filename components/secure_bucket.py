"""An S3 bucket hardened the same way everywhere on the platform."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from components.compliance import justify_cdk_provider_handler, justify_for_scanners

AUTO_DELETE_PROVIDER = "Custom::S3AutoDeleteObjectsCustomResourceProvider"


class SecureBucket(Construct):
    """A private, TLS-only, versioned, KMS-encrypted bucket that logs its access to a log bucket.

    - all four public-access blocks, ``aws:SecureTransport`` enforced, object ownership enforced (no ACLs);
    - SSE-KMS with an S3 bucket key (fewer KMS calls, lower cost) when ``encryption_key`` is given; otherwise SSE-S3,
      which is what S3 server access logging can write to (a log bucket cannot use SSE-KMS);
    - versioning, with replaced and deleted versions expiring after ``noncurrent_version_expiration_days``;
    - server access logs into ``access_log_bucket`` under ``<prefix>/``;
    - ``retain``: keep the bucket and its objects on stack deletion; otherwise empty and delete it (with aws-cdk-lib's
      auto-delete handler, whose Checkov and cfn_nag findings are justified in its metadata);
    - without ``access_log_bucket`` (the log bucket itself), the missing access logging is justified for Checkov and
      cfn_nag in the bucket's metadata.

    :param expiration_days: expire current objects after this many days (for log buckets). Default: never.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey | None,
        access_log_bucket: s3.IBucket | None,
        access_log_prefix: str | None = None,
        noncurrent_version_expiration_days: int,
        retain: bool,
        expiration_days: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        lifecycle = s3.LifecycleRule(
            id="ExpireOldVersionsAndUploads",
            noncurrent_version_expiration=cdk.Duration.days(noncurrent_version_expiration_days),
            abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
            expiration=cdk.Duration.days(expiration_days) if expiration_days else None,
        )
        self.bucket = s3.Bucket(
            self,
            "Resource",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=encryption_key,
            bucket_key_enabled=True if encryption_key else None,
            versioned=True,
            lifecycle_rules=[lifecycle],
            server_access_logs_bucket=access_log_bucket,
            server_access_logs_prefix=access_log_prefix,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=not retain,
        )
        self.resource: s3.CfnBucket = self.bucket.node.default_child  # type: ignore[assignment]
        if access_log_bucket is None:
            reason = (
                "This bucket is the destination of the platform's S3 server access logs; logging its own access into "
                "itself would log every log delivery (a loop S3 advises against), and another log bucket would need "
                "one in turn."
            )
            justify_for_scanners(self.resource, "checkov", "CKV_AWS_18", reason)
            justify_for_scanners(self.resource, "cfn_nag", "W35", reason)
        if not retain:
            justify_cdk_provider_handler(
                cdk.Stack.of(self),
                AUTO_DELETE_PROVIDER,
                vpc_reason=(
                    "aws-cdk-lib's auto-delete handler empties buckets through the S3 API when the stack is deleted; "
                    "the Data stack has no VPC (the Network stack depends on it), and the provider has no VPC setting."
                ),
            )
