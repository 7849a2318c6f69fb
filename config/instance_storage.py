"""Which SageMaker instance types have local NVMe instance storage (placeholder until the reviewed table lands)."""

from __future__ import annotations

import re

LOCAL_STORAGE_FAMILIES = frozenset(
    {
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "p3dn",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "m5d",
        "c5d",
        "r5d",
        "m6id",
        "c6id",
        "r6id",
        "trn1",
        "trn1n",
        "inf2",
    }
)


def has_local_instance_storage(instance_type: str) -> bool:
    match = re.fullmatch(r"ml\.([a-z0-9-]+)\.([a-z0-9]+)", instance_type)
    if match is None:
        raise ValueError(f"{instance_type!r} is not a SageMaker instance type like ml.g5.xlarge")
    return match[1] in LOCAL_STORAGE_FAMILIES


def volume_kms_key_allowed(instance_type: str) -> bool:
    return not has_local_instance_storage(instance_type)
