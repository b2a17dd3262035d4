"""scripts/slurm: job_times.py splits an sbatch job's time into phases from the logs; compare_runs.py calls
two runs equal on their deterministic outputs. Logs and outputs below are written by hand."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "slurm" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


job_times = _load("job_times")
compare_runs = _load("compare_runs")


def _write_logs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """One sbatch job: submitted 10:00:00, slurmctld allocates at :01.0 and completes it at :40.0; the outer
    Snakemake starts at :03 and starts job 0 at :15, the srun'd one starts the rule at :28, which ends at :33;
    the outer one ends at :36 and the submitting Snakemake sees it at :52."""
    job_log = tmp_path / "logs" / "rule_world_web" / "7.log"
    job_log.parent.mkdir(parents=True)
    main_log = tmp_path / "slurm.log"
    main_log.write_text(
        "[Sat Dec  5 10:00:00 2026]\n"
        "Job 13: Generating the web\n"
        "Reason: Missing output files\n"
        f"Job 13 has been submitted with SLURM jobid 7 (log: {job_log}).\n"
        "[progress 10:00:30, 1 min] world_web: writing\n"
        "[Sat Dec  5 10:00:52 2026]\n"
        "Finished jobid: 13 (Rule: world_web)\n"
        "2 of 46 steps (4%) done\n")
    job_log.write_text(
        "\nSNAKEMAKE\n=========\n  Date: 2026-12-05 10:00:03\n  Workflow ID: a\n\nBuilding DAG of jobs...\n"
        "[Sat Dec  5 10:00:15 2026]\nJob 0: Generating the web\nReason: Forced execution\n"
        "srun: cluster configuration lacks support for cpu binding\n"
        "\nSNAKEMAKE\n=========\n  Date: 2026-12-05 10:00:19\n\nBuilding DAG of jobs...\n"
        "[Sat Dec  5 10:00:28 2026]\nJob 0: Generating the web\nReason: Forced execution\n"
        "[Sat Dec  5 10:00:33 2026]\nFinished jobid: 0 (Rule: world_web)\n1 of 1 steps (100%) done\n"
        "Elapsed time: 0:00:14.0\n"
        "[Sat Dec  5 10:00:36 2026]\nFinished jobid: 0 (Rule: world_web)\n1 of 1 steps (100%) done\n")
    ctld_log = tmp_path / "slurmctld.log"
    ctld_log.write_text(
        # a job of an earlier run with the same id (ids restart with `slurmctld -i`): ignored
        "[2026-12-05T09:00:00.000] _slurm_rpc_submit_batch_job: JobId=7 InitPrio=1 usec=300\n"
        "[2026-12-05T10:00:00.500] _slurm_rpc_submit_batch_job: JobId=7 InitPrio=1 usec=300\n"
        "[2026-12-05T10:00:01.000] sched/backfill: _start_job: Started JobId=7 in cpu on vm\n"
        "[2026-12-05T10:00:40.000] _job_complete: JobId=7 WEXITSTATUS 0\n"
        "[2026-12-05T10:00:40.000] _job_complete: JobId=7 done\n")
    return main_log, job_log.parent.parent, ctld_log


def _row(lines: list[str], slurm_id: str) -> dict[str, float]:
    row = next(line.split() for line in lines if line.split()[:1] == [slurm_id])
    return dict(zip(job_times.PHASES, map(float, row[2:])))


def test_job_phases_with_the_controller_log(tmp_path):
    main_log, logs, ctld_log = _write_logs(tmp_path)
    row = _row(job_times.report(main_log, logs, ctld_log), "7")
    assert row == {"queue": 0.5, "outer": 14.0, "inner": 13.0, "rule": 5.0, "teardown": 7.0, "seen": 12.0,
                   "overhead": 47.0, "total": 52.0}


def test_job_phases_from_the_job_log_alone(tmp_path):
    main_log, logs, _ = _write_logs(tmp_path)
    row = _row(job_times.report(main_log, logs, None), "7")
    # start = the outer Snakemake's start stamp (:03), end = its last "Finished" (:36)
    assert math.isnan(row["queue"])
    assert (row["outer"], row["teardown"], row["seen"], row["total"]) == (12.0, 3.0, 16.0, 52.0)


def test_copied_logs_are_found_by_job_id_and_broken_ones_reported(tmp_path):
    main_log, logs, ctld_log = _write_logs(tmp_path)
    moved = tmp_path / "copy"
    logs.rename(moved)
    assert _row(job_times.report(main_log, moved, ctld_log), "7")["rule"] == 5.0
    (moved / "rule_world_web" / "7.log").write_text("ImportError in file Snakefile\n")
    lines = job_times.report(main_log, moved, ctld_log)
    assert any("skipped" in line and "7.log" in line and "0 start-ups" in line for line in lines)


def _run(root: Path, loss: float, seconds: float, rows: list[int], score: float = float("nan")) -> Path:
    """A run folder under root/<results_root>/smoke whose records name their own results root."""
    run = root / "smoke"
    (run / "world" / "web").mkdir(parents=True)
    (run / "world" / "web" / "seed.jsonl").write_text('{"url": "a"}\n')
    (run / "corpus" / "final").mkdir(parents=True)
    pq.write_table(pa.table({"id": rows, "score": [score] * len(rows)}), run / "corpus" / "final" / "part-0.parquet")
    (run / "eval" / "sft").mkdir(parents=True)
    (run / "eval" / "sft" / "metrics.json").write_text(json.dumps(
        {"acc": 0.25, "n": 16, "wall_seconds": seconds, "model": f"{root}/smoke/sft/model", "timeout_s": 5}))
    (run / "sft").mkdir()
    (run / "sft" / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": loss, "step_s": seconds}) + "\n")
    (run / "sft" / "resume_key.json").write_text(json.dumps({"key": str(root)}))
    (run / "rl").mkdir()
    (run / "rl" / "run.json").write_text(json.dumps(
        {"time": f"12:{seconds}", "summary": {"skipped": {f"{root}/smoke/rl.jsonl": 0}, "step_s_mean": seconds,
                                              "peak_rss_mb": seconds * 10, "prompts_per_step": 4}}))
    (run / "logs").mkdir()
    (run / "logs" / "sft.log").write_text(f"took {seconds} s\n")
    return run


def test_equal_runs_differ_only_in_paths_measurements_and_float_noise(tmp_path):
    a = _run(tmp_path / "local", loss=2.0, seconds=10.0, rows=[1, 2])
    b = _run(tmp_path / "slurm", loss=2.0 * (1 + 5e-7), seconds=99.0, rows=[1, 2])
    c, counts = compare_runs.compare(a, b)
    assert c.diffs == []
    # compared: seed.jsonl (bytes), part-0.parquet (table, NaN scores), metrics.json, metrics.jsonl, run.json
    assert counts == {"bytes": 1, "parquet": 1, "records": 3, "skipped": 2}
    assert c.inexact_floats == 1  # the loss
    assert c.ignored_keys == {"wall_seconds", "step_s", "time", "step_s_mean", "peak_rss_mb"}


def test_different_runs_are_reported(tmp_path):
    a = _run(tmp_path / "local", loss=2.0, seconds=10.0, rows=[1, 2])
    b = _run(tmp_path / "slurm", loss=2.0 * (1 + 1e-5), seconds=10.0, rows=[1, 3], score=0.5)
    (b / "world" / "web" / "extra.jsonl").write_text("{}\n")
    metrics = json.loads((b / "eval" / "sft" / "metrics.json").read_text())
    metrics.update(timeout_s=6, model=f"{tmp_path}/local/smoke/sft/model")  # a setting; the other run's path
    (b / "eval" / "sft" / "metrics.json").write_text(json.dumps(metrics))
    (b / "rl" / "run.json").write_text((b / "rl" / "run.json").read_text().replace('"prompts_per_step": 4',
                                                                                  '"prompts_per_step": 8'))
    c, _ = compare_runs.compare(a, b)
    assert sorted(d.split(":")[0] for d in c.diffs) == [
        "corpus/final/part-0.parquet", "eval/sft/metrics.json.model", "eval/sft/metrics.json.timeout_s",
        "rl/run.json.summary.prompts_per_step", "sft/metrics.jsonl[0].loss", "world/web/extra.jsonl"]
    assert any(d.startswith("world/web/extra.jsonl: only in") and str(b) in d for d in c.diffs)
