"""The platform's settings: one frozen dataclass tree, validated when it is built.

A stage (``config/stages.py``) is an instance of :class:`PlatformConfig`. Each dataclass checks its own fields in
``__post_init__`` and raises :class:`config.validation.ConfigError` naming the dotted key (``training.instance_type``),
the bad value and what is allowed. Nothing here reads the environment or calls AWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from config.accelerators import gpus_per_instance
from config.validation import (
    check_account,
    check_glue_worker_type,
    check_instance_type,
    check_min_max,
    check_one_of,
    check_range,
    check_region,
    check_retention,
    check_sagemaker_name,
    check_time_zone,
    fail,
)

MODEL_APPROVAL_STATUSES = ("PendingManualApproval", "Approved")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*?,/#L W-]+")
_RATE = re.compile(r"rate\((?P<value>[1-9][0-9]*) (?P<unit>minute|minutes|hour|hours|day|days)\)")
_BASE_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")

PRETRAINED_PREFIX = "pretrained"
"""Folder of the artifacts bucket holding the base models, one subfolder per name: the training job's ``pretrained``
channel reads ``s3://<artifacts>/pretrained/<name>/`` and scripts/stage_base_model.py writes it."""


def check_base_model_name(key: str, value: str) -> None:
    """A base model folder name: 1-100 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not _BASE_MODEL_NAME.fullmatch(value):
        raise fail(key, value, "1-100 lower-case letters, digits, '.', '_', '-', starting with a letter or digit")


def check_schedule(key: str, value: str) -> None:
    """An EventBridge schedule: ``rate(<n> <unit>)`` or ``cron(<min> <hour> <day> <month> <weekday> <year>)``."""
    allowed = "an EventBridge expression like 'cron(0 3 ? * MON *)' or 'rate(7 days)', or None"
    rate = _RATE.fullmatch(value)
    if rate is not None:
        if (rate["value"] == "1") != (not rate["unit"].endswith("s")):
            raise fail(key, value, f"{allowed} (1 takes a singular unit, other values a plural one)")
        return
    _check_cron_fields(key, value, allowed)


def check_cron(key: str, value: str) -> None:
    """A six-field ``cron(<min> <hour> <day> <month> <weekday> <year>)`` expression, the form Application Auto
    Scaling's scheduled actions and EventBridge share (``rate(...)`` is refused: a floor changes at set times)."""
    _check_cron_fields(key, value, "a cron expression like 'cron(0 20 ? * MON-FRI *)'")


def _check_cron_fields(key: str, value: str, allowed: str) -> None:
    if not (value.startswith("cron(") and value.endswith(")")):
        raise fail(key, value, allowed)
    fields = value[5:-1].split(" ")
    if len(fields) != 6 or not all(_CRON_FIELD.fullmatch(part) for part in fields):
        raise fail(key, value, f"{allowed} (cron takes six space-separated fields)")
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise fail(key, value, f"{allowed} (exactly one of day-of-month and day-of-week must be '?')")


# Current Amazon Linux 2023 notebook platforms (AL2 reaches end of support; AL1 is gone).
NOTEBOOK_PLATFORMS = ("notebook-al2023-v1",)


@dataclass(frozen=True)
class NetworkConfig:
    """The VPC: isolated subnets only, reached through VPC endpoints."""

    az_count: int = 2
    """Availability zones (one isolated subnet and one interface-endpoint ENI each). Default 2."""
    cidr: str = "10.40.0.0/16"
    """VPC address range, a private /16 to /24 block. Default 10.40.0.0/16."""
    flow_log_retention_days: int = 30
    """Retention of the VPC flow-log group, a value CloudWatch Logs accepts. Default 30."""

    def __post_init__(self) -> None:
        # Environment-agnostic stacks see two AZs (Fn::GetAZs picks); more needs an account and region.
        check_range("network.az_count", self.az_count, 1, 3)
        match = re.fullmatch(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})", self.cidr)
        private = match is not None and (
            match[1] == "10"
            or (match[1] == "172" and 16 <= int(match[2]) <= 31)
            or (match[1] == "192" and match[2] == "168")
        )
        if not match or not private or not 16 <= int(match[5]) <= 24 or any(int(match[i]) > 255 for i in range(1, 5)):
            raise fail(
                "network.cidr", self.cidr, "a private IPv4 block (10/8, 172.16/12, 192.168/16) of size /16 to /24"
            )
        check_retention("network.flow_log_retention_days", self.flow_log_retention_days)


@dataclass(frozen=True)
class DataConfig:
    """The stateful layer: the platform key, the buckets and the Glue database."""

    retain_on_delete: bool = False
    """Keep the key and buckets when the stack is deleted (prod). When False, ``cdk destroy`` empties and deletes the
    buckets and schedules the key for deletion after ``key_pending_window_days``. Default False."""
    key_pending_window_days: int = 7
    """Days between key deletion request and deletion, 7 to 30. Default 7 (the shortest KMS allows)."""
    noncurrent_version_expiration_days: int = 30
    """Days a replaced or deleted object version is kept before it expires, 1 to 3650. Default 30."""
    access_log_expiration_days: int = 365
    """Days S3 server access logs are kept, 1 to 3650. Default 365."""

    def __post_init__(self) -> None:
        check_range("data.key_pending_window_days", self.key_pending_window_days, 7, 30)
        check_range("data.noncurrent_version_expiration_days", self.noncurrent_version_expiration_days, 1, 3650)
        check_range("data.access_log_expiration_days", self.access_log_expiration_days, 1, 3650)


@dataclass(frozen=True)
class NotebookUserConfig:
    """One team member's notebook instance."""

    name: str
    """User name, lower-case letters, digits and hyphens; part of the notebook instance name."""
    instance_type: str = "ml.t3.medium"
    """A SageMaker notebook instance type. Default ml.t3.medium."""
    volume_size_gb: int = 20
    """Size of the encrypted ML storage volume, 5 to 16384 GB. Default 20."""
    idle_minutes: int = 60
    """Minutes without kernel or terminal activity before the instance stops itself, 5 to 1440. Default 60."""
    git_repository_url: str | None = None
    """Optional HTTPS Git URL attached as the notebook's default code repository. Default none."""

    def __post_init__(self) -> None:
        key = f"workbench.users[{self.name!r}]"
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", self.name) or self.name.endswith("-") or "--" in self.name:
            raise fail(
                f"{key}.name", self.name, "lower-case letters, digits and single hyphens, starting with a letter"
            )
        check_instance_type(f"{key}.instance_type", self.instance_type, "notebook")
        check_range(f"{key}.volume_size_gb", self.volume_size_gb, 5, 16384)
        check_range(f"{key}.idle_minutes", self.idle_minutes, 5, 1440)
        if self.git_repository_url is not None and not re.fullmatch(r"https://[^\s]+", self.git_repository_url):
            raise fail(f"{key}.git_repository_url", self.git_repository_url, "an https:// Git URL, or None")


@dataclass(frozen=True)
class WorkbenchConfig:
    """Notebook instances for the team."""

    users: tuple[NotebookUserConfig, ...] = ()
    """One notebook instance per user. Default none."""
    platform_identifier: str = "notebook-al2023-v1"
    """Notebook platform (OS and JupyterLab). Default notebook-al2023-v1."""

    def __post_init__(self) -> None:
        check_one_of("workbench.platform_identifier", self.platform_identifier, NOTEBOOK_PLATFORMS)
        names = [user.name for user in self.users]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise fail("workbench.users", duplicates, "each user name must appear once")


@dataclass(frozen=True)
class DataPreparationConfig:
    """The Glue Spark job that turns raw text into curated splits."""

    worker_type: str = "G.1X"
    """Glue worker type. Default G.1X (4 vCPU, 16 GB)."""
    number_of_workers: int = 2
    """Workers including the driver, 2 to 299. Default 2."""
    timeout_minutes: int = 60
    """Job run timeout, 1 to 2880 minutes. Default 60."""
    max_retries: int = 0
    """Automatic retries of a failed run, 0 to 10. Default 0."""
    log_retention_days: int = 30
    """Retention of the job's continuous logs. Default 30."""
    job_metrics: bool = True
    """Glue job metrics (``--enable-metrics``). The workers publish them through a CloudWatch interface endpoint,
    which exists only for them ($7.30 a month per AZ). Default True."""

    def __post_init__(self) -> None:
        check_glue_worker_type("data_preparation.worker_type", self.worker_type)
        check_range("data_preparation.number_of_workers", self.number_of_workers, 2, 299)
        check_range("data_preparation.timeout_minutes", self.timeout_minutes, 1, 2880)
        check_range("data_preparation.max_retries", self.max_retries, 0, 10)
        check_retention("data_preparation.log_retention_days", self.log_retention_days)


@dataclass(frozen=True)
class DeepLearningContainersConfig:
    """The AWS Deep Learning Containers for Hugging Face that train and serve the model, pinned per stage.

    Training and serving share the transformers major version the code is tested with (a tokenizer saved by
    transformers 5 does not load in 4); see training_code/README.md. The registry account comes from the CDK's
    region facts, the URL suffix from the stack.
    """

    training_repository: str = "huggingface-pytorch-training"
    """ECR repository of the training image. Default huggingface-pytorch-training."""
    training_tag: str = "2.9.0-transformers5.3.0-gpu-py312-cu130-ubuntu22.04"
    """Training image tag: PyTorch 2.9.0, transformers 5.3.0, Python 3.12, CUDA 13.0."""
    inference_repository: str = "huggingface-pytorch-inference"
    """ECR repository of the inference image. Default huggingface-pytorch-inference."""
    inference_gpu_tag: str = "2.6.0-transformers5.5.3-gpu-py312-cu124-ubuntu22.04"
    """Inference image tag for GPU hosting: PyTorch 2.6.0, transformers 5.5.3, Python 3.12."""
    inference_cpu_tag: str = "2.6.0-transformers5.5.3-cpu-py312-ubuntu22.04"
    """Inference image tag for CPU hosting, serverless endpoints and batch transform on CPU instances."""

    def __post_init__(self) -> None:
        for name in ("training_tag", "inference_gpu_tag", "inference_cpu_tag"):
            value = getattr(self, name)
            if not re.fullmatch(r"[0-9.]+-transformers5\.[0-9.]+-(gpu|cpu)-py3[0-9]+(-cu[0-9]+)?-ubuntu[0-9.]+", value):
                raise fail(
                    f"training.images.{name}",
                    value,
                    "a Hugging Face DLC tag with transformers 5.x (2.9.0-transformers5.3.0-gpu-py312-cu130-...)",
                )
        if "-gpu-" not in self.training_tag or "-gpu-" not in self.inference_gpu_tag:
            raise fail("training.images", self.training_tag, "GPU tags for training and GPU hosting")
        if "-cpu-" not in self.inference_cpu_tag:
            raise fail("training.images.inference_cpu_tag", self.inference_cpu_tag, "a CPU tag (-cpu-)")


@dataclass(frozen=True)
class TrainingConfig:
    """The training pipeline: GPU fine-tuning on spot capacity, evaluation gate, registration, batch inference."""

    instance_type: str = "ml.g5.xlarge"
    """SageMaker training instance type with at least one GPU. Default ml.g5.xlarge (1x A10G)."""
    instance_count: int = 1
    """Training instances; above 1 trains with torchrun across instances and needs spot checkpoints. 1 to 16."""
    use_spot: bool = True
    """Managed spot training with checkpoints keyed by the pipeline's RunId. Default True."""
    max_runtime_seconds: int = 4 * 3600
    """Training time limit, 600 to 432000 seconds. Default 4 hours."""
    max_wait_seconds: int = 8 * 3600
    """Spot: total time including waits for capacity; must be >= max_runtime_seconds. Default 8 hours."""
    volume_size_gb: int = 50
    """Training instance volume, 1 to 16384 GB. Default 50."""
    processing_instance_type: str = "ml.m5.xlarge"
    """Instance type of the evaluation processing job. Default ml.m5.xlarge."""
    accuracy_threshold: float = 0.7
    """Minimum test accuracy for a model to be registered, 0 to 1. Default 0.7."""
    epochs: int = 3
    """Default passes over the training data (a pipeline parameter), 1 to 100. Default 3."""
    learning_rate: float = 5e-5
    """Default peak learning rate (a pipeline parameter), above 0 and at most 1. Default 5e-5."""
    approval_status: str = "PendingManualApproval"
    """Status of a registered model: PendingManualApproval (a person approves) or Approved. Default pending."""
    base_model_name: str = "all-minilm-l6-v2"
    """Folder under ``s3://<artifacts>/pretrained/`` holding the base model, the default of the pipeline's
    ``BaseModel`` parameter and of scripts/stage_base_model.py's ``--name``. Default all-minilm-l6-v2."""
    schedule: str | None = None
    """Optional EventBridge schedule starting the training pipeline (``cron(...)`` or ``rate(...)``). Default none."""
    notification_emails: tuple[str, ...] = ()
    """Email addresses told about failed executions and models waiting for approval. Default none."""
    batch_instance_type: str = "ml.m5.xlarge"
    """Instance type of batch inference (transform) jobs. Default ml.m5.xlarge (CPU)."""
    batch_instance_count: int = 1
    """Instances of a batch inference job, 1 to 100. Default 1."""
    images: DeepLearningContainersConfig = field(default_factory=DeepLearningContainersConfig)
    """The training and inference containers."""

    def __post_init__(self) -> None:
        check_instance_type("training.instance_type", self.instance_type, "training")
        if gpus_per_instance(self.instance_type) == 0:
            raise fail(
                "training.instance_type",
                self.instance_type,
                "an instance type with GPUs (ml.g5.*, ml.g6.*, ml.p4d.24xlarge, ...): the pipeline fine-tunes on GPUs",
            )
        check_instance_type("training.processing_instance_type", self.processing_instance_type, "processing")
        check_instance_type("training.batch_instance_type", self.batch_instance_type, "transform")
        check_range("training.instance_count", self.instance_count, 1, 16)
        if self.instance_count > 1 and not self.use_spot:
            raise fail(
                "training.instance_count",
                self.instance_count,
                "1 unless training.use_spot is True: multi-instance runs resume from the spot checkpoints",
            )
        check_range("training.max_runtime_seconds", self.max_runtime_seconds, 600, 432000)
        check_range("training.volume_size_gb", self.volume_size_gb, 1, 16384)
        check_range("training.accuracy_threshold", self.accuracy_threshold, 0.0, 1.0)
        check_range("training.epochs", self.epochs, 1, 100)
        if not 0 < self.learning_rate <= 1:
            raise fail("training.learning_rate", self.learning_rate, "a number above 0 and at most 1")
        check_one_of("training.approval_status", self.approval_status, MODEL_APPROVAL_STATUSES)
        check_base_model_name("training.base_model_name", self.base_model_name)
        if self.schedule is not None:
            check_schedule("training.schedule", self.schedule)
        for email in self.notification_emails:
            if not _EMAIL.fullmatch(email):
                raise fail("training.notification_emails", email, "email addresses like team@example.com")
        check_range("training.batch_instance_count", self.batch_instance_count, 1, 100)
        if self.use_spot:
            check_range("training.max_wait_seconds", self.max_wait_seconds, 600, 432000)
            check_min_max(
                "training.max_runtime_seconds",
                self.max_runtime_seconds,
                "training.max_wait_seconds",
                self.max_wait_seconds,
            )

    @property
    def distributed(self) -> bool:
        """True when the job runs more than one process: several GPUs per instance or several instances (torchrun)."""
        return self.instance_count > 1 or gpus_per_instance(self.instance_type) > 1


MODEL_PACKAGE_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[A-Za-z0-9-]{1,63}/\d+")
MODEL_DATA_URL = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\s]+\.tar\.gz)")
ECR_IMAGE = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]{0,255})(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})"
)


def check_model_package_arn(key: str, value: str | None) -> None:
    """A versioned model package ARN (``arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>``)."""
    if value is not None and not MODEL_PACKAGE_ARN.fullmatch(value):
        raise fail(
            key, value, "an ARN like arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>, or None"
        )


@dataclass(frozen=True)
class OutOfHoursConfig:
    """A lower autoscaling floor outside working hours (nights and weekends), for instance endpoints.

    At ``scale_down`` an Application Auto Scaling scheduled action sets the floor to ``min_instances`` (target
    tracking then scales in as traffic allows; it never goes below the floor nor above ``serving.max_instances``);
    at ``scale_up`` another restores ``serving.min_instances``, scaling out at once if fewer instances run. Both
    are evaluated in ``time_zone``, so daylight saving time moves with the team's clock.
    """

    scale_down: str = "cron(0 20 ? * MON-FRI *)"
    """When the floor drops, a six-field cron expression. Default 20:00 Monday to Friday (the Friday evening action
    covers the weekend)."""
    scale_up: str = "cron(0 7 ? * MON-FRI *)"
    """When the floor is restored, a six-field cron expression. Default 07:00 Monday to Friday."""
    min_instances: int = 1
    """The floor out of hours, 1 to ``serving.min_instances - 1``. Default 1."""
    time_zone: str = "UTC"
    """IANA time zone of both expressions (``Europe/Berlin``), one AWS schedulers accept. Default UTC."""

    def __post_init__(self) -> None:
        check_cron("serving.out_of_hours.scale_down", self.scale_down)
        check_cron("serving.out_of_hours.scale_up", self.scale_up)
        if self.scale_down == self.scale_up:
            raise fail("serving.out_of_hours.scale_up", self.scale_up, "a different time than scale_down")
        check_range("serving.out_of_hours.min_instances", self.min_instances, 1, 100)
        check_time_zone("serving.out_of_hours.time_zone", self.time_zone)


@dataclass(frozen=True)
class CanaryDeploymentConfig:
    """Blue/green canary updates of an instance endpoint, rolled back automatically by two alarms on the new fleet.

    A new model or endpoint config is deployed to a new (green) fleet as large as the running one; first
    ``canary_size_percent`` of the traffic goes to it for ``wait_interval_seconds`` (the baking period), then all of
    it; the old fleet is kept ``termination_wait_seconds`` longer. If a rollback alarm fires on the new fleet (5XX
    errors, model latency p99), SageMaker shifts all traffic back to the old fleet.
    """

    canary_size_percent: int = 10
    """Share of the new fleet's capacity that takes traffic first, 1 to 50 (SageMaker's limit). Default 10."""
    wait_interval_seconds: int = 600
    """Baking period of the canary before the rest of the traffic moves, 0 to 3600 seconds. Default 600."""
    termination_wait_seconds: int = 600
    """Time the old fleet stays after all traffic moved (a rollback target), 0 to 3600 seconds. Default 600."""
    maximum_execution_timeout_seconds: int = 3600
    """Longest time the whole deployment may take, 600 to 28800 seconds and above the two waits. Default 3600."""
    rollback_5xx_errors: int = 5
    """5XX errors of the new fleet in one minute that roll the deployment back, 1 to 100000. Default 5."""
    rollback_model_latency_ms: int = 1000
    """Model latency p99 of the new fleet, in milliseconds, that rolls the deployment back, 1 to 60000. Default
    1000."""
    rollback_evaluation_minutes: int = 2
    """Consecutive one-minute periods over a rollback threshold before the alarm fires, 1 to 10. Default 2."""

    def __post_init__(self) -> None:
        check_range("serving.canary.canary_size_percent", self.canary_size_percent, 1, 50)
        check_range("serving.canary.wait_interval_seconds", self.wait_interval_seconds, 0, 3600)
        check_range("serving.canary.termination_wait_seconds", self.termination_wait_seconds, 0, 3600)
        check_range(
            "serving.canary.maximum_execution_timeout_seconds", self.maximum_execution_timeout_seconds, 600, 28800
        )
        waits = self.wait_interval_seconds + self.termination_wait_seconds
        if self.maximum_execution_timeout_seconds <= waits:
            raise fail(
                "serving.canary.maximum_execution_timeout_seconds",
                self.maximum_execution_timeout_seconds,
                f"must exceed wait_interval_seconds + termination_wait_seconds = {waits}, or the deployment times "
                "out while it waits",
            )
        check_range("serving.canary.rollback_5xx_errors", self.rollback_5xx_errors, 1, 100000)
        check_range("serving.canary.rollback_model_latency_ms", self.rollback_model_latency_ms, 1, 60000)
        check_range("serving.canary.rollback_evaluation_minutes", self.rollback_evaluation_minutes, 1, 10)


@dataclass(frozen=True)
class ServingConfig:
    """The inference endpoint. Exists only when a model is named: ``model_package_arn`` or ``model_data_url``."""

    model_package_arn: str | None = None
    """An approved model package ARN from the registry (GitOps promotion). ``-c model_package_arn=<arn>`` overrides
    it for one synth. Default none."""
    model_data_url: str | None = None
    """Instead of a package: an ``s3://<bucket>/<key>.tar.gz`` model archive (model files plus code/inference.py),
    served by ``inference_image``. At most one of the two. Default none: no model, no Serving stack."""
    inference_image: str | None = None
    """ECR image URI serving ``model_data_url`` (``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>``).
    Default None: the stage's Hugging Face inference DLC (``training.images``), the CPU tag for serverless and CPU
    instances, the GPU tag for GPU instances. Not allowed with a package, which names its own image."""
    instance_type: str | None = None
    """Hosting instance type, or None for a serverless endpoint. Default None (serverless)."""
    min_instances: int = 1
    """Autoscaling floor (instance endpoints), 1 to 100. Default 1."""
    max_instances: int = 1
    """Autoscaling ceiling (instance endpoints), 1 to 100. Default 1."""
    invocations_per_instance_target: int = 100
    """Target-tracking goal, invocations per instance per minute, 1 to 100000. Default 100."""
    scale_in_cooldown_seconds: int = 300
    """Seconds after a scale-in before another scale-in, 0 to 3600. Default 300 (Application Auto Scaling's)."""
    scale_out_cooldown_seconds: int = 300
    """Seconds after a scale-out before another scale-out, 0 to 3600. Default 300 (Application Auto Scaling's)."""
    out_of_hours: OutOfHoursConfig | None = None
    """A lower floor at nights and weekends (instance endpoints). Default None: the floor is always min_instances."""
    canary: CanaryDeploymentConfig | None = None
    """Blue/green canary updates with auto-rollback (instance endpoints). Default None: SageMaker's default
    blue/green update, all traffic at once, without rollback alarms."""
    data_capture: bool = False
    """Capture requests and responses to the curated bucket (KMS), instance endpoints only. Default False."""
    data_capture_sampling_percent: int = 20
    """Share of the requests captured when ``data_capture`` is on, 0 to 100. Default 20."""
    serverless_memory_mb: int = 4096
    """Serverless endpoint memory, 1024 to 6144 in steps of 1024. Default 4096."""
    serverless_max_concurrency: int = 5
    """Serverless endpoint concurrency, 1 to 200. Default 5."""
    max_text_chars: int = 2000
    """Longest text (characters) the inference API accepts, 1 to 100000; longer is a 413. Default 2000."""
    max_batch_size: int = 32
    """Most texts in one inference request, 1 to 256; more is a 413. Default 32."""
    endpoint_timeout_seconds: int = 10
    """Read timeout of one InvokeEndpoint attempt by the Lambda wrapper, 1 to 12: its two attempts (standard
    retries) of 2 s connect plus this read stay under API Gateway's 29 s integration timeout (and InvokeEndpoint's
    60 s), so a slow model is the wrapper's 504, not a bare gateway timeout. Default 10."""
    # Factories through a lambda: both classes are defined below this one.
    api: ApiConfig = field(default_factory=lambda: ApiConfig())
    """The API Gateway REST API and its Lambda wrapper."""
    monitoring: ServingMonitoringConfig = field(default_factory=lambda: ServingMonitoringConfig())
    """Alarms, their topic and the dashboard."""

    def __post_init__(self) -> None:
        check_model_package_arn("serving.model_package_arn", self.model_package_arn)
        if self.model_data_url is not None and not MODEL_DATA_URL.fullmatch(self.model_data_url):
            raise fail(
                "serving.model_data_url", self.model_data_url, "an S3 URL like s3://<bucket>/<prefix>/model.tar.gz"
            )
        if self.model_package_arn is not None and self.model_data_url is not None:
            raise fail(
                "serving.model_data_url",
                self.model_data_url,
                "set either serving.model_package_arn or serving.model_data_url, not both",
            )
        if self.inference_image is not None:
            if not ECR_IMAGE.fullmatch(self.inference_image):
                raise fail(
                    "serving.inference_image",
                    self.inference_image,
                    "an ECR image URI like <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>",
                )
            if self.model_data_url is None:
                raise fail(
                    "serving.inference_image",
                    self.inference_image,
                    "only with serving.model_data_url (a model package names its own image)",
                )
        if self.instance_type is not None:
            check_instance_type("serving.instance_type", self.instance_type, "hosting")
        check_range("serving.min_instances", self.min_instances, 1, 100)
        check_range("serving.max_instances", self.max_instances, 1, 100)
        check_min_max("serving.min_instances", self.min_instances, "serving.max_instances", self.max_instances)
        check_range("serving.invocations_per_instance_target", self.invocations_per_instance_target, 1, 100000)
        check_range("serving.scale_in_cooldown_seconds", self.scale_in_cooldown_seconds, 0, 3600)
        check_range("serving.scale_out_cooldown_seconds", self.scale_out_cooldown_seconds, 0, 3600)
        check_range("serving.data_capture_sampling_percent", self.data_capture_sampling_percent, 0, 100)
        # Serverless endpoints have no instances to scale or to shift in a canary, and SageMaker offers no data
        # capture for them: refuse the settings rather than ignore them.
        if self.instance_type is None:
            for name, value in (
                ("out_of_hours", self.out_of_hours),
                ("canary", self.canary),
                ("data_capture", self.data_capture or None),
            ):
                if value is not None:
                    raise fail(
                        f"serving.{name}",
                        value,
                        "needs an instance endpoint (serving.instance_type); a serverless endpoint has no "
                        "instances to schedule or shift and no data capture",
                    )
        if self.out_of_hours is not None and self.out_of_hours.min_instances >= self.min_instances:
            raise fail(
                "serving.out_of_hours.min_instances",
                self.out_of_hours.min_instances,
                f"must be below serving.min_instances={self.min_instances}, the floor it lowers",
            )
        check_one_of("serving.serverless_memory_mb", self.serverless_memory_mb, (1024, 2048, 3072, 4096, 5120, 6144))
        check_range("serving.serverless_max_concurrency", self.serverless_max_concurrency, 1, 200)
        check_range("serving.max_text_chars", self.max_text_chars, 1, 100000)
        check_range("serving.max_batch_size", self.max_batch_size, 1, 256)
        check_range("serving.endpoint_timeout_seconds", self.endpoint_timeout_seconds, 1, 12)
        # Worst case 4 UTF-8 bytes per character plus JSON quoting must fit InvokeEndpoint's 6 MiB body.
        if self.max_text_chars * self.max_batch_size * 4 > 6 * 1024 * 1024 - 64 * self.max_batch_size:
            raise fail(
                "serving.max_text_chars",
                self.max_text_chars,
                f"times serving.max_batch_size={self.max_batch_size} (4 bytes a character) must fit InvokeEndpoint's "
                "6 MiB request body: lower one of them",
            )

    @property
    def has_model(self) -> bool:
        """True when the stage names a model (a package or an archive): only then is there a Serving stack."""
        return self.model_package_arn is not None or self.model_data_url is not None

    @property
    def is_serverless(self) -> bool:
        """True for a serverless endpoint (no ``instance_type``)."""
        return self.instance_type is None


API_EXECUTION_LOG_LEVELS = ("OFF", "ERROR", "INFO")
FUNCTION_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
USAGE_PLAN_PERIODS = ("DAY", "WEEK", "MONTH")
# AWS's Powertools publishing account in the commercial partition (docs.powertools.aws.dev, "Lambda Layer");
# the China and GovCloud partitions publish from other accounts.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"


@dataclass(frozen=True)
class ApiConfig:
    """The inference front door: API Gateway REST API (``POST /v1/classify``) and its Lambda wrapper.

    Clients authenticate with IAM (SigV4): the callers are AWS principals (notebooks, services, people with roles),
    so no secret is handed out. ``api_key_required`` adds an API key on top, per client, for the usage plan's quota.
    """

    throttle_rate_limit: float = 20.0
    """Steady-state requests per second the stage accepts (stage throttling and the usage plan), 1 to 10000.
    Default 20."""
    throttle_burst_limit: int = 40
    """Burst of requests above the rate, at least the rate, at most 5000. Default 40."""
    quota_limit: int | None = None
    """Requests one API key may make per ``quota_period`` (only with ``api_key_required``), or None for no quota.
    Default None."""
    quota_period: str = "DAY"
    """Period of the quota: DAY, WEEK or MONTH. Default DAY."""
    api_key_required: bool = False
    """Also require an ``x-api-key`` (the stack creates one key in the usage plan) besides SigV4, so the usage plan
    meters and limits each key. Default False: IAM alone authenticates, the stage throttling applies to all."""
    waf_enabled: bool = False
    """Associate a WAF web ACL (AWS managed common rule set, known bad inputs, a per-IP rate rule) with the stage.
    Default False (a web ACL costs ~$5/month plus rules and requests)."""
    waf_rate_limit_per_5_minutes: int = 1000
    """Requests one client IP may send per 5 minutes before the WAF rate rule blocks it, 100 to 2000000000.
    Default 1000."""
    access_log_retention_days: int = 30
    """Retention of the API's access, execution and WAF logs (a value CloudWatch Logs accepts). Default 30."""
    function_log_retention_days: int = 30
    """Retention of the Lambda wrapper's log group. Default 30."""
    execution_log_level: str = "ERROR"
    """API Gateway execution logging: OFF, ERROR or INFO. Full request and response logging (data trace) is never
    on: request texts are sensitive. Default ERROR."""
    function_log_level: str = "INFO"
    """Log level of the Lambda wrapper (Powertools): DEBUG, INFO, WARNING or ERROR. Default INFO."""
    function_memory_mb: int = 512
    """Lambda wrapper memory, 128 to 10240 MB (CPU grows with it, which shortens the cold start). Default 512."""
    reserved_concurrency: int | None = None
    """Concurrent executions reserved for the wrapper (also its ceiling), 1 to 1000, or None. Default None: new
    accounts have a concurrency quota of 10 to 50 and Lambda keeps 10 unreserved, so a reservation can fail the
    deploy."""
    powertools_layer_version: int = 38
    """Version of the AWS-published ``AWSLambdaPowertoolsPythonV3-python314-x86_64`` layer (one number for every
    region). Keep it on the Powertools release the handler is tested with (requirements/test-serving.txt).
    Default 38."""
    powertools_layer_account: str = POWERTOOLS_LAYER_ACCOUNT
    """Account that publishes the Powertools layer in the stage's partition: 017000801446 in the commercial
    partition; China and GovCloud use other accounts (see the Powertools docs). Default 017000801446."""

    def __post_init__(self) -> None:
        check_range("serving.api.throttle_rate_limit", self.throttle_rate_limit, 1, 10000)
        check_range("serving.api.throttle_burst_limit", self.throttle_burst_limit, 1, 5000)
        if self.throttle_burst_limit < self.throttle_rate_limit:
            raise fail(
                "serving.api.throttle_burst_limit",
                self.throttle_burst_limit,
                f"at least serving.api.throttle_rate_limit={self.throttle_rate_limit} (a burst below the rate "
                "throttles steady traffic)",
            )
        if self.quota_limit is not None:
            check_range("serving.api.quota_limit", self.quota_limit, 1, 2_000_000_000)
            if not self.api_key_required:
                raise fail(
                    "serving.api.quota_limit",
                    self.quota_limit,
                    "None unless serving.api.api_key_required is True: API Gateway counts quotas per API key",
                )
        check_one_of("serving.api.quota_period", self.quota_period, USAGE_PLAN_PERIODS)
        check_range("serving.api.waf_rate_limit_per_5_minutes", self.waf_rate_limit_per_5_minutes, 100, 2_000_000_000)
        check_retention("serving.api.access_log_retention_days", self.access_log_retention_days)
        check_retention("serving.api.function_log_retention_days", self.function_log_retention_days)
        check_one_of("serving.api.execution_log_level", self.execution_log_level, API_EXECUTION_LOG_LEVELS)
        check_one_of("serving.api.function_log_level", self.function_log_level, FUNCTION_LOG_LEVELS)
        check_range("serving.api.function_memory_mb", self.function_memory_mb, 128, 10240)
        if self.reserved_concurrency is not None:
            check_range("serving.api.reserved_concurrency", self.reserved_concurrency, 1, 1000)
        check_range("serving.api.powertools_layer_version", self.powertools_layer_version, 1, 10000)
        check_account("serving.api.powertools_layer_account", self.powertools_layer_account)


@dataclass(frozen=True)
class ServingMonitoringConfig:
    """Alarms on the endpoint, the Lambda wrapper and the API, told to an SNS topic; one dashboard per stage.

    Every alarm looks at ``period_seconds`` windows and fires when ``datapoints_to_alarm`` of the last
    ``evaluation_periods`` windows breach. Windows without data do not breach (no traffic is not an incident).
    """

    emails: tuple[str, ...] = ()
    """Addresses subscribed to the serving alarm topic (each confirms by email). Default none."""
    period_seconds: int = 60
    """Length of one alarm window: 60, 300, 900 or 3600 seconds. Default 60."""
    evaluation_periods: int = 5
    """Windows an alarm looks back over, 1 to 60. Default 5."""
    datapoints_to_alarm: int = 3
    """Breaching windows among them that fire the alarm, 1 to ``evaluation_periods``. Default 3."""
    endpoint_5xx_rate_percent: float = 1.0
    """Endpoint 5XX answers per 100 invocations (used where the endpoint has no rollback alarm of its own),
    0 to 100. Default 1."""
    endpoint_4xx_rate_percent: float = 10.0
    """Endpoint 4XX answers per 100 invocations: many rejected requests mean a client or the wrapper is broken,
    0 to 100. Default 10."""
    model_latency_p99_ms: float = 2000.0
    """p99 of the model's own latency (used where the endpoint has no rollback alarm of its own), 1 to 60000 ms.
    Default 2000."""
    cpu_utilization_percent: float = 80.0
    """Average CPU use of the endpoint's instances, per core, 1 to 100 (instance endpoints). Default 80."""
    gpu_utilization_percent: float = 90.0
    """Average GPU use, per GPU, 1 to 100 (instance endpoints with GPUs). Default 90."""
    memory_utilization_percent: float = 85.0
    """Average memory use of the instances, 1 to 100 (instance endpoints). Default 85."""
    scaling_ceiling_percent: float = 90.0
    """Fires when the endpoint's invocations per minute reach this share of ``invocations_per_instance_target`` x
    ``max_instances``: autoscaling cannot add capacity beyond it. 1 to 100 (instance endpoints). Default 90."""
    function_errors: int = 1
    """Lambda wrapper errors (unhandled exceptions: every expected failure is an answer) per window, 1 to 100000.
    Default 1."""
    function_throttles: int = 1
    """Throttled Lambda wrapper invocations per window (clients then get 500 from the API), 1 to 100000. Default 1."""
    api_5xx_rate_percent: float = 1.0
    """API Gateway 5XX answers per 100 requests, 0 to 100. Default 1."""
    api_latency_p99_ms: float = 10000.0
    """p99 of the API's end-to-end latency, 1 to 29000 ms (the integration timeout). Default 10000."""

    def __post_init__(self) -> None:
        for email in self.emails:
            if not _EMAIL.fullmatch(email):
                raise fail("serving.monitoring.emails", email, "email addresses like team@example.com")
        check_one_of("serving.monitoring.period_seconds", self.period_seconds, (60, 300, 900, 3600))
        check_range("serving.monitoring.evaluation_periods", self.evaluation_periods, 1, 60)
        check_range("serving.monitoring.datapoints_to_alarm", self.datapoints_to_alarm, 1, 60)
        check_min_max(
            "serving.monitoring.datapoints_to_alarm",
            self.datapoints_to_alarm,
            "serving.monitoring.evaluation_periods",
            self.evaluation_periods,
        )
        for name in ("endpoint_5xx_rate_percent", "endpoint_4xx_rate_percent", "api_5xx_rate_percent"):
            check_range(f"serving.monitoring.{name}", getattr(self, name), 0, 100)
        for name in (
            "cpu_utilization_percent",
            "gpu_utilization_percent",
            "memory_utilization_percent",
            "scaling_ceiling_percent",
        ):
            check_range(f"serving.monitoring.{name}", getattr(self, name), 1, 100)
        check_range("serving.monitoring.model_latency_p99_ms", self.model_latency_p99_ms, 1, 60000)
        check_range("serving.monitoring.api_latency_p99_ms", self.api_latency_p99_ms, 1, 29000)
        check_range("serving.monitoring.function_errors", self.function_errors, 1, 100000)
        check_range("serving.monitoring.function_throttles", self.function_throttles, 1, 100000)


@dataclass(frozen=True)
class PlatformConfig:
    """Every setting of one stage of the platform."""

    stage: str
    """Stage name: lower-case letters and digits, 2-8 characters (dev, prod). Part of stack and resource names."""
    project: str = "nlp"
    """Short project prefix for stack and resource names, lower-case, 2-12 characters. Default nlp."""
    account: str | None = None
    """AWS account id, or None for an environment-agnostic synth. Default None."""
    region: str | None = None
    """AWS region, or None for an environment-agnostic synth. Default None."""
    termination_protection: bool = False
    """CloudFormation termination protection on every stack. Default False."""
    log_retention_days: int = 30
    """Retention of the platform's own log groups. Default 30."""
    tags: tuple[tuple[str, str], ...] = ()
    """Tags applied to every resource, as (key, value) pairs. Default none."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    data: DataConfig = field(default_factory=DataConfig)
    workbench: WorkbenchConfig = field(default_factory=WorkbenchConfig)
    data_preparation: DataPreparationConfig = field(default_factory=DataPreparationConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    idle_cost_goal_usd: float | None = None
    """Most the stage may cost per month with nothing running (``make cost`` fails above it), or None for no goal.
    Default None."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9]{1,7}", self.stage):
            raise fail("stage", self.stage, "lower-case letters and digits, 2-8 characters, starting with a letter")
        if not re.fullmatch(r"[a-z][a-z0-9]{1,11}", self.project):
            raise fail(
                "project", self.project, "lower-case letters and digits, 2-12 characters, starting with a letter"
            )
        check_account("account", self.account)
        check_region("region", self.region)
        if (self.account is None) != (self.region is None):
            raise fail("account" if self.account is None else "region", None, "set both account and region, or neither")
        check_retention("log_retention_days", self.log_retention_days)
        if self.idle_cost_goal_usd is not None and not 0 < self.idle_cost_goal_usd <= 1_000_000:
            raise fail("idle_cost_goal_usd", self.idle_cost_goal_usd, "a monthly amount in USD above 0, or None")
        if self.account is None and self.network.az_count > 2:
            raise fail("network.az_count", self.network.az_count, "at most 2 unless the stage sets account and region")
        for key, value in self.tags:
            if not 1 <= len(key) <= 128 or key.lower().startswith("aws:") or len(value) > 256:
                raise fail("tags", (key, value), "keys of 1-128 characters not starting with aws:, values <= 256")
        for user in self.workbench.users:
            check_sagemaker_name(f"workbench.users[{user.name!r}].name", self.notebook_name(user))

    @property
    def prefix(self) -> str:
        """``<project>-<stage>``: the start of every stack and physical resource name."""
        return f"{self.project}-{self.stage}"

    def stack_name(self, part: str) -> str:
        """The CloudFormation stack of one part of the stage: ``<project>-<stage>-<part>`` (``nlp-dev-data``)."""
        return f"{self.prefix}-{part}"

    @property
    def training_pipeline_name(self) -> str:
        """Name of the SageMaker training pipeline (the Pipeline stack creates it under this name)."""
        return f"{self.prefix}-training"

    @property
    def model_package_group_name(self) -> str:
        """Name of the model package group the pipeline registers models in."""
        return f"{self.prefix}-models"

    @property
    def batch_inference_pipeline_name(self) -> str:
        """Name of the SageMaker batch inference pipeline."""
        return f"{self.prefix}-batch-inference"

    @property
    def endpoint_name(self) -> str:
        """Name of the inference endpoint (the Serving stack creates it when a model is configured)."""
        return f"{self.prefix}-inference"

    def notebook_name(self, user: NotebookUserConfig) -> str:
        """The notebook instance name of a user: ``<project>-<stage>-<user>``."""
        return f"{self.prefix}-{user.name}"
