"""Synth is hermetic and deterministic: a second synth of the same stage gives byte-identical templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app import build_app, load_cdk_json_context


def test_a_second_synth_of_dev_gives_identical_templates(dev: Any, tmp_path: Path) -> None:
    context = load_cdk_json_context(stage="dev")
    app, _ = build_app(context, outdir=str(tmp_path))
    app.synth()
    first = {p.name: p.read_text() for p in Path(dev.assembly_dir).glob("*.template.json")}
    second = {p.name: p.read_text() for p in tmp_path.glob("*.template.json")}
    assert sorted(first) == sorted(second)
    for name, text in first.items():
        assert text == second[name], f"{name} differs between two synths of the same stage"
