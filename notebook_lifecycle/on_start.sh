#!/bin/bash
#
# OVERVIEW
# Runs as root at every start of the notebook instance, including the first, right after on_create.sh (which leaves
# all of this to this script, so the first boot does it once). Every start needs it again: the root volume, where the
# helpers, /etc/pip.conf, the schedules and the kernel list live, is reset at each start. Nothing is downloaded from the
# internet: helpers come from the CDK assets bucket (the Workbench stack's file asset) through the S3 gateway
# endpoint, packages from the platform's CodeArtifact repository, and the SageMaker API through its VPC endpoint.
#   1. installs the helper scripts (notebook_lifecycle/helpers/ in the repository) into /opt/platform-workbench/helpers;
#   2. points pip at CodeArtifact with a fresh token (renewed every 6 hours);
#   3. writes the platform's resource names to /home/ec2-user/SageMaker/.platform/env (KEY=value lines) and env.json,
#      which the notebooks read;
#   4. checks the persistent Python environment in the background (rebuilds it when broken or when the requirements
#      changed) and registers its Jupyter kernel again;
#   5. schedules the idle auto-stop (every 5 minutes; stops the instance after IDLE_MINUTES without activity).
# See notebook_lifecycle/README.md.
#
# PARAMETERS
# Exported as environment variables by the platform's CDK component, which replaces the marker line below with
# `export NAME='value'` lines:
#   AWS_REGION_NAME, RAW_BUCKET, CURATED_BUCKET, ARTIFACTS_BUCKET, KMS_KEY_ARN, GLUE_JOB_NAME, PIPELINE_NAME,
#   MODEL_PACKAGE_GROUP_NAME, ENDPOINT_NAME and INFERENCE_API_URL (empty while no endpoint is deployed),
#   CODEARTIFACT_DOMAIN, CODEARTIFACT_DOMAIN_OWNER, CODEARTIFACT_REPOSITORY, IDLE_MINUTES, NOTEBOOK_INSTANCE_NAME,
#   HELPERS_S3_URI

set -euo pipefail
# @PLATFORM_PARAMETERS@

# Lifecycle scripts start with PATH=/sbin:bin:/usr/sbin:/usr/bin; the AWS CLI may live in /usr/local/bin.
export PATH="$PATH:/usr/local/bin"
HELPERS_DIR="${PLATFORM_HELPERS_DIR:-/opt/platform-workbench/helpers}"
PLATFORM_DIR="${PLATFORM_DIR:-/home/ec2-user/SageMaker/.platform}"
NOTEBOOK_USER="${PLATFORM_NOTEBOOK_USER:-ec2-user}"
export PLATFORM_HELPERS_DIR="$HELPERS_DIR"

for name in AWS_REGION_NAME RAW_BUCKET CURATED_BUCKET ARTIFACTS_BUCKET KMS_KEY_ARN GLUE_JOB_NAME PIPELINE_NAME \
    MODEL_PACKAGE_GROUP_NAME CODEARTIFACT_DOMAIN CODEARTIFACT_DOMAIN_OWNER CODEARTIFACT_REPOSITORY IDLE_MINUTES \
    NOTEBOOK_INSTANCE_NAME HELPERS_S3_URI; do
    if [ -z "${!name:-}" ]; then
        echo "on_start: parameter $name is empty or not set; redeploy the Workbench stack (its lifecycle config" \
            "exports every parameter)" >&2
        exit 1
    fi
done
export ENDPOINT_NAME="${ENDPOINT_NAME:-}"
export INFERENCE_API_URL="${INFERENCE_API_URL:-}"

install_helpers() {
    local parent staging
    parent=$(dirname "$HELPERS_DIR")
    mkdir -p "$parent"
    staging=$(mktemp -d "$parent/.helpers-staging.XXXXXX")
    echo "on_start: copying helpers from $HELPERS_S3_URI"
    aws s3 cp --only-show-errors --region "$AWS_REGION_NAME" "$HELPERS_S3_URI" "$staging/helpers.zip"
    mkdir "$staging/helpers"
    if command -v unzip >/dev/null 2>&1; then
        unzip -q "$staging/helpers.zip" -d "$staging/helpers"
    else
        python3 -m zipfile -e "$staging/helpers.zip" "$staging/helpers"
    fi
    chmod -R u=rwX,go=rX "$staging/helpers"
    # Swap whole folders: a helper still running from the previous copy keeps reading its own file.
    rm -rf "$HELPERS_DIR.previous"
    if [ -d "$HELPERS_DIR" ]; then mv "$HELPERS_DIR" "$HELPERS_DIR.previous"; fi
    mv "$staging/helpers" "$HELPERS_DIR"
    rm -rf "$HELPERS_DIR.previous" "$staging"
    echo "on_start: helpers installed in $HELPERS_DIR"
}

install_helpers

# A start must not fail because the package repository is briefly unreachable: cron renews the token later.
if ! bash "$HELPERS_DIR/codeartifact_pip.sh" "$CODEARTIFACT_DOMAIN" "$CODEARTIFACT_DOMAIN_OWNER" \
    "$CODEARTIFACT_REPOSITORY" "$AWS_REGION_NAME"; then
    echo "on_start: WARNING: pip is not configured for CodeArtifact yet; the 6-hourly renewal retries" >&2
fi

mkdir -p "$PLATFORM_DIR/logs"
chown "$NOTEBOOK_USER:" "$PLATFORM_DIR" "$PLATFORM_DIR/logs"
python3 "$HELPERS_DIR/write_platform_env.py" --output-dir "$PLATFORM_DIR"

echo "on_start: checking the notebook environment in the background; log: $PLATFORM_DIR/logs/build-environment.log"
nohup sudo -u "$NOTEBOOK_USER" -H bash "$HELPERS_DIR/build_environment.sh" "$PLATFORM_DIR" \
    </dev/null >>"$PLATFORM_DIR/logs/build-environment.log" 2>&1 &

bash "$HELPERS_DIR/install_schedules.sh"
echo "on_start: done"
