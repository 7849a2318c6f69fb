"""GPUs per SageMaker instance type, for the training settings that depend on them (torchrun, GPU checks).

A reviewed table, not an API call: synth stays offline. Sizes not listed have no GPU. Source: the accelerated
computing instance pages of Amazon EC2 and the SageMaker pricing page (instance details), read 2026-12.
"""

from __future__ import annotations

import re

# family -> {size: GPUs}
_GPUS: dict[str, dict[str, int]] = {
    "g4dn": {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4},
    "g5": {
        "xlarge": 1,
        "2xlarge": 1,
        "4xlarge": 1,
        "8xlarge": 1,
        "16xlarge": 1,
        "12xlarge": 4,
        "24xlarge": 4,
        "48xlarge": 8,
    },
    "g6": {
        "xlarge": 1,
        "2xlarge": 1,
        "4xlarge": 1,
        "8xlarge": 1,
        "16xlarge": 1,
        "12xlarge": 4,
        "24xlarge": 4,
        "48xlarge": 8,
    },
    "g6e": {
        "xlarge": 1,
        "2xlarge": 1,
        "4xlarge": 1,
        "8xlarge": 1,
        "16xlarge": 1,
        "12xlarge": 4,
        "24xlarge": 4,
        "48xlarge": 8,
    },
    "p3": {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8},
    "p3dn": {"24xlarge": 8},
    "p4d": {"24xlarge": 8},
    "p4de": {"24xlarge": 8},
    "p5": {"48xlarge": 8},
    "p5e": {"48xlarge": 8},
    "p5en": {"48xlarge": 8},
}
_INSTANCE_TYPE = re.compile(r"^ml\.(?P<family>[a-z0-9-]+)\.(?P<size>[a-z0-9]+)$")


def gpus_per_instance(instance_type: str) -> int:
    """GPUs of a SageMaker instance type such as ``ml.g5.12xlarge`` (4); 0 for a type without GPUs."""
    match = _INSTANCE_TYPE.fullmatch(instance_type)
    if match is None:
        raise ValueError(f"{instance_type!r} is not a SageMaker instance type like ml.g5.xlarge")
    return _GPUS.get(match["family"], {}).get(match["size"], 0)
