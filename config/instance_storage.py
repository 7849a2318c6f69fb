"""Which SageMaker instance types have local NVMe instance storage, and so must not be sent a volume KMS key.

SageMaker rejects ``VolumeKmsKeyId`` (training, processing, transform) and an endpoint config's ``KmsKeyId`` for an
instance type with local instance storage: those volumes are encrypted by a hardware module on the instance
(XTS-AES-256, keys destroyed when the instance stops), and no customer key can be given. An EBS-backed type has no such
encryption, so the platform must send its key. Code that builds a job or an IAM condition asks
:func:`volume_kms_key_allowed`.

The answer is a table of instance families, reviewed by hand against "Instance store volumes" in the Amazon EC2 User
Guide (the ``ml.`` types are the EC2 types of the same name). It is not derived from an API: EC2's
``DescribeInstanceTypes`` needs credentials, and botocore's SageMaker model lists the types without their storage. A
family in neither table is refused with an error that says what to check, so a new family never gets a silent guess.
"""

from __future__ import annotations

import re

# Families whose every size has local NVMe SSD instance storage (EC2 User Guide, "Instance store volumes").
LOCAL_INSTANCE_STORAGE_FAMILIES: frozenset[str] = frozenset(
    {
        # General purpose, compute and memory optimized: the "d" variants.
        "c5d", "c6gd", "c6id", "m5d", "m6gd", "m6id", "r5d", "r6gd", "r6id", "r7gd",
        # Accelerated: NVIDIA GPUs (G4dn T4, G5 A10G, G6 L4, G6e L40S, G7e RTX PRO 6000, P3dn V100, P4d/P4de A100,
        # P5/P5e/P5en H100/H200, P6 B200/B300/GB200), Gaudi (DL1) and Trainium.
        "g4dn", "g5", "g6", "g6e", "g7e", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "p6-b300",
        "p6e-gb200", "dl1", "trn1", "trn1n", "trn2",
    }
)  # fmt: skip

# Families without instance storage: SageMaker attaches an EBS volume, which the platform key must encrypt.
EBS_ONLY_FAMILIES: frozenset[str] = frozenset(
    {
        "t2", "t3",
        "m4", "m5", "m6g", "m6i", "m7i", "m7i-flex", "m8g", "m8i", "m8i-flex",
        "c4", "c5", "c5n", "c6g", "c6gn", "c6i", "c6in", "c7g", "c7i", "c7i-flex", "c8g", "c8i", "c8i-flex",
        "r5", "r6g", "r6i", "r7i", "r8g", "r8i", "r8i-flex",
        # Accelerated without instance storage: P2 K80, P3 V100 (only p3dn has NVMe), Inferentia.
        "p2", "p3", "inf1", "inf2",
    }
)  # fmt: skip

_INSTANCE_TYPE = re.compile(r"^ml\.(?P<family>[a-z][a-z0-9-]*)\.(?P<size>[a-z0-9-]+)$")


def instance_family(instance_type: str) -> str:
    """The family of a SageMaker instance type: ``g5`` for ``ml.g5.xlarge``, ``p6-b200`` for ``ml.p6-b200.48xlarge``.

    Raises ``ValueError`` naming the value when it is not of the form ``ml.<family>.<size>``.
    """
    match = _INSTANCE_TYPE.fullmatch(instance_type) if isinstance(instance_type, str) else None
    if match is None:
        raise ValueError(
            f"instance type {instance_type!r} is not a SageMaker instance type; write it as ml.<family>.<size>, "
            "for example ml.g5.xlarge"
        )
    return match["family"]


def has_local_instance_storage(instance_type: str) -> bool:
    """Whether ``instance_type`` (``ml.g5.xlarge``) has local NVMe instance storage instead of an EBS volume.

    Raises ``ValueError`` naming the value for a malformed type, or for a family that the tables of this module have
    not classified yet (add it after checking the EC2 User Guide's "Instance store volumes").
    """
    family = instance_family(instance_type)
    if family in LOCAL_INSTANCE_STORAGE_FAMILIES:
        return True
    if family in EBS_ONLY_FAMILIES:
        return False
    raise ValueError(
        f"instance type {instance_type!r}: family {family!r} is not classified in config/instance_storage.py; check "
        "whether it has instance store volumes (Amazon EC2 User Guide, 'Instance store volumes') and add it to "
        "LOCAL_INSTANCE_STORAGE_FAMILIES or EBS_ONLY_FAMILIES"
    )


def volume_kms_key_allowed(instance_type: str) -> bool:
    """Whether a job or endpoint on ``instance_type`` may (and, on this platform, must) name a volume KMS key.

    False for types with local instance storage, which SageMaker encrypts in hardware and for which it rejects
    ``VolumeKmsKeyId``/``KmsKeyId``. Raises ``ValueError`` like :func:`has_local_instance_storage`.
    """
    return not has_local_instance_storage(instance_type)
