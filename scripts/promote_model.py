"""Promote an approved model to a stage: list the approved packages, then set the stage's model in config/stages.py.

The platform serves what the reviewed stage config names (GitOps): ``serving.model_package_arn`` in the stage's
function of ``config/stages.py``. This script lists the Approved model packages of the stage's model package group
(``<project>-<stage>-models``), newest first, and rewrites that one argument for one stage, printing the diff. Commit
the change, open a pull request (its synth diff shows the new model), and merging deploys it.

    python scripts/promote_model.py --stage dev                        # list dev's approved packages
    python scripts/promote_model.py --stage prod --latest --dry-run    # show the diff for the newest, write nothing
    python scripts/promote_model.py --stage prod \
        --arn arn:aws:sagemaker:eu-west-1:111122223333:model-package/nlp-prod-models/7

- Only a package whose ``ModelApprovalStatus`` is Approved (DescribeModelPackage, asked at promotion time) and that
  belongs to the stage's group is written; anything else is refused with the reason and the fix, exit code 1.
- Only the ``model_package_arn=`` argument of the ``ServingConfig(...)`` call inside the stage's function changes
  (added as the first argument when absent); the other arguments, comments and formatting stay. A call that no
  longer fits the 120-character line is wrapped the way ``ruff format`` wraps it.
- The edited file must parse and the stage's config must still validate (its own ``load_config``) before it is
  written; otherwise nothing is written.
- Usage errors (a malformed ARN, an unknown stage, a missing option) exit with code 2, refusals and AWS errors with 1,
  each as one ``error:`` line naming the bad value and the fix.

Region and credentials come from the usual AWS configuration (AWS_PROFILE, AWS_REGION, ...); ``--region`` overrides
the region. A promotion asks in the ARN's own region. Needs sagemaker:ListModelPackages and
sagemaker:DescribeModelPackage on the group's packages; writing the file needs no AWS permission.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import re
import sys
import tokenize
import types
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from config import ConfigError, PlatformConfig  # noqa: E402

DEFAULT_STAGES_FILE = REPO_ROOT / "config" / "stages.py"
APPROVED = "Approved"
# ruff's line-length (pyproject.toml): a rewritten call that gets longer is wrapped to stay within it.
LINE_LENGTH = 120
INDENT = "    "
# The shape ServingConfig itself validates, with the parts named.
PACKAGE_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"model-package/(?P<group>[A-Za-z0-9-]{1,63})/(?P<version>\d+)"
)
DEFAULT_LIMIT = 10


class UsageError(Exception):
    """A bad option value: exit code 2. The message names the value and the fix."""


class Refusal(Exception):
    """The promotion cannot be done as asked (not approved, another group, AWS said no): exit code 1."""


# --- The stages file --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StagesFile:
    """``config/stages.py`` (or a copy): its text and its stages, built from that text."""

    path: Path
    text: str
    module: types.ModuleType

    @classmethod
    def read(cls, path: Path) -> StagesFile:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"--stages-file {path}: cannot read it ({error.strerror}): pass the stages file") from None
        return cls(path=path, text=text, module=load_stages_module(text, path))

    @property
    def stages(self) -> dict[str, Any]:
        stages: dict[str, Any] = self.module.STAGES
        return stages

    def config(self, stage: str) -> PlatformConfig:
        """The stage's validated config, through the file's own ``load_config``."""
        try:
            config: PlatformConfig = self.module.load_config(stage)
        except ConfigError as error:
            raise UsageError(f"--stage {stage}: {error}") from None
        return config


def load_stages_module(text: str, path: Path) -> types.ModuleType:
    """Execute a stages file's text as a module of its own (not ``config.stages``, which stays as imported)."""
    module = types.ModuleType(f"promoted_stages_{abs(hash(str(path)))}")
    module.__file__ = str(path)
    try:
        exec(compile(text, str(path), "exec"), module.__dict__)
    except SyntaxError as error:
        raise Refusal(f"{path} does not parse (line {error.lineno}: {error.msg}): fix the file first") from None
    except ConfigError as error:
        raise Refusal(f"{path} does not load ({error}): fix the file first") from None
    if not isinstance(getattr(module, "STAGES", None), dict) or not callable(getattr(module, "load_config", None)):
        raise Refusal(f"{path} defines no STAGES and load_config: pass the project's config/stages.py")
    return module


def _is_serving_config(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name == "ServingConfig"


def find_serving_call(tree: ast.Module, function_name: str, path: Path) -> ast.Call:
    """The single ``ServingConfig(...)`` call inside the top-level function ``function_name``."""
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function_name]
    if len(functions) != 1:
        raise Refusal(f"{path} has no top-level function {function_name}(): set serving.model_package_arn by hand")
    calls = [node for node in ast.walk(functions[0]) if _is_serving_config(node)]
    if len(calls) != 1:
        found = "no" if not calls else f"{len(calls)}"
        raise Refusal(
            f"{path}: {function_name}() has {found} ServingConfig(...) calls, expected one: add "
            f'serving=ServingConfig(model_package_arn="<arn>") to its PlatformConfig, or edit it by hand'
        )
    call = calls[0]
    assert isinstance(call, ast.Call)
    return call


class _Lines:
    """Line/column access with ast's UTF-8 byte columns, so a non-ASCII character earlier on a line is harmless."""

    def __init__(self, text: str) -> None:
        self.lines = [line.encode("utf-8") for line in text.splitlines(keepends=True)]

    def offset(self, lineno: int, col: int) -> int:
        return sum(len(line) for line in self.lines[: lineno - 1]) + col

    def segment(self, node: ast.AST) -> str:
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return b"".join(self.lines)[start:end].decode("utf-8")


def _has_comment(source: str) -> bool:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return any(token.type == tokenize.COMMENT for token in tokens)


def _position(node: ast.expr | ast.keyword) -> tuple[int, int]:
    return node.lineno, node.col_offset


def rewrite_model_arn(text: str, function_name: str, arn: str, path: Path) -> str:
    """``text`` with the stage function's ``ServingConfig(model_package_arn=...)`` set to ``arn``."""
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as error:
        raise Refusal(f"{path} does not parse (line {error.lineno}: {error.msg}): fix the file first") from None
    call = find_serving_call(tree, function_name, path)
    lines = _Lines(text)
    raw = b"".join(lines.lines)
    new_value = f'"{arn}"'  # PACKAGE_ARN admits no quote or backslash
    existing = next((keyword for keyword in call.keywords if keyword.arg == "model_package_arn"), None)
    call_start = lines.offset(call.lineno, call.col_offset)
    call_end = lines.offset(call.end_lineno or call.lineno, call.end_col_offset or 0)

    arguments_in_order: list[ast.expr | ast.keyword] = [*call.args, *call.keywords]
    argument_lines = {line for node in arguments_in_order for line in (node.lineno, node.end_lineno)}
    if len(argument_lines) <= 1 and not _has_comment(lines.segment(call)):
        # The arguments on one line (the call's, or hugged between the parentheses): rebuild the argument list and
        # lay the call out as ruff format would, on one line if it fits, else wrapped.
        arguments = [lines.segment(argument) for argument in call.args]
        for keyword in call.keywords:
            value = new_value if keyword is existing else lines.segment(keyword.value)
            arguments.append(f"{keyword.arg}={value}" if keyword.arg else f"**{value}")
        if existing is None:
            arguments.insert(0, f"model_package_arn={new_value}")
        function = lines.segment(call.func)
        line_start = lines.offset(call.lineno, 0)
        last_line = call.end_lineno or call.lineno
        line_end = lines.offset(last_line, 0) + len(lines.lines[last_line - 1].rstrip(b"\r\n"))
        prefix = raw[line_start:call_start].decode("utf-8")
        suffix = raw[call_end:line_end].decode("utf-8")
        # A comma after the last argument (ruff's "magic trailing comma") keeps one argument a line.
        last_end = max((lines.offset(n.end_lineno or 0, n.end_col_offset or 0) for n in arguments_in_order), default=0)
        magic_comma = bool(arguments_in_order) and raw[last_end : call_end - 1].strip() == b","
        rendered = f"{function}({', '.join(arguments)})"
        if magic_comma or len(prefix + rendered + suffix) > LINE_LENGTH:
            indent = re.match(r"[ \t]*", prefix)
            base = indent.group(0) if indent else ""
            inner = base + INDENT
            hugged = inner + ", ".join(arguments)
            if not magic_comma and len(hugged) <= LINE_LENGTH:
                body = hugged + "\n"
            else:
                body = "".join(f"{inner}{argument},\n" for argument in arguments)
            rendered = f"{function}(\n{body}{base})"
        replacement = rendered.encode("utf-8")
        return (raw[:call_start] + replacement + raw[call_end:]).decode("utf-8")

    # Several lines: touch only the value, or add one argument line, so comments and layout stay.
    if existing is not None:
        start = lines.offset(existing.value.lineno, existing.value.col_offset)
        end = lines.offset(existing.value.end_lineno or 0, existing.value.end_col_offset or 0)
        return (raw[:start] + new_value.encode("utf-8") + raw[end:]).decode("utf-8")
    first = min(arguments_in_order, key=_position, default=None)
    if first is None or first.lineno == call.lineno:
        # ServingConfig(\n) or arguments starting on the call's line: insert right after the parenthesis.
        open_paren = raw.index(b"(", lines.offset(call.func.end_lineno or 0, call.func.end_col_offset or 0))
        separator = ", " if first is not None else ""
        insert = f"model_package_arn={new_value}{separator}".encode()
        return (raw[: open_paren + 1] + insert + raw[open_paren + 1 :]).decode("utf-8")
    line_start = lines.offset(first.lineno, 0)
    indentation = lines.lines[first.lineno - 1][: first.col_offset]
    insert = indentation + f"model_package_arn={new_value},\n".encode()
    return (raw[:line_start] + insert + raw[line_start:]).decode("utf-8")


def unified_diff(before: str, after: str, path: Path) -> str:
    shown = _display_path(path)
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{shown}", f"b/{shown}"
        )
    )


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# --- The registry -----------------------------------------------------------------------------------------------------


def parse_package_arn(arn: str) -> re.Match[str]:
    match = PACKAGE_ARN.fullmatch(arn.strip())
    if match is None:
        raise UsageError(
            f"--arn {arn!r} is not a versioned model package ARN: pass one like "
            "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version> (list them by running this script "
            "with --stage alone)"
        )
    return match


def _aws_error(error: Exception, action: str) -> Refusal:
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(error, NoCredentialsError):
        return Refusal(f"{action}: no AWS credentials found: run aws configure or set AWS_PROFILE")
    if isinstance(error, NoRegionError):
        return Refusal(f"{action}: no AWS region: pass --region or set AWS_REGION")
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code, message = str(details.get("Code", "")), " ".join(str(details.get("Message", "")).split())
        if code in ("AccessDeniedException", "AccessDenied"):
            return Refusal(
                f"{action}: access denied ({message}): use credentials allowed sagemaker:ListModelPackages and "
                "sagemaker:DescribeModelPackage"
            )
        if code == "ValidationException" and "does not exist" in message:
            return Refusal(f"{action}: {message}: check the ARN, its region (--region) and the account")
        return Refusal(f"{action} failed: {code}: {message}")
    return Refusal(f"{action} failed ({type(error).__name__}: {' '.join(str(error).split())[:300]})")


def approved_packages(client: Any, group: str) -> list[dict[str, Any]]:
    """Summaries of the group's Approved packages, newest first, every page."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        pages = client.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group, ModelApprovalStatus=APPROVED, SortBy="CreationTime", SortOrder="Descending"
        )
        return [package for page in pages for package in page.get("ModelPackageSummaryList", [])]
    except (ClientError, BotoCoreError) as error:
        raise _aws_error(error, f"listing the approved packages of {group}") from error


def describe(client: Any, arn: str) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        package: dict[str, Any] = client.describe_model_package(ModelPackageName=arn)
    except (ClientError, BotoCoreError) as error:
        raise _aws_error(error, f"describing {arn}") from error
    return package


def check_promotable(package: dict[str, Any], arn: str, group: str) -> None:
    """Refuse a package of another group, not Approved, or not Completed."""
    if package.get("ModelPackageGroupName") != group:
        raise Refusal(
            f"{arn} belongs to group {package.get('ModelPackageGroupName')}, not {group}: promote a package of the "
            "stage's own group"
        )
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        raise Refusal(
            f"{arn} is {status}, not {APPROVED}: review its metrics and approve it first (notebooks/"
            "02_train_and_register.ipynb, section 4, or aws sagemaker update-model-package --model-package-arn "
            f'{arn} --model-approval-status Approved --approval-description "<why>")'
        )
    if package.get("ModelPackageStatus", "Completed") != "Completed":
        raise Refusal(
            f"{arn} is {package.get('ModelPackageStatus')}, not Completed: wait for its registration to finish"
        )


def _created(package: dict[str, Any]) -> str:
    created = package.get("CreationTime")
    return f"{created:%Y-%m-%d %H:%M %Z}".strip() if isinstance(created, datetime) else "?"


def evaluation_uri(package: dict[str, Any]) -> str | None:
    uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    return str(uri) if uri else None


def print_listing(
    client: Any, group: str, region: str | None, stages: StagesFile, limit: int, out: TextIO
) -> list[dict[str, Any]]:
    packages = approved_packages(client, group)
    where = f" in {region}" if region else ""
    if not packages:
        print(
            f"no Approved model package in {group}{where}: train and approve one "
            "(notebooks/02_train_and_register.ipynb)",
            file=out,
        )
        return packages
    serving: dict[str, list[str]] = {}
    for name in stages.stages:
        arn = stages.config(name).serving.model_package_arn
        if arn:
            serving.setdefault(arn, []).append(name)
    print(f"{len(packages)} Approved model packages in {group}{where}, newest first:", file=out)
    for package in packages[:limit]:
        arn = package["ModelPackageArn"]
        details = describe(client, arn)  # the approval note and the evaluation report are not in the summary
        marker = f"   <- serving in {', '.join(serving[arn])}" if arn in serving else ""
        print(f"  v{package.get('ModelPackageVersion', '?')}  {_created(package)}  {arn}{marker}", file=out)
        if details.get("ApprovalDescription"):
            print(f"      approval:   {' '.join(str(details['ApprovalDescription']).split())}", file=out)
        uri = evaluation_uri(details)
        if uri:
            print(f"      evaluation: {uri}", file=out)
    if len(packages) > limit:
        print(f"  ... {len(packages) - limit} older ones (--limit {len(packages)} shows them all)", file=out)
    return packages


# --- The command ------------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", help="Stage whose group to list and whose config to change (default: dev).")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--arn", help="Approved model package ARN to serve in --stage.")
    choice.add_argument("--latest", action="store_true", help="Serve the newest Approved package of the group.")
    parser.add_argument("--dry-run", action="store_true", help="Print the diff; do not write the stages file.")
    parser.add_argument(
        "--stages-file", type=Path, default=DEFAULT_STAGES_FILE, help="The stages file (default: config/stages.py)."
    )
    parser.add_argument("--region", help="Region of the registry; default: the ARN's, else the AWS configuration's.")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"Packages to show when listing (default {DEFAULT_LIMIT})."
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace, session: Any, out: TextIO) -> None:
    if args.limit < 1:
        raise UsageError(f"--limit {args.limit}: pass 1 or more")
    stages = StagesFile.read(args.stages_file)
    promoting = bool(args.arn or args.latest)
    if promoting and not args.stage:
        raise UsageError("--stage is missing: name the stage that serves the model (" + ", ".join(stages.stages) + ")")
    stage = args.stage or "dev"
    if stage not in stages.stages:
        raise UsageError(f"--stage {stage}: known stages are {', '.join(stages.stages)}")
    config = stages.config(stage)
    group = config.model_package_group_name

    region = args.region
    if args.arn:
        match = parse_package_arn(args.arn)
        arn = args.arn.strip()
        if args.region and args.region != match["region"]:
            raise UsageError(f"--region {args.region}: the ARN is in {match['region']}: drop --region or match it")
        region = match["region"]
        if match["group"] != group:
            raise Refusal(
                f"--arn {arn} is a package of group {match['group']}, but stage {stage} serves from {group}: "
                "pick one of its packages (list them with --stage " + stage + ")"
            )
    client = session.client("sagemaker", region_name=region) if region else session.client("sagemaker")

    if not promoting:
        print_listing(client, group, region or getattr(session, "region_name", None), stages, args.limit, out)
        return
    if args.latest:
        packages = approved_packages(client, group)
        if not packages:
            raise Refusal(f"no Approved model package in {group}: approve one first (notebooks/02_train_and_register)")
        arn = packages[0]["ModelPackageArn"]
        print(f"newest Approved package of {group}: {arn} (created {_created(packages[0])})", file=out)

    package = describe(client, arn)
    check_promotable(package, arn, group)
    current = config.serving.model_package_arn
    if current == arn:
        print(f"stage {stage} already serves {arn}: nothing to change in {_display_path(args.stages_file)}", file=out)
        return

    function_name = stages.stages[stage].__name__
    before = stages.text
    after = rewrite_model_arn(before, function_name, arn, args.stages_file)
    promoted = load_stages_module(after, args.stages_file)
    try:
        new_config: PlatformConfig = promoted.load_config(stage)
    except ConfigError as error:
        raise Refusal(f"the edited {args.stages_file} does not validate ({error}): nothing written") from None
    if new_config.serving.model_package_arn != arn:
        raise Refusal(
            f"the edited {args.stages_file} does not give stage {stage} the new ARN (its ServingConfig is built "
            "elsewhere): set serving.model_package_arn by hand"
        )
    for other in stages.stages:
        if other != stage and promoted.load_config(other) != stages.config(other):
            raise Refusal(f"the edit would change stage {other} too: set serving.model_package_arn by hand")

    print(unified_diff(before, after, args.stages_file), end="", file=out)
    approval = " ".join(str(package.get("ApprovalDescription", "")).split())
    print(f"\nv{package.get('ModelPackageVersion', '?')} approved: {approval or '(no approval description)'}", file=out)
    if args.dry_run:
        print(f"dry run: {_display_path(args.stages_file)} not written", file=out)
        return
    args.stages_file.write_text(after, encoding="utf-8")
    print(
        f"stage {stage} now serves {arn} (was {current or 'no model'}). Next: commit "
        f"{_display_path(args.stages_file)}, open a pull request and review its synth diff; merging deploys it.",
        file=out,
    )


def main(argv: Sequence[str] | None = None, *, session: Any = None, out: TextIO | None = None) -> int:
    """Command line entry point: 0 on success, 2 for a usage error, 1 for a refusal, each with one ``error:`` line."""
    args = parse_args(argv)
    try:
        if session is None:
            import boto3

            session = boto3.session.Session(region_name=args.region)
        run(args, session, out or sys.stdout)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Refusal as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
