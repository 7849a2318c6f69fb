"""docs/runbook.md names only commands that exist: make targets, scripts, real AWS CLI operations and parameters, and
the stack and resource names the app produces.

AWS CLI calls are checked against botocore's service models (the AWS CLI is generated from them): the operation
``aws <service> <command>`` exists, each ``--flag`` is one of its parameters (or a global or pagination option) and
each ``aws <service> wait <waiter>`` is one of the service's waiters. High-level ``aws s3`` commands are CLI
customizations with no model; only their names are checked.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from config import load_config
from config.stages import STAGES

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "docs" / "runbook.md"

# Written in parallel on other branches (the PR review workflow's `make review`, the model promotion script). They
# are accepted here only while absent; once they land they are checked like everything else, and
# test_commands_from_other_branches_have_landed stops skipping.
FROM_OTHER_BRANCHES = {"make": {"review"}, "scripts": {"promote_model.py"}}
# The Serving stack exists only when a stage names a model (and lands from another branch): its name is accepted even
# where the synthesized app has no such stack.
CONDITIONAL_STACK_PARTS = {"serving"}

GLOBAL_OPTIONS = {"--query", "--output", "--region", "--profile", "--no-cli-pager", "--cli-input-json", "--debug"}
PAGINATION_OPTIONS = {"--max-items", "--starting-token", "--page-size", "--no-paginate"}
S3_COMMANDS = {"cp", "mv", "rm", "rb", "mb", "ls", "sync", "presign"}
CLI_SERVICES = {"s3api": "s3"}


def runbook() -> str:
    return RUNBOOK.read_text(encoding="utf-8")


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))


def commands(text: str) -> Iterator[str]:
    """Every shell command in the runbook: code-block lines (continuations joined) and inline code spans."""
    in_block = False
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_block = not in_block
            continue
        if not in_block:
            continue
        pending += stripped.removesuffix("\\") + " "
        if not stripped.endswith("\\"):
            if pending.strip() and not pending.lstrip().startswith("#"):
                yield pending.strip()
            pending = ""
    outside_blocks = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    for span in re.findall(r"`([^`]+)`", outside_blocks):
        yield " ".join(span.split())


def aws_calls(text: str) -> Iterator[list[str]]:
    """The tokens of every ``aws ...`` call, including those inside ``$(...)``."""
    for command in commands(text):
        if "$(aws " in command:
            segment = command.split("$(", 1)[1].rsplit(")", 1)[0]
        elif command.startswith("aws "):
            segment = command
        else:
            continue
        tokens = shlex.split(segment, comments=True)
        if len(tokens) >= 3:
            yield tokens


def cdk_calls(text: str) -> Iterator[list[str]]:
    for command in commands(text):
        if command.startswith("cdk "):
            yield shlex.split(command, comments=True)


@cache
def service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(CLI_SERVICES.get(service, service))


def operations(service: str) -> dict[str, str]:
    model = service_model(service)
    return {xform_name(name, "-"): name for name in model.operation_names}


def flags_of(tokens: list[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for position, token in enumerate(tokens):
        if token.startswith("--"):
            following = tokens[position + 1] if position + 1 < len(tokens) else None
            found[token] = None if following is None or following.startswith("--") else following
    return found


def check_aws_call(tokens: list[str]) -> list[str]:
    """What is wrong with one ``aws`` call (empty: nothing)."""
    service, command = tokens[1], tokens[2]
    call = " ".join(tokens[:4])
    if service == "s3":
        return [] if command in S3_COMMANDS else [f"{call}: no such aws s3 command"]
    model = service_model(service)
    if command == "wait":
        waiters = botocore.session.get_session().get_waiter_model(CLI_SERVICES.get(service, service))
        names = {xform_name(name, "-"): name for name in waiters.waiter_names}
        if tokens[3] not in names:
            return [f"{call}: no such waiter"]
        operation = model.operation_model(waiters.get_waiter(names[tokens[3]]).operation)
    else:
        if command not in operations(service):
            return [f"{call}: no such operation"]
        operation = model.operation_model(operations(service)[command])
    members = operation.input_shape.members if operation.input_shape else {}
    allowed = {f"--{xform_name(name, '-')}" for name in members} | GLOBAL_OPTIONS | PAGINATION_OPTIONS
    allowed |= {f"--no-{xform_name(name, '-')}" for name, shape in members.items() if shape.type_name == "boolean"}
    return [f"{call}: no parameter {flag}" for flag in flags_of(tokens) if flag not in allowed]


# --- the checks ------------------------------------------------------------------------------------------------------


def test_every_make_target_it_names_exists() -> None:
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", runbook()))
    assert named, "expected make targets in the runbook"
    missing = named - make_targets() - FROM_OTHER_BRANCHES["make"]
    assert not missing, f"docs/runbook.md names make targets the Makefile lacks: {sorted(missing)}"


def test_every_script_it_names_exists() -> None:
    named = set(re.findall(r"\bscripts/([\w-]+\.py)", runbook()))
    assert named, "expected scripts in the runbook"
    missing = {name for name in named if not (ROOT / "scripts" / name).is_file()} - FROM_OTHER_BRANCHES["scripts"]
    assert not missing, f"docs/runbook.md names scripts that do not exist: {sorted(missing)}"


def test_commands_from_other_branches_have_landed() -> None:
    absent = sorted(
        [f"make {t}" for t in FROM_OTHER_BRANCHES["make"] if t not in make_targets()]
        + [f"scripts/{s}" for s in FROM_OTHER_BRANCHES["scripts"] if not (ROOT / "scripts" / s).is_file()]
    )
    if absent:
        pytest.skip(f"not merged yet, accepted in the runbook meanwhile: {', '.join(absent)}")


def test_every_aws_call_is_a_real_operation_with_real_parameters() -> None:
    calls = list(aws_calls(runbook()))
    assert len(calls) >= 20, "expected the runbook's AWS CLI calls"
    problems = [problem for tokens in calls for problem in check_aws_call(tokens)]
    assert not problems, "\n".join(problems)


def test_the_aws_check_catches_a_made_up_flag_and_operation() -> None:
    assert check_aws_call(["aws", "logs", "delete-log-stream", "--log-group-name", "g", "--stream", "s"]) == [
        "aws logs delete-log-stream --log-group-name: no parameter --stream"
    ]
    assert check_aws_call(["aws", "sagemaker", "approve-model", "--arn", "x"]) == [
        "aws sagemaker approve-model --arn: no such operation"
    ]
    assert check_aws_call(["aws", "sagemaker", "wait", "notebook-instance-gone"]) == [
        "aws sagemaker wait notebook-instance-gone: no such waiter"
    ]


def stage_names(dev: Any) -> dict[str, set[str]]:
    """Per kind of name, what the stages of config/stages.py produce (stacks from the synthesized app's parts)."""
    parts = {stack.stack_name.removeprefix(f"{load_config('dev').prefix}-") for stack in dev.platform.stacks}
    names: dict[str, set[str]] = {"stack": set(), "pipeline": set(), "group": set(), "job": set(), "domain": set()}
    for stage in STAGES:
        config = load_config(stage)
        names["stack"] |= {config.stack_name(part) for part in parts | CONDITIONAL_STACK_PARTS}
        names["pipeline"] |= {config.training_pipeline_name, config.batch_inference_pipeline_name}
        names["group"].add(config.model_package_group_name)
        names["job"].add(f"{config.prefix}-prepare-dataset")
        names["domain"].add(f"{config.prefix}-packages")
    return names


NAME_FLAGS = {
    "--stack-name": "stack",
    "--pipeline-name": "pipeline",
    "--model-package-group-name": "group",
    "--job-name": "job",
    "--domain": "domain",
}


def test_cdk_and_aws_commands_use_names_the_app_produces(dev: Any) -> None:
    names = stage_names(dev)
    # The stacks the synthesized app holds are among them (the parts are read from it, so this guards the mapping).
    assert {stack.stack_name for stack in dev.platform.stacks} <= names["stack"]
    prefixes = tuple(f"{load_config(stage).prefix}-" for stage in STAGES)
    wrong = []
    for tokens in cdk_calls(runbook()):
        for token in tokens[2:]:
            if token.startswith(prefixes) and token not in names["stack"]:
                wrong.append(f"{' '.join(tokens)}: {token} is not a stack of the app")
        for position, token in enumerate(tokens):
            setting = tokens[position + 1] if token == "-c" else ""
            if setting.startswith("stage=") and setting.split("=", 1)[1] not in STAGES:
                wrong.append(f"{' '.join(tokens)}: unknown stage")
    for tokens in aws_calls(runbook()):
        for flag, value in flags_of(tokens).items():
            if value is None or "<" in value:
                continue  # a placeholder the operator fills in
            kind = NAME_FLAGS.get(flag)
            if kind is not None and value not in names[kind]:
                wrong.append(f"{' '.join(tokens[:3])} {flag} {value}: not a {kind} name the app produces")
            notebook = flag in ("--notebook-instance-name", "--notebook-instance-lifecycle-config-name")
            if notebook and not value.startswith(prefixes):
                wrong.append(f"{' '.join(tokens[:3])} {flag} {value}: notebooks are named <prefix>-<user>")
    assert not wrong, "\n".join(wrong)


def test_the_decommissioning_section_deletes_every_kind_of_resource_prod_retains() -> None:
    # tests/stacks/test_teardown.py pins what prod retains; each kind needs its command here.
    from tests.stacks.test_teardown import PROD_KEPT

    section = runbook().split("## 7. Decommission prod", 1)[1]
    deleting = {
        "AWS::KMS::Key": "aws kms schedule-key-deletion",
        "AWS::S3::Bucket": "aws s3 rb",
        "AWS::Glue::Database": "aws glue delete-database",
        "AWS::Logs::LogGroup": "aws logs delete-log-group",
        "AWS::SageMaker::ModelPackageGroup": "aws sagemaker delete-model-package-group",
        "AWS::CodeArtifact::Domain": "aws codeartifact delete-domain",
        "AWS::CodeArtifact::Repository": "aws codeartifact delete-repository",
        "AWS::SageMaker::NotebookInstance": "aws sagemaker delete-notebook-instance ",
        "AWS::SageMaker::NotebookInstanceLifecycleConfig": "aws sagemaker delete-notebook-instance-lifecycle-config",
        "AWS::ApiGateway::Account": "aws apigateway update-account",
        "AWS::IAM::Role": "aws iam delete-role",
    }
    kinds = {resource_type for _, resource_type in PROD_KEPT}
    assert kinds <= set(deleting), sorted(kinds - set(deleting))
    missing = {kind: deleting[kind] for kind in kinds if deleting[kind] not in section}
    assert not missing, missing
