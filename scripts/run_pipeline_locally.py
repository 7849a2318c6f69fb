#!/usr/bin/env python3
"""Run the synthesized training pipeline on this machine, without Docker or AWS.

The tool reads the ``AWS::SageMaker::Pipeline`` named ``<prefix>-training`` from a cloud assembly (``cdk.out``),
resolves the CloudFormation intrinsics of its ``PipelineDefinitionBody`` and executes the definition step by step,
the way SageMaker Pipelines would, with local folders standing in for the buckets:

    python scripts/run_pipeline_locally.py --cdk-out cdk.out --curated ./curated --artifacts ./artifacts \\
        --work ./local-run --parameter Epochs=1 --parameter BaseModel=my-bert

- ``--curated`` stands for the curated bucket (``datasets/default/_LATEST`` and ``datasets/default/runs/<id>/``, as
  the data preparation job writes them), ``--artifacts`` for the artifacts bucket (``pretrained/<BaseModel>/`` with
  the base model's files). Both are only read: what the pipeline writes to a bucket (model, checkpoints, evaluation)
  lands under ``<work>/s3/<bucket>/`` and later reads see it there first, as they would in S3.
- Code assets (``sourcedir.tar.gz``, the evaluation bundle, the resolver function) come from the assembly's staged
  files through its asset manifests: the run executes exactly what ``cdk deploy`` would upload.
- Steps run in dependency order (``DependsOn`` and every ``Get`` of another step). One evaluator resolves ``Get``,
  ``Std:Join``, ``Std:JsonGet`` and the conditions, for every step.
- Lambda: the staged function code's ``resolve(event, store)`` (the pure core its handler wraps) runs against the
  local buckets. Training: the step's channels are copied into a job folder laid out like ``/opt/ml`` and the
  ``sagemaker-training`` toolkit runs the entry point with the step's hyperparameters; the job succeeded when the
  toolkit exits 0 and writes ``output/success``, else the step fails with ``output/failure`` and the exception of
  the job's log; the model becomes ``<S3OutputPath>/<job>/output/model.tar.gz``. Processing: the inputs are copied
  in, the step's container entrypoint runs with this Python, the outputs are copied out and the property files
  loaded. RegisterModel: the request is checked and written to ``<work>/registry/<group>/<version>/model-package.json``.
  Fail: the run fails with the step's rendered ``ErrorMessage``.
- A container path (``/opt/ml/...``, ``/tmp/...``) in an entrypoint, argument or hyperparameter is rewritten to the
  step's folder ``<work>/executions/<id>/<step>/container/``. Settings without a local meaning (images, instance
  types, spot, torchrun distribution, VPC, KMS) are not applied; the step's progress line names the ones that change
  how a job runs. Network isolation is kept: the Hugging Face libraries run offline.

Progress: one line when a step starts and one when it ends (status, seconds), the jobs' own output indented between
them (``--no-job-logs`` hides it; it is always in the step's ``job.log``), and a summary. ``execution.json`` in the
execution folder holds the status like ``DescribePipelineExecution``: ``Executing``, then ``Succeeded`` or ``Failed``
with the failing step and its reason (``Stopped`` after Ctrl-C). Exit status: 0 succeeded, 1 the execution failed,
2 the run could not start (bad flag, cloud assembly or definition), 130 stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

ACCOUNT_ID = "000000000000"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
DEFAULT_REGION = "us-east-1"
# The buckets a local run has folders for, by the logical ID their stack pins (tests/stacks/test_data_stack.py).
CURATED_BUCKET_ID = "CuratedBucket"
ARTIFACTS_BUCKET_ID = "ArtifactsBucket"
ARTIFACTS_BUCKET_NAME = "local-artifacts"
DEFAULT_CURATED_BUCKET_NAME = "local-curated"
SUPPORTED_INTRINSICS = ("Ref", "Fn::GetAtt", "Fn::ImportValue", "Fn::Join", "Fn::Sub", "Fn::FindInMap")
STEP_TYPES = ("Lambda", "Training", "Processing", "Condition", "RegisterModel", "Fail")
CONDITION_TYPES = ("Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo")
APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
# Hyperparameters that ask the container to launch several processes; one local process trains instead.
DISTRIBUTION_HYPERPARAMETERS = (
    "sagemaker_torch_distributed_enabled",
    "sagemaker_distributed_dataparallel_enabled",
    "sagemaker_mpi_enabled",
)
_CONTAINER_PATH = re.compile(r"(?<![\w.\-/])(/opt/ml|/tmp)(?=/|$|[^\w.\-])")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/\-]+$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/?(?P<key>.*)$")
_PROPERTY_TOKEN = re.compile(r"\.?([A-Za-z_][\w\-]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class LocalRunError(Exception):
    """The run cannot start: a bad flag, cloud assembly or definition. The message names the value and the fix."""


class StepFailure(Exception):
    """A step failed; the message is its failure reason, as SageMaker would show it."""


class EvaluationError(StepFailure):
    """An expression of the definition cannot be evaluated when the step runs."""


# --------------------------------------------------------------------------------------------------------------------
# The cloud assembly: stack templates and staged assets
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackTemplate:
    """One synthesized stack: its name and template."""

    name: str
    template: dict[str, Any]

    def resource(self, logical_id: str) -> dict[str, Any]:
        resources: dict[str, Any] = self.template.get("Resources", {})
        if logical_id not in resources:
            raise LocalRunError(f"stack {self.name} has no resource {logical_id!r}: synthesize cdk.out again")
        resource: dict[str, Any] = resources[logical_id]
        return resource


@dataclass(frozen=True)
class FileAsset:
    """A staged asset: what it is uploaded as (``bucket`` may hold ``${AWS::...}``) and where it is in cdk.out."""

    bucket_template: str
    object_key: str
    source: Path
    packaging: str


@dataclass(frozen=True)
class CloudAssembly:
    """A ``cdk synth`` output folder: every stack template and every file asset of its asset manifests."""

    directory: Path
    stacks: dict[str, StackTemplate]
    assets: tuple[FileAsset, ...]

    @classmethod
    def load(cls, directory: Path) -> CloudAssembly:
        manifest_path = directory / "manifest.json"
        if not manifest_path.is_file():
            raise LocalRunError(
                f"--cdk-out {directory}: no manifest.json there; run `cdk synth` (or `make synth`) first, or point "
                "--cdk-out at the folder it wrote"
            )
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        stacks: dict[str, StackTemplate] = {}
        assets: list[FileAsset] = []
        for artifact_id, artifact in sorted(manifest.get("artifacts", {}).items()):
            properties = artifact.get("properties", {})
            if artifact.get("type") == "aws:cloudformation:stack":
                template = json.loads((directory / properties["templateFile"]).read_text(encoding="utf-8"))
                name = str(properties.get("stackName", artifact_id))
                stacks[name] = StackTemplate(name=name, template=template)
            elif artifact.get("type") == "cdk:asset-manifest":
                asset_manifest = json.loads((directory / properties["file"]).read_text(encoding="utf-8"))
                for asset in asset_manifest.get("files", {}).values():
                    for destination in asset.get("destinations", {}).values():
                        assets.append(
                            FileAsset(
                                bucket_template=destination["bucketName"],
                                object_key=destination["objectKey"],
                                source=directory / asset["source"]["path"],
                                packaging=asset["source"].get("packaging", "file"),
                            )
                        )
        if not stacks:
            raise LocalRunError(f"--cdk-out {directory}: the cloud assembly has no stacks; synthesize the app first")
        return cls(directory=directory, stacks=stacks, assets=tuple(assets))


# --------------------------------------------------------------------------------------------------------------------
# CloudFormation intrinsics -> local values
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceReference:
    """What a placeholder stands for: a resource of a stack."""

    stack: str
    logical_id: str
    type: str


class IntrinsicResolver:
    """Resolves the intrinsics of the assembly's templates to values a local run can use.

    ``Ref`` of a bucket is its local name (the curated and artifacts buckets get the run's folders, any other bucket
    an empty one under the work folder); a pseudo parameter gets the local account, region and partition; any other
    ``Ref`` or ``Fn::GetAtt`` becomes a placeholder naming the resource (role ARNs, keys, subnets are not used
    locally); ``Fn::ImportValue`` follows the export to the stack that declares it; ``Fn::Join``, ``Fn::Sub`` and
    ``Fn::FindInMap`` are computed. Any other intrinsic fails, naming it and where it is.
    """

    def __init__(self, assembly: CloudAssembly, *, region: str, curated_bucket_name: str) -> None:
        self.assembly = assembly
        self.region = region
        self.curated_bucket_name = curated_bucket_name
        self.placeholders: dict[str, ResourceReference] = {}
        self.bucket_names: dict[str, ResourceReference] = {}

    def pseudo_parameters(self, stack: str) -> dict[str, str]:
        return {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": self.region,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": stack,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{self.region}:{ACCOUNT_ID}:stack/{stack}/local",
        }

    def resolve(self, value: Any, stack: str, where: str) -> Any:
        """``value`` with every intrinsic resolved; ``where`` names its place in the template for errors."""
        if isinstance(value, list):
            return [self.resolve(item, stack, f"{where}[{i}]") for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        intrinsic = [key for key in value if key == "Ref" or key.startswith("Fn::")]
        if not intrinsic:
            return {key: self.resolve(item, stack, f"{where}.{key}") for key, item in value.items()}
        name = intrinsic[0]
        if len(value) != 1:
            raise LocalRunError(f"{stack} {where}: {name} must be the only key of its object, got {sorted(value)}")
        if name not in SUPPORTED_INTRINSICS:
            raise LocalRunError(
                f"{stack} {where}: intrinsic {name} is not supported by the local run (it resolves "
                f"{', '.join(SUPPORTED_INTRINSICS)}); change the component so the definition uses one of those"
            )
        argument = value[name]
        where = f"{where}.{name}"
        if name == "Ref":
            return self._ref(self._string(argument, stack, where), stack, where)
        if name == "Fn::GetAtt":
            parts = argument.split(".", 1) if isinstance(argument, str) else argument
            if not (isinstance(parts, list) and len(parts) == 2):
                raise LocalRunError(f"{stack} {where}: expected [LogicalId, Attribute], got {argument!r}")
            return self._get_att(str(parts[0]), self._string(parts[1], stack, where), stack, where)
        if name == "Fn::ImportValue":
            return self._import(self._string(argument, stack, where), stack, where)
        if name == "Fn::Join":
            if not (isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], list)):
                raise LocalRunError(f"{stack} {where}: expected [separator, [values]], got {argument!r}")
            separator = self._string(argument[0], stack, where)
            return separator.join(self._string(item, stack, f"{where}[{i}]") for i, item in enumerate(argument[1]))
        if name == "Fn::Sub":
            return self._sub(argument, stack, where)
        return self._find_in_map(argument, stack, where)

    def _string(self, value: Any, stack: str, where: str) -> str:
        resolved = self.resolve(value, stack, where)
        if isinstance(resolved, bool) or not isinstance(resolved, str | int | float):
            raise LocalRunError(f"{stack} {where}: expected a string, got {resolved!r}")
        return str(resolved)

    def _template(self, stack: str) -> StackTemplate:
        return self.assembly.stacks[stack]

    def _ref(self, name: str, stack: str, where: str) -> str:
        pseudo = self.pseudo_parameters(stack)
        if name in pseudo:
            return pseudo[name]
        if name.startswith("AWS::"):
            raise LocalRunError(f"{stack} {where}: pseudo parameter {name} has no local value ({', '.join(pseudo)})")
        template = self._template(stack).template
        if name in template.get("Parameters", {}):
            parameter = template["Parameters"][name]
            if "Default" not in parameter:
                raise LocalRunError(f"{stack} {where}: template parameter {name} has no default to run with")
            return str(parameter["Default"])
        resource_type = str(self._template(stack).resource(name).get("Type", ""))
        reference = ResourceReference(stack, name, resource_type)
        if resource_type == "AWS::S3::Bucket":
            bucket = self._bucket_name(reference)
            self.bucket_names[bucket] = reference
            return bucket
        placeholder = f"local-{stack}-{name}"
        self.placeholders[placeholder] = reference
        return placeholder

    def _bucket_name(self, reference: ResourceReference) -> str:
        if reference.logical_id == CURATED_BUCKET_ID:
            return self.curated_bucket_name
        if reference.logical_id == ARTIFACTS_BUCKET_ID:
            return ARTIFACTS_BUCKET_NAME
        return f"local-{reference.logical_id.lower()}"[:63]

    def _get_att(self, logical_id: str, attribute: str, stack: str, where: str) -> str:
        resource_type = str(self._template(stack).resource(logical_id).get("Type", ""))
        service = resource_type.split("::")[1].lower() if resource_type.count("::") == 2 else "local"
        placeholder = f"arn:{PARTITION}:{service}:{self.region}:{ACCOUNT_ID}:local/{stack}/{logical_id}/{attribute}"
        self.placeholders[placeholder] = ResourceReference(stack, logical_id, resource_type)
        return placeholder

    def _import(self, export_name: str, stack: str, where: str) -> Any:
        for producer in self.assembly.stacks.values():
            for output_id, output in producer.template.get("Outputs", {}).items():
                name = output.get("Export", {}).get("Name")
                if name is not None and self.resolve(name, producer.name, f"Outputs.{output_id}.Export") == export_name:
                    return self.resolve(output["Value"], producer.name, f"Outputs.{output_id}.Value")
        raise LocalRunError(
            f"{stack} {where}: no stack of {self.assembly.directory} exports {export_name!r}; synthesize every stack "
            "of the stage into one cdk.out"
        )

    def _sub(self, argument: Any, stack: str, where: str) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        elif isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            text, variables = argument[0], argument[1]
        else:
            raise LocalRunError(f"{stack} {where}: expected a string or [string, {{variables}}], got {argument!r}")

        def replace(match: re.Match[str]) -> str:
            name = match[1]
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return self._string(variables[name], stack, f"{where}.{name}")
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self._get_att(logical_id, attribute, stack, where)
            return self._ref(name, stack, where)

        return _SUB_VARIABLE.sub(replace, self._string(text, stack, where))

    def _find_in_map(self, argument: Any, stack: str, where: str) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3):
            raise LocalRunError(f"{stack} {where}: expected [map, top-level key, second-level key], got {argument!r}")
        names = [self._string(item, stack, where) for item in argument]
        table: Any = self._template(stack).template.get("Mappings", {})
        for name in names:
            if not isinstance(table, dict) or name not in table:
                raise LocalRunError(
                    f"{stack} {where}: mapping lookup {'/'.join(names)} fails at {name!r}; for another region pass "
                    "--region with one the mapping lists"
                )
            table = table[name]
        return table


# --------------------------------------------------------------------------------------------------------------------
# Local buckets
# --------------------------------------------------------------------------------------------------------------------


def split_s3_uri(uri: str) -> tuple[str, str]:
    match = _S3_URI.match(uri)
    if match is None:
        raise StepFailure(f"{uri!r} is not an s3://<bucket>/<key> URI")
    return match["bucket"], match["key"]


@dataclass
class LocalBucket:
    """A bucket as folders: objects are read from ``layers`` in order (the run's own writes first)."""

    name: str
    layers: list[Path]
    writable: Path | None
    files: dict[str, Path] = field(default_factory=dict)

    def objects(self, prefix: str) -> dict[str, Path]:
        """Key to file of every object whose key starts with ``prefix``, as ``ListObjectsV2`` would list them."""
        found: dict[str, Path] = {}
        for key, path in self.files.items():
            if key.startswith(prefix):
                found[key] = path
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        for layer in self.layers:
            base = layer / folder if folder else layer
            if not base.is_dir():
                continue
            for path in sorted(base.rglob("*")):
                key = path.relative_to(layer).as_posix()
                if path.is_file() and key.startswith(prefix) and key not in found:
                    found[key] = path
        return dict(sorted(found.items()))

    def object(self, key: str) -> Path | None:
        """The file of the object ``key``, or None (without listing its folder)."""
        if key in self.files:
            return self.files[key]
        for layer in self.layers:
            if key and (layer / key).is_file():
                return layer / key
        return None


class LocalObjectStore:
    """The buckets of a local run; also the resolver function's ``ObjectStore`` (``read_text``, ``has_prefix``)."""

    def __init__(self) -> None:
        self.buckets: dict[str, LocalBucket] = {}

    def add(self, bucket: LocalBucket) -> None:
        self.buckets[bucket.name] = bucket

    def bucket(self, name: str) -> LocalBucket:
        if name not in self.buckets:
            known = ", ".join(f"{b.name} ({b.layers[-1] if b.layers else 'cdk.out assets'})" for b in self._listed())
            raise StepFailure(
                f"bucket {name!r} is not one of this run's buckets ({known}); if it is the curated bucket (a _LATEST "
                "pointer copied from a deployed bucket names it), pass --curated-bucket-name with its name"
            )
        return self.buckets[name]

    def _listed(self) -> list[LocalBucket]:
        return sorted(self.buckets.values(), key=lambda b: b.name)

    def list_objects(self, uri: str) -> dict[str, Path]:
        bucket, prefix = split_s3_uri(uri)
        return self.bucket(bucket).objects(prefix)

    def path_for_display(self, uri: str) -> str:
        bucket_name, key = split_s3_uri(uri)
        bucket = self.bucket(bucket_name)
        if bucket.files:
            return str(bucket.files.get(key, f"the staged assets of {bucket.name}"))
        return str((bucket.layers[-1] if bucket.layers else Path(".")) / key)

    def read_text(self, bucket: str, key: str) -> str | None:
        found = self.bucket(bucket).object(key)
        return found.read_text(encoding="utf-8") if found else None

    def has_prefix(self, bucket: str, prefix: str) -> bool:
        return bool(self.bucket(bucket).objects(prefix))

    def get(self, uri: str) -> Path | None:
        bucket, key = split_s3_uri(uri)
        return self.bucket(bucket).object(key)

    def put(self, uri: str, source: Path) -> Path:
        bucket_name, key = split_s3_uri(uri)
        bucket = self.bucket(bucket_name)
        if bucket.writable is None:
            raise StepFailure(f"cannot write {uri}: bucket {bucket_name} is read-only in a local run")
        if not key or key.endswith("/") or ".." in key.split("/"):
            raise StepFailure(f"cannot write {uri}: not an object key")
        target = bucket.writable / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target

    def put_tree(self, uri: str, folder: Path) -> list[str]:
        """Upload every file under ``folder`` to ``uri``/<relative path>; returns the keys' URIs."""
        written = []
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                target = f"{uri.rstrip('/')}/{path.relative_to(folder).as_posix()}"
                self.put(target, path)
                written.append(target)
        return written

    def download(self, uri: str, destination: Path, what: str) -> list[Path]:
        """Copy the objects under ``uri`` into ``destination`` the way SageMaker's File mode does: the key after the
        prefix's last ``/`` is the relative path. No objects fails the step naming ``what``."""
        _, prefix = split_s3_uri(uri)
        objects = self.list_objects(uri)
        if not objects:
            raise StepFailure(
                f"ClientError: {what}: no objects under {uri} (local {self.path_for_display(uri)}); check that the "
                "data exists and the step's S3Uri names it"
            )
        cut = prefix.rfind("/") + 1
        copied = []
        for key, path in objects.items():
            relative = key[cut:]
            if not relative or relative.endswith("/"):
                continue
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied.append(target)
        return copied


# --------------------------------------------------------------------------------------------------------------------
# The expression evaluator: Get, Std:Join, Std:JsonGet, conditions
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PropertyFileValue:
    """A loaded property file (``Steps.<step>.PropertyFiles.<name>``); only ``Std:JsonGet`` reads it."""

    step: str
    name: str
    uri: str
    content: Any


def walk_property_path(value: Any, path: str, what: str) -> Any:
    """Follow ``a.b['c'][0]`` through dicts and lists; a string key on a list picks the element with that name."""
    position = 0
    text = path[1:] if path.startswith("$") else path
    while position < len(text):
        match = _PROPERTY_TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise EvaluationError(f"{what}: cannot parse the path {path!r} at {text[position:]!r}")
        position = match.end()
        name, index, quoted, double_quoted = match.groups()
        key = name if name is not None else quoted if quoted is not None else double_quoted
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                raise EvaluationError(f"{what}: {path!r} has no element [{index}]")
            value = value[int(index)]
        elif isinstance(value, dict):
            if key not in value:
                raise EvaluationError(f"{what}: {path!r} has no {key!r} (there: {', '.join(map(str, value))})")
            value = value[key]
        elif isinstance(value, list):
            named = [item for item in value if isinstance(item, dict) and key in _element_names(item)]
            if not named:
                raise EvaluationError(f"{what}: {path!r} has no element named {key!r}")
            value = named[0]
        else:
            raise EvaluationError(f"{what}: {path!r} reaches {value!r}, which has no {key!r}")
    return value


def _element_names(item: dict[str, Any]) -> set[Any]:
    return {item.get(name) for name in ("OutputName", "InputName", "ChannelName", "MetricName", "Name")} - {None}


def render_join_value(value: Any, what: str) -> str:
    """A value as ``Std:Join`` writes it: strings as they are, numbers as text, booleans lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise EvaluationError(f"{what}: Std:Join cannot join {value!r}")


class Evaluator:
    """Evaluates the definition's expressions against the execution's parameters, variables and finished steps."""

    def __init__(self, parameters: Mapping[str, Any], execution: Mapping[str, Any]) -> None:
        self.parameters = dict(parameters)
        self.execution = dict(execution)
        self.step_properties: dict[str, dict[str, Any]] = {}
        self.property_files: dict[tuple[str, str], PropertyFileValue] = {}
        self.not_run: dict[str, str] = {}

    def evaluate(self, value: Any, what: str) -> Any:
        """``value`` with every expression replaced by its value."""
        if isinstance(value, list):
            return [self.evaluate(item, f"{what}[{i}]") for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        if "Get" in value:
            if len(value) != 1 or not isinstance(value["Get"], str):
                raise EvaluationError(f"{what}: a Get must be the only key with a string path, got {value!r}")
            result = self.get(value["Get"], what)
            if isinstance(result, PropertyFileValue):
                raise EvaluationError(f"{what}: {value['Get']} is a property file; read it with Std:JsonGet")
            return result
        functions = [key for key in value if key.startswith("Std:")]
        if functions:
            if len(value) != 1:
                raise EvaluationError(f"{what}: {functions[0]} must be the only key of its object")
            if functions[0] == "Std:Join":
                return self._join(value["Std:Join"], f"{what}.Std:Join")
            if functions[0] == "Std:JsonGet":
                return self._json_get(value["Std:JsonGet"], f"{what}.Std:JsonGet")
            raise EvaluationError(f"{what}: unknown function {functions[0]} (known: Std:Join, Std:JsonGet)")
        return {key: self.evaluate(item, f"{what}.{key}") for key, item in value.items()}

    def get(self, path: str, what: str) -> Any:
        root, _, rest = path.partition(".")
        if root == "Parameters":
            if rest not in self.parameters:
                raise EvaluationError(f"{what}: Get {path}: the pipeline declares no parameter {rest!r}")
            return self.parameters[rest]
        if root == "Execution":
            if rest not in self.execution:
                raise EvaluationError(
                    f"{what}: Get {path}: unknown execution variable (known: {', '.join(self.execution)})"
                )
            return self.execution[rest]
        if root == "Steps":
            step, _, property_path = rest.partition(".")
            if step in self.not_run:
                raise EvaluationError(f"{what}: Get {path}: step {step} did not run ({self.not_run[step]})")
            if step not in self.step_properties:
                raise EvaluationError(f"{what}: Get {path}: step {step!r} has not run")
            if property_path.startswith("PropertyFiles."):
                name = property_path.removeprefix("PropertyFiles.")
                if (step, name) not in self.property_files:
                    raise EvaluationError(f"{what}: Get {path}: step {step} declares no property file {name!r}")
                return self.property_files[(step, name)]
            return walk_property_path(self.step_properties[step], property_path, f"{what}: Get {path}")
        raise EvaluationError(f"{what}: Get {path}: expected Parameters.*, Execution.* or Steps.*")

    def _join(self, spec: Any, what: str) -> str:
        if not (isinstance(spec, dict) and isinstance(spec.get("On"), str) and isinstance(spec.get("Values"), list)):
            raise EvaluationError(f"{what}: expected {{'On': str, 'Values': [...]}}, got {spec!r}")
        values = [self.evaluate(item, f"{what}.Values[{i}]") for i, item in enumerate(spec["Values"])]
        return str(spec["On"]).join(render_join_value(item, what) for item in values)

    def _json_get(self, spec: Any, what: str) -> Any:
        if not (isinstance(spec, dict) and isinstance(spec.get("PropertyFile"), dict) and "Path" in spec):
            raise EvaluationError(f"{what}: expected {{'PropertyFile': {{'Get': ...}}, 'Path': ...}}, got {spec!r}")
        reference = spec["PropertyFile"].get("Get")
        if not isinstance(reference, str):
            raise EvaluationError(f"{what}: PropertyFile must be a Get of Steps.<step>.PropertyFiles.<name>")
        property_file = self.get(reference, what)
        if not isinstance(property_file, PropertyFileValue):
            raise EvaluationError(f"{what}: {reference} is not a property file")
        json_path = self.evaluate(spec["Path"], f"{what}.Path")
        if not isinstance(json_path, str):
            raise EvaluationError(f"{what}: Path must be a string, got {json_path!r}")
        return walk_property_path(
            property_file.content,
            json_path,
            f"{what}: property file {property_file.name} of step {property_file.step} ({property_file.uri})",
        )

    def condition(self, spec: Any, what: str) -> tuple[bool, str]:
        """Whether one condition holds, and how it read (``GreaterThanOrEqualTo(0.9, 0.7)``)."""
        if not isinstance(spec, dict) or spec.get("Type") not in CONDITION_TYPES:
            kind = spec.get("Type") if isinstance(spec, dict) else spec
            raise EvaluationError(f"{what}: condition type {kind!r} is not one of {', '.join(CONDITION_TYPES)}")
        kind = spec["Type"]
        left = self.evaluate(spec.get("LeftValue"), f"{what}.LeftValue")
        right = self.evaluate(spec.get("RightValue"), f"{what}.RightValue")
        text = f"{kind}({left!r}, {right!r})"
        if kind == "Equals":
            return left == right, text
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
        if not numbers and not all(isinstance(v, str) for v in (left, right)):
            raise EvaluationError(f"{what}: {text} compares {type(left).__name__} with {type(right).__name__}")
        compare: dict[str, Callable[[Any, Any], bool]] = {
            "GreaterThan": lambda a, b: bool(a > b),
            "GreaterThanOrEqualTo": lambda a, b: bool(a >= b),
            "LessThan": lambda a, b: bool(a < b),
            "LessThanOrEqualTo": lambda a, b: bool(a <= b),
        }
        return compare[kind](left, right), text


def references_to_steps(value: Any) -> set[str]:
    """Names of the steps that ``value`` reads with ``Get: Steps.<name>...`` (data dependencies)."""
    found: set[str] = set()
    if isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            found.add(get.split(".", 2)[1])
        for item in value.values():
            found |= references_to_steps(item)
    elif isinstance(value, list):
        for item in value:
            found |= references_to_steps(item)
    return found


def parse_parameter_overrides(declared: Sequence[Mapping[str, Any]], overrides: Sequence[str]) -> dict[str, Any]:
    """The execution's parameter values: the declared defaults, replaced by ``Name=Value`` overrides."""
    values = {str(p["Name"]): p.get("DefaultValue") for p in declared}
    types = {str(p["Name"]): str(p.get("Type", "String")) for p in declared}
    seen: set[str] = set()
    for override in overrides:
        name, separator, text = override.partition("=")
        if not separator or not name:
            raise LocalRunError(f"--parameter {override!r}: write it as Name=Value")
        if name not in values:
            raise LocalRunError(
                f"--parameter {override!r}: the pipeline has no parameter {name!r}; it has {sorted(values)}"
            )
        if name in seen:
            raise LocalRunError(f"--parameter {name} is given twice; give it once")
        seen.add(name)
        kind = types[name]
        try:
            if kind == "Integer":
                values[name] = int(text)
            elif kind == "Float":
                values[name] = float(text)
            elif kind == "Boolean":
                if text.lower() not in {"true", "false"}:
                    raise ValueError(text)
                values[name] = text.lower() == "true"
            else:
                values[name] = text
        except ValueError:
            wanted = {"Integer": "a whole number", "Float": "a number", "Boolean": "true or false"}
            raise LocalRunError(
                f"--parameter {override!r}: {name} is a parameter of type {kind}; give {wanted.get(kind, 'a value')}"
            ) from None
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise LocalRunError(f"parameters {missing} have no default: pass --parameter Name=Value for each")
    return values


# --------------------------------------------------------------------------------------------------------------------
# Running steps
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class StepRecord:
    """One step of the execution, as ``ListPipelineExecutionSteps`` reports it."""

    name: str
    type: str
    status: str = "NotStarted"
    started: float | None = None
    ended: float | None = None
    failure_reason: str = ""
    summary: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - (self.started or time.time())

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {"StepName": self.name, "StepType": self.type, "StepStatus": self.status}
        if self.started is not None:
            report["StartTime"] = _timestamp(self.started)
        if self.ended is not None:
            report["EndTime"] = _timestamp(self.ended)
        if self.failure_reason:
            report["FailureReason"] = self.failure_reason
        if self.metadata:
            report["Metadata"] = self.metadata
        return report


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PlannedStep:
    """A step of the definition with what it waits for; branch steps also wait for their condition."""

    definition: dict[str, Any]
    dependencies: frozenset[str]
    branch_of: tuple[str, bool] | None

    @property
    def name(self) -> str:
        return str(self.definition["Name"])

    @property
    def type(self) -> str:
        return str(self.definition["Type"])


def plan_steps(steps: Sequence[dict[str, Any]]) -> list[PlannedStep]:
    """Every step, branches included, in an order that runs each after what it depends on (definition order first)."""
    planned: list[PlannedStep] = []

    def collect(items: Sequence[dict[str, Any]], branch_of: tuple[str, bool] | None) -> None:
        for step in items:
            name, kind = step.get("Name"), step.get("Type")
            if not isinstance(name, str) or kind not in STEP_TYPES:
                raise LocalRunError(
                    f"step {name!r} has type {kind!r}; the local run executes {', '.join(STEP_TYPES)} steps"
                )
            arguments = step.get("Arguments", {})
            depends = set(step.get("DependsOn", []))
            if kind == "Condition":
                depends |= references_to_steps(arguments.get("Conditions", []))
            else:
                depends |= references_to_steps(arguments)
            if branch_of is not None:
                depends.add(branch_of[0])
            planned.append(PlannedStep(step, frozenset(depends - {name}), branch_of))
            if kind == "Condition":
                collect(arguments.get("IfSteps", []), (name, True))
                collect(arguments.get("ElseSteps", []), (name, False))

    collect(steps, None)
    names = [step.name for step in planned]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise LocalRunError(f"step names must be unique; repeated: {', '.join(repeated)}")
    for step in planned:
        unknown = sorted(step.dependencies - set(names))
        if unknown:
            raise LocalRunError(f"step {step.name} depends on {', '.join(unknown)}, which the definition does not have")
    ordered: list[PlannedStep] = []
    done: set[str] = set()
    pending = list(planned)
    while pending:
        ready = next((step for step in pending if step.dependencies <= done), None)
        if ready is None:
            raise LocalRunError(f"steps {', '.join(s.name for s in pending)} depend on each other in a cycle")
        ordered.append(ready)
        done.add(ready.name)
        pending.remove(ready)
    return ordered


def rebase_container_paths(text: str, root: Path) -> str:
    """Point the container paths ``/opt/ml...`` and ``/tmp...`` in ``text`` at the step's container folder."""
    return _CONTAINER_PATH.sub(lambda match: f"{root}{match[1]}", text)


def container_path(path: str, root: Path, what: str) -> Path:
    """A job's local path (``/opt/ml/processing/test``) inside the step's container folder; others are refused, so a
    definition cannot make the run write outside its work folder."""
    local = Path(rebase_container_paths(path, root))
    if not local.is_relative_to(root):
        raise StepFailure(f"{what} {path!r} is not under /opt/ml or /tmp, where a local run places a job's files")
    return local


def job_environment(root: Path, region: str, network_isolation: bool, extra: Mapping[str, str]) -> dict[str, str]:
    """What a job's processes see: this Python first on PATH, the container's /tmp, the region; offline when the job
    runs with network isolation (the Hugging Face libraries would otherwise try the hub)."""
    env = dict(os.environ)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        TMPDIR=str(root / "tmp"),
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        PYTHONUNBUFFERED="1",
    )
    # The Hugging Face DLC entrypoint sets these unless already set.
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if network_isolation:
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.update(extra)
    return env


class Reporter:
    """Progress lines on ``stream``: one per step start and end, the jobs' output indented, a summary."""

    def __init__(self, stream: TextIO, job_logs: bool) -> None:
        self.stream = stream
        self.job_logs = job_logs

    def line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def job_line(self, text: str) -> None:
        if self.job_logs:
            print(f"    | {text}", file=self.stream, flush=True)


def run_job(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path, timeout_s: int, reporter: Reporter
) -> tuple[int, bool, str]:
    """Run a job's process group, streaming its output to ``log`` and the reporter; stop it after ``timeout_s``
    (SIGTERM, then SIGKILL 30 s later, as SageMaker stops a job at ``MaxRuntimeInSeconds``)."""
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, stop)
    timer.daemon = True
    timer.start()
    tail: list[str] = []
    assert process.stdout is not None
    try:
        with log.open("w", encoding="utf-8") as handle:
            for raw in process.stdout:
                text = raw.rstrip("\n")
                handle.write(raw)
                reporter.job_line(text)
                tail = [*tail[-39:], text]
        returncode = process.wait()
    except BaseException:
        # Ctrl-C or an error here must not leave the job's processes running in their own session.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        raise
    finally:
        timer.cancel()
    return returncode, timed_out.is_set(), "\n".join(tail)


def _raised_exception(log: str) -> str:
    """The exception line (``IndexError: ...``) of the last Python traceback in ``log``, or ``""``."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Traceback (most recent call last):"]
    if not starts:
        return ""
    # The frames are indented; the first line after them that is not is the exception and its message.
    for line in lines[starts[-1] + 1 :]:
        if line.strip() and not line[0].isspace():
            return line.strip()
    return ""


def _last_error_line(tail: str) -> str:
    """What a failure reason should show of a job's output: the exception of its last traceback, else its last line
    that reports an error, else its last line."""
    raised = _raised_exception(tail)
    if raised:
        return raised
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    flagged = [line for line in lines if re.search(r"error", line, re.IGNORECASE)]
    return (flagged or lines or ["the job printed nothing"])[-1]


def training_failure(returncode: int, output: Path, log: str) -> str:
    """Why a ``sagemaker-training`` job failed, or ``""`` when it succeeded.

    Success is the toolkit's ``output/success`` with exit code 0, as its own report: the toolkit can exit 0 after the
    script crashed (sagemaker-training 5.1 calls ``sys.exit`` in a ``finally`` that swallows an error of its failure
    handling, such as a missing ``output/`` folder), so the exit code alone is not enough. The reason is
    ``output/failure`` (what SageMaker shows as FailureReason, its first 1024 characters) with the exception of the
    job's log first when the file does not carry it (the toolkit writes ``ErrorMessage ""`` for a crashed script).
    """
    failure = output / "failure"
    written = failure.read_text(encoding="utf-8", errors="replace").strip() if failure.is_file() else ""
    if returncode == 0 and not written and (output / "success").is_file():
        return ""
    raised = _raised_exception(log)
    if written:
        reason = " ".join(written.split())[:1024]
        if raised and raised not in written:
            reason = f"{raised} (output/failure: {reason})"
    elif raised or returncode != 0:
        reason = _last_error_line(log)
    else:
        lines = [line.strip() for line in log.splitlines() if line.strip()][-3:]
        reason = (
            "the training toolkit exited 0 without reporting success (no output/success, no output/failure); the "
            f"job's log ends with: {' | '.join(lines) or 'nothing'}"
        )
    return f"AlgorithmError: {reason} (exit code {returncode})"


def _pack_model(source: Path, archive: Path) -> None:
    """``model.tar.gz`` as SageMaker packs ``/opt/ml/model``: its files at the top level."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)


def _job_name(execution_id: str, step: str) -> str:
    """``pipelines-<execution id>-<step>-<suffix>``, at most 63 characters of ``[a-zA-Z0-9-]``, like SageMaker's."""
    suffix = hashlib.sha256(f"{execution_id}/{step}".encode()).hexdigest()[:10]
    cleaned = re.sub(r"[^a-zA-Z0-9-]", "-", step)
    return f"pipelines-{execution_id}-{cleaned}"[:52].rstrip("-") + f"-{suffix}"


@dataclass
class ExecutionResult:
    """What an execution ended as; ``status_file`` is its ``execution.json``."""

    status: str
    failure_reason: str
    failed_step: str
    steps: list[StepRecord]
    status_file: Path
    registered: list[Path]


class PipelineExecution:
    """One execution of a resolved definition against local buckets, under ``<work>/executions/<id>/``."""

    def __init__(
        self,
        *,
        pipeline_name: str,
        definition: dict[str, Any],
        parameters: dict[str, Any],
        execution_id: str,
        work: Path,
        store: LocalObjectStore,
        functions: Callable[[str], ModuleType],
        region: str,
        reporter: Reporter,
    ) -> None:
        self.pipeline_name = pipeline_name
        self.definition = definition
        self.execution_id = execution_id
        self.work = work
        self.directory = work / "executions" / execution_id
        self.store = store
        self.functions = functions
        self.region = region
        self.reporter = reporter
        self.started = time.time()
        self.arn = f"arn:{PARTITION}:sagemaker:{region}:{ACCOUNT_ID}:pipeline/{pipeline_name}/execution/{execution_id}"
        self.evaluator = Evaluator(
            parameters,
            {
                "PipelineExecutionId": execution_id,
                "PipelineExecutionArn": self.arn,
                "PipelineName": pipeline_name,
                "StartDateTime": _timestamp(self.started),
                "CurrentDateTime": _timestamp(self.started),
            },
        )
        self.plan = plan_steps(definition.get("Steps", []))
        self.records: list[StepRecord] = []
        self.registered: list[Path] = []

    def run(self) -> ExecutionResult:
        self.directory.mkdir(parents=True)
        status, reason, failed_step = "Executing", "", ""
        self._write_status(status, reason, failed_step)
        parameters = ", ".join(f"{k}={v}" for k, v in self.evaluator.parameters.items())
        self.reporter.line(f"Execution {self.execution_id} of {self.pipeline_name} ({len(self.plan)} steps)")
        self.reporter.line(f"  parameters: {parameters}")
        outcomes: dict[str, bool] = {}
        for number, planned in enumerate(self.plan, start=1):
            skipped = self._why_not_run(planned, outcomes)
            if status == "Failed":
                skipped = f"the execution failed at {failed_step}"
            if skipped:
                self.evaluator.not_run[planned.name] = skipped
                self.reporter.line(f"[{number}/{len(self.plan)}] {planned.name} ({planned.type}): not run, {skipped}")
                continue
            record = StepRecord(planned.name, planned.type, status="Executing", started=time.time())
            self.records.append(record)
            self._write_status(status, reason, failed_step)
            self.reporter.line(f"[{number}/{len(self.plan)}] {planned.name} ({planned.type}): started")
            try:
                properties, outcome = self._run_step(planned, record)
            except KeyboardInterrupt:
                record.status, record.ended = "Stopped", time.time()
                self._write_status("Stopped", f"stopped by the user during {planned.name}", planned.name)
                raise
            except StepFailure as error:
                record.status, record.failure_reason = "Failed", str(error)
                status, reason, failed_step = "Failed", str(error), planned.name
            except OSError as error:  # a full disk or an unreadable folder fails the step, as it would a job
                record.status, record.failure_reason = "Failed", f"{type(error).__name__}: {error}"
                status, reason, failed_step = "Failed", record.failure_reason, planned.name
            except Exception as error:
                # A bug of this tool: record it, then show the traceback.
                record.status, record.ended = "Failed", time.time()
                self._write_status("Failed", f"local runner error: {type(error).__name__}: {error}", planned.name)
                raise
            else:
                record.status = "Succeeded"
                self.evaluator.step_properties[planned.name] = properties
                if outcome is not None:
                    outcomes[planned.name] = outcome
            record.ended = time.time()
            detail = record.failure_reason or record.summary
            self.reporter.line(
                f"[{number}/{len(self.plan)}] {planned.name} ({planned.type}): {record.status} in "
                f"{record.seconds:.1f} s" + (f": {detail}" if detail else "")
            )
            self._write_status(status, reason, failed_step)
        if status == "Executing":
            status = "Succeeded"
        self._write_status(status, reason, failed_step)
        self._summary(status, reason, failed_step)
        return ExecutionResult(
            status=status,
            failure_reason=reason,
            failed_step=failed_step,
            steps=self.records,
            status_file=self.directory / "execution.json",
            registered=self.registered,
        )

    def _why_not_run(self, planned: PlannedStep, outcomes: Mapping[str, bool]) -> str:
        if planned.branch_of is not None:
            condition, branch = planned.branch_of
            if condition in outcomes and outcomes[condition] != branch:
                return f"{condition} chose the {'ElseSteps' if branch else 'IfSteps'}"
        waiting = sorted(name for name in planned.dependencies if name in self.evaluator.not_run)
        return f"it depends on {', '.join(waiting)}, which did not run" if waiting else ""

    def _write_status(self, status: str, reason: str, failed_step: str) -> None:
        report: dict[str, Any] = {
            "PipelineName": self.pipeline_name,
            "PipelineExecutionArn": self.arn,
            "PipelineExecutionStatus": status,
            "CreationTime": _timestamp(self.started),
            "LastModifiedTime": _timestamp(time.time()),
            "PipelineParameters": [{"Name": k, "Value": str(v)} for k, v in self.evaluator.parameters.items()],
            "Steps": [record.to_json() for record in self.records],
        }
        if reason:
            report["FailureReason"] = reason
            report["FailedStep"] = failed_step
        target = self.directory / "execution.json"
        partial = target.with_suffix(".json.tmp")
        partial.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        partial.replace(target)

    def _summary(self, status: str, reason: str, failed_step: str) -> None:
        seconds = time.time() - self.started
        self.reporter.line(f"Execution {self.execution_id} of {self.pipeline_name}: {status} in {seconds:.1f} s")
        for record in self.records:
            self.reporter.line(f"  {record.name:<24} {record.type:<14} {record.status:<10} {record.seconds:7.1f} s")
        for name, why in self.evaluator.not_run.items():
            self.reporter.line(f"  {name:<24} {'':<14} {'not run':<10} ({why})")
        if reason:
            self.reporter.line(f"  failed at {failed_step}: {reason}")
        self.reporter.line(f"  status: {self.directory / 'execution.json'}")

    def _run_step(self, planned: PlannedStep, record: StepRecord) -> tuple[dict[str, Any], bool | None]:
        step = planned.definition
        if planned.type == "Condition":
            return self._condition(step, record)
        if planned.type == "Fail":
            message = self.evaluator.evaluate(step.get("Arguments", {}).get("ErrorMessage", ""), f"{planned.name}")
            raise StepFailure(render_join_value(message, planned.name) or f"step {planned.name} failed the execution")
        arguments = self.evaluator.evaluate(step.get("Arguments", {}), f"{planned.name}.Arguments")
        folder = self.directory / planned.name
        folder.mkdir()
        (folder / "arguments.json").write_text(json.dumps(arguments, indent=2) + "\n", encoding="utf-8")
        handlers = {
            "Lambda": self._lambda,
            "Training": self._training,
            "Processing": self._processing,
            "RegisterModel": self._register,
        }
        return handlers[planned.type](step, arguments, folder, record), None

    # ---- Condition -------------------------------------------------------------------------------------------------

    def _condition(self, step: dict[str, Any], record: StepRecord) -> tuple[dict[str, Any], bool]:
        conditions = step.get("Arguments", {}).get("Conditions", [])
        if not conditions:
            raise StepFailure(f"condition step {step['Name']} has no conditions")
        results = [
            self.evaluator.condition(condition, f"{step['Name']}.Conditions[{i}]")
            for i, condition in enumerate(conditions)
        ]
        outcome = all(holds for holds, _ in results)
        branch = step["Arguments"].get("IfSteps" if outcome else "ElseSteps", [])
        readings = " and ".join(f"{text} is {str(holds).lower()}" for holds, text in results)
        record.summary = f"{readings} -> {', '.join(s['Name'] for s in branch) or 'no steps'}"
        record.metadata = {"Condition": {"Outcome": str(outcome)}}
        return {"Outcome": outcome}, outcome

    # ---- Lambda ----------------------------------------------------------------------------------------------------

    def _lambda(self, step: dict[str, Any], event: Any, folder: Path, record: StepRecord) -> dict[str, Any]:
        module = self.functions(str(step.get("FunctionArn", "")))
        resolve = getattr(module, "resolve", None)
        if not callable(resolve):
            raise StepFailure(
                f"the function of step {step['Name']} has no resolve(event, store) in {module.__file__}: a local run "
                "calls the pure function its handler wraps, with the local buckets as the store"
            )
        try:
            answer = resolve(event, self.store)
        except StepFailure:
            raise
        except Exception as error:  # the function's own error fails the step with its type and message, as Lambda
            raise StepFailure(f"{type(error).__name__}: {error}") from error
        if not isinstance(answer, dict):
            raise StepFailure(f"the function answered {answer!r}, not an object of output parameters")
        outputs = {}
        for output in step.get("OutputParameters", []):
            name = output["OutputName"]
            if name not in answer:
                raise StepFailure(f"the function's answer has no output {name!r} (it has {sorted(answer)})")
            outputs[name] = answer[name]
        (folder / "answer.json").write_text(json.dumps(answer, indent=2) + "\n", encoding="utf-8")
        record.summary = ", ".join(f"{k}={v}" for k, v in outputs.items())
        record.metadata = {"Lambda": {"Arn": step.get("FunctionArn"), "OutputParameters": outputs}}
        return {"OutputParameters": outputs}

    # ---- Training --------------------------------------------------------------------------------------------------

    def _training(
        self, step: dict[str, Any], request: dict[str, Any], folder: Path, record: StepRecord
    ) -> dict[str, Any]:
        name = step["Name"]
        job_name = _job_name(self.execution_id, name)
        root = folder / "container"
        base = root / "opt" / "ml"
        (root / "tmp").mkdir(parents=True)
        # SageMaker creates these before the container starts; the toolkit writes output/success or output/failure
        # into output/ and does not create it.
        for folder_name in ("model", "output/data"):
            (base / folder_name).mkdir(parents=True)
        notes: list[str] = []
        algorithm = request.get("AlgorithmSpecification", {})
        if "AlgorithmName" in algorithm or "TrainingImage" not in algorithm:
            raise StepFailure(f"step {name}: only TrainingImage script-mode jobs run locally, not {algorithm!r}")
        mode = algorithm.get("TrainingInputMode", "File")
        if mode not in {"File", "FastFile"}:
            raise StepFailure(f"step {name}: TrainingInputMode {mode} does not run locally; use File or FastFile")
        notes.append(f"image {algorithm['TrainingImage']} not pulled, this Python runs the code")

        channel_config: dict[str, Any] = {}
        for channel in request.get("InputDataConfig", []):
            channel_name = channel["ChannelName"]
            source = channel.get("DataSource", {}).get("S3DataSource")
            if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise StepFailure(f"step {name}: channel {channel_name!r} is not an S3Prefix channel: {channel!r}")
            self.store.download(source["S3Uri"], base / "input" / "data" / channel_name, f"channel {channel_name!r}")
            channel_config[channel_name] = {
                "TrainingInputMode": channel.get("InputMode", mode),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
                **({"ContentType": channel["ContentType"]} if "ContentType" in channel else {}),
            }

        hyperparameters: dict[str, str] = {}
        for key, value in request.get("HyperParameters", {}).items():
            if not isinstance(value, str):
                raise StepFailure(f"step {name}: hyperparameter {key} is {value!r}; SageMaker takes strings only")
            if key in DISTRIBUTION_HYPERPARAMETERS and value.strip().lower() == "true":
                notes.append(f"{key} ignored: one local process trains")
                continue
            hyperparameters[key] = rebase_container_paths(value, root)
        submit = hyperparameters.get("sagemaker_submit_directory")
        if submit is not None:
            submit_path = json.loads(submit)
            if isinstance(submit_path, str) and submit_path.startswith("s3://"):
                local = self.store.get(submit_path)
                if local is None:
                    raise StepFailure(f"step {name}: sagemaker_submit_directory {submit_path} does not exist")
                hyperparameters["sagemaker_submit_directory"] = json.dumps(str(local))
            elif not Path(submit_path).exists():
                code = sorted(p.name for p in (base / "input" / "data").rglob("*") if p.is_file())
                raise StepFailure(
                    f"step {name}: sagemaker_submit_directory {json.loads(submit)!r} is not in the job (the channels "
                    f"hold {code[:10]}): the hyperparameter and the code channel disagree"
                )

        resources = request.get("ResourceConfig", {})
        if int(resources.get("InstanceCount", 1)) > 1:
            notes.append(f"InstanceCount {resources['InstanceCount']}: one local host")
        if request.get("EnableManagedSpotTraining"):
            notes.append("spot does not apply locally")
        config = base / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2), encoding="utf-8")
        (config / "inputdataconfig.json").write_text(json.dumps(channel_config, indent=2), encoding="utf-8")
        instance_type = str(resources.get("InstanceType", "local"))
        resource_config = {
            "current_host": "algo-1",
            "hosts": ["algo-1"],
            "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster",
            "instance_groups": [
                {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": ["algo-1"]}
            ],
            "network_interface_name": "eth0",
        }
        (config / "resourceconfig.json").write_text(json.dumps(resource_config, indent=2), encoding="utf-8")

        extra = {
            "SAGEMAKER_BASE_DIR": str(base),
            # Without it the toolkit waits for the DNS name of algo-1, which only exists inside SageMaker.
            "SM_STUDIO_LOCAL_MODE": "true",
            "TRAINING_JOB_NAME": job_name,
            "TRAINING_JOB_ARN": f"arn:{PARTITION}:sagemaker:{self.region}:{ACCOUNT_ID}:training-job/{job_name}",
            **{str(k): str(v) for k, v in request.get("Environment", {}).items()},
        }
        checkpoint = request.get("CheckpointConfig")
        checkpoint_dir: Path | None = None
        if checkpoint:
            local_path = checkpoint.get("LocalPath", "/opt/ml/checkpoints")
            if local_path != "/opt/ml/checkpoints":
                notes.append(f"checkpoints in {local_path}: the script must write there, not /opt/ml/checkpoints")
            checkpoint_dir = container_path(local_path, root, "CheckpointConfig.LocalPath")
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            previous = self.store.list_objects(checkpoint["S3Uri"].rstrip("/") + "/")
            if previous:
                self.store.download(checkpoint["S3Uri"].rstrip("/") + "/", checkpoint_dir, "checkpoints")
                notes.append(f"{len(previous)} checkpoint file(s) restored from {checkpoint['S3Uri']}")
            # The container's /opt/ml/checkpoints is a folder of this job; train.py reads its location from here.
            extra["SM_CHECKPOINT_DIR"] = str(checkpoint_dir)
        record.summary = "; ".join(notes)
        self.reporter.line(f"    {job_name}: {'; '.join(notes)}")
        env = job_environment(root, self.region, bool(request.get("EnableNetworkIsolation")), extra)
        timeout = int(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        returncode, timed_out, _ = run_job(
            [sys.executable, "-m", "sagemaker_training.cli.train"],
            cwd=base,
            env=env,
            log=folder / "job.log",
            timeout_s=timeout,
            reporter=self.reporter,
        )
        if checkpoint and checkpoint_dir is not None and any(checkpoint_dir.iterdir()):
            self.store.put_tree(checkpoint["S3Uri"], checkpoint_dir)
        record.metadata = {"TrainingJob": {"Arn": extra["TRAINING_JOB_ARN"]}}
        if timed_out:
            raise StepFailure(f"MaxRuntimeInSeconds {timeout} exceeded: the training job was stopped")
        reason = training_failure(returncode, base / "output", (folder / "job.log").read_text(encoding="utf-8"))
        if reason:
            raise StepFailure(reason)

        output_path = str(request.get("OutputDataConfig", {}).get("S3OutputPath", "")).rstrip("/")
        if not output_path.startswith("s3://"):
            raise StepFailure(f"step {name}: OutputDataConfig.S3OutputPath {output_path!r} is not an S3 URI")
        model_uri = f"{output_path}/{job_name}/output/model.tar.gz"
        packed = folder / "model.tar.gz"
        _pack_model(base / "model", packed)
        self.store.put(model_uri, packed)
        output_data = base / "output" / "data"
        if output_data.is_dir() and any(output_data.iterdir()):
            _pack_model(output_data, folder / "output.tar.gz")
            self.store.put(f"{output_path}/{job_name}/output/output.tar.gz", folder / "output.tar.gz")
        metrics = final_metrics(algorithm.get("MetricDefinitions", []), (folder / "job.log").read_text("utf-8"))
        found = ", ".join(f"{m['MetricName']}={m['Value']:g}" for m in metrics)
        missing = sorted(
            {d["Name"] for d in algorithm.get("MetricDefinitions", [])} - {m["MetricName"] for m in metrics}
        )
        record.summary = f"{model_uri}; metrics {found or 'none'}" + (
            f"; no log line matched {', '.join(missing)}" if missing else ""
        )
        record.metadata["TrainingJob"]["MetricDefinitionsWithoutMatch"] = missing
        return {
            "TrainingJobName": job_name,
            "TrainingJobArn": extra["TRAINING_JOB_ARN"],
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": model_uri},
            "HyperParameters": request.get("HyperParameters", {}),
            "OutputDataConfig": request.get("OutputDataConfig", {}),
            "FinalMetricDataList": metrics,
        }

    # ---- Processing ------------------------------------------------------------------------------------------------

    def _processing(
        self, step: dict[str, Any], request: dict[str, Any], folder: Path, record: StepRecord
    ) -> dict[str, Any]:
        name = step["Name"]
        job_name = _job_name(self.execution_id, name)
        root = folder / "container"
        (root / "tmp").mkdir(parents=True)
        app = request.get("AppSpecification", {})
        entrypoint = app.get("ContainerEntrypoint")
        if not entrypoint:
            raise StepFailure(f"step {name}: no ContainerEntrypoint; the image's own entrypoint cannot run locally")
        for item in request.get("ProcessingInputs", []):
            source = item.get("S3Input")
            if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise StepFailure(f"step {name}: input {item.get('InputName')!r} is not an S3Prefix input: {item!r}")
            destination = container_path(source["LocalPath"], root, f"input {item['InputName']!r} LocalPath")
            self.store.download(source["S3Uri"], destination, f"input {item['InputName']!r}")
        outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
        output_dirs: dict[str, Path] = {}
        for output in outputs:
            if "S3Output" not in output:
                raise StepFailure(f"step {name}: output {output.get('OutputName')!r} has no S3Output")
            where = f"output {output['OutputName']!r} LocalPath"
            # SageMaker creates the output folders before the container starts.
            output_dirs[output["OutputName"]] = container_path(output["S3Output"]["LocalPath"], root, where)
            output_dirs[output["OutputName"]].mkdir(parents=True, exist_ok=True)
        config = root / "opt" / "ml" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "processingjobconfig.json").write_text(
            json.dumps({"ProcessingJobName": job_name, **request}, indent=2), encoding="utf-8"
        )
        command = [
            rebase_container_paths(str(part), root) for part in [*entrypoint, *app.get("ContainerArguments", [])]
        ]
        cluster = request.get("ProcessingResources", {}).get("ClusterConfig", {})
        self.reporter.line(
            f"    {job_name}: image {app.get('ImageUri')} not pulled, this Python runs the entrypoint; "
            f"{cluster.get('InstanceType', 'no instance type')} does not apply locally"
        )
        network = request.get("NetworkConfig", {})
        env = job_environment(
            root,
            self.region,
            bool(network.get("EnableNetworkIsolation")),
            {"PROCESSING_JOB_NAME": job_name, **{str(k): str(v) for k, v in request.get("Environment", {}).items()}},
        )
        timeout = int(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        returncode, timed_out, tail = run_job(
            command, cwd=folder, env=env, log=folder / "job.log", timeout_s=timeout, reporter=self.reporter
        )
        arn = f"arn:{PARTITION}:sagemaker:{self.region}:{ACCOUNT_ID}:processing-job/{job_name}"
        record.metadata = {"ProcessingJob": {"Arn": arn}}
        if timed_out:
            raise StepFailure(f"MaxRuntimeInSeconds {timeout} exceeded: the processing job was stopped")
        if returncode != 0:
            raise StepFailure(f"AlgorithmError: {_last_error_line(tail)} (exit code {returncode})")
        for output in outputs:
            self.store.put_tree(output["S3Output"]["S3Uri"], output_dirs[output["OutputName"]])
        by_name = {output["OutputName"]: output for output in outputs}
        read: list[str] = []
        for declared in step.get("PropertyFiles", []):
            file_name, output_name = declared["PropertyFileName"], declared["OutputName"]
            if output_name not in by_name:
                raise StepFailure(f"property file {file_name} names output {output_name!r}, which the step lacks")
            uri = f"{by_name[output_name]['S3Output']['S3Uri'].rstrip('/')}/{declared['FilePath']}"
            local_file = self.store.get(uri)
            if local_file is None:
                raise StepFailure(
                    f"property file {file_name}: the job wrote no {declared['FilePath']} to output {output_name!r} "
                    f"({uri})"
                )
            try:
                content = json.loads(local_file.read_text(encoding="utf-8"))
            except ValueError as error:
                raise StepFailure(f"property file {file_name} ({uri}) is not JSON: {error}") from error
            self.evaluator.property_files[(name, file_name)] = PropertyFileValue(name, file_name, uri, content)
            read.append(f"{file_name} <- {uri}")
        record.summary = "; ".join(read) or f"{len(outputs)} output(s) uploaded"
        return {
            "ProcessingJobName": job_name,
            "ProcessingJobArn": arn,
            "ProcessingJobStatus": "Completed",
            "ProcessingInputs": request.get("ProcessingInputs", []),
            "ProcessingOutputConfig": request.get("ProcessingOutputConfig", {}),
            "AppSpecification": app,
        }

    # ---- RegisterModel ---------------------------------------------------------------------------------------------

    def _register(
        self, step: dict[str, Any], request: dict[str, Any], folder: Path, record: StepRecord
    ) -> dict[str, Any]:
        group = request.get("ModelPackageGroupName")
        if not isinstance(group, str) or not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", group):
            raise StepFailure(f"ModelPackageGroupName {group!r} is not a model package group name")
        approval = request.get("ModelApprovalStatus", "PendingManualApproval")
        if approval not in APPROVAL_STATUSES:
            raise StepFailure(
                f"ValidationException: ModelApprovalStatus {approval!r} is not one of {', '.join(APPROVAL_STATUSES)}"
            )
        specification = request.get("InferenceSpecification", {})
        containers = specification.get("Containers", [])
        if not containers:
            raise StepFailure("InferenceSpecification.Containers is empty: a model package needs a container")
        local_files: dict[str, str] = {}
        uris = [(f"Containers[{i}].ModelDataUrl", c.get("ModelDataUrl")) for i, c in enumerate(containers)]
        for kind, metrics in request.get("ModelMetrics", {}).items():
            for metric, report in metrics.items():
                uris.append((f"ModelMetrics.{kind}.{metric}.S3Uri", report.get("S3Uri")))
        for what, uri in uris:
            if not isinstance(uri, str):
                raise StepFailure(f"{what} is {uri!r}, not an S3 URI")
            found = self.store.get(uri)
            if found is None:
                raise StepFailure(f"{what} {uri} does not exist: the step registers a file no earlier step wrote")
            local_files[uri] = str(found)
        for key in ("SupportedContentTypes", "SupportedResponseMIMETypes"):
            values = specification.get(key)
            if not (isinstance(values, list) and values and all(isinstance(v, str) for v in values)):
                raise StepFailure(f"InferenceSpecification.{key} must be a non-empty list of strings, got {values!r}")
        registry = self.work / "registry" / group
        registry.mkdir(parents=True, exist_ok=True)
        versions = [int(p.name) for p in registry.iterdir() if p.name.isdigit()]
        version = max(versions, default=0) + 1
        target = registry / str(version)
        target.mkdir()
        arn = f"arn:{PARTITION}:sagemaker:{self.region}:{ACCOUNT_ID}:model-package/{group}/{version}"
        package = {
            **request,
            "ModelApprovalStatus": approval,
            "ModelPackageArn": arn,
            "ModelPackageVersion": version,
            "ModelPackageStatus": "Completed",
            "CreationTime": _timestamp(time.time()),
            "PipelineExecutionArn": self.arn,
            "LocalFiles": local_files,
        }
        (target / "model-package.json").write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
        self.registered.append(target / "model-package.json")
        record.summary = f"{arn} ({approval}) -> {target / 'model-package.json'}"
        record.metadata = {"RegisterModel": {"Arn": arn}}
        return {"ModelPackageArn": arn, "ModelPackageVersion": version, "ModelApprovalStatus": approval}


def final_metrics(definitions: Sequence[Mapping[str, str]], log: str) -> list[dict[str, Any]]:
    """The last value each ``MetricDefinitions`` regex captures in the job's log, as SageMaker reports them."""
    metrics = []
    for definition in definitions:
        values = re.findall(definition["Regex"], log)
        if values:
            last = values[-1][0] if isinstance(values[-1], tuple) else values[-1]
            with contextlib.suppress(ValueError):
                metrics.append({"MetricName": definition["Name"], "Value": float(last)})
    return metrics


# --------------------------------------------------------------------------------------------------------------------
# Finding the pipeline, wiring the local run
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedPipeline:
    """The pipeline chosen from the assembly, its definition with every intrinsic resolved."""

    stack: str
    logical_id: str
    name: str
    definition: dict[str, Any]


def find_training_pipeline(
    resolver: IntrinsicResolver, stack: str | None, pipeline_name: str | None
) -> ResolvedPipeline:
    """The ``AWS::SageMaker::Pipeline`` named ``pipeline_name`` (default: the one ending in ``-training``)."""
    assembly = resolver.assembly
    if stack is not None and stack not in assembly.stacks:
        raise LocalRunError(f"--stack {stack}: the cloud assembly has {sorted(assembly.stacks)}")
    found: list[tuple[str, str, str, dict[str, Any]]] = []
    for template in assembly.stacks.values():
        if stack is not None and template.name != stack:
            continue
        for logical_id, resource in template.template.get("Resources", {}).items():
            if resource.get("Type") != "AWS::SageMaker::Pipeline":
                continue
            properties = resource.get("Properties", {})
            name = str(resolver.resolve(properties.get("PipelineName"), template.name, f"{logical_id}.PipelineName"))
            found.append((template.name, logical_id, name, properties))
    names = sorted(f"{name} ({stack_name})" for stack_name, _, name, _ in found)
    wanted = [f for f in found if (f[2] == pipeline_name if pipeline_name is not None else f[2].endswith("-training"))]
    if not wanted:
        target = pipeline_name or "a name ending in -training"
        raise LocalRunError(f"no SageMaker pipeline with {target} in {assembly.directory}; it has {names or 'none'}")
    if len(wanted) > 1:
        raise LocalRunError(f"several pipelines match: {names}; pick one with --stack or --pipeline")
    stack_name, logical_id, name, properties = wanted[0]
    body = properties.get("PipelineDefinition", {}).get("PipelineDefinitionBody")
    if body is None:
        raise LocalRunError(f"pipeline {name} has no PipelineDefinitionBody (a definition in S3 does not run locally)")
    text = resolver.resolve(body, stack_name, f"{logical_id}.PipelineDefinition.PipelineDefinitionBody")
    try:
        definition = json.loads(text) if isinstance(text, str) else text
    except ValueError as error:
        raise LocalRunError(f"pipeline {name}: the resolved definition is not JSON ({error})") from error
    if not isinstance(definition, dict) or not isinstance(definition.get("Steps"), list):
        raise LocalRunError(f"pipeline {name}: the definition has no Steps list")
    return ResolvedPipeline(stack=stack_name, logical_id=logical_id, name=name, definition=definition)


def build_store(resolver: IntrinsicResolver, curated: Path, artifacts: Path, work: Path) -> LocalObjectStore:
    """The buckets: curated and artifacts over their folders, other referenced buckets empty, the asset buckets."""
    store = LocalObjectStore()
    store.add(
        LocalBucket(
            resolver.curated_bucket_name,
            [work / "s3" / resolver.curated_bucket_name, curated],
            work / "s3" / resolver.curated_bucket_name,
        )
    )
    store.add(
        LocalBucket(
            ARTIFACTS_BUCKET_NAME, [work / "s3" / ARTIFACTS_BUCKET_NAME, artifacts], work / "s3" / ARTIFACTS_BUCKET_NAME
        )
    )
    for bucket in resolver.bucket_names:
        if bucket not in store.buckets:
            store.add(LocalBucket(bucket, [work / "s3" / bucket], work / "s3" / bucket))
    for asset in resolver.assembly.assets:
        bucket_name = resolver.resolve(
            {"Fn::Sub": asset.bucket_template}, next(iter(resolver.assembly.stacks)), "asset"
        )
        if bucket_name not in store.buckets:
            store.add(LocalBucket(bucket_name, [], None))
        if asset.packaging == "file":
            store.buckets[bucket_name].files[asset.object_key] = asset.source
    return store


def function_loader(resolver: IntrinsicResolver) -> Callable[[str], ModuleType]:
    """Loads the staged code of the function an ARN placeholder stands for, by its ``Handler`` module."""
    loaded: dict[str, ModuleType] = {}

    def load(function_arn: str) -> ModuleType:
        reference = resolver.placeholders.get(function_arn)
        if reference is None or reference.type != "AWS::Lambda::Function":
            raise StepFailure(f"FunctionArn {function_arn!r} is not a function of the app's stacks")
        if function_arn in loaded:
            return loaded[function_arn]
        properties = resolver.assembly.stacks[reference.stack].resource(reference.logical_id)["Properties"]
        key = properties.get("Code", {}).get("S3Key")
        assets = [a for a in resolver.assembly.assets if a.object_key == key and a.source.is_dir()]
        if not assets:
            raise StepFailure(f"function {reference.logical_id}: no staged directory asset for its code {key!r}")
        module_path, _, _ = str(properties["Handler"]).rpartition(".")
        source = assets[0].source / (module_path.replace(".", "/") + ".py")
        spec = importlib.util.spec_from_file_location(f"local_lambda_{reference.logical_id}", source)
        if spec is None or spec.loader is None or not source.is_file():
            raise StepFailure(f"function {reference.logical_id}: handler module {source} not found")
        module = importlib.util.module_from_spec(spec)
        # Registered before it runs (dataclasses look their module up), with the code folder importable, as in Lambda.
        sys.modules[spec.name] = module
        sys.path.insert(0, str(assets[0].source))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(assets[0].source))
        loaded[function_arn] = module
        return module

    return load


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"), help="Cloud assembly folder (cdk synth).")
    parser.add_argument("--stack", help="Stack holding the pipeline; default: search every stack.")
    parser.add_argument("--pipeline", help="Pipeline name; default: the one whose name ends in -training.")
    parser.add_argument("--curated", type=Path, required=True, help="Folder standing for the curated bucket.")
    parser.add_argument(
        "--artifacts", type=Path, required=True, help="Folder standing for the artifacts bucket (pretrained/<name>/)."
    )
    parser.add_argument("--work", type=Path, required=True, help="Jobs, written objects, registry, status files.")
    parser.add_argument(
        "--parameter", action="append", default=[], metavar="NAME=VALUE", help="Pipeline parameter; repeatable."
    )
    parser.add_argument("--execution-id", help="Execution id (lower-case letters, digits, '-'); default: random.")
    parser.add_argument(
        "--region", default=DEFAULT_REGION, help=f"Region the intrinsics see. Default {DEFAULT_REGION}."
    )
    parser.add_argument(
        "--curated-bucket-name",
        default=DEFAULT_CURATED_BUCKET_NAME,
        help="Name of the curated bucket in this run; set it to the deployed bucket's name when --curated is a copy "
        f"of it (its _LATEST pointer names that bucket). Default {DEFAULT_CURATED_BUCKET_NAME}.",
    )
    parser.add_argument("--no-job-logs", action="store_true", help="Keep the jobs' output in job.log files only.")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, stream: TextIO) -> ExecutionResult:
    """Resolve the pipeline from ``args.cdk_out`` and run one execution; raises :class:`LocalRunError`."""
    for flag, folder in (("--curated", args.curated), ("--artifacts", args.artifacts)):
        if not folder.is_dir():
            raise LocalRunError(f"{flag} {folder} is not a folder: create it or point {flag} at the bucket's copy")
    work = args.work.resolve()
    if not _SAFE_PATH.match(str(work)):
        raise LocalRunError(
            f"--work {work}: container paths inside commands are rewritten to it, so use only letters, digits, "
            "'.', '_', '-' and '/'"
        )
    execution_id = args.execution_id or secrets.token_hex(6)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", execution_id):
        raise LocalRunError(f"--execution-id {execution_id!r}: use 1-40 lower-case letters, digits or '-'")
    if (work / "executions" / execution_id).exists():
        raise LocalRunError(f"--execution-id {execution_id} was already used in {work}: pick another or a new --work")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", args.curated_bucket_name):
        raise LocalRunError(f"--curated-bucket-name {args.curated_bucket_name!r} is not an S3 bucket name")
    resolver = IntrinsicResolver(
        CloudAssembly.load(args.cdk_out), region=args.region, curated_bucket_name=args.curated_bucket_name
    )
    pipeline = find_training_pipeline(resolver, args.stack, args.pipeline)
    parameters = parse_parameter_overrides(pipeline.definition.get("Parameters", []), args.parameter)
    store = build_store(resolver, args.curated.resolve(), args.artifacts.resolve(), work)
    execution = PipelineExecution(
        pipeline_name=pipeline.name,
        definition=pipeline.definition,
        parameters=parameters,
        execution_id=execution_id,
        work=work,
        store=store,
        functions=function_loader(resolver),
        region=args.region,
        reporter=Reporter(stream, job_logs=not args.no_job_logs),
    )
    Reporter(stream, job_logs=False).line(
        f"{pipeline.name} from {pipeline.stack} ({args.cdk_out}): curated {resolver.curated_bucket_name} = "
        f"{args.curated}, artifacts {ARTIFACTS_BUCKET_NAME} = {args.artifacts}, writes under {work / 's3'}"
    )
    return execution.run()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args, sys.stdout)
    except LocalRunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped: the execution is marked Stopped in its execution.json", file=sys.stderr)
        return 130
    return 0 if result.status == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
