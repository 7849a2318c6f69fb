#!/bin/bash
#
# OVERVIEW
# Points pip at the platform's CodeArtifact PyPI repository, the notebook's only package index (the instance has no
# internet access; the repository proxies public PyPI and is reached through the VPC endpoints). It asks CodeArtifact
# for a 12-hour authorization token and writes it into the site-wide pip configuration, readable by root and the
# notebook user only. on_start.sh runs it at every start; cron (or a systemd timer) runs it again every 6 hours so
# the token never expires while the instance is up. The token is never printed.
#
# PARAMETERS (positional)
#   DOMAIN        CodeArtifact domain name
#   DOMAIN_OWNER  AWS account id that owns the domain
#   REPOSITORY    repository name in the domain
#   REGION        AWS region of the domain
# Optional environment: PLATFORM_PIP_CONF (default /etc/pip.conf), PLATFORM_NOTEBOOK_USER (default ec2-user).
#
# IAM: codeartifact:GetAuthorizationToken on the domain, sts:GetServiceBearerToken, codeartifact:ReadFromRepository.

set -euo pipefail

if [ "$#" -ne 4 ]; then
    echo "usage: $0 DOMAIN DOMAIN_OWNER REPOSITORY REGION (got $# arguments: $*)" >&2
    exit 2
fi
domain=$1
owner=$2
repository=$3
region=$4
pip_conf="${PLATFORM_PIP_CONF:-/etc/pip.conf}"
notebook_user="${PLATFORM_NOTEBOOK_USER:-ec2-user}"

token=$(aws codeartifact get-authorization-token --domain "$domain" --domain-owner "$owner" --region "$region" \
    --duration-seconds 43200 --query authorizationToken --output text)
if [ -z "$token" ] || [ "$token" = "None" ]; then
    echo "codeartifact_pip: CodeArtifact returned no token for domain $domain (owner $owner) in $region" >&2
    exit 1
fi
# The repository endpoint has a documented, fixed shape; building it saves a GetRepositoryEndpoint call (and its IAM).
index_url="https://aws:${token}@${domain}-${owner}.d.codeartifact.${region}.amazonaws.com/pypi/${repository}/simple/"

staged=$(mktemp "${pip_conf}.XXXXXX")
chmod 0640 "$staged"
if getent group "$notebook_user" >/dev/null 2>&1; then
    chgrp "$notebook_user" "$staged"
fi
cat >"$staged" <<PIPCONF
# Written by the platform's codeartifact_pip.sh; refreshed every 6 hours. Do not edit.
[global]
index-url = ${index_url}
timeout = 60
PIPCONF
mv -f "$staged" "$pip_conf"
echo "codeartifact_pip: pip uses repository $repository of domain $domain in $region (token valid 12 h) via $pip_conf"
