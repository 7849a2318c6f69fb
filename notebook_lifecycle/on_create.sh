#!/bin/bash
#
# OVERVIEW
# Runs once, as root, when the notebook instance is created. It installs the platform's helper scripts from the
# artifacts bucket (through the S3 gateway endpoint: no internet host is contacted), points pip at the platform's
# CodeArtifact repository, and starts building the persistent Python environment on the notebook volume
# (/home/ec2-user/SageMaker/.platform/venv, registered as the Jupyter kernel "Python 3 (nlp-platform)"). The build
# takes minutes, so it runs in the background and this script ends well inside the 5-minute lifecycle limit; its log
# is /home/ec2-user/SageMaker/.platform/logs/build-environment.log. on_start.sh runs right after this script and at
# every later start; see notebook_lifecycle/README.md.
#
# PARAMETERS
# Exported as environment variables by the platform's CDK component, which replaces the marker line below with
# `export NAME='value'` lines. This script uses:
#   HELPERS_S3_URI             s3:// URI of the zip of notebook_lifecycle/helpers/
#   AWS_REGION_NAME            region of the platform
#   CODEARTIFACT_DOMAIN        CodeArtifact domain of the package repository
#   CODEARTIFACT_DOMAIN_OWNER  account id that owns the domain
#   CODEARTIFACT_REPOSITORY    repository name (PyPI upstream)

set -euo pipefail
# @PLATFORM_PARAMETERS@

# Lifecycle scripts start with PATH=/sbin:bin:/usr/sbin:/usr/bin; the AWS CLI may live in /usr/local/bin.
export PATH="$PATH:/usr/local/bin"
HELPERS_DIR="${PLATFORM_HELPERS_DIR:-/opt/platform-workbench/helpers}"
PLATFORM_DIR="${PLATFORM_DIR:-/home/ec2-user/SageMaker/.platform}"
NOTEBOOK_USER="${PLATFORM_NOTEBOOK_USER:-ec2-user}"

for name in HELPERS_S3_URI AWS_REGION_NAME CODEARTIFACT_DOMAIN CODEARTIFACT_DOMAIN_OWNER CODEARTIFACT_REPOSITORY; do
    if [ -z "${!name:-}" ]; then
        echo "on_create: parameter $name is empty or not set; redeploy the Workbench stack (its lifecycle config" \
            "exports every parameter)" >&2
        exit 1
    fi
done

install_helpers() {
    local parent staging
    parent=$(dirname "$HELPERS_DIR")
    mkdir -p "$parent"
    staging=$(mktemp -d "$parent/.helpers-staging.XXXXXX")
    echo "on_create: copying helpers from $HELPERS_S3_URI"
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
    echo "on_create: helpers installed in $HELPERS_DIR"
}

install_helpers

if ! bash "$HELPERS_DIR/codeartifact_pip.sh" "$CODEARTIFACT_DOMAIN" "$CODEARTIFACT_DOMAIN_OWNER" \
    "$CODEARTIFACT_REPOSITORY" "$AWS_REGION_NAME"; then
    echo "on_create: WARNING: pip is not configured for CodeArtifact; on_start.sh and cron retry" >&2
fi

mkdir -p "$PLATFORM_DIR/logs"
chown "$NOTEBOOK_USER:" "$PLATFORM_DIR" "$PLATFORM_DIR/logs"
echo "on_create: building the notebook environment in the background; log: $PLATFORM_DIR/logs/build-environment.log"
nohup sudo -u "$NOTEBOOK_USER" -H bash "$HELPERS_DIR/build_environment.sh" "$PLATFORM_DIR" \
    </dev/null >>"$PLATFORM_DIR/logs/build-environment.log" 2>&1 &
echo "on_create: done"
