"""A typed builder for SageMaker Pipeline definitions (schema ``2020-12-01``), rendered at synth without the SDK.

The SageMaker Python SDK builds the same JSON, but it needs a region and credentials, uploads code and stamps times,
so a synth that used it would stop being hermetic. This module knows only the definition's shape:

- parameters (:class:`ParameterString`, :class:`ParameterInteger`, :class:`ParameterFloat`,
  :class:`ParameterBoolean`), each rendered as ``{"Get": "Parameters.<name>"}`` where it is used;
- expressions: :data:`EXECUTION_ID` (``Execution.PipelineExecutionId``), :meth:`Step.property`
  (``Steps.<name>.<path>``), :class:`Join` (``Std:Join``) and :class:`JsonGet` (``Std:JsonGet`` over a
  :class:`PropertyFile`);
- steps: :class:`TrainingStep`, :class:`ProcessingStep`, :class:`ConditionStep`, :class:`RegisterModelStep`,
  :class:`FailStep`, :class:`ModelStep`, :class:`TransformStep`, :class:`LambdaStep`, whose arguments are the
  request of the matching SageMaker API call (``CreateTrainingJob`` without the job name, and so on).

:meth:`PipelineDefinition.render` returns a plain dict that may hold CDK tokens (bucket names, role ARNs); the stack
turns it into ``PipelineDefinitionBody`` with ``Stack.to_json_string``. Rendering checks the references: a ``Get``
of a parameter or step that the definition does not have, two steps with one name, a ``JsonGet`` of a property file
that its step does not declare, each raises :class:`PipelineDefinitionError` naming it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

SCHEMA_VERSION = "2020-12-01"


class PipelineDefinitionError(ValueError):
    """A pipeline definition that SageMaker would reject, found at synth."""


class Expression(ABC):
    """A value SageMaker resolves when the pipeline runs."""

    @abstractmethod
    def render(self) -> Any:
        """The JSON SageMaker reads for this value."""

    def references(self) -> Iterator[Expression]:
        """This expression and every expression inside it."""
        yield self


@dataclass(frozen=True)
class _Parameter(Expression):
    name: str
    default: Any
    TYPE: ClassVar[str] = ""

    def render(self) -> Any:
        return {"Get": f"Parameters.{self.name}"}

    def declaration(self) -> dict[str, Any]:
        return {"Name": self.name, "Type": self.TYPE, "DefaultValue": self.default}


@dataclass(frozen=True)
class ParameterString(_Parameter):
    """A string parameter with a default (an execution may override it)."""

    default: str
    TYPE: ClassVar[str] = "String"


@dataclass(frozen=True)
class ParameterInteger(_Parameter):
    """An integer parameter with a default."""

    default: int
    TYPE: ClassVar[str] = "Integer"


@dataclass(frozen=True)
class ParameterFloat(_Parameter):
    """A float parameter with a default."""

    default: float
    TYPE: ClassVar[str] = "Float"


@dataclass(frozen=True)
class ParameterBoolean(_Parameter):
    """A boolean parameter with a default."""

    default: bool
    TYPE: ClassVar[str] = "Boolean"


Parameter = ParameterString | ParameterInteger | ParameterFloat | ParameterBoolean


@dataclass(frozen=True)
class ExecutionVariable(Expression):
    """A property of the running execution (``Execution.<name>``)."""

    name: str

    def render(self) -> Any:
        return {"Get": f"Execution.{self.name}"}


EXECUTION_ID = ExecutionVariable("PipelineExecutionId")


@dataclass(frozen=True)
class StepProperty(Expression):
    """A property of a step's job once it ran (``Steps.<step>.<path>``), e.g. ``ModelArtifacts.S3ModelArtifacts``."""

    step_name: str
    path: str

    def render(self) -> Any:
        return {"Get": f"Steps.{self.step_name}.{self.path}"}


@dataclass(frozen=True)
class PropertyFile:
    """A JSON file a processing step writes to one of its outputs, readable by :class:`JsonGet`."""

    name: str
    output_name: str
    path: str

    def render(self) -> dict[str, str]:
        return {"PropertyFileName": self.name, "OutputName": self.output_name, "FilePath": self.path}


@dataclass(frozen=True)
class JsonGet(Expression):
    """A value read from a step's property file with a JSON path (``metrics.accuracy.value``)."""

    step_name: str
    property_file: str
    json_path: str

    def render(self) -> Any:
        return {
            "Std:JsonGet": {
                "PropertyFile": {"Get": f"Steps.{self.step_name}.PropertyFiles.{self.property_file}"},
                "Path": self.json_path,
            }
        }


@dataclass(frozen=True)
class Join(Expression):
    """Values (strings, numbers, expressions, CDK tokens) joined with ``on`` when the pipeline runs."""

    on: str
    values: tuple[Any, ...]

    def render(self) -> Any:
        return {"Std:Join": {"On": self.on, "Values": [_render(value) for value in self.values]}}

    def references(self) -> Iterator[Expression]:
        yield self
        for value in self.values:
            yield from _expressions(value)


def join(on: str, *values: Any) -> Join:
    """``Std:Join`` of ``values`` with the separator ``on``."""
    return Join(on=on, values=values)


def hyperparameter(value: Any) -> Any:
    """A training hyperparameter as SageMaker stores it: a JSON-encoded string.

    The training toolkit JSON-decodes each value before it becomes a ``--key value`` flag, so a string is quoted
    (``"\\"train.py\\""``) and a number is its text; a parameter is joined into the same form when the pipeline runs.
    """
    if isinstance(value, ParameterString):
        return Join(on="", values=('"', value, '"'))
    if isinstance(value, Expression):
        return Join(on="", values=(value,))
    if isinstance(value, bool | int | float | str):
        return json.dumps(value)
    raise PipelineDefinitionError(f"hyperparameter value {value!r} is not a string, number, boolean or expression")


@dataclass(frozen=True)
class Condition:
    """A comparison for a :class:`ConditionStep` (``GreaterThanOrEqualTo``, ``Equals``, ...)."""

    kind: str
    left: Any
    right: Any
    KINDS: ClassVar[tuple[str, ...]] = (
        "Equals",
        "GreaterThan",
        "GreaterThanOrEqualTo",
        "LessThan",
        "LessThanOrEqualTo",
    )

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise PipelineDefinitionError(f"condition type {self.kind!r} is not one of {', '.join(self.KINDS)}")

    def render(self) -> dict[str, Any]:
        return {"Type": self.kind, "LeftValue": _render(self.left), "RightValue": _render(self.right)}


@dataclass
class Step:
    """One step: a name, the request of its SageMaker call as ``arguments`` and the steps it waits for."""

    name: str
    arguments: Mapping[str, Any]
    depends_on: Sequence[str] = ()
    TYPE: ClassVar[str] = ""

    def property(self, path: str) -> StepProperty:
        """``Steps.<name>.<path>``: a property of this step's job, for later steps."""
        return StepProperty(self.name, path)

    def render(self) -> dict[str, Any]:
        rendered: dict[str, Any] = {"Name": self.name, "Type": self.TYPE, "Arguments": _render(self.arguments)}
        if self.depends_on:
            rendered["DependsOn"] = list(self.depends_on)
        return rendered

    def children(self) -> Sequence[Step]:
        return ()

    def expressions(self) -> Iterator[Expression]:
        yield from _expressions(self.arguments)


@dataclass
class TrainingStep(Step):
    """A training job; ``arguments`` is the ``CreateTrainingJob`` request without ``TrainingJobName``."""

    TYPE: ClassVar[str] = "Training"

    @property
    def model_artifacts(self) -> StepProperty:
        return self.property("ModelArtifacts.S3ModelArtifacts")


@dataclass
class ProcessingStep(Step):
    """A processing job (``CreateProcessingJob`` without the job name), with the property files it writes."""

    property_files: Sequence[PropertyFile] = ()
    TYPE: ClassVar[str] = "Processing"

    def render(self) -> dict[str, Any]:
        rendered = super().render()
        if self.property_files:
            rendered["PropertyFiles"] = [property_file.render() for property_file in self.property_files]
        return rendered

    def json_get(self, property_file: str, json_path: str) -> JsonGet:
        """``Std:JsonGet`` of ``json_path`` in one of this step's property files."""
        return JsonGet(self.name, property_file, json_path)


@dataclass
class RegisterModelStep(Step):
    """A model package version in a group (``CreateModelPackage``)."""

    TYPE: ClassVar[str] = "RegisterModel"


@dataclass
class ModelStep(Step):
    """A SageMaker model (``CreateModel`` without the model name); ``Steps.<name>.ModelName`` names it."""

    TYPE: ClassVar[str] = "Model"

    @property
    def model_name(self) -> StepProperty:
        return self.property("ModelName")


@dataclass
class TransformStep(Step):
    """A batch transform job (``CreateTransformJob`` without the job name)."""

    TYPE: ClassVar[str] = "Transform"


@dataclass
class LambdaStep(Step):
    """Invokes a Lambda function with ``arguments`` as its event; its answer's keys are ``output_names``."""

    function_arn: str = ""
    output_names: Sequence[str] = ()
    TYPE: ClassVar[str] = "Lambda"

    def render(self) -> dict[str, Any]:
        rendered = super().render()
        rendered["FunctionArn"] = self.function_arn
        rendered["OutputParameters"] = [{"OutputName": name, "OutputType": "String"} for name in self.output_names]
        return rendered

    def output(self, name: str) -> StepProperty:
        """``Steps.<name>.OutputParameters['<output>']``: one value of the function's answer."""
        if name not in self.output_names:
            raise PipelineDefinitionError(
                f"Lambda step {self.name!r} has no output {name!r}; it has {self.output_names}"
            )
        return self.property(f"OutputParameters['{name}']")


@dataclass
class FailStep(Step):
    """Ends the execution as failed with ``error_message`` (a string or an expression)."""

    arguments: Mapping[str, Any] = field(default_factory=dict)
    error_message: Any = ""
    TYPE: ClassVar[str] = "Fail"

    def __post_init__(self) -> None:
        self.arguments = {"ErrorMessage": self.error_message}


@dataclass
class ConditionStep(Step):
    """Runs ``if_steps`` when every condition holds, else ``else_steps``."""

    arguments: Mapping[str, Any] = field(default_factory=dict)
    conditions: Sequence[Condition] = ()
    if_steps: Sequence[Step] = ()
    else_steps: Sequence[Step] = ()
    TYPE: ClassVar[str] = "Condition"

    def __post_init__(self) -> None:
        if not self.conditions:
            raise PipelineDefinitionError(f"condition step {self.name!r} has no conditions")

    def render(self) -> dict[str, Any]:
        rendered: dict[str, Any] = {
            "Name": self.name,
            "Type": self.TYPE,
            "Arguments": {
                "Conditions": [condition.render() for condition in self.conditions],
                "IfSteps": [step.render() for step in self.if_steps],
                "ElseSteps": [step.render() for step in self.else_steps],
            },
        }
        if self.depends_on:
            rendered["DependsOn"] = list(self.depends_on)
        return rendered

    def children(self) -> Sequence[Step]:
        return (*self.if_steps, *self.else_steps)

    def expressions(self) -> Iterator[Expression]:
        for condition in self.conditions:
            yield from _expressions(condition.left)
            yield from _expressions(condition.right)


@dataclass
class PipelineDefinition:
    """Parameters and steps of one pipeline; :meth:`render` checks every reference and returns the definition."""

    parameters: Sequence[Parameter]
    steps: Sequence[Step]

    def all_steps(self) -> list[Step]:
        """Every step, the branches of condition steps included, in definition order."""
        found: list[Step] = []
        pending = list(self.steps)
        while pending:
            step = pending.pop(0)
            found.append(step)
            pending[0:0] = step.children()
        return found

    def render(self) -> dict[str, Any]:
        self.validate()
        return {
            "Version": SCHEMA_VERSION,
            "Metadata": {},
            "Parameters": [parameter.declaration() for parameter in self.parameters],
            "Steps": [step.render() for step in self.steps],
        }

    def validate(self) -> None:
        """Raise :class:`PipelineDefinitionError` for the first reference SageMaker could not resolve."""
        parameter_names = [parameter.name for parameter in self.parameters]
        repeated = sorted({name for name in parameter_names if parameter_names.count(name) > 1})
        if repeated:
            raise PipelineDefinitionError(f"parameter names must be unique; repeated: {', '.join(repeated)}")
        steps = self.all_steps()
        step_names = [step.name for step in steps]
        repeated = sorted({name for name in step_names if step_names.count(name) > 1})
        if repeated:
            raise PipelineDefinitionError(f"step names must be unique; repeated: {', '.join(repeated)}")
        by_name = {step.name: step for step in steps}
        for step in steps:
            for name in step.depends_on:
                if name not in by_name:
                    raise PipelineDefinitionError(f"step {step.name!r} depends on {name!r}, which is not a step")
            for expression in step.expressions():
                _check_reference(step, expression, parameter_names, by_name)


def _check_reference(
    step: Step, expression: Expression, parameter_names: Sequence[str], steps: Mapping[str, Step]
) -> None:
    if isinstance(expression, _Parameter) and expression.name not in parameter_names:
        raise PipelineDefinitionError(
            f"step {step.name!r} uses parameter {expression.name!r}, which the pipeline does not declare"
        )
    if isinstance(expression, StepProperty | JsonGet) and expression.step_name not in steps:
        raise PipelineDefinitionError(
            f"step {step.name!r} reads a property of step {expression.step_name!r}, which is not in the pipeline"
        )
    if isinstance(expression, StepProperty | JsonGet) and expression.step_name == step.name:
        raise PipelineDefinitionError(f"step {step.name!r} reads a property of itself")
    if isinstance(expression, JsonGet):
        source = steps[expression.step_name]
        declared = [p.name for p in source.property_files] if isinstance(source, ProcessingStep) else []
        if expression.property_file not in declared:
            raise PipelineDefinitionError(
                f"step {step.name!r} reads property file {expression.property_file!r} of step "
                f"{expression.step_name!r}, which declares {declared or 'no property files'}"
            )


def _expressions(value: Any) -> Iterator[Expression]:
    if isinstance(value, Expression):
        yield from value.references()
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _expressions(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _expressions(item)


def _render(value: Any) -> Any:
    if isinstance(value, Expression):
        return value.render()
    if isinstance(value, Mapping):
        return {key: _render(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_render(item) for item in value]
    return value
