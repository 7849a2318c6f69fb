#!/usr/bin/env python3
"""Review a change like the PR comment does: template diff, compliance and cost of the working tree against a ref.

Usage (``make review BASE=origin/main`` runs this)::

    python scripts/review.py --base origin/main [--stages dev prod] [--work-dir .build/review] [--no-cfn-lint]

Steps, all offline (no AWS credentials, no network):

1. check that ``--base`` names a commit, and check it out as a git worktree in ``<work-dir>/base-src`` (reusing this
   checkout's ``.venv`` and ``node_modules``);
2. ``cdk synth --quiet -c stage=<stage> -o <work-dir>/{base,head}/<stage>`` for each stage: the base from its own
   folder (its ``app.py`` and ``cdk.json``), the head from this working tree, uncommitted changes included;
3. cfn-lint on the head's templates, then per stage and stack the resources added, removed and modified (normalised
   templates, see ``scripts/template_review.py``), the cdk-nag acknowledgments per pack and the new ones, and the
   idle cost base → head with the lines that changed (``scripts/cost_report.py``'s prices);
4. print the comment (Markdown) and write it to ``<work-dir>/comment.md``.

Exits 2 with a message naming the problem (a ref that is not a commit, a synth that fails) and 0 otherwise: the
review reports, the tests and the synth gate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from scripts.template_review import ReviewError, render_comment, review_stage  # noqa: E402

DEFAULT_STAGES = ("dev", "prod")
SHARED_ENVIRONMENTS = (".venv", "node_modules")  # reused by the base checkout instead of a second setup
STDERR_TAIL_LINES = 30


def progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def resolve_ref(repo: Path, ref: str) -> str:
    """The commit SHA of ``ref``; a clear error naming it when it is not a commit of ``repo``."""
    result = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if result.returncode != 0 or not result.stdout.strip():
        raise ReviewError(
            f"BASE={ref!r} is not a commit in {repo}: fetch it first (e.g. 'git fetch origin main' for "
            "origin/main; in CI check out with fetch-depth: 0) or name another branch, tag or SHA"
        )
    return result.stdout.strip()


def checkout_base(repo: Path, sha: str, folder: Path) -> None:
    """A fresh detached worktree of ``sha`` in ``folder``, sharing this checkout's Python and Node environments."""
    if folder.exists():
        git(repo, "worktree", "remove", "--force", str(folder))
        if folder.exists():  # not a worktree of this repository (e.g. left by an interrupted run)
            shutil.rmtree(folder)
    git(repo, "worktree", "prune")
    folder.parent.mkdir(parents=True, exist_ok=True)
    result = git(repo, "worktree", "add", "--detach", "--force", str(folder), sha)
    if result.returncode != 0:
        raise ReviewError(f"cannot check out {sha} into {folder}: {result.stderr.strip()}")
    for name in SHARED_ENVIRONMENTS:
        source = repo / name
        if not source.exists():
            raise ReviewError(f"{source} is missing: run 'make setup' first")
        link = folder / name
        if not link.exists():
            link.symlink_to(source.resolve(), target_is_directory=True)
    if not (folder / "cdk.json").exists():
        raise ReviewError(f"commit {sha} has no cdk.json: it is not a commit of this CDK app; name a later base")


def synth(app_dir: Path, stage: str, outdir: Path, label: str) -> None:
    """``cdk synth`` of ``stage`` from ``app_dir`` (its own cdk.json and app.py) into ``outdir``."""
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(
        [str(REPO_ROOT / "node_modules" / ".bin"), str(REPO_ROOT / ".venv" / "bin"), env["PATH"]]
    )
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    command = ["cdk", "synth", "--quiet", "-c", f"stage={stage}", "-o", str(outdir.resolve())]
    result = subprocess.run(command, cwd=app_dir, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-STDERR_TAIL_LINES:])
        raise ReviewError(f"cdk synth of stage {stage} failed for {label} (in {app_dir}):\n{tail}")


def run_cfn_lint(assembly_dir: Path) -> str:
    """cfn-lint's findings on every template of the assembly ("" when clean), as the tests run it."""
    templates = sorted(str(path) for path in assembly_dir.glob("*.template.json"))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", *templates], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 and not result.stdout.strip():
        return f"cfn-lint failed to run: {result.stderr.strip()}"
    return result.stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="origin/main", help="the ref to compare with (default: %(default)s)")
    parser.add_argument("--stages", nargs="+", default=list(DEFAULT_STAGES), help="default: %(default)s")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / ".build" / "review", help="default: %(default)s")
    parser.add_argument("--no-cfn-lint", action="store_true", help="skip cfn-lint on the head's templates")
    args = parser.parse_args(argv)
    work_dir: Path = args.work_dir.resolve()
    try:
        sha = resolve_ref(REPO_ROOT, args.base)
        head_sha = git(REPO_ROOT, "rev-parse", "--short", "HEAD").stdout.strip() or "?"
        dirty = bool(git(REPO_ROOT, "status", "--porcelain", "--untracked-files=no").stdout.strip())
        progress(f"base {args.base} is {sha[:12]}: checking it out into {work_dir / 'base-src'}")
        checkout_base(REPO_ROOT, sha, work_dir / "base-src")
        reviews = []
        for stage in args.stages:
            progress(f"cdk synth, stage {stage}, base {args.base} -> {work_dir / 'base' / stage}")
            synth(work_dir / "base-src", stage, work_dir / "base" / stage, f"base {args.base} ({sha[:12]})")
            progress(f"cdk synth, stage {stage}, head (working tree) -> {work_dir / 'head' / stage}")
            synth(REPO_ROOT, stage, work_dir / "head" / stage, "the working tree (head)")
            lint = None
            if not args.no_cfn_lint:
                progress(f"cfn-lint, stage {stage}, head templates")
                lint = run_cfn_lint(work_dir / "head" / stage)
            progress(f"comparing stage {stage}: templates, acknowledgments, cost")
            reviews.append(review_stage(stage, work_dir / "base" / stage, work_dir / "head" / stage, cfn_lint=lint))
    except ReviewError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    head_label = f"`{head_sha}`{' + uncommitted changes' if dirty else ''}"
    comment = render_comment(reviews, f"`{args.base}` (`{sha[:12]}`)", head_label)
    (work_dir / "comment.md").write_text(comment, encoding="utf-8")
    progress(f"comment written to {work_dir / 'comment.md'}")
    print(comment, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
