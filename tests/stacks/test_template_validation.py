"""aws-cdk-lib's CloudFormation template validation still runs, registered early by the app, and finds nothing here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from components.compliance import register_template_validation

PLUGIN = "CloudFormation Validate"


def validation_report(outdir: Path) -> dict[str, Any]:
    """The assembly's validation report; aws-cdk-lib writes none when no validation plugin ran."""
    path = outdir / "validation-report.json"
    report: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"pluginReports": []}
    return report


def synth_with_a_broken_queue(outdir: Path) -> dict[str, Any]:
    # aws-cdk-lib's automatic registration is off, so whatever validates here is the app's own registration.
    app = cdk.App(outdir=str(outdir), builtin_cloud_formation_validation=False)
    register_template_validation(app)
    stack = cdk.Stack(app, "Broken")
    cdk.CfnResource(stack, "Queue", type="AWS::SQS::Queue", properties={"VisibilityTimeout": "lots", "Colour": 1})
    app.synth()
    return validation_report(outdir)


def findings(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (violation["ruleName"], path)
        for plugin in report["pluginReports"]
        if plugin["pluginName"] == PLUGIN
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
        for path in construct["cloudFormationResource"]["propertyPaths"]
    }


def test_the_early_registered_validation_checks_templates_against_the_resource_schemas(tmp_path: Path) -> None:
    report = synth_with_a_broken_queue(tmp_path)
    # F3002: a property the schema does not have; F3012: a value of the wrong type.
    assert findings(report) == {("F3002", "Properties.Colour"), ("F3012", "Properties.VisibilityTimeout")}


def test_cdk_validation_false_still_turns_template_validation_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `cdk synth --no-validation` sets for the app. The CLI sets it before the app's Node.js runtime starts, so it
    # also stops aws-cdk-lib's automatic registration; in this process that one is off by the App's setting instead.
    monkeypatch.setenv("CDK_VALIDATION", "false")
    assert findings(synth_with_a_broken_queue(tmp_path)) == set()


def test_no_stage_template_has_a_template_validation_finding(stage: Any) -> None:
    report = validation_report(stage.assembly_dir)
    assert findings(report) == set()
    assert [plugin["pluginName"] for plugin in report["pluginReports"]] == []
