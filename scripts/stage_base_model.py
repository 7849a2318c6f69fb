"""Stage a Hugging Face base model in the artifacts bucket, where the training job's ``pretrained`` channel reads it.

The training jobs have no internet (network isolation, isolated subnets), so the model they fine-tune must already be
in ``s3://<artifacts bucket>/pretrained/<name>/``: the files ``from_pretrained`` loads (config, tokenizer, safetensors
weights), side by side. This script puts them there from a Hugging Face Hub id (on a machine with internet) or from a
local folder (one written by ``save_pretrained``, or a downloaded snapshot).

    python scripts/stage_base_model.py --source sentence-transformers/all-MiniLM-L6-v2            # dev, default name
    python scripts/stage_base_model.py --source ./my-bert --name my-bert --stage prod --dry-run
    python scripts/stage_base_model.py --source ./my-bert --bucket <artifacts bucket> --region eu-west-1

- ``--name`` defaults to the stage's ``training.base_model_name``, which is also the default of the pipeline's
  ``BaseModel`` parameter; another name needs ``BaseModel=<name>`` when starting the pipeline.
- ``--bucket`` defaults to the ``ArtifactsBucketName`` output of the stage's Data stack (``<project>-<stage>-data``,
  read with CloudFormation DescribeStacks), and ``--kms-key-id`` to its ``KeyArn`` output (the platform key). With
  ``--bucket`` alone, the key is the bucket's default encryption key.
- Only files a ``from_pretrained`` load needs are staged; pickle weights (``pytorch_model.bin``) are refused, since
  loading pickle runs code. A local folder is checked before anything is uploaded, a Hub model before it is downloaded.
- Objects are written with SSE-KMS under the platform key and carry their SHA-256 as ``x-amz-meta-sha256``. A re-run
  skips files whose size and SHA-256 match (an SSE-KMS object's ETag is not its MD5, so the ETag cannot tell).
- ``_STAGED.json`` (file list, sizes, SHA-256, source) is written after the last file, and deleted first when files
  change, so its presence means the folder is complete. ``--prune`` deletes other objects under the prefix (the
  channel would download them too). ``--dry-run`` prints the plan and writes nothing.

Needs credentials allowed to call cloudformation:DescribeStacks on the Data stack (unless ``--bucket`` is given),
s3:ListBucket on the bucket, s3:GetObject/PutObject (and DeleteObject) on ``pretrained/<name>/*`` and
kms:GenerateDataKey on the key. ``huggingface_hub`` is needed only for a Hub id.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from config import PRETRAINED_PREFIX, ConfigError, PlatformConfig, load_config  # noqa: E402
from config.settings import check_base_model_name  # noqa: E402

MANIFEST_NAME = "_STAGED.json"
SHA256_METADATA = "sha256"
# The Data stack's outputs (stacks/data_stack.py) that name the bucket and the key.
BUCKET_OUTPUT = "ArtifactsBucketName"
KEY_OUTPUT = "KeyArn"

CONFIG_FILES = ("config.json", "generation_config.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
)
SENTENCEPIECE = re.compile(r"[A-Za-z0-9._-]+\.model")  # spiece.model, tokenizer.model, sentencepiece.bpe.model
SINGLE_WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
WEIGHT_SHARD = re.compile(r"model-\d+-of-\d+\.safetensors")
PICKLE_WEIGHTS = re.compile(r".+\.(bin|pt|pth|ckpt|pkl|pickle)")
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
MISSING_TOKENIZER = "tokenizer files (tokenizer.json, vocab.txt, vocab.json + merges.txt or a sentencepiece *.model)"
READ_CHUNK = 8 * 1024 * 1024


class StageError(Exception):
    """Staging cannot go on. The message is one line naming the bad value and how to fix it."""


@dataclass(frozen=True)
class ModelFile:
    """One file of the model as it will be staged."""

    name: str
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class Target:
    """Where the model goes: the bucket, the key prefix ``pretrained/<name>/`` and the KMS key to encrypt with."""

    bucket: str
    prefix: str
    kms_key_id: str

    def uri(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"


def staged_prefix(name: str) -> str:
    """The key prefix of a base model in the artifacts bucket: what the training job's ``pretrained`` channel reads."""
    return f"{PRETRAINED_PREFIX}/{name}/"


# --- Which files a from_pretrained load needs -------------------------------------------------------------------------


def select_model_files(names: Iterable[str], where: str) -> list[str]:
    """The top-level files to stage, in a stable order; raises naming what is missing or refused."""
    top = {name for name in names if "/" not in name}
    if "config.json" not in top:
        raise StageError(f"{where} is not a transformers model: config.json is missing (write it with save_pretrained)")
    tokenizer = {name for name in top if name in TOKENIZER_FILES or SENTENCEPIECE.fullmatch(name)}
    loadable_tokenizer = (
        "tokenizer.json" in tokenizer
        or "vocab.txt" in tokenizer
        or {"vocab.json", "merges.txt"} <= tokenizer
        or any(SENTENCEPIECE.fullmatch(name) for name in tokenizer)
    )
    if not loadable_tokenizer:
        raise StageError(
            f"{where} has no {MISSING_TOKENIZER}: save the tokenizer into it with tokenizer.save_pretrained(<folder>)"
        )
    if WEIGHTS_INDEX in top:
        weights = {WEIGHTS_INDEX} | {name for name in top if WEIGHT_SHARD.fullmatch(name)}
    elif SINGLE_WEIGHTS in top:
        weights = {SINGLE_WEIGHTS}
    else:
        pickles = sorted(name for name in top if PICKLE_WEIGHTS.fullmatch(name))
        if pickles:
            raise StageError(
                f"{where} has only pickle weights ({', '.join(pickles)}), which can run code when loaded: convert "
                "them with AutoModel.from_pretrained(<model>).save_pretrained(<folder>) (writes model.safetensors) "
                "and stage that folder"
            )
        raise StageError(
            f"{where} has no weights: {SINGLE_WEIGHTS} (or {WEIGHTS_INDEX} and its shards) is missing "
            "(write them with model.save_pretrained)"
        )
    config = {name for name in top if name in CONFIG_FILES}
    return sorted(config | tokenizer | weights)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise StageError(f"{path} is not valid JSON ({error}): re-save the model with save_pretrained") from error


def _check_safetensors(path: Path) -> None:
    """The file starts with a safetensors header: an 8-byte length, then that many bytes of JSON."""
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > size - 8:
                raise ValueError(f"header of {length} bytes in a {size}-byte file")
            header = json.loads(handle.read(length))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (OSError, struct.error, ValueError) as error:
        raise StageError(
            f"{path} is not a safetensors file ({error}): it may be truncated; download or save it again"
        ) from error


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def inspect_local_model(folder: Path, where: str | None = None) -> tuple[list[ModelFile], list[str]]:
    """Check that ``folder`` holds a loadable model; return its files to stage and the names left out."""
    where = where or f"--source {folder}"
    if not folder.exists():
        raise StageError(f"{where}: no such folder: pass a folder written by save_pretrained, or a Hub id owner/name")
    if not folder.is_dir():
        raise StageError(f"{where} is a file, not a folder: pass the folder that holds config.json and the weights")
    entries = sorted(path.name + ("/" if path.is_dir() else "") for path in folder.iterdir())
    names = select_model_files([entry for entry in entries if not entry.endswith("/")], where)
    config = _read_json(folder / "config.json")
    if not isinstance(config, dict) or "model_type" not in config:
        raise StageError(
            f"{folder / 'config.json'} has no 'model_type', so AutoConfig cannot load it: re-save the model with "
            "save_pretrained"
        )
    for name in names:
        if name.endswith(".json"):
            _read_json(folder / name)
    if WEIGHTS_INDEX in names:
        index = _read_json(folder / WEIGHTS_INDEX)
        shards = sorted(set(index.get("weight_map", {}).values())) if isinstance(index, dict) else []
        missing = [shard for shard in shards if shard not in names]
        if not shards or missing:
            raise StageError(
                f"{folder / WEIGHTS_INDEX} names shards that are missing ({', '.join(missing) or 'none listed'}): "
                "copy every model-*-of-*.safetensors beside it"
            )
        names = [name for name in names if not WEIGHT_SHARD.fullmatch(name) or name in shards]
    for name in names:
        if name.endswith(".safetensors"):
            _check_safetensors(folder / name)
    files = [
        ModelFile(name=name, path=folder / name, size=(folder / name).stat().st_size, sha256=sha256_of(folder / name))
        for name in names
    ]
    left_out = [entry for entry in entries if entry not in names]
    return files, left_out


# --- The Hugging Face Hub ---------------------------------------------------------------------------------------------


class ModelHub(Protocol):
    """What the script needs from the Hub: the files of a revision, and a download of some of them."""

    def list_files(self, repo_id: str, revision: str) -> tuple[str, dict[str, int]]:
        """The commit ``revision`` resolves to, and every file of the repository with its size."""
        ...

    def download(self, repo_id: str, commit: str, names: Sequence[str], destination: Path) -> None:
        """Download ``names`` of ``commit`` into ``destination`` (showing progress)."""
        ...


class HuggingFaceHub:
    """The real Hub through ``huggingface_hub``; ``endpoint`` overrides the Hub's address (a mirror)."""

    def __init__(self, endpoint: str | None = None) -> None:
        self.endpoint = endpoint

    def list_files(self, repo_id: str, revision: str) -> tuple[str, dict[str, int]]:
        hub = self._module(repo_id)
        try:
            info = hub.HfApi(endpoint=self.endpoint).model_info(repo_id, revision=revision, files_metadata=True)
        except Exception as error:
            raise self._error(error, repo_id, revision) from error
        sizes = {sibling.rfilename: int(sibling.size or 0) for sibling in info.siblings or ()}
        return str(info.sha), sizes

    def download(self, repo_id: str, commit: str, names: Sequence[str], destination: Path) -> None:
        hub = self._module(repo_id)
        try:
            hub.snapshot_download(
                repo_id, revision=commit, allow_patterns=list(names), local_dir=destination, endpoint=self.endpoint
            )
        except Exception as error:
            raise self._error(error, repo_id, commit) from error

    @staticmethod
    def _module(repo_id: str) -> Any:
        try:
            import huggingface_hub
        except ImportError as error:
            raise StageError(
                f"--source {repo_id} is a Hub id but huggingface_hub is not installed: pip install huggingface_hub, "
                "or download the model elsewhere and pass --source <local folder>"
            ) from error
        return huggingface_hub

    @staticmethod
    def _error(error: Exception, repo_id: str, revision: str) -> Exception:
        from huggingface_hub import errors

        if isinstance(error, errors.RevisionNotFoundError):
            return StageError(
                f"--revision {revision}: no such branch, tag or commit in {repo_id} on the Hugging Face Hub: "
                "pass an existing one"
            )
        if isinstance(error, errors.GatedRepoError):
            return StageError(
                f"--source {repo_id} is gated on the Hugging Face Hub: accept its terms on huggingface.co and log in "
                "(hf auth login), or pass --source <local folder>"
            )
        if isinstance(error, errors.RepositoryNotFoundError):
            return StageError(
                f"--source {repo_id}: no such model on the Hugging Face Hub and no local folder of that name: check "
                "the id (owner/name), log in for a private model (hf auth login), or pass --source <local folder>"
            )
        if isinstance(error, errors.HfHubHTTPError):
            return StageError(
                f"the Hugging Face Hub refused {repo_id}@{revision} ({_one_line(error)}): try again later"
            )
        if isinstance(error, StageError):
            return error
        return StageError(
            f"cannot reach the Hugging Face Hub for {repo_id} ({type(error).__name__}: {_one_line(error)}): without "
            "internet, download the model on another machine (hf download <id> --local-dir <folder>) and pass "
            "--source <folder>"
        )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] or type(error).__name__


# --- AWS: where to stage, what is there, uploads ----------------------------------------------------------------------


def _aws_error(error: Exception, action: str, target_bucket: str, kms_key_id: str | None = None) -> StageError:
    """One line for an AWS error, naming the bucket (and key) and what to fix."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(error, NoCredentialsError):
        return StageError(f"{action}: no AWS credentials found: run aws configure or set AWS_PROFILE")
    if isinstance(error, NoRegionError):
        return StageError(f"{action}: no AWS region: pass --region or set AWS_REGION")
    if not isinstance(error, ClientError):
        return StageError(f"{action} failed ({type(error).__name__}: {_one_line(error)})")
    code = str(error.response.get("Error", {}).get("Code", ""))
    message = str(error.response.get("Error", {}).get("Message", "")) or code
    if code in ("NoSuchBucket", "404", "NotFound") and "bucket" in action:
        return StageError(
            f"bucket {target_bucket} does not exist (or is in another region): deploy the Data stack or pass the "
            "artifacts bucket's name with --bucket and its region with --region"
        )
    if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled") or "KMS" in code:
        key = f" and kms:GenerateDataKey on {kms_key_id}" if kms_key_id else ""
        return StageError(
            f"{action}: access denied on bucket {target_bucket} ({message}): use credentials allowed s3:ListBucket, "
            f"s3:GetObject, s3:PutObject and s3:DeleteObject on pretrained/*{key}"
        )
    return StageError(f"{action} on bucket {target_bucket} failed: {code}: {message}")


def stack_outputs(cloudformation: Any, stack_name: str, stage: str, region: str | None) -> dict[str, str]:
    """The outputs of a deployed stack, by output key."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        if "does not exist" in message:
            raise StageError(
                f"stack {stack_name} not found in region {region or '<default>'}: deploy it (cdk deploy {stack_name} "
                f"-c stage={stage}), pick its region with --region, or pass --bucket"
            ) from error
        raise StageError(
            f"cannot read the outputs of stack {stack_name} ({message}): allow cloudformation:DescribeStacks, or "
            "pass --bucket and --kms-key-id"
        ) from error
    except BotoCoreError as error:
        raise _aws_error(error, f"reading stack {stack_name}", "<unknown>") from error
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def resolve_target(
    args: argparse.Namespace, config: PlatformConfig, name: str, session: Any, s3: Any
) -> tuple[Target, str]:
    """The bucket and key to stage into, and where they came from (for the log)."""
    from botocore.exceptions import BotoCoreError, ClientError

    prefix = staged_prefix(name)
    if args.bucket is None:
        stack_name = config.stack_name("data")
        outputs = stack_outputs(session.client("cloudformation"), stack_name, config.stage, session.region_name)
        missing = [key for key in (BUCKET_OUTPUT, KEY_OUTPUT) if key not in outputs]
        if missing:
            raise StageError(
                f"stack {stack_name} has no output {', '.join(missing)}: deploy the current Data stack, or pass "
                "--bucket and --kms-key-id"
            )
        check_bucket(s3, outputs[BUCKET_OUTPUT])
        key_id = args.kms_key_id or outputs[KEY_OUTPUT]
        return Target(outputs[BUCKET_OUTPUT], prefix, key_id), f"outputs of stack {stack_name}"
    check_bucket(s3, args.bucket)
    if args.kms_key_id:
        return Target(args.bucket, prefix, args.kms_key_id), "--bucket and --kms-key-id"
    try:
        rules = s3.get_bucket_encryption(Bucket=args.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except (ClientError, BotoCoreError) as error:
        raise _aws_error(error, "reading the default encryption of bucket", args.bucket) from error
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
    if default.get("SSEAlgorithm") != "aws:kms" or not default.get("KMSMasterKeyID"):
        raise StageError(
            f"bucket {args.bucket} has no default KMS key (default encryption {default.get('SSEAlgorithm')!r}): "
            "pass the platform key with --kms-key-id (the Data stack's KeyArn output)"
        )
    return Target(args.bucket, prefix, str(default["KMSMasterKeyID"])), "--bucket and its default encryption key"


def check_bucket(s3: Any, bucket: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as error:
        raise _aws_error(error, "checking bucket", bucket) from error


def existing_objects(s3: Any, target: Target) -> dict[str, int]:
    """Key to size of every object under the target prefix."""
    from botocore.exceptions import BotoCoreError, ClientError

    found: dict[str, int] = {}
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=target.prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = int(item["Size"])
    except (ClientError, BotoCoreError) as error:
        raise _aws_error(error, f"listing {target.uri()} in bucket", target.bucket) from error
    return found


def stored_sha256(s3: Any, target: Target, key: str) -> str | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        metadata = s3.head_object(Bucket=target.bucket, Key=key).get("Metadata", {})
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            return None  # deleted since the listing: upload it again
        raise _aws_error(error, f"reading s3://{target.bucket}/{key} in bucket", target.bucket) from error
    except BotoCoreError as error:
        raise _aws_error(error, f"reading s3://{target.bucket}/{key} in bucket", target.bucket) from error
    value = metadata.get(SHA256_METADATA)
    return str(value) if value else None


def unchanged(s3: Any, target: Target, existing: dict[str, int], name: str, size: int, sha256: str) -> bool:
    """True when the object already holds these bytes: same size, and the SHA-256 the last upload recorded."""
    key = target.prefix + name
    return existing.get(key) == size and stored_sha256(s3, target, key) == sha256


def put_arguments(target: Target, sha256: str) -> dict[str, Any]:
    """SSE-KMS under the platform key, S3's own SHA-256 check of the upload, our SHA-256 for the next run."""
    return {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": target.kms_key_id,
        "ChecksumAlgorithm": "SHA256",
        "Metadata": {SHA256_METADATA: sha256},
    }


class Progress:
    """Per-file upload progress in bytes: redrawn in place on a terminal, one line per quarter otherwise."""

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.done = 0
        self.shown = -1
        self.tty = stream.isatty()
        self.lock = threading.Lock()  # s3transfer calls back from its worker threads

    def __call__(self, amount: int) -> None:
        with self.lock:
            self.done = min(self.total, self.done + amount)
            percent = 100 if self.total == 0 else self.done * 100 // self.total
            step = percent if self.tty else percent // 25 * 25
            if step == self.shown:
                return
            self.shown = step
            line = f"  {self.label}: {self.done:,} / {self.total:,} bytes ({percent}%)"
            if self.tty:
                self.stream.write("\r" + line + ("\n" if percent == 100 else ""))
            else:
                self.stream.write(line + "\n")
            self.stream.flush()


def upload(s3: Any, target: Target, file: ModelFile, stream: TextIO) -> None:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    progress = Progress(file.name, file.size, stream)
    extra = put_arguments(target, file.sha256)
    if file.name.endswith(".json"):
        extra["ContentType"] = "application/json"
    try:
        s3.upload_file(str(file.path), target.bucket, target.prefix + file.name, ExtraArgs=extra, Callback=progress)
    except S3UploadFailedError as error:
        cause = error.__context__ if isinstance(error.__context__, ClientError) else error
        raise _aws_error(cause, f"uploading {file.name} to bucket", target.bucket, target.kms_key_id) from error
    except (ClientError, BotoCoreError) as error:
        raise _aws_error(error, f"uploading {file.name} to bucket", target.bucket, target.kms_key_id) from error
    if progress.shown != 100:  # the callback does not fire for every transfer (an empty file)
        progress(file.size)


def manifest_bytes(name: str, source: dict[str, str], files: Sequence[ModelFile]) -> bytes:
    """``_STAGED.json``: what was staged, from where. No timestamp, so an unchanged re-run rewrites nothing."""
    document = {
        "name": name,
        "source": source,
        "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in files],
        "written_by": "scripts/stage_base_model.py",
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


# --- The command ------------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="Hugging Face Hub id (owner/name) or a local model folder.")
    parser.add_argument("--name", help="Folder under pretrained/; default: the stage's training.base_model_name.")
    parser.add_argument("--stage", default=None, help="Stage whose config and Data stack to use (default: dev).")
    parser.add_argument("--revision", default="main", help="Hub branch, tag or commit (Hub ids only). Default main.")
    parser.add_argument("--bucket", help="Artifacts bucket; default: the Data stack's ArtifactsBucketName output.")
    parser.add_argument("--kms-key-id", help="KMS key for SSE-KMS; default: the Data stack's KeyArn output.")
    parser.add_argument("--region", help="AWS region of the stacks; default: the AWS configuration's region.")
    parser.add_argument("--prune", action="store_true", help="Delete objects under the prefix that are not staged.")
    parser.add_argument("--dry-run", action="store_true", help="Print what would be uploaded; write nothing.")
    return parser.parse_args(argv)


def is_hub_id(source: str) -> bool:
    """``owner/name`` or ``name`` that is not a path on this machine (``./x``, ``/x``, ``~/x`` are paths)."""
    return not Path(source).expanduser().exists() and bool(HUB_ID.fullmatch(source)) and not source.startswith(".")


def _size(count: int) -> str:
    """A byte count for people: 512 B, 86.7 MiB."""
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def run(args: argparse.Namespace, session: Any, hub: ModelHub, out: TextIO) -> None:
    """Stage the model; raises :class:`StageError` for anything the operator has to fix."""
    try:
        config = load_config(args.stage)
    except ConfigError as error:
        raise StageError(f"--stage: {error}") from error
    name = args.name or config.training.base_model_name
    try:
        check_base_model_name("--name", name)
    except ConfigError as error:
        raise StageError(str(error)) from error

    hub_source = is_hub_id(args.source)
    with tempfile.TemporaryDirectory(prefix="stage-base-model-") as scratch:
        if hub_source:
            commit, sizes = hub.list_files(args.source, args.revision)
            names = select_model_files(sizes, f"Hub model {args.source}@{args.revision}")
            source = {"hub_id": args.source, "revision": args.revision, "commit": commit}
        else:
            folder = Path(args.source).expanduser().resolve()
            files, left_out = inspect_local_model(folder, f"--source {args.source}")
            source = {"local_folder": str(folder)}

        s3 = session.client("s3")
        target, origin = resolve_target(args, config, name, session, s3)
        print(f"target {target.uri()} (from the {origin}), SSE-KMS key {target.kms_key_id}", file=out)
        existing = existing_objects(s3, target)

        if hub_source:
            total = sum(sizes[n] for n in names)
            if args.dry_run:
                print(f"would download {len(names)} files ({_size(total)}) of {args.source}@{commit[:12]}:", file=out)
                for item in names:
                    print(f"  {item}  {sizes[item]:,} bytes -> {target.uri(item)}", file=out)
                print("dry run: nothing downloaded or uploaded", file=out)
                return
            print(f"downloading {len(names)} files ({_size(total)}) of {args.source}@{commit[:12]}", file=out)
            download_dir = Path(scratch) / "model"
            hub.download(args.source, commit, names, download_dir)
            files, _ = inspect_local_model(download_dir, f"the download of {args.source}@{commit[:12]}")
            left_out = sorted(set(sizes) - {f.name for f in files})

        manifest = manifest_bytes(name, source, files)
        manifest_sha = hashlib.sha256(manifest).hexdigest()
        to_upload = [f for f in files if not unchanged(s3, target, existing, f.name, f.size, f.sha256)]
        manifest_key = target.prefix + MANIFEST_NAME
        manifest_current = unchanged(s3, target, existing, MANIFEST_NAME, len(manifest), manifest_sha)
        staged_keys = {target.prefix + f.name for f in files} | {manifest_key}
        stale = sorted(key for key in existing if key not in staged_keys)

        verb = "would upload" if args.dry_run else "upload"
        for f in files:
            state = verb if f in to_upload else "unchanged"
            print(f"{state:>12}  {f.name}  {f.size:,} bytes  sha256 {f.sha256[:12]}", file=out)
        print(f"{verb if not manifest_current else 'unchanged':>12}  {MANIFEST_NAME} (written last)", file=out)
        if left_out:
            print(f"not staged (not needed by from_pretrained): {', '.join(left_out)}", file=out)
        for key in stale:
            action = ("would delete" if args.dry_run else "deleting") if args.prune else "not part of this model"
            hint = "" if args.prune else " (the channel downloads it too; --prune deletes it)"
            print(f"{action}: s3://{target.bucket}/{key}{hint}", file=out)
        if args.dry_run:
            print("dry run: nothing uploaded or deleted", file=out)
            return

        write(s3, target, to_upload, manifest, manifest_sha, manifest_current, manifest_key in existing, out)
        if args.prune and stale:
            delete(s3, target, stale)
    uploaded = sum(f.size for f in to_upload)
    print(
        f"staged {target.uri()}: {len(files)} files, {_size(sum(f.size for f in files))}; "
        f"{len(to_upload)} uploaded ({_size(uploaded)}), {len(files) - len(to_upload)} unchanged",
        file=out,
    )
    if name != config.training.base_model_name:
        print(f"start the training pipeline with BaseModel={name} to train on it", file=out)


def write(
    s3: Any,
    target: Target,
    to_upload: Sequence[ModelFile],
    manifest: bytes,
    manifest_sha: str,
    manifest_current: bool,
    manifest_exists: bool,
    out: TextIO,
) -> None:
    """Upload the changed files, then the manifest; an old manifest goes first so it never describes a half-copy."""
    from botocore.exceptions import BotoCoreError, ClientError

    manifest_key = target.prefix + MANIFEST_NAME
    try:
        if manifest_exists and not manifest_current:
            s3.delete_object(Bucket=target.bucket, Key=manifest_key)
        for index, file in enumerate(to_upload, start=1):
            print(f"[{index}/{len(to_upload)}] {file.name} -> {target.uri(file.name)}", file=out)
            upload(s3, target, file, out)
        if not manifest_current:
            s3.put_object(
                Bucket=target.bucket,
                Key=manifest_key,
                Body=manifest,
                ContentType="application/json",
                **put_arguments(target, manifest_sha),
            )
    except (ClientError, BotoCoreError) as error:
        raise _aws_error(
            error, f"writing {target.uri(MANIFEST_NAME)} in bucket", target.bucket, target.kms_key_id
        ) from error


def delete(s3: Any, target: Target, keys: Sequence[str]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            answer = s3.delete_objects(Bucket=target.bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise StageError(
                    f"could not delete s3://{target.bucket}/{first['Key']} ({first.get('Code')}): allow "
                    "s3:DeleteObject on pretrained/*, or delete it by hand"
                )
    except (ClientError, BotoCoreError) as error:
        raise _aws_error(error, f"deleting stale objects under {target.uri()} in bucket", target.bucket) from error


def main(argv: Sequence[str] | None = None, *, session: Any = None, hub: ModelHub | None = None) -> int:
    """Command line entry point: 0 when staged (or planned), 1 with one ``error:`` line otherwise."""
    args = parse_args(argv)
    try:
        if session is None:
            import boto3

            session = boto3.session.Session(region_name=args.region)
        run(args, session, hub or HuggingFaceHub(), sys.stdout)
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to finish (unchanged files are skipped)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
