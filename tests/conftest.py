"""Shared fixtures: one synthesized app per stage per test session, built with cdk.json's context."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_app, load_cdk_json_context
from config import PlatformConfig
from stacks.platform import Platform

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass(frozen=True)
class SynthesizedStage:
    """One stage, synthesized: the app, its stacks, their templates and the cloud assembly directory."""

    app: cdk.App
    platform: Platform
    assembly_dir: Path
    templates: dict[str, Template]

    def template(self, part: str) -> Template:
        """The template of the stack ``<prefix>-<part>`` (``data``, ``network``, ``serving``, ...)."""
        return self.templates[part]

    @property
    def config(self) -> PlatformConfig:
        """The configuration the stage was built from (with the example model of ``EXAMPLE_MODEL_PACKAGE_ARNS``)."""
        return self.platform.config


# The sessions' stages serve a model, as after a promotion (-c model_package_arn=...), so every template test, the
# compliance packs and cfn-lint cover the Serving stack too. Each is a version of the stage's own model package group.
EXAMPLE_MODEL_PACKAGE_ARNS = {
    "dev": "arn:aws:sagemaker:us-east-1:123456789012:model-package/nlp-dev-models/3",
    "prod": "arn:aws:sagemaker:us-east-1:210987654321:model-package/nlp-prod-models/12",
}


def _synthesize(stage: str, outdir: Path) -> SynthesizedStage:
    # No asset needs Docker: the code archives are bundled locally (components/source_bundle.py), as in cdk synth.
    context = load_cdk_json_context(stage=stage, model_package_arn=EXAMPLE_MODEL_PACKAGE_ARNS[stage])
    app, platform = build_app(context, outdir=str(outdir))
    app.synth()
    templates = {stack.stack_name.rsplit("-", 1)[1]: Template.from_stack(stack) for stack in platform.stacks}
    return SynthesizedStage(app=app, platform=platform, assembly_dir=outdir, templates=templates)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthesizedStage]:
    yield _synthesize("dev", tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthesizedStage]:
    yield _synthesize("prod", tmp_path_factory.mktemp("cdk-prod"))


@pytest.fixture(scope="session", params=["dev", "prod"])
def stage(request: pytest.FixtureRequest) -> SynthesizedStage:
    """Each stage in turn, for properties that must hold everywhere."""
    synthesized: SynthesizedStage = request.getfixturevalue(request.param)
    return synthesized


GLUE_JOBS_DIR = Path(__file__).resolve().parents[1] / "glue_jobs"


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A small local SparkSession shared by every test that runs the Glue job (starting one costs seconds): the Glue
    job tests and the demo's small run."""
    # The job imports its transforms as the top-level module `dataset_transforms`, as on Glue (--extra-py-files).
    if str(GLUE_JOBS_DIR) not in sys.path:
        sys.path.insert(0, str(GLUE_JOBS_DIR))
    import dataset_transforms
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("glue-jobs-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.addPyFile(dataset_transforms.__file__)
    yield session
    session.stop()
