#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for tests/test_slurm_cluster.py (`make test-slurm`).
#
#   tests/slurm/cluster.sh up     install (Debian: slurmctld slurmd slurm-client munge) and start, unless running;
#                                 prints "started" when it started something
#   tests/slurm/cluster.sh down   stop what `up` started (munged, slurmctld, slurmd; not what was running before)
#
# One node `localhost` with 4 GPU slots and twice as many CPU slots as cores (config_overrides: a job's start-up,
# Snakemake and torch imports, overlaps another's work): gres.conf points at four character devices (mknod c 1 3, i.e. copies of
# /dev/null) so that SLURM schedules `--gpus=1` and sets CUDA_VISIBLE_DEVICES per job without any GPU. munge
# and the daemons run as root without systemd. The configuration goes where every client looks for it,
# /etc/slurm/{slurm,gres}.conf (the Snakemake job step drops SLURM_CONF before its nested srun), marked as ours;
# `up` refuses to replace a configuration it did not write. State, spool, logs and the GPU device files live in
# $GLORA_SLURM_DIR (default /tmp/glora-slurm). Accounting is off, so the profile for this cluster polls with
# squeue, and MinJobAge keeps finished jobs visible to it (and to the test) for an hour.
set -euo pipefail

DIR=${GLORA_SLURM_DIR:-/tmp/glora-slurm}
ETC=/etc/slurm
CONF=$ETC/slurm.conf
MARK="# written by glora-repro tests/slurm/cluster.sh"

say() { echo "[slurm-cluster] $*" >&2; }
die() { say "error: $*"; exit 1; }

running() { [ -f "$CONF" ] && timeout 10 sinfo -h -o %T >/dev/null 2>&1; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null && return 0
    [ "$(id -u)" = 0 ] || die "SLURM is not installed and this is not root: install the Debian packages \
slurmctld slurmd slurm-client munge (apt-get install), or run as root"
    command -v apt-get >/dev/null || die "SLURM is not installed and apt-get is missing: install slurmctld, \
slurmd, slurm-client and munge with your package manager"
    say "installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null; } \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
}

start_munge() {
    if pgrep -x munged >/dev/null; then return 0; fi
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged
    echo munged >>"$DIR/started"
}

write_config() {
    local mem
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    if [ -f "$CONF" ] && ! grep -qx "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script: a real SLURM configuration is left alone"
    fi
    mkdir -p "$DIR"/{state,spool,log,dev} "$ETC"
    for i in 0 1 2 3; do
        [ -c "$DIR/dev/nvidia$i" ] || mknod "$DIR/dev/nvidia$i" c 1 3
    done
    cat >"$CONF" <<EOF
$MARK
ClusterName=glora-test
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MinJobAge=3600
ReturnToService=2
GresTypes=gpu
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmdParameters=config_overrides
NodeName=localhost CPUs=$((2 * $(nproc))) RealMemory=$mem Gres=gpu:4 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$ETC/gres.conf" <<EOF
$MARK
NodeName=localhost Name=gpu File=$DIR/dev/nvidia[0-3]
EOF
}

up() {
    if running; then say "already running ($CONF)"; return 0; fi
    install_packages
    [ "$(id -u)" = 0 ] || die "starting munged/slurmctld/slurmd needs root"
    rm -f "$DIR/started"
    write_config
    start_munge
    slurmctld -f "$CONF" && echo slurmctld >>"$DIR/started"
    slurmd -f "$CONF" && echo slurmd >>"$DIR/started"
    for _ in $(seq 60); do
        if [ "$(sinfo -h -N -o %T 2>/dev/null)" = idle ]; then
            say "up: $(sinfo -h -N -o '%N %T %c CPUs %G')"
            echo started
            return 0
        fi
        sleep 1
    done
    sinfo -N -l >&2 || true
    die "the node did not become idle within 60 s; see $DIR/log/slurmctld.log and $DIR/log/slurmd.log"
}

down() {
    [ -f "$DIR/started" ] || { say "nothing started by up: left alone"; return 0; }
    scancel --user="$(id -un)" 2>/dev/null || true
    for daemon in slurmd slurmctld munged; do
        if grep -qx "$daemon" "$DIR/started"; then pkill -x "$daemon" || true; fi
    done
    rm -f "$DIR/started"
    if grep -qx "$MARK" "$CONF" 2>/dev/null; then rm -f "$CONF" "$ETC/gres.conf"; fi
    say "stopped"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
