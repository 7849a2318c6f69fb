"""Synth is hermetic and deterministic: a second synth of the same stage gives byte-identical templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app import build_app, load_cdk_json_context


def test_a_second_synth_of_dev_gives_identical_templates(dev: Any, tmp_path: Path) -> None:
    context = load_cdk_json_context(stage="dev", model_package_arn=dev.config.serving.model_package_arn)
    app, _ = build_app(context, outdir=str(tmp_path))
    app.synth()
    first = {p.name: p.read_text() for p in Path(dev.assembly_dir).glob("*.template.json")}
    second = {p.name: p.read_text() for p in tmp_path.glob("*.template.json")}
    assert sorted(first) == sorted(second)
    for name, text in first.items():
        assert text == second[name], f"{name} differs between two synths of the same stage"


def test_the_assembly_carries_no_javascript_creation_stack_traces(stage: Any) -> None:
    # From a Python app they name only jsii-runtime frames, and capturing them is a large share of synth time.
    metadata = {p.name: json.loads(p.read_text()) for p in Path(stage.assembly_dir).glob("*.metadata.json")}
    assert metadata, "the assembly has no stack metadata files"
    kinds = {entry["type"] for entries in metadata.values() for path in entries.values() for entry in path}
    assert "aws:cdk:logicalId" in kinds  # the metadata is there, only the traces are not
    assert "aws:cdk:creationStack" not in kinds
