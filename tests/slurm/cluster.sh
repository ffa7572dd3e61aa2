# shellcheck shell=bash
# A throwaway one-node Slurm cluster on localhost, everything under $WORK:
# munged with a key of its own, slurmctld and slurmd from a generated
# slurm.conf on free ports. Nothing touches /etc/slurm or the system's munge,
# so a packaged munged or slurmd that happens to run does not interfere.
# Sourced by the tests; needs root (SlurmUser=root).

CLUSTER_PIDS=()

# A TCP port nothing listens on now.
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# This machine as slurmd sees it (CPUs, sockets, cores, memory), named localhost.
node_line() {
  slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]*/NodeName=localhost NodeAddr=127.0.0.1/'
}

write_slurm_conf() {
  local controller
  controller=$(hostname -s) # slurmctld only starts on the host SlurmctldHost names
  cat > "$WORK/slurm.conf" << EOF
ClusterName=optbench-test
SlurmctldHost=$controller(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$WORK/munge/munge.socket
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
# No cgroups: processes are tracked through /proc, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
# The node is what slurmd -C measured; should it measure a little less memory
# later, the configured values still hold rather than draining the node.
SlurmdParameters=config_overrides
KillWait=5
$(node_line)
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  mkdir -p "$WORK/munge"
  chmod 0700 "$WORK/munge"
  mungekey --create --keyfile="$WORK/munge/munge.key" || return 1
  # --force: munged refuses to run as root otherwise.
  munged --foreground --force --key-file="$WORK/munge/munge.key" --socket="$WORK/munge/munge.socket" \
    --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/munge/munged.log" \
    --seed-file="$WORK/munge/munged.seed" 2> "$WORK/munge/munged.err" &
  CLUSTER_PIDS+=($!)
  local i
  for i in $(seq 1 50); do
    [ -S "$WORK/munge/munge.socket" ] && return 0
    sleep 0.1
  done
  return 1
}

# Waits until the node takes jobs.
wait_node_idle() {
  local i
  for i in $(seq 1 120); do
    [ "$(sinfo -h -n localhost -o %t 2> /dev/null)" = idle ] && return 0
    sleep 0.5
  done
  return 1
}

cluster_start() {
  mkdir -p "$WORK/state" "$WORK/spool"
  write_slurm_conf
  export SLURM_CONF="$WORK/slurm.conf"
  start_munge || return 1
  slurmctld -D -i -f "$SLURM_CONF" > "$WORK/slurmctld.out" 2>&1 &
  CLUSTER_PIDS+=($!)
  slurmd -D -N localhost -f "$SLURM_CONF" > "$WORK/slurmd.out" 2>&1 &
  CLUSTER_PIDS+=($!)
  wait_node_idle
}

# Waits up to $1 seconds for the queue to empty.
cluster_wait_empty() {
  local deadline=$((SECONDS + $1))
  while [ $SECONDS -lt $deadline ]; do
    [ -z "$(squeue -h -o %i 2> /dev/null)" ] && return 0
    sleep 1
  done
  return 1
}

# Cancels what is left, then stops the daemons in reverse order of start.
cluster_stop() {
  if [ ${#CLUSTER_PIDS[@]} -ge 3 ]; then
    scancel --user=root 2> /dev/null
    cluster_wait_empty 30
  fi
  local i pid
  for ((i = ${#CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${CLUSTER_PIDS[$i]}
    kill "$pid" 2> /dev/null
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2> /dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
  done
  CLUSTER_PIDS=()
}

cluster_logs() {
  local log
  for log in "$WORK"/slurmctld.log "$WORK"/slurmd.log "$WORK"/*.out "$WORK"/munge/munged.log \
    "$WORK"/project/sbatch/*.out; do
    [ -f "$log" ] || continue
    echo "--- $log"
    tail -25 "$log"
  done
}
