"""The Workbench stack: locked-down notebook instances, their lifecycle configs, the package repository, and a notebook
role that can do what the platform's users need and nothing a grant could have scoped tighter."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

import components.notebook_workbench as notebook_workbench
from components.notebook_workbench import LIFECYCLE_DIR, NotebookWorkbench, lifecycle_script
from components.package_repository import PackageRepository
from config import NotebookUserConfig, PlatformConfig, volume_kms_key_allowed

# The parameters of the lifecycle scripts (notebook_lifecycle/README.md, "Contract with the CDK component").
CONTRACT_PARAMETERS = {
    "AWS_REGION_NAME", "RAW_BUCKET", "CURATED_BUCKET", "ARTIFACTS_BUCKET", "KMS_KEY_ARN", "GLUE_JOB_NAME",
    "PIPELINE_NAME", "MODEL_PACKAGE_GROUP_NAME", "ENDPOINT_NAME", "INFERENCE_API_URL", "CODEARTIFACT_DOMAIN",
    "CODEARTIFACT_DOMAIN_OWNER", "CODEARTIFACT_REPOSITORY", "IDLE_MINUTES", "NOTEBOOK_INSTANCE_NAME", "HELPERS_S3_URI",
}  # fmt: skip
MARKER = "# @PLATFORM_PARAMETERS@"
TOKEN = "\x00"  # stands for a CloudFormation intrinsic inside a rendered script


# --- helpers ----------------------------------------------------------------------------------------------------------


def config_of(stage: Any) -> PlatformConfig:
    config: PlatformConfig = stage.config  # with the sessions' example model (tests/conftest.py)
    return config


def resources(stage: Any, resource_type: str) -> dict[str, dict[str, Any]]:
    template = stage.template("workbench").to_json()
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def notebooks(stage: Any) -> dict[str, dict[str, Any]]:
    """Notebook instance properties by instance name."""
    found = resources(stage, "AWS::SageMaker::NotebookInstance").values()
    return {n["Properties"]["NotebookInstanceName"]: n["Properties"] for n in found}


def statements(stage: Any) -> list[dict[str, Any]]:
    """Every statement of the notebook role's permissions, with Action and Resource always lists."""
    policies = resources(stage, "AWS::IAM::ManagedPolicy").values()
    (policy,) = policies
    result = []
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        action, resource = statement["Action"], statement["Resource"]
        result.append(
            {
                **statement,
                "Action": action if isinstance(action, list) else [action],
                "Resource": resource if isinstance(resource, list) else [resource],
            }
        )
    return result


def statements_with(stage: Any, action: str) -> list[dict[str, Any]]:
    return [s for s in statements(stage) if action in s["Action"]]


def imported(stage: Any, part: str, value: dict[str, Any]) -> dict[str, str]:
    """The ``Fn::ImportValue`` through which the Workbench stack reads ``value`` from the ``part`` stack."""
    outputs = stage.template(part).to_json()["Outputs"].values()
    names = [o["Export"]["Name"] for o in outputs if o["Value"] == value and "Export" in o]
    assert len(names) == 1, (part, value, names)
    return {"Fn::ImportValue": names[0]}


def key_arn(stage: Any) -> dict[str, str]:
    return imported(stage, "data", {"Fn::GetAtt": ["PlatformKey", "Arn"]})


def bucket_arn(stage: Any, logical_id: str) -> dict[str, str]:
    return imported(stage, "data", {"Fn::GetAtt": [logical_id, "Arn"]})


def text_of(value: Any) -> str:
    """A resource ARN as text, each intrinsic (pseudo parameter, import) replaced by ``<...>``."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(text_of(part) for part in value["Fn::Join"][1])
    if "Ref" in value and value["Ref"].startswith("AWS::"):
        return f"<{value['Ref']}>"
    return f"<{json.dumps(value, sort_keys=True)}>"


def arn(kind: str, name: str) -> str:
    return f"arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:{kind}/{name}"


def render(content: dict[str, Any]) -> tuple[str, list[Any]]:
    """A lifecycle script from the template: text with a TOKEN for each intrinsic, and the intrinsics in order."""
    joined = content["Fn::Base64"]
    if isinstance(joined, str):
        return joined, []
    parts = joined["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else TOKEN for p in parts), [p for p in parts if not isinstance(p, str)]


def exported(script: str, intrinsics: list[Any]) -> dict[str, Any]:
    """The ``export NAME='value'`` lines of a rendered script; a value that is one intrinsic maps to it, a value that
    joins text and several intrinsics maps to ``{"Fn::Join": ["", [parts...]]}``."""
    tokens = iter(intrinsics)
    values: dict[str, Any] = {}
    for line in script.splitlines():
        token_count = line.count(TOKEN)
        match = re.fullmatch(r"export ([A-Z][A-Z0-9_]*)='([^']*)'", line)
        if match is None:
            for _ in range(token_count):
                next(tokens)
            continue
        value: Any = match[2]
        if value == TOKEN:
            value = next(tokens)
        elif token_count:
            texts = value.split(TOKEN)
            parts: list[Any] = [texts[0]]
            for text in texts[1:]:
                parts += [next(tokens), text]
            value = {"Fn::Join": ["", [part for part in parts if part != ""]]}
        values[match[1]] = value
    return values


def api_id(stage: Any) -> str:
    (rest_api,) = [k for k, v in stage.template("serving").to_json()["Resources"].items()
                   if v["Type"] == "AWS::ApiGateway::RestApi"]  # fmt: skip
    return rest_api


def lifecycle_of(stage: Any, name: str) -> dict[str, Any]:
    configs = resources(stage, "AWS::SageMaker::NotebookInstanceLifecycleConfig")
    found: list[dict[str, Any]] = [
        c["Properties"] for c in configs.values() if c["Properties"]["NotebookInstanceLifecycleConfigName"] == name
    ]
    assert len(found) == 1, (name, len(found))
    return found[0]


def scripts_of(stage: Any, name: str) -> dict[str, tuple[str, list[Any]]]:
    config = lifecycle_of(stage, name)
    (on_create,) = config["OnCreate"]
    (on_start,) = config["OnStart"]
    return {"on_create.sh": render(on_create["Content"]), "on_start.sh": render(on_start["Content"])}


# --- notebook instances ----------------------------------------------------------------------------------------------


def test_one_notebook_per_configured_user_named_from_the_config(stage: Any) -> None:
    config = config_of(stage)
    assert config.workbench.users, "the sample stages configure at least one user"
    assert set(notebooks(stage)) == {config.notebook_name(user) for user in config.workbench.users}


def test_notebook_has_no_direct_internet_access_and_no_root_access(stage: Any) -> None:
    for properties in notebooks(stage).values():
        assert properties["DirectInternetAccess"] == "Disabled"
        assert properties["RootAccess"] == "Disabled"


def test_notebook_requires_imdsv2(stage: Any) -> None:
    for properties in notebooks(stage).values():
        assert properties["InstanceMetadataServiceConfiguration"] == {"MinimumInstanceMetadataServiceVersion": "2"}


def test_notebook_volume_is_encrypted_with_the_platform_key(stage: Any) -> None:
    for properties in notebooks(stage).values():
        assert properties["KmsKeyId"] == key_arn(stage)


def test_notebook_runs_in_an_isolated_subnet_with_the_workload_security_group(stage: Any) -> None:
    network = stage.template("network").to_json()["Resources"]
    isolated = [k for k, v in network.items() if v["Type"] == "AWS::EC2::Subnet"]
    subnets = [imported(stage, "network", {"Ref": subnet}) for subnet in isolated]
    workload = next(
        k for k, v in network.items() if v["Type"] == "AWS::EC2::SecurityGroup" and "Notebooks" in str(v["Properties"])
    )
    used = []
    for properties in notebooks(stage).values():
        assert properties["SubnetId"] in subnets
        assert properties["SecurityGroupIds"] == [imported(stage, "network", {"Fn::GetAtt": [workload, "GroupId"]})]
        used.append(properties["SubnetId"])
    # Users are spread over the subnets (AZs) in order, so one zone's outage does not stop everyone.
    assert len(set(map(json.dumps, used))) == min(len(used), len(subnets))


def test_notebook_uses_a_current_amazon_linux_2023_platform(stage: Any) -> None:
    for properties in notebooks(stage).values():
        assert properties["PlatformIdentifier"] == "notebook-al2023-v1"


def test_notebook_instance_type_and_volume_follow_the_user_config(stage: Any) -> None:
    config = config_of(stage)
    found = notebooks(stage)
    for user in config.workbench.users:
        properties = found[config.notebook_name(user)]
        assert properties["InstanceType"] == user.instance_type
        assert properties["VolumeSizeInGB"] == user.volume_size_gb


def test_notebook_runs_as_the_workbench_role_after_its_permissions_exist(stage: Any) -> None:
    (role,) = resources(stage, "AWS::IAM::Role")
    (policy,) = resources(stage, "AWS::IAM::ManagedPolicy")
    for logical_id, instance in resources(stage, "AWS::SageMaker::NotebookInstance").items():
        assert instance["Properties"]["RoleArn"] == {"Fn::GetAtt": [role, "Arn"]}
        # The first start's lifecycle script needs the permissions: the policy must exist before the instance.
        assert policy in instance["DependsOn"], logical_id


def test_removal_policy_follows_the_stage_config(dev: Any, prod: Any) -> None:
    kinds = ("AWS::SageMaker::NotebookInstance", "AWS::SageMaker::NotebookInstanceLifecycleConfig",
             "AWS::CodeArtifact::Domain", "AWS::CodeArtifact::Repository")  # fmt: skip
    for synthesized, expected in ((dev, "Delete"), (prod, "Retain")):
        for kind in kinds:
            found = resources(synthesized, kind)
            assert found, kind
            for resource in found.values():
                assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (expected, expected), kind


def test_no_code_repository_when_no_user_configures_a_git_url(stage: Any) -> None:
    assert all(user.git_repository_url is None for user in config_of(stage).workbench.users)
    assert resources(stage, "AWS::SageMaker::CodeRepository") == {}
    assert all("DefaultCodeRepository" not in properties for properties in notebooks(stage).values())


# --- lifecycle configs ----------------------------------------------------------------------------------------------


def test_each_notebook_has_its_own_lifecycle_config(stage: Any) -> None:
    configs = resources(stage, "AWS::SageMaker::NotebookInstanceLifecycleConfig")
    for name, properties in notebooks(stage).items():
        logical_id, attribute = properties["LifecycleConfigName"]["Fn::GetAtt"]
        assert attribute == "NotebookInstanceLifecycleConfigName"
        assert configs[logical_id]["Properties"]["NotebookInstanceLifecycleConfigName"] == name


@pytest.mark.parametrize("script", ["on_create.sh", "on_start.sh"])
def test_lifecycle_script_is_the_repository_file_with_the_parameters_exported(stage: Any, script: str) -> None:
    source = (LIFECYCLE_DIR / script).read_text(encoding="utf-8").splitlines()
    at = source.index(MARKER)
    count = len(CONTRACT_PARAMETERS)
    for name in notebooks(stage):
        rendered, intrinsics = scripts_of(stage, name)[script]
        lines = rendered.splitlines()
        # The marker line, and only it, becomes one export line per contract parameter.
        assert lines[:at] == source[:at]
        assert all(re.fullmatch(r"export [A-Z][A-Z0-9_]*='[^']*'", line) for line in lines[at : at + count])
        assert lines[at + count :] == source[at + 1 :]
        assert set(exported(rendered, intrinsics)) == CONTRACT_PARAMETERS


def test_lifecycle_parameters_name_the_platform_resources(stage: Any) -> None:
    config = config_of(stage)
    for user in config.workbench.users:
        name = config.notebook_name(user)
        for rendered, intrinsics in scripts_of(stage, name).values():
            values = exported(rendered, intrinsics)
            assert values["AWS_REGION_NAME"] == {"Ref": "AWS::Region"}
            assert values["RAW_BUCKET"] == imported(stage, "data", {"Ref": "RawBucket"})
            assert values["CURATED_BUCKET"] == imported(stage, "data", {"Ref": "CuratedBucket"})
            assert values["ARTIFACTS_BUCKET"] == imported(stage, "data", {"Ref": "ArtifactsBucket"})
            assert values["KMS_KEY_ARN"] == key_arn(stage)
            assert values["GLUE_JOB_NAME"] == imported(stage, "pipeline", {"Ref": glue_job(stage)})
            assert values["PIPELINE_NAME"] == config.training_pipeline_name
            assert values["MODEL_PACKAGE_GROUP_NAME"] == config.model_package_group_name
            # The sessions' stages serve an example model: the endpoint object names itself.
            assert values["ENDPOINT_NAME"] == stage.platform.serving.endpoint.endpoint_name == config.endpoint_name
            # The classify API's URL: its REST API id from the Serving stack, the stage name and the path.
            url = values["INFERENCE_API_URL"]["Fn::Join"][1]
            assert url[0] == "https://" and url[-1] == "/v1/classify"
            assert imported(stage, "serving", {"Ref": api_id(stage)}) in url
            (domain,) = resources(stage, "AWS::CodeArtifact::Domain")
            (repository,) = resources(stage, "AWS::CodeArtifact::Repository")
            assert values["CODEARTIFACT_DOMAIN"] == {"Fn::GetAtt": [domain, "Name"]}
            assert values["CODEARTIFACT_DOMAIN_OWNER"] == {"Fn::GetAtt": [domain, "Owner"]}
            assert values["CODEARTIFACT_REPOSITORY"] == {"Fn::GetAtt": [repository, "Name"]}
            assert values["IDLE_MINUTES"] == str(user.idle_minutes)
            assert values["NOTEBOOK_INSTANCE_NAME"] == name
            assert values["HELPERS_S3_URI"] == {"Fn::Sub": f"s3://{ASSETS_BUCKET}/{helpers_object_key(stage)}"}


@pytest.mark.parametrize("script", ["on_create.sh", "on_start.sh"])
def test_lifecycle_script_fits_sagemakers_limit_with_every_token_at_its_longest(stage: Any, script: str) -> None:
    for name in notebooks(stage):
        rendered, _ = scripts_of(stage, name)[script]
        longest = rendered.replace(TOKEN, "x" * 256)
        assert len(base64.b64encode(longest.encode("utf-8"))) <= 16_384


def test_lifecycle_script_refuses_a_parameter_value_with_a_quote() -> None:
    with pytest.raises(ValueError, match=r"RAW_BUCKET=\"it's\" contains a quote"):
        lifecycle_script("on_start.sh", {"RAW_BUCKET": "it's"})


def test_lifecycle_script_refuses_to_exceed_sagemakers_size_limit() -> None:
    with pytest.raises(ValueError, match=r"on_start\.sh would be up to \d+ base64 characters.*at most 16384"):
        lifecycle_script("on_start.sh", {"RAW_BUCKET": "b" * 13_000})


def test_lifecycle_script_refuses_a_file_without_the_parameter_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "on_start.sh").write_text("#!/bin/bash\nset -euo pipefail\necho no marker\n", encoding="utf-8")
    monkeypatch.setattr(notebook_workbench, "LIFECYCLE_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"on_start\.sh must contain the line '# @PLATFORM_PARAMETERS@' exactly once"):
        lifecycle_script("on_start.sh", {"RAW_BUCKET": "bucket"})


# --- helpers asset --------------------------------------------------------------------------------------------------

ASSETS_BUCKET = "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"


def helpers_object_key(stage: Any) -> str:
    manifest = json.loads((stage.assembly_dir / f"{stage.platform.workbench.artifact_id}.assets.json").read_text())
    (key,) = [
        destination["objectKey"]
        for asset in manifest["files"].values()
        if asset["displayName"] == "Notebooks/LifecycleHelpers"
        for destination in asset["destinations"].values()
    ]
    return str(key)


def test_helpers_ship_as_one_zip_asset_with_the_helper_files_at_its_root(stage: Any) -> None:
    manifest = json.loads((stage.assembly_dir / f"{stage.platform.workbench.artifact_id}.assets.json").read_text())
    (asset,) = [a for a in manifest["files"].values() if a["displayName"] == "Notebooks/LifecycleHelpers"]
    assert asset["source"]["packaging"] == "zip"
    staged = stage.assembly_dir / asset["source"]["path"]
    expected = {p.name for p in (LIFECYCLE_DIR / "helpers").iterdir() if p.name != "__pycache__"}
    assert {p.name for p in staged.iterdir()} == expected
    assert "autostop.py" in expected and helpers_object_key(stage).endswith(".zip")


def test_role_reads_the_helpers_object_and_nothing_else_of_the_assets_bucket(stage: Any) -> None:
    touching_assets = [s for s in statements(stage) if "cdk-hnb659fds-assets" in json.dumps(s["Resource"])]
    assert len(touching_assets) == 1
    (statement,) = touching_assets
    assert statement["Action"] == ["s3:GetObject"]
    (resource,) = statement["Resource"]
    assert text_of(resource).endswith(f"/{helpers_object_key(stage)}")


# --- package repository ---------------------------------------------------------------------------------------------


def test_package_repository_proxies_public_pypi_in_a_domain_encrypted_with_the_platform_key(stage: Any) -> None:
    config = config_of(stage)
    (domain_id, domain), = resources(stage, "AWS::CodeArtifact::Domain").items()  # fmt: skip
    assert domain["Properties"]["DomainName"] == f"{config.prefix}-packages"
    assert domain["Properties"]["EncryptionKey"] == key_arn(stage)
    (repository,) = resources(stage, "AWS::CodeArtifact::Repository").values()
    assert repository["Properties"]["ExternalConnections"] == ["public:pypi"]
    assert repository["Properties"]["DomainName"] == {"Fn::GetAtt": [domain_id, "Name"]}


def test_role_installs_packages_from_the_repository_only(stage: Any) -> None:
    (domain,) = resources(stage, "AWS::CodeArtifact::Domain")
    (repository,) = resources(stage, "AWS::CodeArtifact::Repository")
    (token,) = statements_with(stage, "codeartifact:GetAuthorizationToken")
    assert token["Action"] == ["codeartifact:GetAuthorizationToken"]
    assert token["Resource"] == [{"Fn::GetAtt": [domain, "Arn"]}]
    (read,) = statements_with(stage, "codeartifact:ReadFromRepository")
    assert read["Action"] == ["codeartifact:GetRepositoryEndpoint", "codeartifact:ReadFromRepository"]
    assert read["Resource"] == [{"Fn::GetAtt": [repository, "Arn"]}]
    (bearer,) = statements_with(stage, "sts:GetServiceBearerToken")
    assert bearer["Condition"] == {"StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}}
    assert not [s for s in statements(stage) if any(a.startswith("codeartifact:Publish") for a in s["Action"])]


# --- the notebook role ----------------------------------------------------------------------------------------------


def test_role_is_assumed_by_sagemaker_only(stage: Any) -> None:
    (role,) = resources(stage, "AWS::IAM::Role").values()
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}
    ]


def test_role_has_no_aws_managed_policy_and_no_inline_policy(stage: Any) -> None:
    (role,) = resources(stage, "AWS::IAM::Role").values()
    assert "ManagedPolicyArns" not in role["Properties"] and "Policies" not in role["Properties"]
    assert resources(stage, "AWS::IAM::Policy") == {}
    (policy,) = resources(stage, "AWS::IAM::ManagedPolicy").values()
    assert policy["Properties"]["Roles"] == [{"Ref": next(iter(resources(stage, "AWS::IAM::Role")))}]
    assert "AmazonSageMakerFullAccess" not in json.dumps(stage.template("workbench").to_json())


def object_grants(stage: Any) -> dict[str, set[str]]:
    """``<bucket logical id>/<prefix>`` to the S3 object actions granted on it."""
    found: dict[str, set[str]] = {}
    buckets = {json.dumps(bucket_arn(stage, b)): b for b in ("RawBucket", "CuratedBucket", "ArtifactsBucket")}
    for statement in statements(stage):
        for resource in statement["Resource"]:
            if isinstance(resource, dict) and "Fn::Join" in resource:
                first, *rest = resource["Fn::Join"][1]
                if json.dumps(first) in buckets:
                    key = buckets[json.dumps(first)] + "".join(rest)
                    found.setdefault(key, set()).update(a for a in statement["Action"] if a.startswith("s3:"))
    return found


READ_ACTIONS = {"s3:GetObject"}
WRITE_ACTIONS = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}


def test_role_reads_and_writes_only_the_notebook_prefixes_of_the_buckets(stage: Any) -> None:
    grants = object_grants(stage)
    assert set(grants) == {
        "RawBucket/notebooks/*", "RawBucket/datasets/*", "CuratedBucket/notebooks/*", "CuratedBucket/datasets/*",
        "ArtifactsBucket/notebooks/*", "ArtifactsBucket/evaluation/*",
    }  # fmt: skip
    for writable in ("RawBucket/notebooks/*", "RawBucket/datasets/*", "ArtifactsBucket/notebooks/*"):
        assert grants[writable] == READ_ACTIONS | WRITE_ACTIONS, writable
    for read_only in ("CuratedBucket/notebooks/*", "CuratedBucket/datasets/*", "ArtifactsBucket/evaluation/*"):
        assert grants[read_only] == READ_ACTIONS, read_only


def test_role_reads_the_training_pipelines_evaluation_reports_without_listing_them(stage: Any) -> None:
    """The metrics a registered package points to (02_train_and_register.ipynb shows them before approval)."""
    (statement,) = [s for s in statements(stage) if any("/evaluation/" in text_of(r) for r in s["Resource"])]
    assert statement["Action"] == ["s3:GetObject"] and "Condition" not in statement
    evaluation = [r for r in statement["Resource"] if "/evaluation/" in text_of(r)]
    assert evaluation == [{"Fn::Join": ["", [bucket_arn(stage, "ArtifactsBucket"), "/evaluation/*"]]}]
    listing = [s for s in bucket_level_statements(stage)["ArtifactsBucket"] if "s3:ListBucket" in s["Action"]]
    assert [s["Condition"] for s in listing] == [{"StringLike": {"s3:prefix": ["notebooks/*"]}}]


def bucket_level_statements(stage: Any) -> dict[str, list[dict[str, Any]]]:
    """Bucket logical id to the statements whose resources include the bucket itself (not its objects)."""
    buckets = {json.dumps(bucket_arn(stage, b)): b for b in ("RawBucket", "CuratedBucket", "ArtifactsBucket")}
    found: dict[str, list[dict[str, Any]]] = {}
    for statement in statements(stage):
        for resource in statement["Resource"]:
            if json.dumps(resource) in buckets:
                found.setdefault(buckets[json.dumps(resource)], []).append(statement)
    return found


def test_role_lists_the_buckets_only_under_the_notebook_prefixes(stage: Any) -> None:
    # A bucket-wide s3:List* (what CDK's grant_read writes) would make any prefix condition meaningless.
    expected = {"RawBucket": {"notebooks/*", "datasets/*"}, "CuratedBucket": {"notebooks/*", "datasets/*"},
                "ArtifactsBucket": {"notebooks/*"}}  # fmt: skip
    found = bucket_level_statements(stage)
    assert set(found) == set(expected)
    for bucket, bucket_statements in found.items():
        listing = [s for s in bucket_statements if "s3:ListBucket" in s["Action"]]
        assert [s["Action"] for s in listing] == [["s3:ListBucket"]], bucket
        assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": sorted(expected[bucket])}}, bucket
        others = [s for s in bucket_statements if s not in listing]
        assert all(s["Action"] == ["s3:GetBucketLocation"] and "Condition" not in s for s in others), others


def test_role_uses_the_platform_key_and_no_other(stage: Any) -> None:
    kms_statements = [s for s in statements(stage) if any(a.startswith("kms:") for a in s["Action"])]
    assert len(kms_statements) == 1
    assert kms_statements[0]["Resource"] == [key_arn(stage)]
    assert "kms:CreateGrant" not in kms_statements[0]["Action"]


def glue_job(stage: Any) -> str:
    jobs = stage.template("pipeline").to_json()["Resources"]
    (job,) = [k for k, v in jobs.items() if v["Type"] == "AWS::Glue::Job"]
    return str(job)


def test_role_starts_and_follows_runs_of_the_data_preparation_job_only(stage: Any) -> None:
    (statement,) = statements_with(stage, "glue:StartJobRun")
    assert {"glue:StartJobRun", "glue:GetJobRun"} <= set(statement["Action"])
    (resource,) = statement["Resource"]
    job = imported(stage, "pipeline", {"Ref": glue_job(stage)})
    assert text_of(resource) == f"arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:job/<{json.dumps(job)}>"


def test_role_starts_and_describes_executions_of_the_two_platform_pipelines_only(stage: Any) -> None:
    config = config_of(stage)
    pipelines = sorted((config.training_pipeline_name, config.batch_inference_pipeline_name))
    (start,) = statements_with(stage, "sagemaker:StartPipelineExecution")
    assert sorted(text_of(r) for r in start["Resource"]) == [arn("pipeline", p) for p in pipelines]
    (describe,) = statements_with(stage, "sagemaker:DescribePipelineExecution")
    assert sorted(text_of(r) for r in describe["Resource"]) == [arn("pipeline", f"{p}/execution/*") for p in pipelines]


def test_role_reads_and_approves_the_model_packages_of_the_platform_group_only(stage: Any) -> None:
    group = config_of(stage).model_package_group_name
    (group_statement,) = statements_with(stage, "sagemaker:DescribeModelPackageGroup")
    assert [text_of(r) for r in group_statement["Resource"]] == [arn("model-package-group", group)]
    (packages,) = statements_with(stage, "sagemaker:DescribeModelPackage")
    assert [text_of(r) for r in packages["Resource"]] == [arn("model-package", f"{group}/*")]
    (approve,) = statements_with(stage, "sagemaker:UpdateModelPackage")
    assert [text_of(r) for r in approve["Resource"]] == [arn("model-package", f"{group}/*")]
    (listing,) = statements_with(stage, "sagemaker:ListModelPackages")
    assert listing["Action"] == ["sagemaker:ListModelPackages"]
    assert not [s for s in statements(stage) if "sagemaker:DeleteModelPackage" in s["Action"]]


def test_role_invokes_the_platform_endpoint_only(stage: Any) -> None:
    # Granted by the endpoint (InferenceEndpoint.grant_invoke), on the ARN the Serving stack exports.
    (statement,) = statements_with(stage, "sagemaker:InvokeEndpoint")
    assert statement["Action"] == ["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"]
    (endpoint,) = stage.template("serving").find_resources("AWS::SageMaker::Endpoint")
    assert statement["Resource"] == [imported(stage, "serving", {"Fn::GetAtt": [endpoint, "EndpointArn"]})]


def test_role_may_not_call_the_api_it_has_no_route_to(stage: Any) -> None:
    # The public regional API is out of the isolated VPC's reach; notebooks invoke the endpoint directly.
    assert statements_with(stage, "execute-api:Invoke") == []


def test_role_stops_its_own_notebook_instances_only(stage: Any) -> None:
    (statement,) = statements_with(stage, "sagemaker:StopNotebookInstance")
    assert statement["Action"] == ["sagemaker:StopNotebookInstance"]
    assert sorted(text_of(r) for r in statement["Resource"]) == sorted(
        arn("notebook-instance", name) for name in notebooks(stage)
    )
    for action in ("sagemaker:StartNotebookInstance", "sagemaker:DeleteNotebookInstance"):
        assert statements_with(stage, action) == []


def test_role_writes_only_its_instances_log_streams(stage: Any) -> None:
    (streams,) = statements_with(stage, "logs:PutLogEvents")
    group = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/NotebookInstances"
    assert sorted(text_of(r) for r in streams["Resource"]) == sorted(
        f"{group}:log-stream:{name}/*" for name in notebooks(stage)
    )
    (log_group,) = statements_with(stage, "logs:CreateLogGroup")
    assert [text_of(r) for r in log_group["Resource"]] == [f"{group}:*"]


@pytest.mark.parametrize(
    ("action", "instance_type_setting"),
    [("sagemaker:CreateTrainingJob", "instance_type"), ("sagemaker:CreateProcessingJob", "processing_instance_type")],
)
def test_job_creation_requires_the_vpc_network_isolation_the_key_and_configured_instance_types(
    stage: Any, action: str, instance_type_setting: str
) -> None:
    config = config_of(stage)
    network = stage.template("network").to_json()["Resources"]
    subnets = [imported(stage, "network", {"Ref": k}) for k, v in network.items() if v["Type"] == "AWS::EC2::Subnet"]
    found = statements_with(stage, action)
    assert found
    allowed_types = []
    for statement in found:
        assert statement["Action"] == [action]
        kind = "training-job" if "Training" in action else "processing-job"
        assert [text_of(r) for r in statement["Resource"]] == [arn(kind, f"{config.prefix}-*")]
        condition = statement["Condition"]
        lists = condition["ForAllValues:StringEquals"]
        assert sorted(map(json.dumps, lists["sagemaker:VpcSubnets"])) == sorted(map(json.dumps, subnets))
        (security_group,) = lists["sagemaker:VpcSecurityGroupIds"]
        assert "WorkloadSecurityGroup" in security_group["Fn::ImportValue"]
        assert condition["Bool"] == {"sagemaker:NetworkIsolation": "true"}
        assert condition["StringEquals"]["sagemaker:OutputKmsKey"] == key_arn(stage)
        # ForAllValues is true when a key is absent: the Null condition makes each list key mandatory.
        assert {k: condition["Null"][k] for k in ("sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds",
                                                   "sagemaker:InstanceTypes")} == dict.fromkeys(
            ("sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds", "sagemaker:InstanceTypes"), "false"
        )  # fmt: skip
        assert set(condition) == {"Null", "ForAllValues:StringEquals", "Bool", "StringEquals"}
        allowed_types += lists["sagemaker:InstanceTypes"]
    assert sorted(allowed_types) == [getattr(config.training, instance_type_setting)]


def volume_key_rule(statement: dict[str, Any]) -> tuple[Any, Any]:
    """What a job statement asks of the volume key: (StringEquals value, Null value)."""
    condition = statement["Condition"]
    return condition["StringEquals"].get("sagemaker:VolumeKmsKey"), condition["Null"].get("sagemaker:VolumeKmsKey")


@pytest.mark.parametrize("action", ["sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob"])
def test_job_volume_key_follows_the_instance_types_storage(stage: Any, action: str) -> None:
    # SageMaker rejects VolumeKmsKeyId for types with local NVMe storage: requiring it there denies every such job.
    for statement in statements_with(stage, action):
        instance_types = statement["Condition"]["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"]
        (allowed,) = {volume_kms_key_allowed(t) for t in instance_types}
        assert volume_key_rule(statement) == ((key_arn(stage), None) if allowed else (None, "true")), instance_types


def test_gpu_training_jobs_are_not_required_to_send_a_volume_key(stage: Any) -> None:
    # The configured training types (ml.g5.*) have local NVMe storage; the processing type (ml.m5.*) an EBS volume.
    (training,) = statements_with(stage, "sagemaker:CreateTrainingJob")
    assert volume_key_rule(training) == (None, "true")
    (processing,) = statements_with(stage, "sagemaker:CreateProcessingJob")
    assert volume_key_rule(processing) == (key_arn(stage), None)


def test_job_statements_split_mixed_instance_types_by_storage() -> None:
    stack = cdk.Stack(cdk.App(), "MixedTypesCase")
    workbench = small_workbench(stack, {"nlp-test-ann": NotebookUserConfig(name="ann")})
    workbench.allow_sagemaker_jobs(
        job_name_prefix="nlp-test",
        subnets=[ec2.Subnet.from_subnet_attributes(stack, "JobSubnet", subnet_id="subnet-0a1b2c3d")],
        security_group=ec2.SecurityGroup.from_security_group_id(stack, "JobGroup", "sg-0a1b2c3d"),
        key=kms.Key(stack, "JobKey"),
        training_instance_types=["ml.g5.xlarge", "ml.m5.xlarge", "ml.p4d.24xlarge", "ml.c5.2xlarge"],
        processing_instance_types=["ml.m5.xlarge"],
        execution_role_name_prefix="nlp-test-sagemaker-",
    )
    (policy,) = Template.from_stack(stack).find_resources("AWS::IAM::ManagedPolicy").values()
    training = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "sagemaker:CreateTrainingJob"
    ]
    by_types = {
        tuple(s["Condition"]["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"]): volume_key_rule(s)[1]
        for s in training
    }
    assert by_types == {("ml.c5.2xlarge", "ml.m5.xlarge"): None, ("ml.g5.xlarge", "ml.p4d.24xlarge"): "true"}


def test_role_reads_the_logs_of_its_own_jobs_only(stage: Any) -> None:
    prefix = config_of(stage).prefix
    group = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/{}Jobs"
    (events,) = statements_with(stage, "logs:GetLogEvents")
    assert events["Action"] == ["logs:GetLogEvents"]
    assert sorted(text_of(r) for r in events["Resource"]) == sorted(
        f"{group.format(kind)}:log-stream:{prefix}-*" for kind in ("Processing", "Training")
    )
    (streams,) = [
        s for s in statements_with(stage, "logs:DescribeLogStreams") if "logs:CreateLogGroup" not in s["Action"]
    ]
    assert sorted(text_of(r) for r in streams["Resource"]) == sorted(
        f"{group.format(kind)}:*" for kind in ("Processing", "Training")
    )


def test_pass_role_is_limited_to_platform_execution_roles_passed_to_sagemaker(stage: Any) -> None:
    (statement,) = statements_with(stage, "iam:PassRole")
    assert statement["Action"] == ["iam:PassRole"]
    assert [text_of(r) for r in statement["Resource"]] == [
        f"arn:<AWS::Partition>:iam::<AWS::AccountId>:role/{config_of(stage).prefix}-sagemaker-*"
    ]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    # The notebook role's own generated name must not fall under the pattern (no passing itself to a job).
    assert not stage.platform.workbench.stack_name.startswith(f"{config_of(stage).prefix}-sagemaker-")


# Every wildcard in the role's policy, each one reviewed: CDK grant actions, prefixes that a grant scopes, resource ids
# generated at run time, and actions that have no resource type.
ALLOWED_WILDCARD_ACTIONS = {"kms:GenerateDataKey*", "kms:ReEncrypt*"}
RESOURCE_STAR_ACTIONS = {"sts:GetServiceBearerToken", "sagemaker:ListModelPackages"}


def test_every_wildcard_in_the_role_is_one_a_grant_could_not_avoid(stage: Any) -> None:
    config = config_of(stage)
    allowed_resource_wildcards = {
        "RawBucket/notebooks/*", "RawBucket/datasets/*", "CuratedBucket/notebooks/*", "CuratedBucket/datasets/*",
        "ArtifactsBucket/notebooks/*", "ArtifactsBucket/evaluation/*",
        arn("pipeline", f"{config.training_pipeline_name}/execution/*"),
        arn("pipeline", f"{config.batch_inference_pipeline_name}/execution/*"),
        arn("model-package", f"{config.model_package_group_name}/*"),
        arn("training-job", f"{config.prefix}-*"),
        arn("processing-job", f"{config.prefix}-*"),
        f"arn:<AWS::Partition>:iam::<AWS::AccountId>:role/{config.prefix}-sagemaker-*",
        "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/NotebookInstances:*",
        *(
            f"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/{kind}Jobs{suffix}"
            for kind in ("Training", "Processing")
            for suffix in (":*", f":log-stream:{config.prefix}-*")
        ),
        *(
            "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/NotebookInstances"
            f":log-stream:{name}/*"
            for name in notebooks(stage)
        ),
    }  # fmt: skip
    buckets = {json.dumps(bucket_arn(stage, b)): b for b in ("RawBucket", "CuratedBucket", "ArtifactsBucket")}
    for statement in statements(stage):
        for action in statement["Action"]:
            assert not action.endswith(":*") and action != "*", action
            if "*" in action:
                assert action in ALLOWED_WILDCARD_ACTIONS, action
        for resource in statement["Resource"]:
            if resource == "*":
                assert set(statement["Action"]) <= RESOURCE_STAR_ACTIONS, statement["Action"]
                continue
            text = text_of(resource)
            for exported_arn, name in buckets.items():
                text = text.replace(f"<{json.dumps(json.loads(exported_arn), sort_keys=True)}>", name)
            if "*" in text:
                assert text in allowed_resource_wildcards, text


def test_acknowledged_wildcards_of_the_role_carry_reasons(stage: Any) -> None:
    (policy,) = resources(stage, "AWS::IAM::ManagedPolicy").values()
    acknowledged = policy["Metadata"]["cdk_nag"]["rules_to_suppress"]
    assert all(rule["id"].startswith("AwsSolutions-IAM5[") and len(rule["reason"]) >= 30 for rule in acknowledged)
    assert {"AwsSolutions-IAM5[Resource::*]", "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]"} <= {
        rule["id"] for rule in acknowledged
    }


# --- a code repository, in a small stack of its own (the sample stages configure no Git URL) -------------------------


def small_workbench(stack: cdk.Stack, notebooks: dict[str, NotebookUserConfig]) -> NotebookWorkbench:
    key = kms.Key(stack, "Key")
    return NotebookWorkbench(
        stack,
        "Notebooks",
        notebooks=notebooks,
        platform_identifier="notebook-al2023-v1",
        subnets=[
            ec2.Subnet.from_subnet_attributes(stack, "Subnet", subnet_id="subnet-0a1b2c3d", availability_zone="a")
        ],
        security_group=ec2.SecurityGroup.from_security_group_id(stack, "Workload", "sg-0a1b2c3d"),
        key=key,
        raw_bucket=s3.Bucket(stack, "Raw"),
        curated_bucket=s3.Bucket(stack, "Curated"),
        artifacts_bucket=s3.Bucket(stack, "Artifacts"),
        package_repository=PackageRepository(
            stack, "Packages", domain_name="nlp-test-packages", key=key, removal_policy=cdk.RemovalPolicy.DESTROY
        ),
        parameters={"GLUE_JOB_NAME": "job", "PIPELINE_NAME": "p", "MODEL_PACKAGE_GROUP_NAME": "g", "ENDPOINT_NAME": ""},
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )


def test_code_repository_is_created_and_attached_when_a_user_configures_a_git_url() -> None:
    stack = cdk.Stack(cdk.App(), "CodeRepositoryCase")
    url = "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/nlp-experiments"
    small_workbench(
        stack,
        {
            "nlp-test-ann": NotebookUserConfig(name="ann", git_repository_url=url),
            "nlp-test-ben": NotebookUserConfig(name="ben"),
        },
    )
    template = Template.from_stack(stack)
    repositories = template.find_resources("AWS::SageMaker::CodeRepository")
    (repository_id, repository), = repositories.items()  # fmt: skip
    assert repository["Properties"] == {"CodeRepositoryName": "nlp-test-ann", "GitConfig": {"RepositoryUrl": url}}
    instances = {
        v["Properties"]["NotebookInstanceName"]: v["Properties"]
        for v in template.find_resources("AWS::SageMaker::NotebookInstance").values()
    }
    assert instances["nlp-test-ann"]["DefaultCodeRepository"] == {"Fn::GetAtt": [repository_id, "CodeRepositoryName"]}
    assert "DefaultCodeRepository" not in instances["nlp-test-ben"]


def test_workbench_refuses_an_empty_notebook_list() -> None:
    with pytest.raises(ValueError, match=r"notebooks is empty; a stage without workbench.users needs no"):
        small_workbench(cdk.Stack(cdk.App(), "EmptyCase"), {})
