#!/usr/bin/env bash
# Stop the daemons scripts/slurm/start_cluster.sh started (by their pid files), and take away the
# slurm.conf it rendered. The config must go with the daemons: snakemake-executor-plugin-slurm runs
# `scontrol show config` when it is imported (its --help text names the status command), and every
# `snakemake` import loads the plugin. With a slurm.conf naming a controller that is down, scontrol
# waits out its connect timeout: `python -c 'import snakemake.cli'` took 10.4 s wall (1.2 s CPU) here;
# with no slurm.conf, scontrol fails at once (0.004 s) and the import takes 1.8 s.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
STATE=${MATHPIPE_SLURM_STATE:-/tmp/mathpipe-slurm}
CONF=/etc/slurm/slurm.conf
for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" /run/munge/munged.pid; do
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null && echo "stop_cluster: stopped $(basename "$pidfile" .pid) ($pid)"
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
done
# Only a config this project rendered (its first line, from slurm.conf.in) is removed.
if [ -f "$CONF" ] && [ "$(head -n 1 "$CONF")" = "$(head -n 1 "$HERE/slurm.conf.in")" ]; then
  rm -f "$CONF" && echo "stop_cluster: removed $CONF"
fi
