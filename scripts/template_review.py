"""Compare two synthesized cloud assemblies of the platform: the template diff, compliance and cost of a change.

Used by ``scripts/review.py`` (``make review``, the PR comment) and by ``tests/stacks/test_baselines.py`` (the
normalised baseline templates under ``tests/baselines/``). It reads only the files ``cdk synth -o DIR`` writes and
never imports ``aws_cdk``, so infrastructure code never depends on it.

Normalising a template replaces what changes without an infrastructure change:

* asset hashes (SHA-256, 64 hex digits) wherever they appear: ``cdk-hnb659fds-assets-...`` object keys such as
  ``<hash>.zip``, ``.tar.gz``/``.gz``, ``.py`` and ``.json`` asset names, ``asset.<hash>`` metadata paths, legacy
  ``AssetParameters<hash>...`` names, and hashes quoted inside embedded JSON (pipeline definitions). A change of
  runtime code changes its asset's hash only; the review reports that separately, as "asset contents changed".
* the CDK CLI's tooling metadata: the ``AWS::CDK::Metadata`` resource (its ``Analytics`` string lists the library's
  version and construct types) with its ``CDKMetadataAvailable`` condition, and the ``aws:cdk:path`` and
  ``aws:asset:*`` metadata of each resource. ``cdk synth`` writes them, an in-process synth (the tests) does not,
  and none of them is deployed infrastructure; the CDK metadata changes with every library upgrade.

Everything else in a template is deterministic (``tests/stacks/test_determinism.py``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ASSET_HASH = re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{64}(?![0-9a-fA-F])")
ASSET_HASH_PLACEHOLDER = "<asset-hash>"
CDK_METADATA_TYPE = "AWS::CDK::Metadata"
CDK_METADATA_CONDITION = "CDKMetadataAvailable"
TOOLING_METADATA = frozenset({"aws:cdk:path"})
STACK_ARTIFACT = "aws:cloudformation:stack"
COMMENT_MARKER = "<!-- nlp-platform-review -->"
# GitHub refuses comments over 65,536 characters; leave room for the closing note.
MAX_COMMENT_CHARS = 60_000
MAX_PATHS_PER_RESOURCE = 12
MAX_VALUE_CHARS = 160
MAX_REASON_CHARS = 400  # a reviewer judges the whole reason
RESOURCE_SECTIONS = (
    "Type",
    "Properties",
    "DependsOn",
    "Condition",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "Metadata",
)
TEMPLATE_SECTIONS = ("Parameters", "Conditions", "Mappings", "Rules", "Outputs")


class ReviewError(Exception):
    """An unreadable assembly or a bad argument; the message names it and the fix."""


# ---------------------------------------------------------------------------------------------------------------------
# Normalisation and assemblies


def _normalise_value(value: Any) -> Any:
    if isinstance(value, str):
        return ASSET_HASH.sub(ASSET_HASH_PLACEHOLDER, value)
    if isinstance(value, dict):
        return {_normalise_value(key): _normalise_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalise_value(item) for item in value]
    return value


def normalise_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``template`` without what changes when the infrastructure does not.

    Asset hashes become ``<asset-hash>``; the CDK CLI's tooling metadata goes (the ``AWS::CDK::Metadata`` resource and
    its region condition, and the ``aws:cdk:path`` and ``aws:asset:*`` resource metadata, which ``cdk synth`` adds and
    an in-process synth does not), so a template normalises the same whichever way it was synthesized.
    """
    normalised: dict[str, Any] = _normalise_value(dict(template))
    resources = normalised.get("Resources", {})
    for logical_id, resource in list(resources.items()):
        if resource.get("Type") == CDK_METADATA_TYPE:
            del resources[logical_id]
            continue
        metadata = resource.get("Metadata")
        if isinstance(metadata, dict):
            for key in [key for key in metadata if key in TOOLING_METADATA or key.startswith("aws:asset:")]:
                del metadata[key]
            if not metadata:
                del resource["Metadata"]
    conditions = normalised.get("Conditions")
    if isinstance(conditions, dict) and CDK_METADATA_CONDITION in conditions:
        del conditions[CDK_METADATA_CONDITION]
        if not conditions:
            del normalised["Conditions"]
    return normalised


def render_template(template: Mapping[str, Any]) -> str:
    """The stable text of a template: pretty-printed, keys sorted, one trailing newline (readable in a PR diff)."""
    return json.dumps(template, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def asset_hashes(template: Mapping[str, Any]) -> set[str]:
    """Every asset hash the template mentions."""
    return set(ASSET_HASH.findall(json.dumps(template)))


def read_stacks(assembly_dir: Path) -> dict[str, dict[str, Any]]:
    """Stack name to its template, for every CloudFormation stack of the cloud assembly in ``assembly_dir``.

    The stacks are whatever the manifest lists, so a stack added to the app appears without a change here.
    """
    manifest_path = Path(assembly_dir) / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ReviewError(
            f"{assembly_dir} is not a cloud assembly ({error}); synthesize into it with "
            f"'cdk synth --quiet -c stage=<stage> -o {assembly_dir}'"
        ) from error
    stacks = {}
    for name, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") == STACK_ARTIFACT:
            template_path = Path(assembly_dir) / artifact["properties"]["templateFile"]
            try:
                stacks[name] = json.loads(template_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as error:
                raise ReviewError(f"cannot read the template of stack {name} ({template_path}): {error}") from error
    return stacks


# ---------------------------------------------------------------------------------------------------------------------
# Template diff

_MISSING: Any = object()


@dataclass(frozen=True)
class ValueChange:
    """One leaf that differs: ``path`` inside the resource (``Properties.VersioningConfiguration.Status``).

    Where a list changed length, each item that came is one change at ``<path>[+]`` and each that went at ``<path>[-]``.
    """

    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ResourceChange:
    logical_id: str
    type: str
    kind: str  # "added", "removed" or "modified"
    changes: tuple[ValueChange, ...] = ()

    @property
    def replaced_type(self) -> bool:
        return any(change.path == "Type" for change in self.changes)


@dataclass(frozen=True)
class StackDiff:
    name: str
    status: str  # "added", "removed", "modified" or "unchanged"
    resources: tuple[ResourceChange, ...] = ()
    sections: tuple[ValueChange, ...] = ()  # Outputs, Parameters, Conditions, ...
    resource_count: int = 0
    assets_changed: int = 0  # asset hashes in head that base does not have (runtime code changed)

    def of_kind(self, kind: str) -> list[ResourceChange]:
        return [change for change in self.resources if change.kind == kind]


def _diff(before: Any, after: Any, path: str) -> list[ValueChange]:
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            changes += _diff(before.get(key, _MISSING), after.get(key, _MISSING), sub)
        return changes
    if isinstance(before, list) and isinstance(after, list):
        if len(before) == len(after):
            changes = []
            for index, (old, new) in enumerate(zip(before, after, strict=True)):
                changes += _diff(old, new, f"{path}[{index}]")
            return changes
        # Items came or went (a policy statement, a tag): name those, not the whole list twice.
        removed = [ValueChange(f"{path}[-]", item, _MISSING) for item in before if item not in after]
        added = [ValueChange(f"{path}[+]", _MISSING, item) for item in after if item not in before]
        return removed + added or [ValueChange(path, before, after)]
    return [ValueChange(path, before, after)]


def diff_stack(name: str, base: Mapping[str, Any] | None, head: Mapping[str, Any] | None) -> StackDiff:
    """The normalised difference of one stack between base and head (either may be absent)."""
    if head is None and base is None:
        raise ReviewError(f"stack {name} is in neither assembly")
    if base is None or head is None:
        present = normalise_template(head if head is not None else base)  # type: ignore[arg-type]
        kind = "added" if base is None else "removed"
        resources = tuple(
            ResourceChange(logical_id, resource.get("Type", "?"), kind)
            for logical_id, resource in sorted(present.get("Resources", {}).items())
            if resource.get("Type") != CDK_METADATA_TYPE
        )
        return StackDiff(name, kind, resources, resource_count=len(resources))
    old, new = normalise_template(base), normalise_template(head)
    old_resources, new_resources = old.get("Resources", {}), new.get("Resources", {})
    changes = []
    for logical_id in sorted(set(old_resources) | set(new_resources)):
        before, after = old_resources.get(logical_id), new_resources.get(logical_id)
        if before is None:
            changes.append(ResourceChange(logical_id, after.get("Type", "?"), "added"))
        elif after is None:
            changes.append(ResourceChange(logical_id, before.get("Type", "?"), "removed"))
        else:
            leaves = [
                change
                for section in RESOURCE_SECTIONS
                for change in _diff(before.get(section, _MISSING), after.get(section, _MISSING), section)
            ]
            if leaves:
                changes.append(ResourceChange(logical_id, after.get("Type", "?"), "modified", tuple(leaves)))
    sections = tuple(
        change
        for section in TEMPLATE_SECTIONS
        for change in _diff(old.get(section, _MISSING), new.get(section, _MISSING), section)
    )
    new_hashes = asset_hashes(head) - asset_hashes(base)
    status = "modified" if changes or sections else "unchanged"
    return StackDiff(name, status, tuple(changes), sections, len(new_resources), len(new_hashes))


def diff_assemblies(base: Mapping[str, Mapping[str, Any]], head: Mapping[str, Mapping[str, Any]]) -> list[StackDiff]:
    """One ``StackDiff`` per stack of either assembly, by stack name."""
    return [diff_stack(name, base.get(name), head.get(name)) for name in sorted(set(base) | set(head))]


# ---------------------------------------------------------------------------------------------------------------------
# Compliance


@dataclass(frozen=True, order=True)
class Acknowledgment:
    """A cdk-nag finding acknowledged on a resource (template metadata ``cdk_nag.rules_to_suppress``)."""

    stack: str
    logical_id: str
    rule: str
    pack: str
    reason: str = field(compare=False)


# Where each scanner reads an acknowledgment in a resource's metadata: key, list, reason field, and the pack name
# (None: the rule id's prefix, as cdk-nag's ``HIPAA.Security-...``). components/compliance.py writes them.
_ACKNOWLEDGMENT_METADATA = (
    ("cdk_nag", "rules_to_suppress", "reason", None),
    ("cfn_nag", "rules_to_suppress", "reason", "cfn_nag (justification)"),
    ("checkov", "skip", "comment", "checkov (justification)"),
)


def acknowledgments(stacks: Mapping[str, Mapping[str, Any]]) -> set[Acknowledgment]:
    """Every acknowledged finding and scanner justification in the templates' resource metadata."""
    found = set()
    for stack, template in stacks.items():
        for logical_id, resource in template.get("Resources", {}).items():
            metadata = resource.get("Metadata", {})
            for key, list_key, reason_key, pack in _ACKNOWLEDGMENT_METADATA:
                entries = metadata.get(key, {})
                for entry in entries.get(list_key, []) if isinstance(entries, dict) else []:
                    rule = str(entry.get("id"))
                    reason = str(entry.get(reason_key, ""))
                    found.add(Acknowledgment(stack, logical_id, rule, pack or rule.split("-", 1)[0], reason))
    return found


def validation_violations(assembly_dir: Path) -> dict[str, int]:
    """Violations per validation plugin in the assembly's ``validation-report.json`` (none written: none found)."""
    path = Path(assembly_dir) / "validation-report.json"
    if not path.exists():
        return {}
    report = json.loads(path.read_text(encoding="utf-8"))
    return {
        str(plugin.get("pluginName", "?")): len(plugin.get("violations", []))
        for plugin in report.get("pluginReports", [])
        if plugin.get("violations")
    }


@dataclass(frozen=True)
class ComplianceSummary:
    base_per_pack: Mapping[str, int]
    head_per_pack: Mapping[str, int]
    added: tuple[Acknowledgment, ...]
    removed: tuple[Acknowledgment, ...]
    violations: Mapping[str, int]
    cfn_lint: str | None = None  # None: not run; "" clean; otherwise its findings


def compliance_summary(
    base: Mapping[str, Mapping[str, Any]],
    head: Mapping[str, Mapping[str, Any]],
    head_dir: Path,
    cfn_lint: str | None = None,
) -> ComplianceSummary:
    old, new = acknowledgments(base), acknowledgments(head)
    return ComplianceSummary(
        base_per_pack=Counter(ack.pack for ack in old),
        head_per_pack=Counter(ack.pack for ack in new),
        added=tuple(sorted(new - old)),
        removed=tuple(sorted(old - new)),
        violations=validation_violations(head_dir),
        cfn_lint=cfn_lint,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Cost (scripts/cost_report.py prices both assemblies with the same table)


@dataclass(frozen=True)
class CostLineChange:
    stack: str
    resource: str
    what: str
    before_usd: float | None
    after_usd: float | None


@dataclass(frozen=True)
class CostDelta:
    stage: str
    base_idle_usd: float | None = None
    head_idle_usd: float | None = None
    goal_usd: float | None = None
    idle_changes: tuple[CostLineChange, ...] = ()
    usage_changes: tuple[CostLineChange, ...] = ()
    error: str | None = None

    @property
    def delta_usd(self) -> float:
        return (self.head_idle_usd or 0.0) - (self.base_idle_usd or 0.0)


def _line_totals(items: Iterable[Any]) -> dict[tuple[str, str, str], tuple[str, float]]:
    totals: dict[tuple[str, str, str], tuple[str, float]] = {}
    for item in items:
        key = (item.stack, item.resource, item.price_key)
        what, usd = totals.get(key, ("", 0.0))
        totals[key] = (f"{what}; {item.what}" if what else item.what, usd + item.usd)
    return totals


def _changed_lines(base_items: Iterable[Any], head_items: Iterable[Any]) -> tuple[CostLineChange, ...]:
    old, new = _line_totals(base_items), _line_totals(head_items)
    changes = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before is not None and after is not None and round(before[1], 6) == round(after[1], 6):
            continue
        what = after[0] if after is not None else before[0] if before is not None else ""
        changes.append(CostLineChange(key[0], key[1], what, before[1] if before else None, after[1] if after else None))
    return tuple(changes)


def cost_delta(stage: str, base_dir: Path, head_dir: Path, prices_path: Path | None = None) -> CostDelta:
    """Idle monthly cost of ``stage`` in base and head, and the idle and usage lines that changed."""
    from scripts import cost_report  # the cost helper's own module: one pricing logic for `make cost` and reviews

    try:
        prices = cost_report.load_prices(prices_path or cost_report.DEFAULT_PRICES)
        base = cost_report.stage_report(stage, Path(base_dir), prices)
        head = cost_report.stage_report(stage, Path(head_dir), prices)
    except cost_report.CostReportError as error:
        return CostDelta(stage, error=str(error))
    return CostDelta(
        stage,
        base_idle_usd=base.idle_usd,
        head_idle_usd=head.idle_usd,
        goal_usd=head.goal_usd,
        idle_changes=_changed_lines(base.idle, head.idle),
        usage_changes=_changed_lines(base.usage, head.usage),
    )


# ---------------------------------------------------------------------------------------------------------------------
# The comment


@dataclass(frozen=True)
class StageReview:
    stage: str
    stacks: list[StackDiff]
    compliance: ComplianceSummary
    cost: CostDelta


def review_stage(
    stage: str, base_dir: Path, head_dir: Path, *, cfn_lint: str | None = None, prices_path: Path | None = None
) -> StageReview:
    """Everything the comment says about one stage, from its base and head assemblies."""
    base, head = read_stacks(base_dir), read_stacks(head_dir)
    if not head:
        raise ReviewError(f"{head_dir} lists no CloudFormation stack; synthesize stage {stage} again")
    return StageReview(
        stage,
        diff_assemblies(base, head),
        compliance_summary(base, head, head_dir, cfn_lint),
        cost_delta(stage, base_dir, head_dir, prices_path),
    )


def _code(value: str) -> str:
    return "`" + value.replace("`", "'") + "`"


def _short(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False) if not isinstance(value, str) else value
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:,.2f}"


def _signed_usd(value: float) -> str:
    return f"{'+' if value >= 0 else '-'}${abs(value):,.2f}"


def _render_stack(diff: StackDiff) -> list[str]:
    if diff.status in ("added", "removed"):
        lines = [f"#### Stack {_code(diff.name)} {diff.status} ({diff.resource_count} resources)", ""]
        lines += [f"- **{diff.status}** {_code(change.logical_id)} {_code(change.type)}" for change in diff.resources]
        return [*lines, ""]
    added, removed, modified = diff.of_kind("added"), diff.of_kind("removed"), diff.of_kind("modified")
    lines = [
        f"#### Stack {_code(diff.name)}: {len(added)} added, {len(removed)} removed, {len(modified)} modified",
        "",
    ]
    lines += [f"- **added** {_code(change.logical_id)} {_code(change.type)}" for change in added]
    lines += [f"- **removed** {_code(change.logical_id)} {_code(change.type)}" for change in removed]
    for change in modified:
        note = " **type changed: replaced**" if change.replaced_type else ""
        lines.append(f"- **modified** {_code(change.logical_id)} {_code(change.type)}{note}")
        for leaf in change.changes[:MAX_PATHS_PER_RESOURCE]:
            lines.append(f"  - {_code(leaf.path)}: {_code(_short(leaf.before))} → {_code(_short(leaf.after))}")
        if len(change.changes) > MAX_PATHS_PER_RESOURCE:
            lines.append(f"  - … and {len(change.changes) - MAX_PATHS_PER_RESOURCE} more changed values")
    for leaf in diff.sections[:MAX_PATHS_PER_RESOURCE]:
        lines.append(f"- **modified** {_code(leaf.path)}: {_code(_short(leaf.before))} → {_code(_short(leaf.after))}")
    if len(diff.sections) > MAX_PATHS_PER_RESOURCE:
        lines.append(f"- … and {len(diff.sections) - MAX_PATHS_PER_RESOURCE} more changed template values")
    return [*lines, ""]


def _render_compliance(summary: ComplianceSummary) -> list[str]:
    lines = ["#### Compliance", ""]
    packs = sorted(set(summary.base_per_pack) | set(summary.head_per_pack))
    if packs:
        lines += [
            "| pack | acknowledged findings (base → head) |",
            "|---|---|",
        ]
        for pack in packs:
            before, after = summary.base_per_pack.get(pack, 0), summary.head_per_pack.get(pack, 0)
            lines.append(f"| {pack} | {before} → {after}{'' if before == after else ' **changed**'} |")
        lines += [
            "",
            "CloudFormation: aws-cdk-lib's template validation; cfn_nag and checkov: justifications for those "
            "scanners; the rest: cdk-nag packs.",
            "",
        ]
    else:
        lines += ["No cdk-nag acknowledgments in either template set.", ""]
    if summary.violations:
        lines += [f"- **{count} violation(s)** reported by {plugin}" for plugin, count in summary.violations.items()]
    else:
        lines.append("- Validation report: no violations (every registered pack and template check passed).")
    if summary.added:
        lines.append(f"- **{len(summary.added)} new acknowledgment(s) in head** (review each reason):")
        lines += [
            f"  - {ack.pack} {_code(ack.rule)} on {_code(ack.stack)} {_code(ack.logical_id)}: "
            + _short(ack.reason, MAX_REASON_CHARS)
            for ack in summary.added
        ]
    else:
        lines.append("- No new acknowledgments.")
    if summary.removed:
        lines.append(f"- {len(summary.removed)} acknowledgment(s) gone in head:")
        lines += [
            f"  - {ack.pack} {_code(ack.rule)} on {_code(ack.stack)} {_code(ack.logical_id)}" for ack in summary.removed
        ]
    if summary.cfn_lint is not None:
        if summary.cfn_lint.strip():
            lines += ["- **cfn-lint findings:**", "", "```", summary.cfn_lint.strip(), "```"]
        else:
            lines.append("- cfn-lint: no findings on any template.")
    return [*lines, ""]


def _render_cost(cost: CostDelta) -> list[str]:
    lines = ["#### Cost (idle, per month)", ""]
    if cost.error:
        return [*lines, f"Could not price the stage: {cost.error}", ""]
    goal = ""
    if cost.goal_usd is not None:
        over = (cost.head_idle_usd or 0.0) > cost.goal_usd
        goal = f" (goal {_usd(cost.goal_usd)}: {'**OVER**' if over else 'ok'})"
    lines.append(
        f"Idle: {_usd(cost.base_idle_usd)} → {_usd(cost.head_idle_usd)}, "
        f"**{_signed_usd(cost.delta_usd)}** per month{goal}"
    )
    lines.append("")
    for title, changes in (
        ("Idle lines that changed", cost.idle_changes),
        ("Usage rates that changed", cost.usage_changes),
    ):
        if not changes:
            continue
        lines += [f"{title}:", "", "| stack | resource | what | base | head |", "|---|---|---|---|---|"]
        for change in changes:
            lines.append(
                f"| {change.stack} | {_code(change.resource)} | {_short(change.what)} | "
                f"{_usd(change.before_usd)} | {_usd(change.after_usd)} |"
            )
        lines.append("")
    if not cost.idle_changes and not cost.usage_changes:
        lines += ["No priced line changed.", ""]
    return lines


def render_comment(reviews: Sequence[StageReview], base_label: str, head_label: str) -> str:
    """The sticky PR comment (Markdown), starting with the marker the workflow finds it by."""
    lines = [COMMENT_MARKER, f"## Infrastructure review: {base_label} → {head_label}", ""]
    lines.append(
        "Templates normalised (asset hashes replaced by a placeholder, CDK tooling metadata dropped), compared offline."
    )
    lines.append("")
    lines += ["| stage | stacks added | stacks removed | stacks modified | resources +/-/~ | idle cost change |"]
    lines += ["|---|---|---|---|---|---|"]
    for review in reviews:
        count = Counter(diff.status for diff in review.stacks)
        kinds = Counter(change.kind for diff in review.stacks for change in diff.resources)
        cost = "n/a" if review.cost.error else _signed_usd(review.cost.delta_usd)
        lines.append(
            f"| {review.stage} | {count['added']} | {count['removed']} | {count['modified']} | "
            f"+{kinds['added']} / -{kinds['removed']} / ~{kinds['modified']} | {cost} |"
        )
    lines.append("")
    for review in reviews:
        lines += [f"### Stage `{review.stage}`", ""]
        changed = [diff for diff in review.stacks if diff.status != "unchanged"]
        if not changed:
            lines += ["No template change.", ""]
        for diff in changed:
            lines += _render_stack(diff)
        assets = [diff for diff in review.stacks if diff.assets_changed]
        if assets:
            lines.append(
                "Asset contents changed (runtime code shipped as assets; hidden from the diff above): "
                + ", ".join(f"{_code(diff.name)} ({diff.assets_changed})" for diff in assets)
            )
            lines.append("")
        lines += _render_compliance(review.compliance)
        lines += _render_cost(review.cost)
    body = "\n".join(lines).rstrip() + "\n"
    if len(body) > MAX_COMMENT_CHARS:
        cut = body.rfind("\n", 0, MAX_COMMENT_CHARS)
        body = body[:cut] + "\n\n… (truncated: run `make review` locally for the whole report)\n"
    return body
