"""The platform's Python package index: a CodeArtifact repository that proxies public PyPI."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_codeartifact as codeartifact
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from components.vpc_services import VpcService, VpcServiceUse

PUBLIC_PYPI = "public:pypi"


class PackageRepository(Construct):
    """A CodeArtifact domain encrypted with the platform key and a repository with an external connection to PyPI.

    Notebooks and training jobs have no internet access; they install packages from this repository, which fetches
    a package from public PyPI the first time someone asks for it and keeps a copy. Clients in the VPC reach it
    through the endpoints in ``CLIENT_VPC_SERVICES``, which a client component adds to its own declaration. No STS
    endpoint: the client calls only ``codeartifact:GetAuthorizationToken``; ``sts:GetServiceBearerToken`` is a
    permission CodeArtifact checks for that call, not an API the client reaches.

    :param domain_name: CodeArtifact domain name, unique in the account and region (``<project>-<stage>-packages``).
    :param repository_name: repository name inside the domain. Default ``pypi``.
    :param key: the KMS key that encrypts the domain's assets.
    :param removal_policy: what happens to the domain and repository (and the cached packages) on stack deletion.
    """

    CLIENT_VPC_SERVICES = (
        VpcServiceUse(VpcService.CODEARTIFACT_API, "pip's CodeArtifact authorization token (codeartifact_pip.sh)"),
        VpcServiceUse(VpcService.CODEARTIFACT_REPOSITORIES, "pip installs packages from the PyPI mirror"),
        VpcServiceUse(VpcService.S3, "CodeArtifact serves package files from S3 (the gateway endpoint)"),
    )
    """What a client of the repository calls from inside the VPC."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain_name: str,
        key: kms.IKey,
        removal_policy: cdk.RemovalPolicy,
        repository_name: str = "pypi",
    ) -> None:
        super().__init__(scope, construct_id)
        self.domain = codeartifact.CfnDomain(self, "Domain", domain_name=domain_name, encryption_key=key.key_arn)
        self.repository = codeartifact.CfnRepository(
            self,
            "Resource",
            domain_name=self.domain.attr_name,
            repository_name=repository_name,
            description="Public PyPI through an external connection: the pip index of notebooks and training jobs",
            external_connections=[PUBLIC_PYPI],
        )
        for resource in (self.domain, self.repository):
            resource.apply_removal_policy(removal_policy)

    @property
    def domain_name(self) -> str:
        return self.domain.attr_name

    @property
    def domain_owner(self) -> str:
        """The account id that owns the domain (pip's index URL and ``get-authorization-token`` need it)."""
        return self.domain.attr_owner

    @property
    def repository_name(self) -> str:
        return self.repository.attr_name

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` get an authorization token for the domain and install packages from the repository.

        ``sts:GetServiceBearerToken`` has no resource type, so its statement names ``*`` and is limited by the
        ``sts:AWSServiceName`` condition to CodeArtifact; the grantee's policy must acknowledge
        ``AwsSolutions-IAM5[Resource::*]``.
        """
        token = iam.Grant.add_to_principal(
            grantee=grantee, actions=["codeartifact:GetAuthorizationToken"], resource_arns=[self.domain.attr_arn]
        )
        read = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["codeartifact:GetRepositoryEndpoint", "codeartifact:ReadFromRepository"],
            resource_arns=[self.repository.attr_arn],
        )
        bearer = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sts:GetServiceBearerToken"],
            resource_arns=["*"],
            conditions={"StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}},
        )
        return token.combine(read).combine(bearer)
