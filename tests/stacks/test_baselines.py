"""Every stack of every stage matches its reviewed baseline template under tests/baselines/<stage>/.

The baselines are the session's synthesized templates (tests/conftest.py), normalised by
``scripts/template_review.py`` (asset hashes and the CDK analytics string become placeholders), pretty-printed with
sorted keys. A change to the infrastructure makes this test fail with a unified diff; when the change is meant,
rewrite the baselines and commit them with it, so the reviewer sees every template change in the PR diff::

    UPDATE_BASELINES=1 pytest tests/stacks/test_baselines.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from scripts.template_review import (
    ASSET_HASH,
    ASSET_HASH_PLACEHOLDER,
    normalise_template,
    read_stacks,
    render_template,
)

BASELINES = Path(__file__).resolve().parent.parent / "baselines"
SUFFIX = ".template.json"
UPDATE = os.environ.get("UPDATE_BASELINES") == "1"
UPDATE_COMMAND = "UPDATE_BASELINES=1 pytest tests/stacks/test_baselines.py"
MAX_DIFF_LINES_PER_STACK = 80
MAX_DIFF_LINES = 300


def current_templates(stage: Any) -> dict[str, str]:
    """Stack name to its normalised template text, for every stack in the stage's cloud assembly."""
    stacks = read_stacks(Path(stage.assembly_dir))
    assert len(stacks) == len(stage.platform.stacks), "the assembly and the platform disagree on the stacks"
    return {name: render_template(normalise_template(template)) for name, template in stacks.items()}


def stage_name(stage: Any) -> str:
    return str(stage.app.node.try_get_context("stage"))


def unified_diff(name: str, baseline: str, current: str) -> list[str]:
    lines = list(
        difflib.unified_diff(
            baseline.splitlines(),
            current.splitlines(),
            f"baseline {name}",
            f"synthesized {name}",
            n=2,
            lineterm="",
        )
    )
    if len(lines) > MAX_DIFF_LINES_PER_STACK:
        lines = [*lines[:MAX_DIFF_LINES_PER_STACK], f"... {len(lines) - MAX_DIFF_LINES_PER_STACK} more diff lines"]
    return lines


def test_every_stack_matches_its_baseline(stage: Any) -> None:
    folder = BASELINES / stage_name(stage)
    current = current_templates(stage)
    if UPDATE:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(f"*{SUFFIX}"):
            if stale.name.removesuffix(SUFFIX) not in current:
                stale.unlink()
        for name, text in current.items():
            (folder / f"{name}{SUFFIX}").write_text(text, encoding="utf-8")
    baselines = {path.name.removesuffix(SUFFIX): path.read_text(encoding="utf-8") for path in folder.glob(f"*{SUFFIX}")}
    problems = [
        f"stack {name} has no baseline {folder / (name + SUFFIX)}: review it, then run {UPDATE_COMMAND}"
        for name in sorted(set(current) - set(baselines))
    ]
    problems += [
        f"baseline {folder / (name + SUFFIX)} has no stack in stage {stage_name(stage)}: "
        f"delete it if the stack is gone on purpose, or run {UPDATE_COMMAND}"
        for name in sorted(set(baselines) - set(current))
    ]
    diff: list[str] = []
    for name in sorted(set(current) & set(baselines)):
        if current[name] != baselines[name]:
            problems.append(f"stack {name} differs from its baseline (diff below)")
            diff += unified_diff(name, baselines[name], current[name])
    if len(diff) > MAX_DIFF_LINES:
        diff = [*diff[:MAX_DIFF_LINES], f"... diff truncated at {MAX_DIFF_LINES} lines"]
    if problems:
        pytest.fail(
            "\n".join(
                [
                    *problems,
                    f"If the change is intended, run {UPDATE_COMMAND} and commit tests/baselines/.",
                    *diff,
                ]
            ),
            pytrace=False,
        )


def test_baselines_hold_no_asset_hash_or_cdk_tooling_metadata(stage: Any) -> None:
    # What keeps a baseline stable when only runtime code, the CDK version or the way of synthesizing changes.
    paths = sorted((BASELINES / stage_name(stage)).glob(f"*{SUFFIX}"))
    assert paths, f"no baselines for stage {stage_name(stage)}: run {UPDATE_COMMAND}"
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert not ASSET_HASH.search(text), f"{path} holds an asset hash: regenerate it with {UPDATE_COMMAND}"
        resources = json.loads(text)["Resources"]
        assert not [r for r in resources.values() if r["Type"] == "AWS::CDK::Metadata"], path
        assert not [r for r in resources.values() if "aws:cdk:path" in r.get("Metadata", {})], path


def test_normalisation_hides_asset_hashes_wherever_they_appear() -> None:
    digest = "0123456789abcdef" * 4
    other = "fedcba9876543210" * 4
    template = {
        "Resources": {
            "Handler": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Code": {"S3Bucket": "cdk-hnb659fds-assets-1-r", "S3Key": f"{digest}.zip"}},
                "Metadata": {"cdk_nag": {"rules_to_suppress": [{"id": "AwsSolutions-L1", "reason": f"x {digest}"}]}},
            },
            "Pipeline": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {"Body": f'{{"S3Uri": "s3://b/{other}.tar.gz", "Cfg": "/x/{other}.json"}}'},
            },
        },
        "Parameters": {f"AssetParameters{digest}S3Bucket": {"Type": "String"}},
    }
    normalised = normalise_template(template)
    assert digest not in json.dumps(normalised) and other not in json.dumps(normalised)
    handler, pipeline = normalised["Resources"]["Handler"], normalised["Resources"]["Pipeline"]
    assert handler["Properties"]["Code"]["S3Key"] == f"{ASSET_HASH_PLACEHOLDER}.zip"
    assert handler["Metadata"]["cdk_nag"]["rules_to_suppress"][0]["reason"] == f"x {ASSET_HASH_PLACEHOLDER}"
    assert pipeline["Properties"]["Body"] == (
        f'{{"S3Uri": "s3://b/{ASSET_HASH_PLACEHOLDER}.tar.gz", "Cfg": "/x/{ASSET_HASH_PLACEHOLDER}.json"}}'
    )
    assert list(normalised["Parameters"]) == [f"AssetParameters{ASSET_HASH_PLACEHOLDER}S3Bucket"]
    # What is not a hash stays: logical ids with CDK's 8-digit suffix; and the input is left as it was.
    bucket = {"Resources": {"BucketE3889A50": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "a" * 63}}}}
    assert normalise_template(bucket) == bucket
    assert template["Resources"]["Handler"]["Properties"]["Code"]["S3Key"] == f"{digest}.zip"


def test_normalisation_drops_the_cdk_clis_tooling_metadata_and_keeps_the_rest() -> None:
    # `cdk synth` adds these and an in-process synth does not; none of them is deployed infrastructure.
    template = {
        "Conditions": {"CDKMetadataAvailable": {"Fn::Equals": [1, 1]}, "IsProd": {"Fn::Equals": [2, 2]}},
        "Resources": {
            "CDKMetadata": {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": "v2:deflate64:H4sI"}},
            "Handler": {
                "Type": "AWS::Lambda::Function",
                "Metadata": {
                    "aws:cdk:path": "S/Handler/Resource",
                    "aws:asset:path": "asset.x",
                    "aws:asset:property": "Code",
                    "checkov": {"skip": [{"id": "CKV_AWS_116", "comment": "why"}]},
                },
            },
            "Role": {"Type": "AWS::IAM::Role", "Metadata": {"aws:cdk:path": "S/Role/Resource"}},
        },
    }
    assert normalise_template(template) == {
        "Conditions": {"IsProd": {"Fn::Equals": [2, 2]}},
        "Resources": {
            "Handler": {
                "Type": "AWS::Lambda::Function",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_116", "comment": "why"}]}},
            },
            "Role": {"Type": "AWS::IAM::Role"},
        },
    }


def test_rendered_baselines_are_sorted_pretty_printed_and_end_with_a_newline() -> None:
    text = render_template({"b": 1, "a": {"d": [1], "c": "é"}})
    assert text == '{\n  "a": {\n    "c": "é",\n    "d": [\n      1\n    ]\n  },\n  "b": 1\n}\n'
