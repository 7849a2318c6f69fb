#!/bin/bash
#
# OVERVIEW
# Runs once, as root, when the notebook instance is created; SageMaker runs on_start.sh right after it, and at every
# later start. Everything a boot needs lives on the root volume, which every start resets: the helpers (copied from the
# CDK assets bucket through the S3 gateway endpoint), pip's CodeArtifact token, the environment file, the background
# check or build of the Python environment and the schedules. on_start.sh does all of it at every start, the first one
# included, so this script does none of it: doing it here too would copy the helpers, fetch a token and start the
# environment build twice on the first boot. It only prepares the platform folder on the notebook volume (which
# survives stops) for the notebook user. See notebook_lifecycle/README.md.
#
# PARAMETERS
# Exported as environment variables by the platform's CDK component, which replaces the marker line below with
# `export NAME='value'` lines. This script uses:
#   NOTEBOOK_INSTANCE_NAME  this instance's name, for the log

set -euo pipefail
# @PLATFORM_PARAMETERS@

PLATFORM_DIR="${PLATFORM_DIR:-/home/ec2-user/SageMaker/.platform}"
NOTEBOOK_USER="${PLATFORM_NOTEBOOK_USER:-ec2-user}"

if [ -z "${NOTEBOOK_INSTANCE_NAME:-}" ]; then
    echo "on_create: parameter NOTEBOOK_INSTANCE_NAME is empty or not set; redeploy the Workbench stack (its" \
        "lifecycle config exports every parameter)" >&2
    exit 1
fi

mkdir -p "$PLATFORM_DIR/logs"
chown "$NOTEBOOK_USER:" "$PLATFORM_DIR" "$PLATFORM_DIR/logs"
echo "on_create: $NOTEBOOK_INSTANCE_NAME created; on_start.sh installs the helpers and builds the environment next"
