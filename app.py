#!/usr/bin/env python3
"""The CDK app: ``cdk synth -c stage=<name>`` (default ``dev``) builds every stack of that stage.

``-c model_package_arn=<arn>`` serves that model package instead of the stage's configured model, for one synth (a
pull request previews the promotion of a model with it). A stage without a model has no Serving stack.

The compliance packs run on every synth; an unacknowledged finding fails it. A bad stage or setting fails with one
line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    # `cdk synth` runs this file once and exits within seconds. Importing aws-cdk-lib's generated modules and building
    # the constructs create millions of objects and no garbage cycles worth collecting, so the cyclic collector only
    # costs time here. Tests and other importers keep it on.
    gc.disable()

import aws_cdk as cdk

from components.compliance import register_compliance_packs, register_template_validation
from config import ConfigError, load_config
from stacks.platform import Platform, build_platform

# aws-cdk-lib's context key (cx-api DISABLE_CREATION_STACK_TRACES) for the ``aws:cdk:creationStack`` metadata.
DISABLE_CREATION_STACK_TRACES = "aws:cdk:disable-creation-stack-traces"


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[cdk.App, Platform]:
    """The app and its platform, for the stage named by the ``stage`` context value.

    ``context`` and ``outdir`` are for in-process synth (tests, benchmarks); the CDK CLI passes both through the
    environment. In-process callers must pass ``cdk.json``'s context themselves (see ``load_cdk_json_context``).
    """
    # No JavaScript stack traces in construct metadata: from a Python app they hold only jsii-runtime frames ("no user
    # code"), and capturing one per construct and resource is a large share of a synth's time. CDK_DEBUG (set by
    # `cdk synth --debug-app`) still turns the creation traces on.
    app = cdk.App(context=dict(context) if context is not None else None, outdir=outdir, stack_traces=False)
    app.node.set_context(DISABLE_CREATION_STACK_TRACES, True)
    register_template_validation(app)
    # -c model_package_arn=<arn> previews the promotion of a model for one synth (the stage config is unchanged).
    config = load_config(
        app.node.try_get_context("stage"), model_package_arn=app.node.try_get_context("model_package_arn")
    )
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
    # Nothing is left to collect: move every object out of the collector's sight, so the interpreter's shutdown does
    # not walk them all once more.
    gc.freeze()
    return 0


if __name__ == "__main__":
    sys.exit(main())
