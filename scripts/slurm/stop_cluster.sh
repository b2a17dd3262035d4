#!/usr/bin/env bash
# Stop the daemons scripts/slurm/start_cluster.sh started (by their pid files).
set -uo pipefail
STATE=${MATHPIPE_SLURM_STATE:-/tmp/mathpipe-slurm}
for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" /run/munge/munged.pid; do
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null && echo "stop_cluster: stopped $(basename "$pidfile" .pid) ($pid)"
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
done
