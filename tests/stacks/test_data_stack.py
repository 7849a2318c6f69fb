"""The Data stack: the key, four hardened buckets, the Glue database, and removal by stage."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks.data_stack import LOGICAL_IDS
from tests.stacks.test_teardown import account_wide_free_settings

BUCKETS = ("RawBucket", "CuratedBucket", "ArtifactsBucket", "AccessLogsBucket")
DATA_BUCKETS = ("RawBucket", "CuratedBucket", "ArtifactsBucket")


def resources(stage: Any, part: str) -> dict[str, Any]:
    result: dict[str, Any] = stage.template(part).to_json()["Resources"]
    return result


def test_stateful_resources_keep_their_pinned_logical_ids(stage: Any) -> None:
    found = resources(stage, "data")
    assert found["PlatformKey"]["Type"] == "AWS::KMS::Key"
    for logical_id in BUCKETS:
        assert found[logical_id]["Type"] == "AWS::S3::Bucket"
    assert found["CatalogDatabase"]["Type"] == "AWS::Glue::Database"
    assert set(LOGICAL_IDS.values()) <= set(found)


def test_key_rotates_and_lets_only_this_accounts_log_groups_use_it(stage: Any) -> None:
    key = resources(stage, "data")["PlatformKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    logs = [s for s in statements if s.get("Sid") == "AllowCloudWatchLogsOfThisAccount"]
    assert len(logs) == 1
    assert logs[0]["Principal"]["Service"] == {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    assert "kms:EncryptionContext:aws:logs:arn" in logs[0]["Condition"]["ArnLike"]


@pytest.mark.parametrize("logical_id", BUCKETS)
def test_every_bucket_blocks_public_access_and_versions_objects(stage: Any, logical_id: str) -> None:
    bucket = resources(stage, "data")[logical_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any("NoncurrentVersionExpiration" in rule for rule in rules)


@pytest.mark.parametrize("logical_id", DATA_BUCKETS)
def test_data_buckets_use_the_platform_key_with_a_bucket_key(stage: Any, logical_id: str) -> None:
    encryption = resources(stage, "data")[logical_id]["Properties"]["BucketEncryption"]
    rule = encryption["ServerSideEncryptionConfiguration"][0]
    assert rule["BucketKeyEnabled"] is True
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": ["PlatformKey", "Arn"]}


def test_access_log_bucket_uses_the_encryption_server_access_logging_supports(stage: Any) -> None:
    encryption = resources(stage, "data")["AccessLogsBucket"]["Properties"]["BucketEncryption"]
    assert encryption["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }


@pytest.mark.parametrize("logical_id", DATA_BUCKETS)
def test_data_buckets_log_access_into_the_log_bucket(stage: Any, logical_id: str) -> None:
    logging = resources(stage, "data")[logical_id]["Properties"]["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}
    assert logging["LogFilePrefix"].endswith("/")


@pytest.mark.parametrize("logical_id", BUCKETS)
def test_every_bucket_denies_requests_without_tls(stage: Any, logical_id: str) -> None:
    policies = [
        r["Properties"]
        for r in resources(stage, "data").values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": logical_id}
    ]
    assert len(policies) == 1
    statements = policies[0]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for s in statements
    )


def test_glue_database_is_created(stage: Any) -> None:
    stage.template("data").has_resource_properties(
        "AWS::Glue::Database", {"DatabaseInput": Match.object_like({"Name": Match.string_like_regexp("^nlp_")})}
    )


def test_dev_destroys_everything_with_the_stack(dev: Any) -> None:
    for template in dev.templates.values():
        free = account_wide_free_settings(template.to_json())
        for logical_id, resource in template.to_json()["Resources"].items():
            if logical_id in free:
                continue  # API Gateway's free account-wide logging setting (tests/stacks/test_teardown.py)
            assert resource.get("DeletionPolicy") != "Retain", logical_id
            assert resource.get("UpdateReplacePolicy") != "Retain", logical_id
    found = resources(dev, "data")
    assert found["PlatformKey"]["Properties"]["PendingWindowInDays"] == 7
    for logical_id in BUCKETS:
        # Emptied on delete by the auto-delete custom resource, so CloudFormation can remove the bucket.
        assert any(
            r["Type"] == "Custom::S3AutoDeleteObjects" and r["Properties"]["BucketName"] == {"Ref": logical_id}
            for r in found.values()
        ), logical_id


def test_prod_retains_key_and_buckets_and_protects_its_stacks(prod: Any) -> None:
    found = resources(prod, "data")
    for logical_id in ("PlatformKey", *BUCKETS):
        assert found[logical_id]["DeletionPolicy"] == "Retain", logical_id
        assert found[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id
    assert not any(r["Type"] == "Custom::S3AutoDeleteObjects" for r in found.values())
    for stack in prod.platform.stacks:
        assert stack.termination_protection is True


def test_dev_stacks_are_not_termination_protected(dev: Any) -> None:
    assert all(stack.termination_protection is False for stack in dev.platform.stacks)
