"""scripts/review.py and scripts/template_review.py: the PR review comment from a base and a head cloud assembly.

Two small apps are synthesized once for the module (not the platform: its stacks are the baselines' business). The
base has one stack with a KMS key, a KMS-encrypted bucket, a role and a parameter that points at a file asset. The
head versions the bucket, adds a second bucket (with a reviewed cdk-nag acknowledgment), drops the role, changes the
asset's contents and adds a stack with an alarm, the only change that costs something idle.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_ssm as ssm
from cdk_nag import AwsSolutionsChecks

from components.compliance import acknowledge
from scripts import review as review_script
from scripts.template_review import (
    ASSET_HASH_PLACEHOLDER,
    COMMENT_MARKER,
    CostDelta,
    ReviewError,
    StageReview,
    compliance_summary,
    diff_stack,
    normalise_template,
    read_stacks,
    render_comment,
    review_stage,
)

STAGE = "dev"  # the cost report reads the stage's idle goal from config/stages.py
ACCESS_LOGS_REASON = "A demo bucket of the review test: access logs are out of scope for the tiny app under test."


def synthesize(outdir: Path, *, head: bool) -> Path:
    app = cdk.App(outdir=str(outdir), context={"@aws-cdk/core:explicitStackTags": True})
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    storage = cdk.Stack(app, "tiny-storage")
    key = kms.Key(storage, "Key", enable_key_rotation=True)
    logs = s3.Bucket(storage, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True)
    acknowledge(
        logs.node.default_child,  # type: ignore[arg-type]
        "AwsSolutions-S1",
        "The access log bucket itself: logging it into itself would loop forever.",
    )
    s3.Bucket(
        storage,
        "DataBucket",
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        enforce_ssl=True,
        server_access_logs_bucket=logs,
        versioned=head,
    )
    if head:
        extra = s3.Bucket(storage, "ExtraBucket", encryption_key=key, enforce_ssl=True)
        acknowledge(extra.node.default_child, "AwsSolutions-S1", ACCESS_LOGS_REASON)  # type: ignore[arg-type]
    else:
        iam.Role(storage, "OldRole", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
    code = outdir.parent / f"code-{'head' if head else 'base'}.txt"
    code.write_text(f"runtime code, {'new' if head else 'old'} version\n")
    asset = s3_assets.Asset(storage, "Code", path=str(code))
    ssm.StringParameter(storage, "CodeLocation", string_value=asset.s3_object_url)
    if head:
        monitoring = cdk.Stack(app, "tiny-monitoring")
        cloudwatch.Alarm(
            monitoring,
            "Errors",
            metric=cloudwatch.Metric(namespace="Tiny", metric_name="Errors"),
            threshold=1,
            evaluation_periods=1,
        )
    app.synth()
    return outdir


@dataclass(frozen=True)
class Reviewed:
    base_dir: Path
    head_dir: Path
    review: StageReview
    comment: str


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reviewed]:
    root = tmp_path_factory.mktemp("review")
    base_dir = synthesize(root / "base" / STAGE, head=False)
    head_dir = synthesize(root / "head" / STAGE, head=True)
    review = review_stage(STAGE, base_dir, head_dir, cfn_lint="")
    yield Reviewed(base_dir, head_dir, review, render_comment([review], "`main`", "`feature`"))


def stack(reviewed: Reviewed, name: str) -> dict[str, object]:
    diffs = {diff.name: diff for diff in reviewed.review.stacks}
    return {"status": diffs[name].status, **{c.logical_id: c for c in diffs[name].resources}}


def logical_id(directory: Path, stack_name: str, prefix: str) -> str:
    """The logical id CDK gave the construct ``prefix`` (its id plus an 8-digit hash of its path)."""
    resources = read_stacks(directory)[stack_name]["Resources"]
    (match,) = [str(name) for name in resources if re.fullmatch(f"{prefix}[0-9A-F]{{8}}", name)]
    return match


def test_the_comment_starts_with_the_marker_the_workflow_finds_it_by(reviewed: Reviewed) -> None:
    assert reviewed.comment.startswith(COMMENT_MARKER + "\n")


def test_the_added_bucket_is_named_with_its_logical_id_and_type(reviewed: Reviewed) -> None:
    extra = logical_id(reviewed.head_dir, "tiny-storage", "ExtraBucket")
    change = stack(reviewed, "tiny-storage")[extra]
    assert (change.kind, change.type) == ("added", "AWS::S3::Bucket")  # type: ignore[attr-defined]
    assert f"- **added** `{extra}` `AWS::S3::Bucket`" in reviewed.comment


def test_a_modified_property_is_named_with_its_values(reviewed: Reviewed) -> None:
    bucket = logical_id(reviewed.head_dir, "tiny-storage", "DataBucket")
    change = stack(reviewed, "tiny-storage")[bucket]
    assert change.kind == "modified"  # type: ignore[attr-defined]
    assert [leaf.path for leaf in change.changes] == ["Properties.VersioningConfiguration"]  # type: ignore[attr-defined]
    assert f"- **modified** `{bucket}` `AWS::S3::Bucket`" in reviewed.comment
    assert '`Properties.VersioningConfiguration`: `(absent)` → `{"Status": "Enabled"}`' in reviewed.comment


def test_a_removed_resource_is_named(reviewed: Reviewed) -> None:
    role = logical_id(reviewed.base_dir, "tiny-storage", "OldRole")
    assert stack(reviewed, "tiny-storage")[role].kind == "removed"  # type: ignore[attr-defined]
    assert f"- **removed** `{role}` `AWS::IAM::Role`" in reviewed.comment


def test_an_added_stack_is_named_with_its_resources(reviewed: Reviewed) -> None:
    alarm = logical_id(reviewed.head_dir, "tiny-monitoring", "Errors")
    assert stack(reviewed, "tiny-monitoring")["status"] == "added"
    assert "#### Stack `tiny-monitoring` added (1 resources)" in reviewed.comment
    assert f"- **added** `{alarm}` `AWS::CloudWatch::Alarm`" in reviewed.comment


def test_a_changed_asset_hash_is_not_a_modified_resource(reviewed: Reviewed) -> None:
    parameter = logical_id(reviewed.head_dir, "tiny-storage", "CodeLocation")
    base_value = read_stacks(reviewed.base_dir)["tiny-storage"]["Resources"][parameter]["Properties"]["Value"]
    head_value = read_stacks(reviewed.head_dir)["tiny-storage"]["Resources"][parameter]["Properties"]["Value"]
    assert base_value != head_value  # the raw templates differ: the asset's hash is in its S3 URL
    assert parameter not in stack(reviewed, "tiny-storage")
    assert parameter not in reviewed.comment
    assert "Asset contents changed" in reviewed.comment and "`tiny-storage` (1)" in reviewed.comment


def test_normalisation_replaces_asset_hashes_and_drops_cdk_metadata(reviewed: Reviewed) -> None:
    template = read_stacks(reviewed.head_dir)["tiny-storage"]
    normalised = normalise_template(template)
    hashes = set(re.findall(r"[0-9a-f]{64}", json.dumps(template)))
    assert hashes, "the asset's hash should be in the raw template"
    text = json.dumps(normalised)
    assert ASSET_HASH_PLACEHOLDER in text
    assert not any(h in text for h in hashes)
    assert "AWS::CDK::Metadata" not in text and "aws:cdk:path" not in text
    assert set(normalised["Resources"]) == {
        k for k, r in template["Resources"].items() if r["Type"] != "AWS::CDK::Metadata"
    }


def test_the_compliance_summary_counts_per_pack_and_lists_the_new_acknowledgment(reviewed: Reviewed) -> None:
    compliance = reviewed.review.compliance
    assert compliance.base_per_pack["AwsSolutions"] + 1 == compliance.head_per_pack["AwsSolutions"]
    extra = logical_id(reviewed.head_dir, "tiny-storage", "ExtraBucket")
    assert [(a.logical_id, a.rule) for a in compliance.added] == [(extra, "AwsSolutions-S1")]
    assert compliance.removed == ()
    assert f"AwsSolutions `AwsSolutions-S1` on `tiny-storage` `{extra}`: {ACCESS_LOGS_REASON}" in reviewed.comment
    assert "cfn-lint: no findings" in reviewed.comment


def test_the_cost_delta_is_the_added_alarm(reviewed: Reviewed) -> None:
    from scripts import cost_report

    alarm_usd = cost_report.load_prices(cost_report.DEFAULT_PRICES).price("cloudwatch-alarm/month").usd
    cost = reviewed.review.cost
    assert cost.error is None
    assert cost.head_idle_usd == pytest.approx(cost.base_idle_usd + alarm_usd)  # type: ignore[operator]
    alarm = logical_id(reviewed.head_dir, "tiny-monitoring", "Errors")
    assert [(c.resource, c.before_usd, c.after_usd) for c in cost.idle_changes] == [(alarm, None, alarm_usd)]
    assert f"**+${alarm_usd:,.2f}** per month" in reviewed.comment
    assert f"| tiny-monitoring | `{alarm}` | CloudWatch alarm | — | ${alarm_usd:,.2f} |" in reviewed.comment


def test_a_list_that_grew_names_the_item_that_came_not_the_whole_list() -> None:
    statement = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::logs/raw/*"}
    added = {**statement, "Resource": "arn:aws:s3:::logs/exports/*"}
    policy = {"Type": "AWS::S3::BucketPolicy", "Properties": {"PolicyDocument": {"Statement": [statement]}}}
    grown = {"Type": "AWS::S3::BucketPolicy", "Properties": {"PolicyDocument": {"Statement": [statement, added]}}}
    diff = diff_stack("s", {"Resources": {"Policy": policy}}, {"Resources": {"Policy": grown}})
    ((change,),) = [resource.changes for resource in diff.resources]
    assert (change.path, change.after) == ("Properties.PolicyDocument.Statement[+]", added)
    assert (
        "`(absent)` → `" + '{"Action": "s3:PutObject", "Effect": "Allow", "Resource": "arn:aws:s3:::logs/exports/*"}`'
        in (
            render_comment(
                [StageReview("dev", [diff], compliance_summary({}, {}, Path("/nonexistent")), CostDelta("dev"))],
                "a",
                "b",
            )
        )
    )


def test_identical_assemblies_give_no_template_change(reviewed: Reviewed) -> None:
    same = review_stage(STAGE, reviewed.head_dir, reviewed.head_dir)
    assert {diff.status for diff in same.stacks} == {"unchanged"}
    assert "No template change." in render_comment([same], "a", "b")


def test_a_folder_that_is_not_an_assembly_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ReviewError, match=f"{tmp_path} is not a cloud assembly.*cdk synth"):
        read_stacks(tmp_path)


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    for command in (
        ["init", "-q", "-b", "main"],
        ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "first"],
    ):
        subprocess.run(["git", "-C", str(repo), *command], check=True)
    return repo


def test_a_ref_that_is_not_a_commit_fails_naming_it(repository: Path) -> None:
    with pytest.raises(ReviewError, match=r"BASE='origin/nowhere' is not a commit.*git fetch"):
        review_script.resolve_ref(repository, "origin/nowhere")


def test_a_ref_resolves_to_its_commit(repository: Path) -> None:
    sha = subprocess.run(["git", "-C", str(repository), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert review_script.resolve_ref(repository, "main") == sha.strip()


def test_a_base_without_cdk_json_is_refused(repository: Path, tmp_path: Path) -> None:
    sha = review_script.resolve_ref(repository, "main")
    (repository / ".venv").mkdir(exist_ok=True)
    (repository / "node_modules").mkdir(exist_ok=True)
    with pytest.raises(ReviewError, match=f"commit {sha} has no cdk.json"):
        review_script.checkout_base(repository, sha, repository / ".build" / "base-src")
