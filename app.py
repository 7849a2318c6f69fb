#!/usr/bin/env python3
"""The CDK app: ``cdk synth -c stage=<name>`` (default ``dev``) builds every stack of that stage.

The compliance packs run on every synth; an unacknowledged finding fails it. A bad stage or setting fails with one
line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from components.compliance import register_compliance_packs
from config import ConfigError, load_config
from stacks.platform import Platform, build_platform


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[cdk.App, Platform]:
    """The app and its platform, for the stage named by the ``stage`` context value.

    ``context`` and ``outdir`` are for in-process synth (tests, benchmarks); the CDK CLI passes both through the
    environment. In-process callers must pass ``cdk.json``'s context themselves (see ``load_cdk_json_context``).
    """
    app = cdk.App(context=dict(context) if context is not None else None, outdir=outdir)
    stage = app.node.try_get_context("stage")
    config = load_config(stage)
    platform = build_platform(app, config)
    register_compliance_packs(app)
    return app, platform


def load_cdk_json_context(**overrides: Any) -> dict[str, Any]:
    """The ``context`` block of ``cdk.json`` (feature flags, defaults), updated with ``overrides``."""
    with open(Path(__file__).with_name("cdk.json"), encoding="utf-8") as handle:
        context: dict[str, Any] = json.load(handle)["context"]
    return {**context, **overrides}


def main() -> int:
    try:
        app, _ = build_app()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
