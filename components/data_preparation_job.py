"""The Glue Spark job that turns raw labelled text into the curated training splits."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from components.compliance import acknowledge, finding_reference
from components.log_retention import retention_days
from components.platform_role import PlatformRole
from components.vpc_services import VpcService, VpcServiceUse

GLUE_JOBS_DIR = Path(__file__).resolve().parent.parent / "glue_jobs"
GLUE_VERSION = "5.0"  # Spark 3.5, Python 3.11: the line the job's local tests run on (requirements/test-glue.txt)

# Where the platform keeps its datasets. The role reads raw and writes curated objects under DATASETS_PREFIX only; a
# run can point anywhere inside it with --input_uri/--output_uri.
DATASETS_PREFIX = "datasets/"
# The default run reads raw datasets/default/ and writes curated datasets/default: a prefix of its own on each side,
# so that nothing else kept under datasets/ (the example notebook's samples) is mixed into the team's data.
RAW_PREFIX = f"{DATASETS_PREFIX}default/"
CURATED_PREFIX = f"{DATASETS_PREFIX}default"
# Where the example notebooks put their samples (raw) and outputs (curated), one run-scoped folder each: inside what
# the role may read and write, outside the default prefixes.
EXAMPLES_PREFIX = f"{DATASETS_PREFIX}notebook-examples/"


class DataPreparationJob(Construct):
    """Glue 5.0 Spark job running ``glue_jobs/prepare_dataset.py`` inside the platform's isolated VPC.

    - the script and its transforms module are S3 assets (single files, uploaded as they are);
    - a Glue security configuration encrypts what the job writes to S3 (SSE-KMS), its CloudWatch logs and its
      bookmarks (CSE-KMS) with the platform key;
    - a NETWORK connection places the workers in an isolated subnet with the workload security group, so the job
      reaches S3 and AWS APIs through VPC endpoints and nothing else;
    - Glue 5.0 logging: ``--custom-logGroup-prefix`` names the job's two log groups, which this construct creates
      (KMS-encrypted with the platform key, retention and removal policy from config) so that ``cdk destroy`` in dev
      removes them and the role writes to them and nowhere else;
    - a role that reads the raw bucket, writes the curated bucket and uses the key, and nothing else beyond what Glue
      itself needs to run in a VPC;
    - default arguments pointing at ``s3://<raw>/datasets/default/`` and ``s3://<curated>/datasets/default``
      (examples go under ``datasets/notebook-examples/``, outside both).

    ``VPC_SERVICES``: what the job's workers call from the VPC. KMS is there because the security configuration
    encrypts with the platform key and AWS's Glue guide ("Creating a route to AWS KMS for VPC jobs") asks for a KMS
    endpoint for jobs in a VPC without internet; CSE-KMS bookmarks are encrypted by the workers themselves.

    :param worker_type: Glue worker type (G.1X, ...). :param number_of_workers: workers including the driver.
    :param timeout_minutes: run timeout. :param max_retries: automatic retries of a failed run.
    :param log_retention_days: retention of the two log groups.
    :param job_metrics: Glue job metrics (``--enable-metrics``), which the workers publish through the CloudWatch
        interface endpoint. Default True.
    :param removal_policy: what happens to the log groups when the stack is deleted.
    """

    VPC_SERVICES = (
        VpcServiceUse(VpcService.S3, "reads raw data and its script assets, writes curated data"),
        VpcServiceUse(VpcService.GLUE, "kept to be safe: AWS's guide for Glue jobs without internet lists it"),
        VpcServiceUse(VpcService.CLOUDWATCH_LOGS, "Glue 5.0 workers write the job's error and output log groups"),
        VpcServiceUse(VpcService.CLOUDWATCH_MONITORING, "--enable-metrics: workers call cloudwatch:PutMetricData"),
        VpcServiceUse(VpcService.KMS, "security configuration with the platform key (CSE-KMS bookmarks, AWS guide)"),
    )

    @classmethod
    def vpc_services(cls, *, job_metrics: bool) -> tuple[VpcServiceUse, ...]:
        """``VPC_SERVICES`` of a job with or without Glue job metrics (only metrics call CloudWatch)."""
        if job_metrics:
            return cls.VPC_SERVICES
        return tuple(use for use in cls.VPC_SERVICES if use.service is not VpcService.CLOUDWATCH_MONITORING)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        key: kms.IKey,
        subnet: ec2.ISubnet,
        security_group: ec2.ISecurityGroup,
        worker_type: str,
        number_of_workers: int,
        timeout_minutes: int,
        max_retries: int,
        log_retention_days: int,
        removal_policy: cdk.RemovalPolicy,
        job_metrics: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        script = s3_assets.Asset(self, "Script", path=str(GLUE_JOBS_DIR / "prepare_dataset.py"))
        transforms = s3_assets.Asset(self, "Transforms", path=str(GLUE_JOBS_DIR / "dataset_transforms.py"))

        self.role = PlatformRole(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Glue data preparation: read raw, write curated, use the platform key",
        )
        security_configuration_name = f"{name_prefix}-data-preparation"
        # Glue 5.0 ignores the 4.0 continuous-logging arguments. It writes driver, executor and Spark logs to an
        # "error" group and stdout/stderr to an "output" group under --custom-logGroup-prefix and, because the
        # security configuration encrypts CloudWatch logs, inserts "<security configuration>-role/<role name>/" before
        # error|output (AWS Glue Developer Guide, "Logging for AWS Glue jobs"). Creating exactly those groups here
        # gives them the platform key, the configured retention and removal policy (Glue would otherwise create them
        # itself, unencrypted until it associates the key, without retention, and outside cdk destroy).
        # Named after the job, so that whoever knows the job's name finds its logs.
        job_name = f"{name_prefix}-prepare-dataset"
        self.log_group_prefix = f"/aws-glue/jobs/{job_name}"
        self.log_groups = {
            kind: logs.LogGroup(
                self,
                f"{kind.capitalize()}Logs",
                log_group_name=f"{self.log_group_prefix}/{security_configuration_name}-role/{self.role.role_name}/{kind}",
                encryption_key=key,
                retention=retention_days(log_retention_days),
                removal_policy=removal_policy,
            )
            for kind in ("error", "output")
        }
        # The whole datasets/ prefix, not only the default one: runs started on other inputs (the notebook examples)
        # read and write there too.
        raw_bucket.grant_read(self.role, f"{DATASETS_PREFIX}*")
        curated_bucket.grant_read_write(self.role, f"{DATASETS_PREFIX}*")
        # A failed run removes its own run prefix; publishing removes a latest/ copy left by earlier versions.
        curated_bucket.grant_delete(self.role, f"{DATASETS_PREFIX}*")
        key.grant_encrypt_decrypt(self.role)
        # The two asset objects exactly, not the whole bootstrap bucket that asset.grant_read() would open.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[asset.bucket.arn_for_objects(asset.s3_object_key) for asset in (script, transforms)],
            )
        )
        self._grant_log_groups()
        self._grant_glue_runtime(stack, job_metrics=job_metrics)
        self._acknowledge_grant_wildcards(raw_bucket, curated_bucket)

        self.security_configuration = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=security_configuration_name,
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=key.key_arn
                ),
            ),
        )
        self.connection = glue.CfnConnection(
            self,
            "Connection",
            catalog_id=stack.account,
            connection_input=glue.CfnConnection.ConnectionInputProperty(
                name=f"{name_prefix}-data-preparation-vpc",
                connection_type="NETWORK",
                description="Runs the data preparation job in the platform's isolated subnet",
                physical_connection_requirements=glue.CfnConnection.PhysicalConnectionRequirementsProperty(
                    subnet_id=subnet.subnet_id,
                    availability_zone=subnet.availability_zone,
                    security_group_id_list=[security_group.security_group_id],
                ),
            ),
        )
        self.job = glue.CfnJob(
            self,
            "Resource",
            name=job_name,
            description="Raw labelled text to validated, deduplicated, split JSON Lines (glue_jobs/prepare_dataset.py)",
            role=self.role.role_arn,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=script.s3_object_url
            ),
            worker_type=worker_type,
            number_of_workers=number_of_workers,
            timeout=timeout_minutes,
            max_retries=max_retries,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            security_configuration=self.security_configuration.ref,
            connections=glue.CfnJob.ConnectionsListProperty(connections=[self.connection.ref]),
            default_arguments={
                "--extra-py-files": transforms.s3_object_url,
                "--custom-logGroup-prefix": self.log_group_prefix,
                **({"--enable-metrics": "true"} if job_metrics else {}),
                "--job-bookmark-option": "job-bookmark-disable",
                "--input_uri": f"s3://{raw_bucket.bucket_name}/{RAW_PREFIX}",
                "--output_uri": f"s3://{curated_bucket.bucket_name}/{CURATED_PREFIX}",
                "--input_format": "jsonl",
            },
        )
        self.job.node.add_dependency(self.role.policy)

    @property
    def job_name(self) -> str:
        return self.job.ref

    @property
    def job_arn(self) -> str:
        stack = cdk.Stack.of(self)
        return stack.format_arn(service="glue", resource="job", resource_name=self.job.ref)

    def grant_start_run(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start runs of this job and follow them (get, list, stop)."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun", "glue:GetJob"],
            resource_arns=[self.job_arn],
        )

    def _grant_log_groups(self) -> None:
        """Write to the job's two log groups and nowhere else.

        ``logs:AssociateKmsKey``: with CloudWatch encryption in the security configuration Glue associates the key
        with its log groups at each run, and turns its logging off when it may not. ``logs:CreateLogGroup`` on the same
        two names only: Glue may create a group it finds missing (one deleted by hand), never any other group.
        """
        for log_group in self.log_groups.values():
            log_group.grant_write(self.role)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="GlueEncryptsItsTwoLogGroups",
                actions=["logs:AssociateKmsKey", "logs:CreateLogGroup"],
                resources=[log_group.log_group_arn for log_group in self.log_groups.values()],
            )
        )

    def _grant_glue_runtime(self, stack: cdk.Stack, *, job_metrics: bool) -> None:
        """What Glue needs to run workers in a VPC and publish its metrics; no CDK grant exists for these."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="GlueWorkersInTheVpc",
                actions=[
                    "ec2:DescribeVpcEndpoints",
                    "ec2:DescribeRouteTables",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcAttribute",
                    "ec2:CreateNetworkInterface",
                    "ec2:DeleteNetworkInterface",
                ],
                resources=["*"],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="GlueTagsItsNetworkInterfaces",
                actions=["ec2:CreateTags", "ec2:DeleteTags"],
                resources=[stack.format_arn(service="ec2", resource="network-interface", resource_name="*")],
                conditions={"ForAllValues:StringEquals": {"aws:TagKeys": ["aws-glue-service-resource"]}},
            )
        )
        if job_metrics:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="GlueJobMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
                )
            )
        acknowledge(
            self.role.policy,
            "AwsSolutions-IAM5[Resource::*]",
            "EC2 Describe* and network-interface create/delete, which Glue needs to place workers in the VPC, and "
            "cloudwatch:PutMetricData (limited to the Glue namespace by condition) support no resource-level scoping.",
        )

    def _acknowledge_grant_wildcards(self, raw_bucket: s3.IBucket, curated_bucket: s3.IBucket) -> None:
        """The wildcards that the CDK bucket and key grants above write, each acknowledged with its scope."""
        policy = self.role.policy
        for bucket, name in ((raw_bucket, "raw"), (curated_bucket, "curated")):
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{finding_reference(policy, bucket.bucket_arn)}/datasets/*]",
                f"Objects under the datasets/ prefix of the {name} bucket: the job reads or writes any file of a "
                "dataset there, and nothing outside that prefix.",
            )
        grant_actions = {
            "s3:GetObject*": "read objects (and their versions and tags) under the datasets/ prefixes only",
            "s3:GetBucket*": "read bucket configuration the S3 client checks, on the two platform buckets only",
            "s3:List*": "list the datasets/ prefixes of the two platform buckets",
            "s3:DeleteObject*": "a failed run deletes its own run prefix under curated datasets/",
            "s3:Abort*": "abort its own multipart uploads of large split files under curated datasets/",
            "kms:GenerateDataKey*": "encrypt what it writes with the platform key (SSE-KMS), that key only",
            "kms:ReEncrypt*": "re-encrypt under the platform key when S3 copies published files, that key only",
        }
        for action, scope in grant_actions.items():
            acknowledge(policy, f"AwsSolutions-IAM5[Action::{action}]", f"From the CDK grant: {scope}.")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]",
            "Glue names the network interfaces of its VPC workers at run time; tagging is limited by condition to "
            "Glue's own aws-glue-service-resource tag key.",
        )
