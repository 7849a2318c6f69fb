"""Stage configuration: frozen dataclasses, the stages in code, and their validation."""

from config.settings import (
    DataConfig,
    DataPreparationConfig,
    NetworkConfig,
    NotebookUserConfig,
    PlatformConfig,
    ServingConfig,
    TrainingConfig,
    WorkbenchConfig,
)
from config.stages import DEFAULT_STAGE, STAGES, load_config
from config.validation import ConfigError

__all__ = [
    "DEFAULT_STAGE",
    "STAGES",
    "ConfigError",
    "DataConfig",
    "DataPreparationConfig",
    "NetworkConfig",
    "NotebookUserConfig",
    "PlatformConfig",
    "ServingConfig",
    "TrainingConfig",
    "WorkbenchConfig",
    "load_config",
]
