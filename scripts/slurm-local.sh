#!/usr/bin/env bash
# A single-node Slurm cluster on this machine (Debian's slurm-wlm + munge, installed by
# scripts/setup.sh), for the scheduler test and for trying `reproduce --emit slurm` by hand.
#   scripts/slurm-local.sh start STATE_DIR   # munged, slurmctld, slurmd; waits for the node
#   scripts/slurm-local.sh stop STATE_DIR    # stops the daemons it started
# Runs as root (SlurmUser=root), without systemd or cgroups (build-notes.md).
set -euo pipefail
cmd=${1:?start or stop}
state=$(realpath -m "${2:?state folder}")
host=$(hostname -s)
case "$cmd" in
start)
  mkdir -p "$state"/{ctld,spool,log}
  if ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none; }
    chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
    chmod 0700 /etc/munge /var/log/munge /var/lib/munge; chmod 0400 /etc/munge/munge.key; chmod 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$state/munged.started"
  fi
  munge -n | unmunge >/dev/null
  cat > "$state/slurm.conf" <<CONF
ClusterName=emu-eval-local
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
KillWait=30
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$state/slurm.conf"
  /usr/sbin/slurmctld -f "$SLURM_CONF"
  /usr/sbin/slurmd -f "$SLURM_CONF"
  for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then echo "slurm: node $host idle (SLURM_CONF=$SLURM_CONF)"; exit 0; fi
    sleep 1
  done
  echo "slurm: the node did not become idle; see $state/log" >&2
  exit 1
  ;;
stop)
  pids=""
  for p in slurmd slurmctld; do
    [ -f "$state/$p.pid" ] && pids="$pids $(cat "$state/$p.pid")"
  done
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=""
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
    [ -z "$alive" ] && break
    sleep 0.2
  done
  for pid in $alive; do kill -9 "$pid" 2>/dev/null || true; done
  # Job steps of this cluster outlive slurmd.
  pkill -x slurmstepd 2>/dev/null || true
  if [ -f "$state/munged.started" ]; then pkill -x munged || true; rm -f "$state/munged.started"; fi
  ;;
*) echo "usage: $0 start|stop STATE_DIR" >&2; exit 2 ;;
esac
