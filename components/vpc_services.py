"""Which AWS APIs the platform's workloads call from inside the isolated VPC, declared by the workloads themselves.

Each interface endpoint costs per AZ-hour whether used or not, so the Network stack creates one only where a consumer
needs it. Every component that places something in the VPC (notebooks, the Glue job, SageMaker jobs, Lambda functions)
declares, as a class attribute, the services it calls from there, each with a one-line reason; ``build_platform``
collects the declarations of the components the stage builds and passes their union to the Network stack.

S3 is declared too, for the record: it goes through the (free) gateway endpoint the VPC always has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from aws_cdk import aws_ec2 as ec2


class VpcService(Enum):
    """An AWS API reachable from the isolated VPC; the value is the endpoint service's short name."""

    S3 = "s3"
    SAGEMAKER_API = "sagemaker.api"
    SAGEMAKER_RUNTIME = "sagemaker.runtime"
    CLOUDWATCH_LOGS = "logs"
    CLOUDWATCH_MONITORING = "monitoring"
    KMS = "kms"
    GLUE = "glue"
    CODEARTIFACT_API = "codeartifact.api"
    CODEARTIFACT_REPOSITORIES = "codeartifact.repositories"
    STS = "sts"
    ECR_API = "ecr.api"
    ECR_DOCKER = "ecr.dkr"

    @property
    def is_gateway(self) -> bool:
        """True for S3, reached through the VPC's gateway endpoint (no hourly charge)."""
        return self is VpcService.S3

    @property
    def construct_id(self) -> str:
        """The interface endpoint's construct id, stable across changes (``SageMakerApi``, ``CloudWatchLogs``)."""
        return _CONSTRUCT_IDS[self]

    @property
    def endpoint_service(self) -> ec2.InterfaceVpcEndpointAwsService:
        """The CDK's interface endpoint service; S3 has none here (it uses the gateway endpoint)."""
        if self.is_gateway:
            raise ValueError(f"{self.name} is reached through the gateway endpoint, not an interface endpoint")
        service: ec2.InterfaceVpcEndpointAwsService = getattr(ec2.InterfaceVpcEndpointAwsService, _CDK_NAMES[self])
        return service


_CONSTRUCT_IDS = {
    VpcService.S3: "S3",
    VpcService.SAGEMAKER_API: "SageMakerApi",
    VpcService.SAGEMAKER_RUNTIME: "SageMakerRuntime",
    VpcService.CLOUDWATCH_LOGS: "CloudWatchLogs",
    VpcService.CLOUDWATCH_MONITORING: "CloudWatchMonitoring",
    VpcService.KMS: "Kms",
    VpcService.GLUE: "Glue",
    VpcService.CODEARTIFACT_API: "CodeArtifactApi",
    VpcService.CODEARTIFACT_REPOSITORIES: "CodeArtifactRepositories",
    VpcService.STS: "Sts",
    VpcService.ECR_API: "EcrApi",
    VpcService.ECR_DOCKER: "EcrDocker",
}
_CDK_NAMES = {
    VpcService.SAGEMAKER_API: "SAGEMAKER_API",
    VpcService.SAGEMAKER_RUNTIME: "SAGEMAKER_RUNTIME",
    VpcService.CLOUDWATCH_LOGS: "CLOUDWATCH_LOGS",
    VpcService.CLOUDWATCH_MONITORING: "CLOUDWATCH_MONITORING",
    VpcService.KMS: "KMS",
    VpcService.GLUE: "GLUE",
    VpcService.CODEARTIFACT_API: "CODEARTIFACT_API",
    VpcService.CODEARTIFACT_REPOSITORIES: "CODEARTIFACT_REPOSITORIES",
    VpcService.STS: "STS",
    VpcService.ECR_API: "ECR",
    VpcService.ECR_DOCKER: "ECR_DOCKER",
}


@dataclass(frozen=True)
class VpcServiceUse:
    """One service a component calls from inside the VPC, and why (shown in the cost report's "needed by")."""

    service: VpcService
    reason: str

    def __post_init__(self) -> None:
        if len(self.reason.strip()) < 20:
            raise ValueError(f"VpcServiceUse({self.service.name}): say why the service is called, got {self.reason!r}")


@dataclass(frozen=True)
class VpcConsumer:
    """A component the stage builds in the VPC (``name`` is its class name) and the services it calls from there."""

    name: str
    uses: tuple[VpcServiceUse, ...]

    @classmethod
    def of(cls, component: type, uses: Iterable[VpcServiceUse] | None = None) -> VpcConsumer:
        """The consumer for ``component``, with ``uses`` or else the class's ``VPC_SERVICES`` declaration."""
        declared: tuple[VpcServiceUse, ...] | None = getattr(component, "VPC_SERVICES", None)
        if uses is None and declared is None:
            raise TypeError(f"{component.__name__} declares no VPC_SERVICES; add the services it calls from the VPC")
        return cls(name=component.__name__, uses=tuple(uses if uses is not None else declared or ()))

    @property
    def services(self) -> frozenset[VpcService]:
        return frozenset(use.service for use in self.uses)


def needed_by(consumers: Iterable[VpcConsumer]) -> dict[VpcService, tuple[str, ...]]:
    """Each service any consumer calls, to ``"<consumer>: <reason>"`` lines, in the enum's order."""
    lines: dict[VpcService, list[str]] = {}
    for consumer in consumers:
        for use in consumer.uses:
            lines.setdefault(use.service, []).append(f"{consumer.name}: {use.reason}")
    return {service: tuple(lines[service]) for service in VpcService if service in lines}
