#!/usr/bin/env bash
# slurm-local.sh: a private one-node SLURM cluster (slurm-wlm 22.05 + munge, Debian 12) in a folder,
# for tests. Sourced by tests/cluster/cluster_test.sh; usable by hand:
#   source tests/cluster/slurm-local.sh; slurm_up /tmp/slurm; sbatch --wrap hostname; slurm_down
# Nothing outside the folder is touched: its own munge key and socket (AuthInfo=socket=...), its own
# ports, state, logs and slurm.conf (clients find it through SLURM_CONF, exported here).
# The config is the one of DESIGN.md 11: proctrack/linuxproc, task/none, cons_tres, no accounting
# daemon, jobcomp/filetxt (read back with `sacct --completion`), cgroup.conf IgnoreSystemd=yes.
# slurm_up returns 0 when the node is idle, 77 when SLURM cannot start here (an environment
# problem: the reason is in SLURM_LOCAL_WHY), 1 on a misuse.

slurm_local_log() { printf 'slurm-local: %s\n' "$*" >&2; }

# slurm_up DIR: starts munged, slurmctld and slurmd; waits (30 s at most) until the node is idle.
slurm_up() {
  local dir=$1 host ports cpus mem nodeline
  SLURM_LOCAL_DIR=$dir
  SLURM_LOCAL_WHY=""
  local c
  for c in munged mungekey munge unmunge slurmctld slurmd sinfo sbatch scontrol; do
    command -v "$c" >/dev/null || { SLURM_LOCAL_WHY="$c not installed (apt-get install slurm-wlm munge)"; return 77; }
  done
  [ "$(id -u)" -eq 0 ] || { SLURM_LOCAL_WHY="slurmd needs root"; return 77; }
  mkdir -p "$dir"/{munge,state,spool} || return 1
  chmod 700 "$dir" "$dir/munge"
  host=$(hostname -s)
  # Ports: per process, so that two runs on one machine do not meet.
  ports=$((20000 + ($$ % 10000) * 2))
  mungekey -c -k "$dir/munge/munge.key" >/dev/null 2>&1 \
    || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  munged --force --socket="$dir/munge/socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed" \
    >"$dir/munge/start.log" 2>&1 \
    || { SLURM_LOCAL_WHY="munged did not start: $(tail -1 "$dir/munge/start.log")"; return 77; }
  munge -S "$dir/munge/socket" -n </dev/null | unmunge -S "$dir/munge/socket" >/dev/null 2>&1 \
    || { SLURM_LOCAL_WHY="munge credentials do not round-trip"; return 77; }
  nodeline=$(slurmd -C 2>/dev/null | grep '^NodeName=' | head -1)
  [ -n "$nodeline" ] || { SLURM_LOCAL_WHY="slurmd -C reports no node"; return 77; }
  # Leave 512 MB of RealMemory to the system.
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$nodeline")
  nodeline=$(sed "s/RealMemory=[0-9]*/RealMemory=$((mem > 1024 ? mem - 512 : mem))/" <<<"$nodeline")
  cat >"$dir/slurm.conf" <<CONF
ClusterName=tmsplan-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ports
SlurmdPort=$((ports + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
PlugStackConfig=$dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
ReturnToService=2
MinJobAge=600
DefMemPerCPU=1024
SlurmdTimeout=60
$nodeline State=UNKNOWN
PartitionName=tmsplan Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  printf 'CgroupPlugin=autodetect\nIgnoreSystemd=yes\n' >"$dir/cgroup.conf"
  : >"$dir/plugstack.conf"
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF" >"$dir/slurmctld.start.log" 2>&1 \
    || { SLURM_LOCAL_WHY="slurmctld did not start: $(tail -1 "$dir/slurmctld.log" 2>/dev/null)"; return 77; }
  slurmd -f "$SLURM_CONF" >"$dir/slurmd.start.log" 2>&1 \
    || { SLURM_LOCAL_WHY="slurmd did not start: $(tail -1 "$dir/slurmd.log" 2>/dev/null)"; return 77; }
  local i state
  for i in $(seq 60); do
    state=$(sinfo -h -o %T 2>/dev/null | head -1)
    [ "$state" = idle ] && { slurm_local_log "node $host idle after $((i / 2)) s ($SLURM_CONF)"; return 0; }
    sleep 0.5
  done
  SLURM_LOCAL_WHY="node not idle after 30 s (state '${state:-none}'); $(tail -1 "$dir/slurmd.log" 2>/dev/null)"
  return 77
}

# slurm_down: stops slurmd, slurmctld and munged started by slurm_up (by their pid files).
slurm_down() {
  local dir=${SLURM_LOCAL_DIR:-}
  [ -n "$dir" ] || return 0
  local f pid
  for f in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}
