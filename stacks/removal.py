"""What happens to the stage's stateful resources when their stack is deleted: one rule for every stack."""

from __future__ import annotations

import aws_cdk as cdk

from config import PlatformConfig


def removal_policy(config: PlatformConfig) -> cdk.RemovalPolicy:
    """RETAIN where the stage keeps its data on deletion (prod), DESTROY where it does not (dev)."""
    return cdk.RemovalPolicy.RETAIN if config.data.retain_on_delete else cdk.RemovalPolicy.DESTROY
