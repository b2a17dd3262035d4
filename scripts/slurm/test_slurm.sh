#!/usr/bin/env bash
# `make test-slurm`: config/smoke.yaml end to end through the Slurm executor (config/profiles/slurm) on
# the cluster scripts/slurm/start_cluster.sh started, then the same config run locally, and
# compare_runs.py on the two. Both runs go under results/test-slurm/ (results_root override); the Slurm
# run's job ids and the wall times are printed at the end.
# There is no accounting database on the test cluster, so the executor polls job states with squeue.
set -euo pipefail
cd "$(dirname "$0")/../.."
SNAKEMAKE=${SNAKEMAKE:-.venv/bin/snakemake}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${MATHPIPE_TEST_SLURM_OUT:-results/test-slurm}
rm -rf "$OUT"
mkdir -p "$OUT"

t0=$(date +%s)
"$SNAKEMAKE" --configfile config/smoke.yaml --profile config/profiles/slurm --jobs "${JOBS:-2}" \
  --config "results_root=$OUT/slurm" --slurm-status-command squeue \
  --slurm-logdir "$OUT/slurm-logs" --slurm-keep-successful-logs > "$OUT/slurm.log" 2>&1 \
  || { tail -n 60 "$OUT/slurm.log"; echo "test-slurm: the Slurm run failed (log: $OUT/slurm.log)"; exit 1; }
t1=$(date +%s)
"$SNAKEMAKE" --configfile config/smoke.yaml --profile config/profiles/local --cores "${CORES:-2}" \
  --config "results_root=$OUT/local" > "$OUT/local.log" 2>&1 \
  || { tail -n 60 "$OUT/local.log"; echo "test-slurm: the local run failed (log: $OUT/local.log)"; exit 1; }
t2=$(date +%s)

jobs=$(grep -c "Job .* has been submitted with SLURM jobid" "$OUT/slurm.log" || true)
echo "test-slurm: Slurm run $((t1 - t0)) s, $jobs sbatch jobs; local run $((t2 - t1)) s"
squeue -t all -h -o "%i %j %T %M %P %C" | head -n 200 > "$OUT/squeue.txt" || true
"$PYTHON" scripts/slurm/compare_runs.py "$OUT/local/smoke" "$OUT/slurm/smoke"
