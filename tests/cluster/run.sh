#!/usr/bin/env bash
# `make cluster-test`: a real one-node SLURM cluster on localhost, started by this script, and the smoke DAG run
# on it with `snakemake --profile profiles/slurm` (docs/cluster.md, "Clusters", followed word for word).
#
# As root on a Debian 12 machine: installs Debian's slurm-wlm 22.05, munge, slurmdbd and mariadb-server where they
# are missing, writes a one-node cluster's slurm.conf, gres.conf and slurmdbd.conf into /etc/slurm (each marked
# as this script's; a config it did not write stops it) and its state, logs and MariaDB data directory under
# $WORK, starts munged (unless one runs already), mariadbd, slurmdbd, slurmctld and slurmd, waits until sinfo
# shows the node idle, registers the cluster's account and runs tests/test_cluster.py against it. At the end, also on failure or Ctrl-C, it stops
# every daemon it started and removes its files from /etc/slurm (trap). A second run on the same machine starts
# from a clean state.
#
# Why /etc/slurm and not a private SLURM_CONF: the plugin's job step (snakemake-executor-plugin-slurm-jobstep)
# drops every SLURM_* variable but the job's ids before it calls `srun`, so srun inside a job finds its config only
# where SLURM looks by default (/etc/slurm/slurm.conf) or through configless DNS records.
#
# Why slurmdbd + MariaDB: the SLURM executor plugin follows its jobs with `sacct --name <run id>` and reads a
# failed job's reason from sacct; in 22.05 sacct reads jobs only through slurmdbd
# (AccountingStorageType=accounting_storage/slurmdbd): with accounting_storage/none, with or without
# JobCompType=jobcomp/filetxt, it answers "Slurm accounting storage is disabled". The plugin's check of the
# profile's slurm_account (`sacctmgr list user`, else `sshare`) needs slurmdbd too. (Its `squeue` status mode
# would do without accounting where MinJobAge is long, but then neither sacct nor the account check works.)
#
# The cluster: one node (this machine, `hostname -s`, address 127.0.0.1) with the CPUs and RealMemory that
# `slurmd -C` reports, and one `gpu` GRES (gres.conf File=/dev/null: no device; the scheduler counts it, jobs that
# ask for it get it, no CUDA is involved); partitions `cpu` (default) and `gpu`; an account `rlhf-bench`
# that root may use but that is not root's default, so the test sees that the profile's slurm_account is what
# reaches sbatch. Private ports (6917-6919, MariaDB on 127.0.0.1:3317), so a real cluster's daemons are left alone.
#
# Usage: tests/cluster/run.sh [all|start|stop] [--if-possible]
#   all (default)  start, run the tests, stop
#   start / stop   only bring the cluster up (sinfo, sbatch, snakemake --profile profiles/slurm work) / down
#   --if-possible  (make test) exit 0 with one SKIP line where it cannot run: not root, no apt-get, packages
#                  that cannot be installed
# Environment: RLHF_BENCH_CLUSTER_WORK (default /var/tmp/rlhf-bench-cluster), PYTEST_ARGS (extra pytest arguments).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${RLHF_BENCH_CLUSTER_WORK:-/var/tmp/rlhf-bench-cluster}"
ACTION=all
IF_POSSIBLE=0
for arg in "$@"; do
    case "$arg" in
    all | start | stop) ACTION=$arg ;;
    --if-possible) IF_POSSIBLE=1 ;;
    *)
        echo "usage: $0 [all|start|stop] [--if-possible]" >&2
        exit 2
        ;;
    esac
done
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)
CLUSTER=rlhfbench
ACCOUNT=rlhf-bench
CTLD_PORT=6917 SLURMD_PORT=6918 DBD_PORT=6919 DB_PORT=3317
DB_PASS=rlhf-bench-slurmdbd # a throwaway database on 127.0.0.1 of a test machine
START=$SECONDS

say() { printf '[cluster-test %4ds] %s\n' "$((SECONDS - START))" "$*"; }
die() {
    printf 'cluster-test: error: %s\n' "$*" >&2
    exit 1
}
skip_or_die() { # where --if-possible: one SKIP line and exit 0 (make test goes on); else an error
    if [ "$IF_POSSIBLE" = 1 ]; then
        echo "cluster-test: SKIP: $*"
        exit 0
    fi
    die "$*"
}

ETC=/etc/slurm RUN="$WORK/run" LOGS="$WORK/log"
MARK="# Written by tests/cluster/run.sh (rlhf-bench): a one-node test cluster on this machine."
unset SLURM_CONF

# --- stopping: every daemon this script started, by its pid file, newest first --------------------------------
stop_pidfile() { # stop_pidfile NAME FILE: TERM, wait up to 20 s, then KILL
    local name=$1 file=$2 pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name (pid $pid) did not stop in 20 s: KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$file"
}

stop_cluster() {
    # Jobs first, so that no job step outlives its slurmd.
    if [ -s "$RUN/slurmctld.pid" ] && kill -0 "$(cat "$RUN/slurmctld.pid")" 2>/dev/null; then
        timeout 20 scancel --full --user=root >/dev/null 2>&1 || true
    fi
    stop_pidfile slurmd "$RUN/slurmd.pid"
    stop_pidfile slurmctld "$RUN/slurmctld.pid"
    stop_pidfile slurmdbd "$RUN/slurmdbd.pid"
    stop_pidfile mariadbd "$RUN/mariadbd.pid"
    stop_pidfile munged "$RUN/munged.pid" # only there when this script started munged
    for name in slurm.conf gres.conf slurmdbd.conf; do
        if [ -f "$ETC/$name" ] && head -n 1 "$ETC/$name" | grep -qxF "$MARK"; then
            mkdir -p "$WORK/etc" && mv -f "$ETC/$name" "$WORK/etc/$name" # kept for reading, out of SLURM's way
        fi
    done
}

if [ "$ACTION" = stop ]; then
    stop_cluster
    say "stopped"
    exit 0
fi

# --- preconditions and packages ---------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip_or_die "needs root: it installs Debian's slurm-wlm and starts its daemons"
[ -x "$ROOT/.venv/bin/snakemake" ] || die "$ROOT/.venv has no snakemake: run \`make install\` first (make cluster-test does)"
"$ROOT/.venv/bin/python" -c "import snakemake_executor_plugin_slurm" 2>/dev/null ||
    die "$ROOT/.venv lacks snakemake-executor-plugin-slurm: run \`make install\` (it is in envs/requirements.lock)"
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || skip_or_die "missing ${missing[*]} and no apt-get to install them"
    say "installing ${missing[*]} from Debian"
    # The packages' maintainer scripts would start their services where systemd runs: a policy-rc.d that says no
    # keeps them from doing it (this script starts what it needs, on its own ports).
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
    fi
    mkdir -p "$WORK"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${PACKAGES[@]}"; } >"$WORK/apt.log" 2>&1; then
        [ "$own_policy" = 1 ] && rm -f "$policy"
        tail -n 20 "$WORK/apt.log" >&2
        skip_or_die "could not install ${missing[*]} (log: $WORK/apt.log)"
    fi
    [ "$own_policy" = 1 ] && rm -f "$policy"
fi
for tool in slurmctld slurmd slurmdbd sbatch sacct sacctmgr munged mariadbd mariadb-install-db; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null ||
        die "$tool not found after installing ${PACKAGES[*]}"
done
export PATH="$ROOT/.venv/bin:$PATH:/usr/sbin:/sbin"

# A previous run that was killed before its trap ran may have left daemons: stop them, then start clean.
stop_cluster
for port in $CTLD_PORT $SLURMD_PORT $DBD_PORT $DB_PORT; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port on 127.0.0.1 is in use by a process this script did not start"
    fi
done
for name in slurm.conf gres.conf slurmdbd.conf; do
    [ ! -e "$ETC/$name" ] || die "$ETC/$name belongs to another SLURM setup (it lacks this script's first line); this script leaves it alone"
done
rm -rf "${WORK:?}/etc" "$RUN" "$LOGS" "$WORK/state" "$WORK/spool" "$WORK/mysql"
mkdir -p "$ETC" "$RUN" "$LOGS" "$WORK/state" "$WORK/spool" "$WORK/mysql"
on_exit() {
    local status=$?
    stop_cluster
    say "daemons stopped (logs: $LOGS)"
    exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# --- configuration ----------------------------------------------------------------------------------------------
NODE="$(hostname -s)"
# This machine as slurmd sees it: CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..
HARDWARE="$(slurmd -C | sed -n 's/^NodeName=[^ ]* //p' | head -n 1)"
CPUS="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$HARDWARE")"
MEMORY="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$HARDWARE")"
if [ -z "$CPUS" ] || [ -z "$MEMORY" ]; then die "slurmd -C did not report CPUs and RealMemory: $HARDWARE"; fi

cat >"$ETC/slurm.conf" <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# No cgroups here (containers and sandboxes often have none): processes are tracked through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
# sacct (how the Snakemake plugin follows its jobs) reads the accounting database through slurmdbd.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
# Jobs stay visible to scontrol for 5 minutes after they end; a job past its time limit gets SIGTERM, then
# SIGKILL KillWait seconds later.
MinJobAge=300
KillWait=30
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 $HARDWARE Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
EOF
cat >"$ETC/gres.conf" <<EOF
$MARK
# One GPU that the scheduler counts and hands out, with no device behind it. (22.05's Flags=CountOnly without
# a File makes slurmd report 0 GPUs, and the node is drained: "gres/gpu count reported lower than configured".)
NodeName=$NODE Name=gpu Count=1 File=/dev/null
EOF
cat >"$ETC/slurmdbd.conf" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$LOGS/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$ETC/slurmdbd.conf"

wait_for() { # wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds; else the daemons' log tails and an error
    local limit=$1 what=$2 t0=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [ $((SECONDS - t0)) -ge "$limit" ]; then
            for log in "$LOGS"/*.log; do
                [ -s "$log" ] && {
                    echo "--- $log" >&2
                    tail -n 15 "$log" >&2
                }
            done
            die "$what: not ready after $limit s"
        fi
        sleep 1
    done
}

# --- daemons ----------------------------------------------------------------------------------------------------
# munge: Debian's package makes /etc/munge/munge.key; one munged per machine serves every SLURM daemon.
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "munged: already running (left as it is)"
else
    [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid >"$LOGS/munged.out" 2>&1 ||
        die "munged did not start: $(cat "$LOGS/munged.out")"
    cp /run/munge/munged.pid "$RUN/munged.pid"
    wait_for 20 munged bash -c 'munge -n | unmunge'
    say "munged: started"
fi

# MariaDB: a private data directory and port, only for slurmdbd.
mariadb-install-db --no-defaults --user=root --datadir="$WORK/mysql" --auth-root-authentication-method=socket \
    --skip-test-db >"$LOGS/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (log: $LOGS/mariadb-install.log)"
mariadbd --no-defaults --user=root --datadir="$WORK/mysql" --socket="$RUN/mysqld.sock" --port=$DB_PORT \
    --bind-address=127.0.0.1 --pid-file="$RUN/mariadbd.pid" --log-error="$LOGS/mariadbd.log" \
    --innodb-buffer-pool-size=64M --skip-name-resolve >/dev/null 2>&1 &
wait_for 60 mariadbd mariadb --no-defaults --socket="$RUN/mysqld.sock" -u root -e 'select 1'
mariadb --no-defaults --socket="$RUN/mysqld.sock" -u root <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
FLUSH PRIVILEGES;
EOF
say "mariadbd: started on 127.0.0.1:$DB_PORT"

slurmdbd || die "slurmdbd did not start (log: $LOGS/slurmdbd.log)"
wait_for 60 slurmdbd sacctmgr -n list cluster
say "slurmdbd: started"
# The cluster must be known to the database before slurmctld registers with it.
sacctmgr -i add cluster "$CLUSTER" >/dev/null
sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="rlhf-bench cluster test" \
    organization=rlhf-bench >/dev/null
sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null

slurmctld || die "slurmctld did not start (log: $LOGS/slurmctld.log)"
wait_for 60 slurmctld scontrol ping
slurmd || die "slurmd did not start (log: $LOGS/slurmd.log)"
node_idle() { [ "$(sinfo -h -n "$NODE" -p cpu -o '%T' | tr -d ' *')" = idle ]; }
wait_for 90 "node $NODE idle" node_idle
say "slurmctld, slurmd: node $NODE idle ($CPUS CPUs, ${MEMORY} MB, gres gpu:1); partitions cpu (default), gpu"
sinfo -o '%P %a %D %T %c %m %G'
sacctmgr -n -P list assoc cluster="$CLUSTER" format=cluster,account,user | sed 's/^/  association: /'

if [ "$ACTION" = start ]; then
    trap - EXIT
    say "cluster up (config in $ETC, logs in $LOGS); stop it with: $0 stop"
    exit 0
fi

# --- the checks -------------------------------------------------------------------------------------------------
export RLHF_BENCH_SLURM_CLUSTER="$CLUSTER" RLHF_BENCH_SLURM_ACCOUNT="$ACCOUNT"
export RLHF_BENCH_SLURM_PARTITION=cpu RLHF_BENCH_SLURM_GPU_PARTITION=gpu
# make cluster-test runs every check; make test (--if-possible) leaves out the ~4-minute time-limit test.
if [ "$IF_POSSIBLE" = 1 ]; then export RLHF_BENCH_SLURM_LONG=0; else export RLHF_BENCH_SLURM_LONG=1; fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg
say "tests/test_cluster.py"
cd "$ROOT"
# shellcheck disable=SC2086
python -m pytest -q -rP -p no:cacheprovider tests/test_cluster.py ${PYTEST_ARGS:-}
say "done in $((SECONDS - START)) s"
