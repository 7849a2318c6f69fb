"""The pipeline definition builder: each piece renders the JSON SageMaker reads, and validate() names bad references."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from components.pipeline_definition import (
    EXECUTION_ID,
    SCHEMA_VERSION,
    Condition,
    ConditionStep,
    FailStep,
    JsonGet,
    LambdaStep,
    ModelStep,
    ParameterBoolean,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
    PipelineDefinition,
    PipelineDefinitionError,
    ProcessingStep,
    PropertyFile,
    RegisterModelStep,
    Step,
    TrainingStep,
    TransformStep,
    hyperparameter,
    join,
)

INPUT = ParameterString("InputPrefix", "latest")
EPOCHS = ParameterInteger("Epochs", 3)
RATE = ParameterFloat("LearningRate", 5e-5)
SPOT = ParameterBoolean("UseSpot", True)
METRICS = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")


def _train(name: str = "Train", **arguments: Any) -> TrainingStep:
    return TrainingStep(name=name, arguments={"InputDataConfig": [{"S3Uri": INPUT}], **arguments})


def _evaluate(name: str = "Evaluate", depends_on: tuple[str, ...] = ()) -> ProcessingStep:
    return ProcessingStep(
        name=name,
        arguments={"ProcessingInputs": [{"S3Uri": _train().model_artifacts}]},
        property_files=[METRICS],
        depends_on=depends_on,
    )


def _gate(if_steps: list[Step], else_steps: list[Step], name: str = "CheckAccuracy") -> ConditionStep:
    return ConditionStep(
        name=name,
        conditions=[Condition("GreaterThanOrEqualTo", JsonGet("Evaluate", "EvaluationReport", "accuracy"), 0.7)],
        if_steps=if_steps,
        else_steps=else_steps,
    )


# Parameters and expressions


@pytest.mark.parametrize(
    ("parameter", "type_name", "default"),
    [(INPUT, "String", "latest"), (EPOCHS, "Integer", 3), (RATE, "Float", 5e-5), (SPOT, "Boolean", True)],
)
def test_each_parameter_type_renders_a_get_where_used_and_a_typed_declaration(
    parameter: Any, type_name: str, default: Any
) -> None:
    assert parameter.render() == {"Get": f"Parameters.{parameter.name}"}
    assert parameter.declaration() == {"Name": parameter.name, "Type": type_name, "DefaultValue": default}


def test_execution_id_renders_the_pipeline_execution_id() -> None:
    assert EXECUTION_ID.render() == {"Get": "Execution.PipelineExecutionId"}


def test_step_property_renders_a_get_of_the_step_path() -> None:
    assert _train().model_artifacts.render() == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert ModelStep(name="CreateModel", arguments={}).model_name.render() == {"Get": "Steps.CreateModel.ModelName"}


def test_join_renders_std_join_with_literals_kept_and_expressions_rendered() -> None:
    rendered = join("/", "s3://bucket/checkpoints", EXECUTION_ID, 7).render()
    assert rendered == {
        "Std:Join": {
            "On": "/",
            "Values": ["s3://bucket/checkpoints", {"Get": "Execution.PipelineExecutionId"}, 7],
        }
    }


def test_join_references_include_the_expressions_inside_it() -> None:
    assert set(join("-", INPUT, "x", EXECUTION_ID).references()) >= {INPUT, EXECUTION_ID}


def test_json_get_renders_the_property_file_of_its_step_and_the_path() -> None:
    assert _evaluate().json_get("EvaluationReport", "metrics.accuracy.value").render() == {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            "Path": "metrics.accuracy.value",
        }
    }


# hyperparameter()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("train.py", '"train.py"'), (3, "3"), (5e-5, "5e-05"), (True, "true"), (False, "false")],
)
def test_hyperparameter_literals_are_json_encoded_strings(value: Any, expected: str) -> None:
    encoded = hyperparameter(value)
    assert encoded == expected
    assert json.loads(encoded) == value


def test_hyperparameter_string_parameter_is_joined_inside_quotes() -> None:
    assert hyperparameter(INPUT).render() == {
        "Std:Join": {"On": "", "Values": ['"', {"Get": "Parameters.InputPrefix"}, '"']}
    }


@pytest.mark.parametrize("parameter", [EPOCHS, RATE, EXECUTION_ID])
def test_hyperparameter_non_string_expression_is_joined_without_quotes(parameter: Any) -> None:
    assert hyperparameter(parameter).render() == {"Std:Join": {"On": "", "Values": [parameter.render()]}}


@pytest.mark.parametrize("value", [None, ["a"], {"k": "v"}])
def test_hyperparameter_rejects_values_that_are_not_scalars_or_expressions(value: Any) -> None:
    with pytest.raises(PipelineDefinitionError, match=re.escape(repr(value))):
        hyperparameter(value)


# Step rendering


def test_training_step_renders_type_arguments_and_depends_on() -> None:
    step = TrainingStep(
        name="Train",
        arguments={"HyperParameters": {"epochs": hyperparameter(EPOCHS)}, "RoleArn": "arn:role"},
        depends_on=["Resolve"],
    )
    assert step.render() == {
        "Name": "Train",
        "Type": "Training",
        "Arguments": {
            "HyperParameters": {"epochs": {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Epochs"}]}}},
            "RoleArn": "arn:role",
        },
        "DependsOn": ["Resolve"],
    }


def test_step_without_dependencies_renders_no_depends_on() -> None:
    assert "DependsOn" not in _train().render()


def test_processing_step_renders_its_property_files() -> None:
    rendered = _evaluate().render()
    assert rendered["Type"] == "Processing"
    assert rendered["Arguments"] == {
        "ProcessingInputs": [{"S3Uri": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}]
    }
    assert rendered["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]


def test_processing_step_without_property_files_renders_none() -> None:
    assert "PropertyFiles" not in ProcessingStep(name="Evaluate", arguments={}).render()


def test_condition_step_renders_conditions_and_both_branches() -> None:
    register = RegisterModelStep(name="Register", arguments={"ModelPackageGroupName": "models"})
    fail = FailStep(name="TooInaccurate", error_message=join(" ", "accuracy below", 0.7))
    rendered = _gate([register], [fail]).render()
    assert rendered == {
        "Name": "CheckAccuracy",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {
                    "Type": "GreaterThanOrEqualTo",
                    "LeftValue": JsonGet("Evaluate", "EvaluationReport", "accuracy").render(),
                    "RightValue": 0.7,
                }
            ],
            "IfSteps": [register.render()],
            "ElseSteps": [fail.render()],
        },
    }


def test_condition_step_renders_depends_on_when_given() -> None:
    step = ConditionStep(name="Gate", conditions=[Condition("Equals", SPOT, True)], depends_on=["Evaluate"])
    assert step.render()["DependsOn"] == ["Evaluate"]


def test_condition_step_without_conditions_is_rejected_naming_it() -> None:
    with pytest.raises(PipelineDefinitionError, match="'Gate' has no conditions"):
        ConditionStep(name="Gate")


def test_register_model_step_renders_register_model_type() -> None:
    assert RegisterModelStep(name="Register", arguments={"A": 1}).render() == {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": {"A": 1},
    }


def test_fail_step_renders_its_error_message_as_the_only_argument() -> None:
    assert FailStep(name="Stop", error_message="too inaccurate").render() == {
        "Name": "Stop",
        "Type": "Fail",
        "Arguments": {"ErrorMessage": "too inaccurate"},
    }


def test_fail_step_error_message_may_be_an_expression() -> None:
    rendered = FailStep(name="Stop", error_message=join(" ", "run", EXECUTION_ID)).render()
    assert rendered["Arguments"]["ErrorMessage"] == {
        "Std:Join": {"On": " ", "Values": ["run", {"Get": "Execution.PipelineExecutionId"}]}
    }


def test_model_and_transform_steps_render_their_types() -> None:
    model = ModelStep(name="CreateModel", arguments={"PrimaryContainer": {"ModelDataUrl": _train().model_artifacts}})
    transform = TransformStep(name="Transform", arguments={"ModelName": model.model_name})
    assert model.render()["Type"] == "Model"
    assert model.render()["Arguments"]["PrimaryContainer"]["ModelDataUrl"] == {
        "Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"
    }
    assert transform.render() == {
        "Name": "Transform",
        "Type": "Transform",
        "Arguments": {"ModelName": {"Get": "Steps.CreateModel.ModelName"}},
    }


def test_lambda_step_renders_function_arn_and_string_output_parameters() -> None:
    step = LambdaStep(
        name="Resolve",
        arguments={"input_prefix": INPUT, "execution_id": EXECUTION_ID},
        function_arn="arn:aws:lambda:eu-west-1:123456789012:function:resolve",
        output_names=["RunPrefix", "RunId"],
    )
    assert step.render() == {
        "Name": "Resolve",
        "Type": "Lambda",
        "Arguments": {
            "input_prefix": {"Get": "Parameters.InputPrefix"},
            "execution_id": {"Get": "Execution.PipelineExecutionId"},
        },
        "FunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:resolve",
        "OutputParameters": [
            {"OutputName": "RunPrefix", "OutputType": "String"},
            {"OutputName": "RunId", "OutputType": "String"},
        ],
    }


def test_lambda_step_output_renders_the_output_parameter_property() -> None:
    step = LambdaStep(name="Resolve", arguments={}, output_names=["RunPrefix"])
    assert step.output("RunPrefix").render() == {"Get": "Steps.Resolve.OutputParameters['RunPrefix']"}


def test_lambda_step_output_of_an_unknown_name_is_rejected_naming_step_and_output() -> None:
    step = LambdaStep(name="Resolve", arguments={}, output_names=["RunPrefix"])
    with pytest.raises(PipelineDefinitionError, match=r"'Resolve' has no output 'RunPath'"):
        step.output("RunPath")


def test_condition_of_an_unknown_type_is_rejected_naming_it() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"'AtLeast' is not one of Equals, GreaterThan"):
        Condition("AtLeast", 1, 2)


# The whole definition


def _complete_pipeline() -> PipelineDefinition:
    resolve = LambdaStep(name="Resolve", arguments={"input_prefix": INPUT}, output_names=["RunPrefix"])
    train = TrainingStep(
        name="Train",
        arguments={
            "InputDataConfig": [{"S3Uri": resolve.output("RunPrefix")}],
            "HyperParameters": {"epochs": hyperparameter(EPOCHS), "learning_rate": hyperparameter(RATE)},
        },
    )
    evaluate = ProcessingStep(
        name="Evaluate", arguments={"Model": train.model_artifacts}, property_files=[METRICS], depends_on=["Train"]
    )
    model = ModelStep(name="CreateModel", arguments={"ModelDataUrl": train.model_artifacts})
    transform = TransformStep(name="Transform", arguments={"ModelName": model.model_name})
    register = RegisterModelStep(name="Register", arguments={"Approval": "PendingManualApproval"})
    gate = ConditionStep(
        name="CheckAccuracy",
        conditions=[Condition("GreaterThanOrEqualTo", evaluate.json_get("EvaluationReport", "accuracy"), 0.7)],
        if_steps=[register, model, transform],
        else_steps=[FailStep(name="TooInaccurate", error_message="accuracy below threshold")],
    )
    return PipelineDefinition(parameters=[INPUT, EPOCHS, RATE, SPOT], steps=[resolve, train, evaluate, gate])


def test_render_gives_version_metadata_declarations_and_top_level_steps() -> None:
    rendered = _complete_pipeline().render()
    assert rendered["Version"] == SCHEMA_VERSION == "2020-12-01"
    assert rendered["Metadata"] == {}
    assert [p["Name"] for p in rendered["Parameters"]] == ["InputPrefix", "Epochs", "LearningRate", "UseSpot"]
    assert [s["Name"] for s in rendered["Steps"]] == ["Resolve", "Train", "Evaluate", "CheckAccuracy"]
    branch = rendered["Steps"][3]["Arguments"]
    assert [s["Name"] for s in branch["IfSteps"]] == ["Register", "CreateModel", "Transform"]
    assert [s["Name"] for s in branch["ElseSteps"]] == ["TooInaccurate"]


def test_render_is_plain_json() -> None:
    rendered = _complete_pipeline().render()
    assert json.loads(json.dumps(rendered)) == rendered


def test_all_steps_lists_branch_steps_right_after_their_condition_step() -> None:
    names = [step.name for step in _complete_pipeline().all_steps()]
    assert names == [
        "Resolve",
        "Train",
        "Evaluate",
        "CheckAccuracy",
        "Register",
        "CreateModel",
        "Transform",
        "TooInaccurate",
    ]


def test_validate_rejects_a_get_of_an_undeclared_parameter_naming_step_and_parameter() -> None:
    definition = PipelineDefinition(parameters=[EPOCHS], steps=[_train()])
    with pytest.raises(PipelineDefinitionError, match=r"step 'Train' uses parameter 'InputPrefix'.*not declare"):
        definition.validate()


def test_validate_checks_parameters_inside_joins_and_hyperparameters() -> None:
    step = TrainingStep(name="Train", arguments={"HyperParameters": {"lr": hyperparameter(RATE)}})
    with pytest.raises(PipelineDefinitionError, match=r"'LearningRate'"):
        PipelineDefinition(parameters=[], steps=[step]).validate()


def test_validate_checks_parameters_in_branch_steps() -> None:
    fail = FailStep(name="Stop", error_message=join(" ", "bad input", INPUT))
    gate = ConditionStep(name="Gate", conditions=[Condition("Equals", SPOT, True)], else_steps=[fail])
    with pytest.raises(PipelineDefinitionError, match=r"step 'Stop' uses parameter 'InputPrefix'"):
        PipelineDefinition(parameters=[SPOT], steps=[gate]).validate()


def test_validate_checks_parameters_in_conditions() -> None:
    gate = ConditionStep(name="Gate", conditions=[Condition("Equals", SPOT, True)])
    with pytest.raises(PipelineDefinitionError, match=r"step 'Gate' uses parameter 'UseSpot'"):
        PipelineDefinition(parameters=[], steps=[gate]).validate()


def test_validate_rejects_a_property_of_a_step_not_in_the_pipeline() -> None:
    evaluate = ProcessingStep(name="Evaluate", arguments={"Model": _train("Train").model_artifacts})
    with pytest.raises(PipelineDefinitionError, match=r"step 'Evaluate' reads a property of step 'Train'.*not in"):
        PipelineDefinition(parameters=[INPUT], steps=[evaluate]).validate()


def test_validate_rejects_a_step_reading_its_own_property() -> None:
    step = TrainingStep(name="Train", arguments={"Out": TrainingStep(name="Train", arguments={}).model_artifacts})
    with pytest.raises(PipelineDefinitionError, match=r"step 'Train' reads a property of itself"):
        PipelineDefinition(parameters=[], steps=[step]).validate()


def test_validate_rejects_duplicate_step_names() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"step names must be unique; repeated: Train"):
        PipelineDefinition(parameters=[INPUT], steps=[_train(), _train()]).validate()


def test_validate_rejects_a_branch_step_named_like_a_top_level_step() -> None:
    gate = _gate([RegisterModelStep(name="Train", arguments={})], [])
    definition = PipelineDefinition(parameters=[INPUT], steps=[_train(), _evaluate(), gate])
    with pytest.raises(PipelineDefinitionError, match=r"repeated: Train"):
        definition.validate()


def test_validate_rejects_the_same_name_in_both_branches() -> None:
    gate = _gate([FailStep(name="Stop", error_message="a")], [FailStep(name="Stop", error_message="b")])
    definition = PipelineDefinition(parameters=[INPUT], steps=[_train(), _evaluate(), gate])
    with pytest.raises(PipelineDefinitionError, match=r"repeated: Stop"):
        definition.validate()


def test_validate_rejects_a_json_get_of_an_undeclared_property_file_naming_file_and_step() -> None:
    gate = ConditionStep(
        name="Gate", conditions=[Condition("GreaterThan", JsonGet("Evaluate", "Report", "accuracy"), 0.5)]
    )
    definition = PipelineDefinition(parameters=[INPUT], steps=[_train(), _evaluate(), gate])
    with pytest.raises(
        PipelineDefinitionError, match=r"step 'Gate' reads property file 'Report' of step 'Evaluate'.*EvaluationReport"
    ):
        definition.validate()


def test_validate_rejects_a_json_get_of_a_step_that_is_not_a_processing_step() -> None:
    gate = ConditionStep(name="Gate", conditions=[Condition("GreaterThan", JsonGet("Train", "Report", "x"), 0.5)])
    definition = PipelineDefinition(parameters=[INPUT], steps=[_train(), gate])
    with pytest.raises(PipelineDefinitionError, match=r"property file 'Report' of step 'Train'.*no property files"):
        definition.validate()


def test_validate_rejects_depends_on_a_missing_step_naming_both() -> None:
    definition = PipelineDefinition(parameters=[INPUT], steps=[_train(), _evaluate(depends_on=("Trian",))])
    with pytest.raises(PipelineDefinitionError, match=r"step 'Evaluate' depends on 'Trian', which is not a step"):
        definition.validate()


def test_validate_accepts_depends_on_a_branch_step() -> None:
    register = RegisterModelStep(name="Register", arguments={})
    later = FailStep(name="Stop", error_message="x", depends_on=["Register"])
    definition = PipelineDefinition(parameters=[INPUT], steps=[_train(), _evaluate(), _gate([register], [later])])
    definition.validate()


def test_validate_rejects_duplicate_parameter_names_naming_them() -> None:
    definition = PipelineDefinition(parameters=[ParameterString("Epochs", "3"), EPOCHS, INPUT], steps=[_train()])
    with pytest.raises(PipelineDefinitionError, match=r"parameter names must be unique; repeated: Epochs"):
        definition.validate()


def test_render_validates_first() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"'InputPrefix'"):
        PipelineDefinition(parameters=[], steps=[_train()]).render()


def test_validate_accepts_the_complete_pipeline() -> None:
    _complete_pipeline().validate()
