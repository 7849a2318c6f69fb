"""Stage configuration: frozen dataclasses, the stages in code, and their validation."""

from config.instance_storage import has_local_instance_storage, volume_kms_key_allowed
from config.settings import (
    PRETRAINED_PREFIX,
    CanaryDeploymentConfig,
    DataConfig,
    DataPreparationConfig,
    NetworkConfig,
    NotebookUserConfig,
    OutOfHoursConfig,
    PlatformConfig,
    ServingConfig,
    TrainingConfig,
    WorkbenchConfig,
)
from config.stages import DEFAULT_STAGE, STAGES, load_config
from config.validation import ConfigError

__all__ = [
    "DEFAULT_STAGE",
    "PRETRAINED_PREFIX",
    "STAGES",
    "CanaryDeploymentConfig",
    "ConfigError",
    "DataConfig",
    "DataPreparationConfig",
    "NetworkConfig",
    "NotebookUserConfig",
    "OutOfHoursConfig",
    "PlatformConfig",
    "ServingConfig",
    "TrainingConfig",
    "WorkbenchConfig",
    "has_local_instance_storage",
    "load_config",
    "volume_kms_key_allowed",
]
