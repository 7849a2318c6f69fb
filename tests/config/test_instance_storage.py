"""config/instance_storage.py: which instance types have local NVMe storage, so must not be sent a volume KMS key."""

from __future__ import annotations

import re

import botocore.session
import pytest

from config import STAGES, has_local_instance_storage, volume_kms_key_allowed
from config.instance_storage import EBS_ONLY_FAMILIES, LOCAL_INSTANCE_STORAGE_FAMILIES, instance_family

# One SageMaker type of each family with local instance storage (EC2 User Guide, "Instance store volumes").
LOCAL_STORAGE_EXAMPLES = {
    "c5d": "ml.c5d.xlarge", "c6gd": "ml.c6gd.large", "c6id": "ml.c6id.large", "m5d": "ml.m5d.large",
    "m6gd": "ml.m6gd.large", "m6id": "ml.m6id.large", "r5d": "ml.r5d.large", "r6gd": "ml.r6gd.large",
    "r6id": "ml.r6id.large", "r7gd": "ml.r7gd.large", "g4dn": "ml.g4dn.xlarge", "g5": "ml.g5.xlarge",
    "g6": "ml.g6.xlarge", "g6e": "ml.g6e.xlarge", "g7e": "ml.g7e.2xlarge", "p3dn": "ml.p3dn.24xlarge",
    "p4d": "ml.p4d.24xlarge", "p4de": "ml.p4de.24xlarge", "p5": "ml.p5.48xlarge", "p5e": "ml.p5e.48xlarge",
    "p5en": "ml.p5en.48xlarge", "p6-b200": "ml.p6-b200.48xlarge", "p6-b300": "ml.p6-b300.48xlarge",
    "p6e-gb200": "ml.p6e-gb200.36xlarge", "dl1": "ml.dl1.24xlarge", "trn1": "ml.trn1.2xlarge",
    "trn1n": "ml.trn1n.32xlarge", "trn2": "ml.trn2.48xlarge",
}  # fmt: skip
# Families in botocore's SageMaker model whose storage has not been checked yet: classify them, then remove them here.
UNREVIEWED_FAMILIES = {"g7"}


def test_the_examples_cover_every_family_of_the_table() -> None:
    assert set(LOCAL_STORAGE_EXAMPLES) == LOCAL_INSTANCE_STORAGE_FAMILIES
    assert LOCAL_INSTANCE_STORAGE_FAMILIES.isdisjoint(EBS_ONLY_FAMILIES)


@pytest.mark.parametrize("family", sorted(LOCAL_STORAGE_EXAMPLES))
def test_family_with_local_nvme_storage_gets_no_volume_key(family: str) -> None:
    instance_type = LOCAL_STORAGE_EXAMPLES[family]
    assert instance_family(instance_type) == family
    assert has_local_instance_storage(instance_type) is True
    assert volume_kms_key_allowed(instance_type) is False


@pytest.mark.parametrize(
    "instance_type", ["ml.t3.medium", "ml.m5.xlarge", "ml.c5.2xlarge", "ml.r5.large", "ml.p3.2xlarge", "ml.inf2.xlarge"]
)
def test_ebs_backed_type_must_send_the_volume_key(instance_type: str) -> None:
    assert has_local_instance_storage(instance_type) is False
    assert volume_kms_key_allowed(instance_type) is True


def test_p3dn_has_local_storage_but_p3_does_not() -> None:
    # The family, not a prefix, decides: ml.p3dn is not ml.p3.
    assert has_local_instance_storage("ml.p3dn.24xlarge")
    assert not has_local_instance_storage("ml.p3.16xlarge")


STAGE_INSTANCE_TYPES = {
    (name, use, instance_type)
    for name, build in STAGES.items()
    for config in [build()]
    for use, instance_type in (
        ("training", config.training.instance_type),
        ("processing", config.training.processing_instance_type),
        ("hosting", config.serving.instance_type),
        *(("notebook", user.instance_type) for user in config.workbench.users),
    )
    if instance_type is not None
}


@pytest.mark.parametrize(("stage", "use", "instance_type"), sorted(STAGE_INSTANCE_TYPES))
def test_every_instance_type_the_stages_use_is_classified(stage: str, use: str, instance_type: str) -> None:
    # Raises for a family the tables do not know: a stage must never get a guessed answer.
    assert volume_kms_key_allowed(instance_type) is not has_local_instance_storage(instance_type)


def test_the_stages_use_the_expected_storage() -> None:
    # The reason for the module: the GPU training and hosting types have local storage, the rest EBS.
    found = {(stage, use): volume_kms_key_allowed(t) for stage, use, t in STAGE_INSTANCE_TYPES}
    assert found[("dev", "training")] is False and found[("prod", "training")] is False
    assert found[("prod", "hosting")] is False
    assert found[("dev", "processing")] is True and found[("prod", "processing")] is True
    assert all(allowed for (_, use), allowed in found.items() if use == "notebook")


def test_every_family_in_botocores_sagemaker_model_is_classified() -> None:
    # A botocore upgrade that adds a family fails here, so the new family is reviewed before anyone configures it.
    model = botocore.session.get_session().get_service_model("sagemaker")
    shapes = ("InstanceType", "TrainingInstanceType", "ProcessingInstanceType", "ProductionVariantInstanceType",
              "TransformInstanceType")  # fmt: skip
    families = {instance_family(value) for shape in shapes for value in model.shape_for(shape).enum}
    unclassified = families - LOCAL_INSTANCE_STORAGE_FAMILIES - EBS_ONLY_FAMILIES
    assert unclassified == UNREVIEWED_FAMILIES


@pytest.mark.parametrize("value", ["g5.xlarge", "ml.g5", "ML.G5.XLARGE", "ml..xlarge", "", "ml.g5.xlarge "])
def test_a_malformed_instance_type_is_refused_with_its_value(value: str) -> None:
    expected = rf"instance type {re.escape(repr(value))} is not a SageMaker instance type.*ml\.<family>"
    with pytest.raises(ValueError, match=expected):
        has_local_instance_storage(value)


def test_an_unclassified_family_is_refused_with_what_to_check() -> None:
    with pytest.raises(ValueError, match=r"'ml\.g7\.xlarge': family 'g7' is not classified.*Instance store volumes"):
        volume_kms_key_allowed("ml.g7.xlarge")
