"""docs/architecture.md: its Mermaid diagram is generated from the synthesized dev app and must match it."""

from __future__ import annotations

import re
from typing import Any

from scripts import architecture_diagram as diagram

FIX = "run `python scripts/architecture_diagram.py` (or `make diagram`) and commit docs/architecture.md"


def test_the_committed_diagram_matches_the_synthesized_app(dev: Any) -> None:
    current = diagram.DOC.read_text(encoding="utf-8")
    expected = diagram.document(diagram.render(dev.app), current)
    assert current == expected, f"docs/architecture.md is stale: {FIX}"


def test_the_cli_draws_the_stage_the_tests_synthesize() -> None:
    from tests.conftest import EXAMPLE_MODEL_PACKAGE_ARNS

    assert {"stage": "dev", "model_package_arn": EXAMPLE_MODEL_PACKAGE_ARNS["dev"]} == diagram.DEFAULT_CONTEXT


def test_every_stack_is_a_subgraph_and_the_glue_job_writes_the_curated_bucket(dev: Any) -> None:
    text = diagram.render(dev.app)
    for stack in dev.platform.stacks:
        assert f'["stack {stack.stack_name}"]' in text, stack.stack_name
    assert "nlp_dev_pipeline_DataPreparation --> nlp_dev_data_Curated" in text
    assert "nlp_dev_pipeline_DataPreparation --> nlp_dev_data_Raw" in text
    # The Glue job runs inside the isolated VPC box of its stack; the buckets are managed services outside any VPC.
    vpc_box = re.search(r"subgraph nlp_dev_pipeline_vpc\[.*?\n(.*?)\n        end", text, re.S)
    assert vpc_box is not None and "nlp_dev_pipeline_DataPreparation[" in vpc_box.group(1)
    assert not re.search(r"subgraph \w+_vpc[^\n]*\n(?:(?!        end)[^\n]*\n)*[^\n]*nlp_dev_data_Curated\[", text)
    # Roles, policies and CDK's provider functions are not drawn; the same app gives the same text.
    assert "Role" not in text and "Custom::" not in text
    assert diagram.render(dev.app) == text
