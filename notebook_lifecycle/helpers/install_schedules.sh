#!/bin/bash
#
# OVERVIEW
# Schedules the platform's recurring jobs on the notebook instance, as root:
#   - autostop.py every 5 minutes: stops the instance after IDLE_MINUTES without activity;
#   - codeartifact_pip.sh every 6 hours: renews the package repository token (valid 12 hours).
# Uses cron (/etc/cron.d) where crond is installed, and systemd timers otherwise (Amazon Linux 2023 may ship without
# cron). Both log to /var/log/jupyter.log, which the notebook instance sends to CloudWatch Logs. Re-running replaces
# the previous schedule, so on_start.sh calls it at every start.
#
# PARAMETERS (environment, exported by on_start.sh)
#   IDLE_MINUTES, AWS_REGION_NAME, NOTEBOOK_INSTANCE_NAME,
#   CODEARTIFACT_DOMAIN, CODEARTIFACT_DOMAIN_OWNER, CODEARTIFACT_REPOSITORY
# Optional: PLATFORM_HELPERS_DIR (default: this script's folder), PLATFORM_SCHEDULER (cron or systemd; default:
# detected), PLATFORM_CRON_DIR (default /etc/cron.d), PLATFORM_SYSTEMD_DIR (default /etc/systemd/system),
# PLATFORM_LOG_FILE (default /var/log/jupyter.log).

set -euo pipefail

for name in IDLE_MINUTES AWS_REGION_NAME NOTEBOOK_INSTANCE_NAME CODEARTIFACT_DOMAIN CODEARTIFACT_DOMAIN_OWNER \
    CODEARTIFACT_REPOSITORY; do
    if [ -z "${!name:-}" ]; then
        echo "install_schedules: $name is empty or not set; on_start.sh must export it" >&2
        exit 2
    fi
done
if ! [[ "$IDLE_MINUTES" =~ ^[1-9][0-9]*$ ]]; then
    echo "install_schedules: IDLE_MINUTES='$IDLE_MINUTES' is not a whole number of minutes >= 1" >&2
    exit 2
fi

helpers_dir="${PLATFORM_HELPERS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
log_file="${PLATFORM_LOG_FILE:-/var/log/jupyter.log}"
cron_dir="${PLATFORM_CRON_DIR:-/etc/cron.d}"
systemd_dir="${PLATFORM_SYSTEMD_DIR:-/etc/systemd/system}"

# autostop.py needs boto3: the Jupyter system environment has it; the OS Python may not.
python_with_boto3=""
for candidate in /home/ec2-user/anaconda3/envs/JupyterSystemEnv/bin/python3 /home/ec2-user/anaconda3/bin/python3 \
    /usr/bin/python3 "$(command -v python3 || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] \
        && "$candidate" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("boto3") is None)' 2>/dev/null; then
        python_with_boto3=$candidate
        break
    fi
done
if [ -z "$python_with_boto3" ]; then
    echo "install_schedules: no Python with boto3 found; the idle auto-stop cannot run" >&2
    exit 1
fi

autostop_command="$python_with_boto3 $helpers_dir/autostop.py --idle-minutes $IDLE_MINUTES --region $AWS_REGION_NAME \
--instance-name $NOTEBOOK_INSTANCE_NAME"
token_command="/bin/bash $helpers_dir/codeartifact_pip.sh $CODEARTIFACT_DOMAIN $CODEARTIFACT_DOMAIN_OWNER \
$CODEARTIFACT_REPOSITORY $AWS_REGION_NAME"

scheduler="${PLATFORM_SCHEDULER:-}"
if [ -z "$scheduler" ]; then
    if command -v crond >/dev/null 2>&1; then scheduler=cron; else scheduler=systemd; fi
fi

install_cron() {
    mkdir -p "$cron_dir"
    local staged
    staged=$(mktemp "$cron_dir/.platform-workbench.XXXXXX")
    cat >"$staged" <<CRON
# Installed by the platform's on-start lifecycle script at every start. Do not edit.
SHELL=/bin/bash
PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
*/5 * * * * root $autostop_command >>$log_file 2>&1
0 */6 * * * root $token_command >>$log_file 2>&1
CRON
    chmod 0644 "$staged"
    mv -f "$staged" "$cron_dir/platform-workbench"
    echo "install_schedules: cron entries written to $cron_dir/platform-workbench"
}

write_timer() {
    local name=$1 description=$2 command=$3 calendar=$4
    cat >"$systemd_dir/$name.service" <<UNIT
[Unit]
Description=$description

[Service]
Type=oneshot
Environment=PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
ExecStart=$command
StandardOutput=append:$log_file
StandardError=append:$log_file
UNIT
    cat >"$systemd_dir/$name.timer" <<UNIT
[Unit]
Description=$description (schedule)

[Timer]
OnCalendar=$calendar
Persistent=false

[Install]
WantedBy=timers.target
UNIT
}

install_systemd() {
    mkdir -p "$systemd_dir"
    write_timer platform-autostop "Stop the notebook instance when idle" "$autostop_command" "*:0/5"
    write_timer platform-codeartifact-token "Renew the CodeArtifact token for pip" "$token_command" "0/6:00"
    systemctl daemon-reload
    systemctl enable --now platform-autostop.timer platform-codeartifact-token.timer
    echo "install_schedules: systemd timers platform-autostop and platform-codeartifact-token enabled"
}

case "$scheduler" in
    cron) install_cron ;;
    systemd) install_systemd ;;
    *)
        echo "install_schedules: PLATFORM_SCHEDULER='$scheduler' is not cron or systemd" >&2
        exit 2
        ;;
esac
echo "install_schedules: idle auto-stop after $IDLE_MINUTES minutes with $python_with_boto3"
