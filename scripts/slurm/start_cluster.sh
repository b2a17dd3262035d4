#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine (slurmctld + slurmd + munged, no systemd), for
# `make test-slurm`. Needs root (munge key, daemons). Installs Debian's slurm-wlm and munge if missing.
#   scripts/slurm/start_cluster.sh        # start (idempotent: a running cluster is left alone)
#   scripts/slurm/stop_cluster.sh         # stop what this script started, remove the slurm.conf it wrote
# State, logs and pid files: $MATHPIPE_SLURM_STATE (default /tmp/mathpipe-slurm). The config goes to
# /etc/slurm/slurm.conf (where the Slurm commands look for it), rendered from slurm.conf.in beside this file.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
STATE=${MATHPIPE_SLURM_STATE:-/tmp/mathpipe-slurm}
CONF=/etc/slurm/slurm.conf

die() { echo "start_cluster: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (munge key, slurmctld/slurmd run as root here)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  echo "start_cluster: installing slurm-wlm and munge (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
    || die "apt-get install slurm-wlm munge failed (run apt-get update first?)"
fi

if sinfo -h -o %T 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'; then
  echo "start_cluster: a cluster is already up:"; sinfo; exit 0
fi

mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm /run/munge /var/log/munge /var/lib/munge
# munge: a key once, then the daemon (as the munge user, as Debian's unit does).
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile /etc/munge/munge.key 2>/dev/null \
    || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key; chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- munged --pid-file /run/munge/munged.pid
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
  munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# A slurm.conf this project did not render (first line differs from slurm.conf.in) is someone's real
# cluster configuration: refuse to overwrite it.
if [ -f "$CONF" ] && [ "$(head -n 1 "$CONF")" != "$(head -n 1 "$HERE/slurm.conf.in")" ]; then
  die "$CONF exists and was not written by this script; move it away to start the test cluster"
fi
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 1024 ))
sed -e "s|@HOST@|$HOST|g" -e "s|@STATE@|$STATE|g" -e "s|@CPUS@|$CPUS|g" -e "s|@MEM_MB@|$MEM_MB|g" \
    -e "s|@CTLD_PORT@|${MATHPIPE_SLURMCTLD_PORT:-6817}|g" -e "s|@D_PORT@|${MATHPIPE_SLURMD_PORT:-6818}|g" \
    "$HERE/slurm.conf.in" > "$CONF"
# slurmd refuses a node whose hardware differs from the config; print what it sees, for the log.
slurmd -C | head -1

slurmctld -i   # -i: ignore state left by an earlier run
slurmd
for _ in $(seq 60); do
  state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1 || true)
  case "$state" in
    idle|mixed|allocated) echo "start_cluster: node $HOST is $state"; sinfo; exit 0 ;;
    down*|drain*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
  esac
  sleep 1
done
echo "start_cluster: node $HOST did not come up (state: ${state:-none}); last log lines:" >&2
tail -n 20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
exit 1
