#!/usr/bin/env bash
# `make test-slurm`: config/smoke.yaml end to end through the Slurm executor (config/profiles/slurm) on
# the cluster scripts/slurm/start_cluster.sh started, then the same config run locally, and
# compare_runs.py on the two. Both runs go under results/test-slurm/ (results_root override); the wall
# times, the number of sbatch jobs and where each job's time went (job_times.py) are printed at the end.
# There is no accounting database on the test cluster, so the executor polls job states with squeue.
#
# Status polling, for this test only (the production profile keeps the plugin's defaults, which suit a
# shared cluster's controller): the plugin (2.8.0) sleeps `init_seconds_before_status_checks` (default
# 40 s) between squeue polls, adds 10 s after every poll in which no job finished (capped at 180 s) and
# goes back to the initial value when one did. With the defaults each smoke job was seen finished 24-41 s
# after its Slurm job ended (results of the 2026-12-05 run, docs/scale.md "Slurm"); here one squeue call
# on a one-node cluster costs ~20 ms, so polling every second is free. The 10 s growth is hard-coded.
#
# MATHPIPE_TEST_SLURM_REV=<commit> runs both from a clone of that commit (under $OUT/src) instead of the
# working tree: on a machine where others edit the code, a file changed between the two runs (or during
# the Slurm run, whose every job parses the Snakefile afresh) makes the comparison meaningless. A clone,
# not an exported tree, so that the run records' git_commit is that commit (pipeline/io.py asks git from
# the code's folder). The clone comes first on PYTHONPATH (sbatch passes the environment on), ahead of
# the editable install.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
abs() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
SNAKEMAKE=$(abs "${SNAKEMAKE:-.venv/bin/snakemake}")
PYTHON=$(abs "${PYTHON:-.venv/bin/python}")
OUT=$(abs "${MATHPIPE_TEST_SLURM_OUT:-results/test-slurm}")
POLL_S=${MATHPIPE_TEST_SLURM_POLL_S:-1}
STATE=${MATHPIPE_SLURM_STATE:-/tmp/mathpipe-slurm}
rm -rf "$OUT"
mkdir -p "$OUT"
if [ -n "${MATHPIPE_TEST_SLURM_REV:-}" ]; then
  rev=$(git rev-parse --verify "$MATHPIPE_TEST_SLURM_REV^{commit}")
  git clone --quiet --shared --no-checkout "$ROOT" "$OUT/src"
  git -C "$OUT/src" checkout --quiet --detach "$rev"
  echo "test-slurm: running from $rev in $OUT/src"
  cd "$OUT/src"
  export PYTHONPATH="$OUT/src${PYTHONPATH:+:$PYTHONPATH}"
fi

t0=$(date +%s)
"$SNAKEMAKE" --configfile config/smoke.yaml --profile config/profiles/slurm --jobs "${JOBS:-2}" \
  --config "results_root=$OUT/slurm" --slurm-status-command squeue \
  --slurm-init-seconds-before-status-checks "$POLL_S" --seconds-between-status-checks "$POLL_S" \
  --slurm-logdir "$OUT/slurm-logs" --slurm-keep-successful-logs > "$OUT/slurm.log" 2>&1 \
  || { tail -n 60 "$OUT/slurm.log"; echo "test-slurm: the Slurm run failed (log: $OUT/slurm.log)"; exit 1; }
t1=$(date +%s)
"$SNAKEMAKE" --configfile config/smoke.yaml --profile config/profiles/local --cores "${CORES:-2}" \
  --config "results_root=$OUT/local" > "$OUT/local.log" 2>&1 \
  || { tail -n 60 "$OUT/local.log"; echo "test-slurm: the local run failed (log: $OUT/local.log)"; exit 1; }
t2=$(date +%s)

jobs=$(grep -c "Job .* has been submitted with SLURM jobid" "$OUT/slurm.log" || true)
echo "test-slurm: Slurm run $((t1 - t0)) s, $jobs sbatch jobs; local run $((t2 - t1)) s" | tee "$OUT/summary.txt"
squeue -t all -h -o "%i %j %T %M %P %C" > "$OUT/squeue.txt" || true
"$PYTHON" "$ROOT/scripts/slurm/job_times.py" "$OUT/slurm.log" "$OUT/slurm-logs" --ctld-log "$STATE/slurmctld.log" \
  | tee -a "$OUT/summary.txt" || echo "test-slurm: job_times.py failed (the comparison still runs)"
"$PYTHON" "$ROOT/scripts/slurm/compare_runs.py" "$OUT/local/smoke" "$OUT/slurm/smoke" | tee -a "$OUT/summary.txt"
exit "${PIPESTATUS[0]}"
