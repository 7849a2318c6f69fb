"""Data stack (stateful): the platform key, the buckets and the Glue Data Catalog database."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from components.compliance import acknowledge
from components.platform_key import PlatformKey
from components.secure_bucket import SecureBucket
from config import PlatformConfig
from stacks.removal import removal_policy

# Logical IDs of stateful resources are pinned: a changed ID would replace the key or a bucket and lose data.
LOGICAL_IDS = {
    "key": "PlatformKey",
    "access_logs": "AccessLogsBucket",
    "raw": "RawBucket",
    "curated": "CuratedBucket",
    "artifacts": "ArtifactsBucket",
    "database": "CatalogDatabase",
}


class DataStack(cdk.Stack):
    """The key, the ``raw``, ``curated``, ``artifacts`` and ``access_logs`` buckets, and the Glue database.

    Attributes other stacks use: ``key``, ``raw_bucket``, ``curated_bucket``, ``artifacts_bucket``,
    ``access_logs_bucket``, ``database``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        data = config.data
        retain = data.retain_on_delete
        removal = removal_policy(config)

        platform_key = PlatformKey(
            self,
            "PlatformKey",
            removal_policy=removal,
            pending_window_days=data.key_pending_window_days,
            alias=f"alias/{config.prefix}-platform",
        )
        self.key: kms.IKey = platform_key.key
        _pin(platform_key.key, LOGICAL_IDS["key"])

        access_logs = SecureBucket(
            self,
            "AccessLogs",
            encryption_key=None,
            access_log_bucket=None,
            noncurrent_version_expiration_days=data.noncurrent_version_expiration_days,
            expiration_days=data.access_log_expiration_days,
            retain=retain,
        )
        self.access_logs_bucket: s3.IBucket = access_logs.bucket
        _pin(access_logs.bucket, LOGICAL_IDS["access_logs"])
        for rule in ("HIPAA.Security-S3DefaultEncryptionKMS", "NIST.800.53.R5-S3DefaultEncryptionKMS",
                     "PCI.DSS.321-S3DefaultEncryptionKMS"):  # fmt: skip
            acknowledge(
                access_logs.resource,
                rule,
                "S3 server access logging can only deliver to buckets encrypted with SSE-S3, not SSE-KMS; the bucket "
                "is private, TLS-only and holds request metadata, not data.",
            )

        secure_buckets = {"access_logs": access_logs}
        for name in ("raw", "curated", "artifacts"):
            secure = SecureBucket(
                self,
                name.capitalize(),
                encryption_key=self.key,
                access_log_bucket=access_logs.bucket,
                access_log_prefix=f"{name}/",
                noncurrent_version_expiration_days=data.noncurrent_version_expiration_days,
                retain=retain,
            )
            _pin(secure.bucket, LOGICAL_IDS[name])
            secure_buckets[name] = secure
        self.raw_bucket: s3.IBucket = secure_buckets["raw"].bucket
        self.curated_bucket: s3.IBucket = secure_buckets["curated"].bucket
        self.artifacts_bucket: s3.IBucket = secure_buckets["artifacts"].bucket

        for secure in secure_buckets.values():
            for rule in ("HIPAA.Security-S3BucketReplicationEnabled", "NIST.800.53.R5-S3BucketReplicationEnabled",
                         "PCI.DSS.321-S3BucketReplicationEnabled"):  # fmt: skip
                acknowledge(
                    secure.resource,
                    rule,
                    "Cross-region replication doubles storage cost for data that can be rebuilt from its source; "
                    "durability comes from S3's multi-AZ storage plus versioning, and prod retains the buckets.",
                )

        self.database = glue.Database(
            self,
            "CatalogDatabase",
            database_name=f"{config.project}_{config.stage}_catalog",
            description="Tables over the platform's raw and curated datasets",
            removal_policy=removal,
        )
        _pin(self.database, LOGICAL_IDS["database"])

        cdk.CfnOutput(self, "RawBucketName", value=self.raw_bucket.bucket_name)
        cdk.CfnOutput(self, "CuratedBucketName", value=self.curated_bucket.bucket_name)
        cdk.CfnOutput(self, "ArtifactsBucketName", value=self.artifacts_bucket.bucket_name)
        cdk.CfnOutput(self, "KeyArn", value=self.key.key_arn)


def _pin(construct: Construct, logical_id: str) -> None:
    """Give the CloudFormation resource behind ``construct`` a fixed, readable logical ID."""
    resource = construct.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to pin")
    resource.override_logical_id(logical_id)
