"""What starts the training pipeline and who hears about it.

- a rule that starts the pipeline when a data preparation run SUCCEEDED, passing the run's id (the Lambda step turns
  it into the run prefix; EventBridge can pass an event field but cannot build a URI from it);
- an optional schedule (an EventBridge expression from config) that trains on the run ``_LATEST`` names;
- an SNS topic, encrypted with the platform key and TLS-only, told about failed executions of both pipelines and
  about model packages waiting for approval, with email subscriptions from config.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from components.platform_role import PlatformRole
from components.training_pipeline import BatchInferencePipeline, ModelRegistry, TrainingPipeline


class PipelineTriggers(Construct):
    """Triggers of the training pipeline and notifications about both pipelines and the registry.

    :param glue_job_name: the data preparation job whose SUCCEEDED runs start training.
    :param schedule: an EventBridge ``cron(...)``/``rate(...)`` expression, or None for no schedule.
    :param emails: addresses subscribed to the notification topic.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        training: TrainingPipeline,
        batch_inference: BatchInferencePipeline,
        registry: ModelRegistry,
        glue_job_name: str,
        schedule: str | None,
        emails: Sequence[str],
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Notifications", master_key=key, enforce_ssl=True)
        # EventBridge encrypts what it publishes to the topic with the platform key.
        key.grant(iam.ServicePrincipal("events.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        self.start_role = PlatformRole(
            self,
            "StartRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description=f"EventBridge: start executions of {training.pipeline_name}",
        )
        self.start_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[training.pipeline_arn])
        )
        self.on_data_prepared = events.CfnRule(
            self,
            "OnDataPrepared",
            description=f"Train when a run of {glue_job_name} succeeded, on that run's output",
            event_pattern={
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {"jobName": [glue_job_name], "state": ["SUCCEEDED"]},
            },
            targets=[
                events.CfnRule.TargetProperty(
                    id="StartTraining",
                    arn=training.pipeline_arn,
                    role_arn=self.start_role.role_arn,
                    sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
                        pipeline_parameter_list=[
                            events.CfnRule.SageMakerPipelineParameterProperty(
                                name="DataPreparationRunId", value="$.detail.jobRunId"
                            )
                        ]
                    ),
                )
            ],
        )
        self.schedule = None
        if schedule is not None:
            self.schedule = events.CfnRule(
                self,
                "Schedule",
                description=f"Train on the latest prepared data: {schedule}",
                schedule_expression=schedule,
                targets=[
                    events.CfnRule.TargetProperty(
                        id="StartTraining", arn=training.pipeline_arn, role_arn=self.start_role.role_arn
                    )
                ],
            )

        # The rules that start executions (what a cleanup before deletion must outlive).
        self.start_rules: list[events.CfnRule] = [self.on_data_prepared, *([self.schedule] if self.schedule else [])]

        events.Rule(
            self,
            "OnFailedExecution",
            description="Tell the team about failed executions of the platform's pipelines",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Building Pipeline Execution Status Change"],
                detail={
                    "currentPipelineExecutionStatus": ["Failed"],
                    "pipelineArn": [training.pipeline_arn, batch_inference.pipeline_arn],
                },
            ),
            targets=[targets.SnsTopic(self.topic)],
        )
        events.Rule(
            self,
            "OnModelWaitingForApproval",
            description=f"Tell the team about models of {registry.group_name} waiting for approval",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={
                    "ModelPackageGroupName": [registry.group_name],
                    "ModelApprovalStatus": ["PendingManualApproval"],
                },
            ),
            targets=[targets.SnsTopic(self.topic)],
        )
