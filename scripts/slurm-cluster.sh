#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the Slurm tests and for trying `--executor slurm`
# (docs/scaling.md). Needs root: it installs Debian's slurmctld/slurmd/munge when missing, starts
# munged as the munge user, then slurmctld and slurmd with a one-node slurm.conf, and waits until
# `sinfo` shows the node idle.
#
#   scripts/slurm-cluster.sh start    # idempotent: does nothing when sinfo already answers
#   scripts/slurm-cluster.sh stop     # stops only the daemons this script started (pid files)
#   scripts/slurm-cluster.sh status
#
# Resources are modest on purpose (the CI machine is shared): at most SLURM_CPUS CPUs (default: all
# cores) and SLURM_MEM_MB of memory (default: 8000 MB or 90% of the machine, whichever is less). Memory is
# not a consumable resource here (CR_CPU), so jobs are limited by CPUs only, and nothing is enforced by
# cgroups (containers rarely allow them): a test cluster, not a production one.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by stackcoder scripts/slurm-cluster.sh"
RUN=/run/stackcoder-slurm          # pid files of what we started
LOG=/var/log/slurm

say() { echo "slurm-cluster: $*" >&2; }

answers() {  # sinfo reaches a controller and some node is usable
  timeout 10 sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc|comp)'
}

install_packages() {
  local missing=()
  command -v munged >/dev/null || missing+=(munge)
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v sbatch >/dev/null || missing+=(slurm-client)
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || { say "cannot install ${missing[*]}: no apt-get"; return 1; }
  say "installing ${missing[*]}"
  (apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; })
}

write_conf() {
  local host cpus mem total
  host=$(hostname -s)
  cpus=${SLURM_CPUS:-$(nproc)}
  total=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
  mem=${SLURM_MEM_MB:-$((total * 9 / 10 < 8000 ? total * 9 / 10 : 8000))}
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    say "$CONF exists and was not written by this script; leaving it alone"
    return 1
  fi
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOG" "$RUN"
  chown slurm:slurm /var/spool/slurmctld "$LOG"
  cat >"$CONF" <<EOF
$MARK
ClusterName=stackcoder
# loopback addresses: nothing depends on this machine's name resolving
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
# no cgroups: containers (and CI machines) seldom allow them
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# a test cluster: start dependent jobs promptly, forget finished ones after a minute
SchedulerParameters=sched_min_interval=100000
MinJobAge=60
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  say "wrote $CONF (node $host: $cpus CPUs, $mem MB)"
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
  [ -f /etc/munge/munge.key ] || { mungekey --create && chown munge:munge /etc/munge/munge.key; }
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  cp /run/munge/munged.pid "$RUN/munged.pid"
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.5; done
  say "munged does not answer"; return 1
}

start() {
  if answers; then say "already up: $(sinfo -h -o '%N %t %c CPUs' | head -1)"; return 0; fi
  [ "$(id -u)" = 0 ] || { say "needs root to start (run: sudo $0 start)"; return 1; }
  install_packages
  mkdir -p "$RUN"
  write_conf
  start_munge
  local host
  host=$(hostname -s)
  pgrep -F "$RUN/slurmctld.pid" >/dev/null 2>&1 || /usr/sbin/slurmctld
  pgrep -F "$RUN/slurmd.pid" >/dev/null 2>&1 || /usr/sbin/slurmd
  for i in $(seq 60); do
    if answers; then say "up: $(sinfo -h -o '%N %t %c CPUs' | head -1)"; return 0; fi
    # a node that was down when slurmctld last ran stays down until told otherwise
    if [ $((i % 10)) = 5 ]; then scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true; fi
    sleep 1
  done
  say "the node did not become idle; see $LOG/slurmctld.log and $LOG/slurmd.log"
  sinfo >&2 || true
  return 1
}

stop_pid() {  # stop_pid NAME: only what this script started, by its pid file
  local f="$RUN/$1.pid"
  [ -f "$f" ] || return 0
  local pid
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$f"
}

stop() {
  [ -d "$RUN" ] || { say "nothing started by this script"; return 0; }
  # the jobs of this throwaway cluster go with it
  squeue -h -o %A 2>/dev/null | sort -u | xargs -r scancel 2>/dev/null || true
  stop_pid slurmd
  stop_pid slurmctld
  stop_pid munged
  say "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if answers; then sinfo; else say "no Slurm cluster answers"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
