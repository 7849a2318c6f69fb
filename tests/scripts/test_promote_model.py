"""scripts/promote_model.py lists a stage's approved model packages and sets one as the stage's model in stages.py.

The registry is botocore's Stubber on a real boto3 SageMaker client (every call queued with its exact parameters;
an unexpected call fails the run). Every edit is made on a copy of config/stages.py in tmp_path, and each result is
checked the way review and deploy see it: the file parses, the stage's config validates with the new ARN, the other
stage is unchanged, and ``ruff format`` has nothing to change.
"""

from __future__ import annotations

import datetime
import functools
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from config import load_config
from tests.training_code.harness_support import REPO_ROOT, load_module

promote = load_module("promote_model_script", REPO_ROOT / "scripts" / "promote_model.py")

REGION = "eu-west-1"
ACCOUNT = "111122223333"
DEV_GROUP = load_config("dev").model_package_group_name
PROD_GROUP = load_config("prod").model_package_group_name
T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
RUFF = Path(sys.executable).parent / "ruff"


def arn(version: int, group: str = DEV_GROUP) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"


@functools.cache
def sagemaker_client() -> Any:
    """One real SageMaker client for the module (loading its API model costs most of a second); each test stubs it
    with a Stubber of its own, deactivated when the test ends."""
    session = boto3.session.Session(aws_access_key_id="stub", aws_secret_access_key="stub", region_name=REGION)
    return session.client("sagemaker")


class StubbedSession:
    """Stands in for a boto3 session: one real SageMaker client answering only queued responses."""

    def __init__(self) -> None:
        self.region_name = REGION
        self.sagemaker = sagemaker_client()
        self.stubber = Stubber(self.sagemaker)
        self.stubber.activate()
        self.regions: list[str | None] = []

    def client(self, name: str, region_name: str | None = None) -> Any:
        assert name == "sagemaker"
        self.regions.append(region_name)
        return self.sagemaker

    def expect_listing(self, pages: list[list[int]], group: str = DEV_GROUP) -> None:
        for index, versions in enumerate(pages):
            answer: dict[str, Any] = {
                "ModelPackageSummaryList": [
                    {
                        "ModelPackageArn": arn(version, group),
                        "ModelPackageGroupName": group,
                        "ModelPackageVersion": version,
                        "CreationTime": T0 + datetime.timedelta(days=version),
                        "ModelPackageStatus": "Completed",
                        "ModelApprovalStatus": "Approved",
                    }
                    for version in versions
                ]
            }
            params = {
                "ModelPackageGroupName": group,
                "ModelApprovalStatus": "Approved",
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
            }
            if index > 0:
                params["NextToken"] = f"page-{index}"
            if index < len(pages) - 1:
                answer["NextToken"] = f"page-{index + 1}"
            self.stubber.add_response("list_model_packages", answer, params)

    def expect_describe(
        self, version: int, status: str = "Approved", group: str = DEV_GROUP, package_status: str = "Completed"
    ) -> None:
        package = {
            "ModelPackageName": group,
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": arn(version, group),
            "CreationTime": T0 + datetime.timedelta(days=version),
            "ModelPackageStatus": package_status,
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "ModelApprovalStatus": status,
            "ApprovalDescription": f"test accuracy 0.9{version}, macro F1 0.8{version}",
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"s3://artifacts/evaluation/run{version}/evaluation.json",
                    }
                }
            },
        }
        self.stubber.add_response("describe_model_package", package, {"ModelPackageName": arn(version, group)})

    def assert_done(self) -> None:
        self.stubber.assert_no_pending_responses()


@pytest.fixture
def aws() -> Iterator[StubbedSession]:
    session = StubbedSession()
    try:
        yield session
        session.assert_done()
    finally:
        session.stubber.deactivate()


@pytest.fixture
def stages_file(tmp_path: Path) -> Path:
    """A copy of the project's config/stages.py: tests change only copies."""
    return Path(shutil.copy(REPO_ROOT / "config" / "stages.py", tmp_path / "stages.py"))


def cli(capsys: pytest.CaptureFixture[str], args: list[str], aws: Any) -> tuple[int, str, str]:
    code = promote.main(args, session=aws)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def loaded(path: Path) -> Any:
    return promote.load_stages_module(path.read_text(), path)


def assert_ruff_keeps_the_format(path: Path) -> None:
    if not RUFF.exists():
        pytest.skip("ruff is not installed beside this Python")
    check = subprocess.run(
        [str(RUFF), "format", "--check", "--diff", "--config", str(REPO_ROOT / "pyproject.toml"), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def with_serving_call(path: Path, function: str, new_call: str) -> str:
    """Replace the ServingConfig(...) call of one stage function in the copy; return the old call's text."""
    text = path.read_text()
    start = text.index(f"def {function}()")
    call_start = text.index("ServingConfig(", start)
    depth, end = 0, call_start
    for end in range(call_start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0 and text[end] == ")":
            break
    path.write_text(text[:call_start] + new_call + text[end + 1 :])
    return text[call_start : end + 1]


# --- Listing ----------------------------------------------------------------------------------------------------------


def test_lists_every_page_of_approved_packages_newest_first_with_approval_and_evaluation(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_listing([[9, 8], [7]])
    for version in (9, 8, 7):
        aws.expect_describe(version)

    code, out, err = cli(capsys, ["--stage", "dev", "--stages-file", str(stages_file)], aws)

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"3 Approved model packages in {DEV_GROUP} in {REGION}, newest first:"
    shown = [line.split()[0] for line in lines if line.startswith("  v")]
    assert shown == ["v9", "v8", "v7"]
    assert f"  v9  2026-03-10 12:00 UTC  {arn(9)}" in lines
    assert "      approval:   test accuracy 0.99, macro F1 0.89" in lines
    assert "      evaluation: s3://artifacts/evaluation/run9/evaluation.json" in lines


def test_listing_marks_the_package_a_stage_serves_and_stops_at_the_limit(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_listing([[9, 8, 7]])
    aws.expect_describe(9)
    aws.expect_describe(8)
    with_serving_call(stages_file, "dev", f'ServingConfig(model_package_arn="{arn(8)}")')

    code, out, err = cli(capsys, ["--stages-file", str(stages_file), "--limit", "2"], aws)

    assert code == 0, err
    assert f"  v8  2026-03-09 12:00 UTC  {arn(8)}   <- serving in dev" in out.splitlines()
    assert "... 1 older ones (--limit 3 shows them all)" in out


def test_an_empty_group_says_how_to_get_an_approved_model(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_listing([[]], group=PROD_GROUP)
    code, out, err = cli(capsys, ["--stage", "prod", "--stages-file", str(stages_file)], aws)
    assert code == 0, err
    assert f"no Approved model package in {PROD_GROUP}" in out and "02_train_and_register" in out


# --- Promotion --------------------------------------------------------------------------------------------------------


def test_promotion_rewrites_only_the_stage_s_arn_prints_the_diff_and_the_file_loads_with_it(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = stages_file.read_text()
    prod_before = loaded(stages_file).load_config("prod")
    aws.expect_describe(4)

    code, out, err = cli(capsys, ["--stage", "dev", "--arn", arn(4), "--stages-file", str(stages_file)], aws)

    assert code == 0, err
    after = stages_file.read_text()
    removed = [line for line in out.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line for line in out.splitlines() if line.startswith("+") and not line.startswith("+++")]
    # dev's call spans several lines already: only its model_package_arn line changes.
    assert removed == ["-            model_package_arn=None,"]
    assert added == [f'+            model_package_arn="{arn(4)}",']
    assert after == before.replace("            model_package_arn=None,\n", added[0][1:] + "\n", 1)
    module = loaded(stages_file)
    assert module.load_config("dev").serving.model_package_arn == arn(4)
    assert module.load_config("prod") == prod_before
    assert aws.regions == [REGION]  # asked in the ARN's region
    assert "open a pull request" in out
    assert_ruff_keeps_the_format(stages_file)


def test_a_call_that_outgrows_the_line_gets_one_argument_a_line_as_ruff_format_would(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_serving_call(
        stages_file, "prod", 'ServingConfig(model_package_arn=None, instance_type="ml.g5.xlarge", max_instances=3)'
    )
    aws.expect_describe(12, group=PROD_GROUP)

    args = ["--stage", "prod", "--arn", arn(12, PROD_GROUP), "--stages-file", str(stages_file)]
    code, _, err = cli(capsys, args, aws)

    assert code == 0, err
    assert (
        "        serving=ServingConfig(\n"
        f'            model_package_arn="{arn(12, PROD_GROUP)}",\n'
        '            instance_type="ml.g5.xlarge",\n'
        "            max_instances=3,\n"
        "        ),\n"
    ) in stages_file.read_text()
    config = loaded(stages_file).load_config("prod")
    assert (config.serving.model_package_arn, config.serving.max_instances) == (arn(12, PROD_GROUP), 3)
    assert_ruff_keeps_the_format(stages_file)


def test_the_project_s_prod_call_gets_the_arn_and_keeps_every_other_argument(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serving_before = loaded(stages_file).load_config("prod").serving
    aws.expect_describe(12, group=PROD_GROUP)

    args = ["--stage", "prod", "--arn", arn(12, PROD_GROUP), "--stages-file", str(stages_file)]
    code, _, err = cli(capsys, args, aws)

    assert code == 0, err
    serving = loaded(stages_file).load_config("prod").serving
    assert serving.model_package_arn == arn(12, PROD_GROUP)
    assert serving == type(serving_before)(**{**vars(serving_before), "model_package_arn": arn(12, PROD_GROUP)})
    assert loaded(stages_file).load_config("dev").serving.model_package_arn is None
    assert_ruff_keeps_the_format(stages_file)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("ServingConfig()", f'ServingConfig(\n            model_package_arn="{arn(4)}"\n        )'),
        (
            "ServingConfig(max_batch_size=16)",
            f'ServingConfig(\n            model_package_arn="{arn(4)}",\n            max_batch_size=16,\n        )',
        ),
        (
            "ServingConfig(\n            max_batch_size=16\n        )",
            f'ServingConfig(\n            model_package_arn="{arn(4)}",\n            max_batch_size=16,\n        )',
        ),
        (
            "ServingConfig(\n            model_package_arn=None,\n        )",
            f'ServingConfig(\n            model_package_arn="{arn(4)}",\n        )',
        ),
        (
            "ServingConfig(\n            max_batch_size=16,  # why: a comment that stays\n"
            "            max_text_chars=500,\n        )",
            f'ServingConfig(\n            model_package_arn="{arn(4)}",\n'
            "            max_batch_size=16,  # why: a comment that stays\n            max_text_chars=500,\n        )",
        ),
        (
            "ServingConfig(\n            model_package_arn=None,  # set by scripts/promote_model.py\n"
            "            max_batch_size=16,\n        )",
            f'ServingConfig(\n            model_package_arn="{arn(4)}",  # set by scripts/promote_model.py\n'
            "            max_batch_size=16,\n        )",
        ),
    ],
    ids=[
        "no-arguments",
        "argument-absent",
        "hugged-absent",
        "magic-trailing-comma",
        "multi-line-absent",
        "multi-line-present",
    ],
)
def test_the_argument_is_added_when_absent_and_replaced_in_place_when_present(
    call: str, expected: str, aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_serving_call(stages_file, "dev", call)
    before = stages_file.read_text()
    aws.expect_describe(4)

    code, _, err = cli(capsys, ["--stage", "dev", "--arn", arn(4), "--stages-file", str(stages_file)], aws)

    assert code == 0, err
    assert stages_file.read_text() == before.replace(call, expected, 1)
    assert loaded(stages_file).load_config("dev").serving.model_package_arn == arn(4)
    assert_ruff_keeps_the_format(stages_file)


def test_latest_promotes_the_newest_approved_package(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_listing([[6, 5]])
    aws.expect_describe(6)

    code, out, err = cli(capsys, ["--stage", "dev", "--latest", "--stages-file", str(stages_file)], aws)

    assert code == 0, err
    assert f"newest Approved package of {DEV_GROUP}: {arn(6)}" in out
    assert loaded(stages_file).load_config("dev").serving.model_package_arn == arn(6)


def test_dry_run_prints_the_diff_and_writes_nothing(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = stages_file.read_bytes()
    aws.expect_describe(4)

    args = ["--stage", "dev", "--arn", arn(4), "--dry-run", "--stages-file", str(stages_file)]
    code, out, err = cli(capsys, args, aws)

    assert code == 0, err
    assert f'+            model_package_arn="{arn(4)}"' in out
    assert "dry run:" in out and "not written" in out
    assert stages_file.read_bytes() == before


def test_promoting_the_package_already_served_changes_nothing(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_describe(4)
    args = ["--stage", "dev", "--arn", arn(4), "--stages-file", str(stages_file)]
    assert cli(capsys, args, aws)[0] == 0
    promoted = stages_file.read_bytes()
    aws.expect_describe(4)

    code, out, err = cli(capsys, args, aws)

    assert code == 0, err
    assert stages_file.read_bytes() == promoted
    assert f"stage dev already serves {arn(4)}: nothing to change" in out
    assert "+++" not in out


# --- Refusals (exit 1) and usage errors (exit 2): one line, the file untouched ----------------------------------------


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_a_package_that_is_not_approved_is_refused_naming_its_status_and_how_to_approve(
    status: str, aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = stages_file.read_bytes()
    aws.expect_describe(4, status=status)

    code, out, err = cli(capsys, ["--stage", "dev", "--arn", arn(4), "--stages-file", str(stages_file)], aws)

    assert code == 1
    line = one_error_line(err)
    assert f"{arn(4)} is {status}, not Approved" in line
    assert "update-model-package" in line and "--model-approval-status Approved" in line
    assert stages_file.read_bytes() == before and "+++" not in out


def test_a_package_still_registering_is_refused(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_describe(4, package_status="InProgress")
    code, _, err = cli(capsys, ["--stage", "dev", "--arn", arn(4), "--stages-file", str(stages_file)], aws)
    assert code == 1 and "is InProgress, not Completed" in one_error_line(err)


def test_a_package_of_another_group_is_refused_before_any_aws_call(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = stages_file.read_bytes()
    other = arn(4, PROD_GROUP)

    code, _, err = cli(capsys, ["--stage", "dev", "--arn", other, "--stages-file", str(stages_file)], aws)

    assert code == 1
    line = one_error_line(err)
    assert f"--arn {other} is a package of group {PROD_GROUP}, but stage dev serves from {DEV_GROUP}" in line
    assert stages_file.read_bytes() == before


@pytest.mark.parametrize(
    "bad",
    [
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{DEV_GROUP}",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{DEV_GROUP}",
        f"arn:aws:sagemaker:{REGION}:1111:model-package/{DEV_GROUP}/3",
        f"{DEV_GROUP}/3",
    ],
)
def test_a_malformed_arn_is_a_usage_error(
    bad: str, aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, ["--stage", "dev", "--arn", bad, "--stages-file", str(stages_file)], aws)
    assert code == 2
    line = one_error_line(err)
    assert f"--arn {bad!r} is not a versioned model package ARN" in line
    assert "model-package/<group>/<version>" in line


def test_promotion_needs_a_stage_and_a_known_one(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, ["--arn", arn(4), "--stages-file", str(stages_file)], aws)
    assert code == 2 and "--stage is missing" in one_error_line(err)
    code, _, err = cli(capsys, ["--stage", "qa", "--latest", "--stages-file", str(stages_file)], aws)
    assert code == 2 and "--stage qa: known stages are dev, prod" in one_error_line(err)


def test_a_region_other_than_the_arn_s_is_a_usage_error(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--stage", "dev", "--arn", arn(4), "--region", "us-east-1", "--stages-file", str(stages_file)]
    code, _, err = cli(capsys, args, aws)
    assert code == 2 and f"the ARN is in {REGION}" in one_error_line(err)


def test_an_unknown_package_names_the_arn_and_the_region(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.stubber.add_client_error(
        "describe_model_package",
        "ValidationException",
        f"Model Package {arn(99)} does not exist.",
        400,
        expected_params={"ModelPackageName": arn(99)},
    )
    code, _, err = cli(capsys, ["--stage", "dev", "--arn", arn(99), "--stages-file", str(stages_file)], aws)
    assert code == 1
    line = one_error_line(err)
    assert f"describing {arn(99)}" in line and "does not exist" in line and "region" in line


def test_a_stage_without_a_serving_config_call_is_refused_with_the_fix(
    aws: StubbedSession, stages_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = stages_file.read_text()
    dev_serving = re.compile(r"^        serving=ServingConfig\(\n.*?^        \),\n", re.S | re.M)
    assert dev_serving.search(text) is not None
    stages_file.write_text(dev_serving.sub("", text, count=1))
    before = stages_file.read_bytes()
    aws.expect_describe(4)

    code, _, err = cli(capsys, ["--stage", "dev", "--arn", arn(4), "--stages-file", str(stages_file)], aws)

    assert code == 1
    assert "dev() has no ServingConfig(...) calls" in one_error_line(err)
    assert stages_file.read_bytes() == before


def test_the_project_stages_file_is_the_default() -> None:
    assert promote.parse_args([]).stages_file == REPO_ROOT / "config" / "stages.py"
