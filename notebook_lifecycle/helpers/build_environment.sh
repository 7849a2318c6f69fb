#!/bin/bash
#
# OVERVIEW
# Builds, checks or repairs the persistent Python environment of the notebook and registers it as the Jupyter kernel
# "Python 3 (nlp-platform)". The environment is a venv on the notebook's volume (it survives stop and start) with the
# packages of requirements-notebook.txt, installed from the platform's CodeArtifact repository (pip is configured by
# codeartifact_pip.sh). The build takes minutes, so on_start.sh starts this script in the background at every start
# as the notebook user. It is idempotent and serialised by a lock: when the venv matches the requirements and the base
# Python, it only registers the kernel again (the kernel list lives on the root volume, which a restart resets).
#
# PARAMETERS (positional)
#   PLATFORM_DIR  folder on the notebook volume for the environment (for example /home/ec2-user/SageMaker/.platform)
# Optional environment: PLATFORM_BASE_PYTHON (the Python to build the venv from; default: the first found of
# /home/ec2-user/anaconda3/bin/python3 and /usr/bin/python3), PLATFORM_KERNEL_NAME (default nlp-platform).

set -euo pipefail

find_base_python() {
    local candidate
    for candidate in "${PLATFORM_BASE_PYTHON:-}" /home/ec2-user/anaconda3/bin/python3 /usr/bin/python3; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    echo "build_environment: no base Python found; set PLATFORM_BASE_PYTHON to a Python 3.10 or newer" >&2
    return 1
}

# Everything runs inside main, which bash reads whole before running it: replacing this file while it runs is safe.
main() {
    if [ "$#" -ne 1 ]; then
        echo "usage: $0 PLATFORM_DIR (got $# arguments: $*)" >&2
        exit 2
    fi
    local platform_dir=$1
    local venv="$platform_dir/venv"
    local kernel_name="${PLATFORM_KERNEL_NAME:-nlp-platform}"
    local requirements stamp_file base_python wanted_stamp
    requirements="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/requirements-notebook.txt"
    stamp_file="$venv/.platform-stamp"

    mkdir -p "$platform_dir"
    exec 9>"$platform_dir/.build.lock"
    flock 9
    echo "build_environment: $(date -u +%FT%TZ) checking $venv"

    base_python=$(find_base_python)
    wanted_stamp="$(sha256sum <"$requirements" | cut -d' ' -f1) $("$base_python" -c 'import sys; print(sys.version.split()[0])')"
    if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$wanted_stamp" ] \
        && "$venv/bin/python" -c 'import ipykernel' 2>/dev/null; then
        echo "build_environment: environment is up to date"
    else
        echo "build_environment: building $venv from $base_python with $requirements (a few minutes)"
        rm -rf "$venv"
        "$base_python" -m venv "$venv"
        "$venv/bin/python" -m pip install --no-input --progress-bar off --disable-pip-version-check -r "$requirements"
        echo "$wanted_stamp" >"$stamp_file"
        echo "build_environment: environment built"
    fi
    "$venv/bin/python" -m ipykernel install --user --name "$kernel_name" --display-name "Python 3 ($kernel_name)"
    echo "build_environment: $(date -u +%FT%TZ) kernel $kernel_name registered"
}

main "$@"
