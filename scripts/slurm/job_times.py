"""Where each Slurm job's time went, from the logs a Slurm-executor run leaves (scripts/slurm/test_slurm.sh).

    python scripts/slurm/job_times.py results/test-slurm/slurm.log results/test-slurm/slurm-logs \\
        [--ctld-log /tmp/mathpipe-slurm/slurmctld.log]

Each job of snakemake-executor-plugin-slurm runs Snakemake twice: the sbatch script starts `snakemake
--executor slurm-jobstep`, which parses the workflow and starts the rule through `srun ... snakemake`, which
parses it again and runs the rule. Phases, per sbatch job (seconds; Snakemake's log stamps are whole seconds):

- queue:    slurmctld got the job -> allocated it (needs --ctld-log)
- outer:    allocated (or the job log's first start stamp) -> the outer Snakemake starts job 0 (Python start,
            imports, Snakefile parse, DAG)
- inner:    -> the srun'd Snakemake starts the rule (srun step launch, the same start-up again)
- rule:     the rule itself, as the inner Snakemake stamps it
- teardown: rule done -> slurmctld records the job complete (needs --ctld-log; else the outer Snakemake's end)
- seen:     -> the submitting Snakemake logs "Finished jobid" (the executor's status polling)
- overhead: submit -> seen, minus rule

Jobs without a job log (localrules, run in the submitting process) are not sbatch jobs and are left out.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
SUBMITTED = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")
HEADER_DATE = re.compile(r"^\s+Date: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$")
CTLD = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\] (.*)$")
CTLD_EVENTS = {
    "submit": re.compile(r"_slurm_rpc_submit_batch_job: JobId=(\d+) "),
    "start": re.compile(r"(?:Allocate|Started) JobId=(\d+) "),
    "end": re.compile(r"_job_complete: JobId=(\d+) done"),
}
PHASES = ["queue", "outer", "inner", "rule", "teardown", "seen", "overhead", "total"]


def _snakemake_time(text: str) -> datetime:
    return datetime.strptime(text, "%a %b %d %H:%M:%S %Y")


def parse_main_log(path: Path) -> list[dict]:
    """Submitted jobs: Snakemake job id, Slurm job id, rule log, submit and finished stamps."""
    jobs: dict[str, dict] = {}
    finished: dict[str, datetime] = {}
    stamp = None
    for line in path.read_text().splitlines():
        if m := STAMP.match(line.strip()):
            stamp = _snakemake_time(m.group(1))
        elif m := SUBMITTED.match(line.strip()):
            jobs[m.group(2)] = {"job": m.group(1), "slurm_id": m.group(2), "log": Path(m.group(3)),
                                "submitted": stamp}
        elif m := FINISHED.match(line.strip()):
            finished[m.group(1)] = stamp
            for j in jobs.values():
                if j["job"] == m.group(1) and "seen" not in j:
                    j["seen"], j["rule"] = stamp, m.group(2)
    return list(jobs.values())


def parse_job_log(path: Path) -> dict[str, datetime]:
    """Stamps in one sbatch job's log: both Snakemake start-ups, the rule's start and end."""
    starts, job0, done = [], [], []
    stamp = None
    for line in path.read_text(errors="replace").splitlines():
        if m := HEADER_DATE.match(line):
            starts.append(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
        elif m := STAMP.match(line.strip()):
            stamp = _snakemake_time(m.group(1))
        elif line.startswith("Job 0: ") and stamp is not None:
            job0.append(stamp)
        elif line.startswith("Finished jobid: 0 ") and stamp is not None:
            done.append(stamp)
    if len(starts) < 2 or len(job0) < 2 or not done:
        raise ValueError(f"{path}: not a complete two-level job log ({len(starts)} start-ups, "
                         f"{len(job0)} job starts, {len(done)} ends)")
    return {"outer_start": starts[0], "outer_job0": job0[0], "rule_start": job0[1], "rule_end": done[0],
            "outer_end": done[-1]}


def parse_ctld_log(path: Path, since: datetime) -> dict[str, dict[str, datetime]]:
    """submit/start/end per Slurm job id, from events at or after `since` (job ids restart with `-i`)."""
    events: dict[str, dict[str, datetime]] = {}
    for line in path.read_text(errors="replace").splitlines():
        m = CTLD.match(line)
        if not m:
            continue
        when = datetime.fromisoformat(m.group(1))
        if when < since:
            continue
        for name, pattern in CTLD_EVENTS.items():
            if e := pattern.search(m.group(2)):
                events.setdefault(e.group(1), {})[name] = when
    return events


def job_phases(job: dict, log: dict[str, datetime], ctld: dict[str, datetime] | None) -> dict[str, float]:
    def secs(a: datetime, b: datetime) -> float:
        return (b - a).total_seconds()

    start = ctld["start"] if ctld and "start" in ctld else log["outer_start"]
    end = ctld["end"] if ctld and "end" in ctld else log["outer_end"]
    out = {
        "queue": secs(ctld["submit"], ctld["start"]) if ctld and {"submit", "start"} <= set(ctld) else float("nan"),
        "outer": secs(start, log["outer_job0"]),
        "inner": secs(log["outer_job0"], log["rule_start"]),
        "rule": secs(log["rule_start"], log["rule_end"]),
        "teardown": secs(log["rule_end"], end),
        "seen": secs(end, job["seen"]),
        "total": secs(job["submitted"], job["seen"]),
    }
    out["overhead"] = out["total"] - out["rule"]
    return out


def _job_log(job: dict, job_logs: Path) -> Path:
    """The recorded log path, or the job's `<slurm id>.log` under job_logs (logs copied elsewhere)."""
    if job["log"].is_file():
        return job["log"]
    found = sorted(job_logs.rglob(f"{job['slurm_id']}.log"))
    return found[0] if found else job["log"]


def report(main_log: Path, job_logs: Path, ctld_log: Path | None) -> list[str]:
    jobs = [j for j in parse_main_log(main_log) if "seen" in j]
    if not jobs:
        return [f"{main_log}: no finished sbatch jobs"]
    ctld = parse_ctld_log(ctld_log, min(j["submitted"] for j in jobs)) if ctld_log else {}
    lines = [f"{'slurm id':>8} {'rule':<24} " + " ".join(f"{p:>8}" for p in PHASES)]
    rows, skipped = [], []
    for job in sorted(jobs, key=lambda j: int(j["slurm_id"])):
        try:
            phases = job_phases(job, parse_job_log(_job_log(job, job_logs)), ctld.get(job["slurm_id"]))
        except (OSError, ValueError) as e:
            skipped.append(str(e))
            continue
        rows.append(phases)
        lines.append(f"{job['slurm_id']:>8} {job['rule']:<24} " + " ".join(f"{phases[p]:8.1f}" for p in PHASES))
    for name, fn in (("median", statistics.median), ("mean", statistics.fmean)):
        if rows:
            lines.append(f"{'':>8} {name:<24} " + " ".join(f"{fn([r[p] for r in rows]):8.1f}" for p in PHASES))
    if rows:
        lines.append(f"job_times: {len(rows)} sbatch jobs; rules {sum(r['rule'] for r in rows):.0f} s in all, "
                     f"overhead {sum(r['overhead'] for r in rows):.0f} s in all "
                     f"(median {statistics.median(r['overhead'] for r in rows):.1f} s per job)")
    lines += [f"job_times: skipped {s}" for s in skipped]
    return lines


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("main_log", type=Path, help="the submitting Snakemake's log")
    ap.add_argument("job_logs", type=Path, help="--slurm-logdir of the run (kept with --slurm-keep-successful-logs)")
    ap.add_argument("--ctld-log", type=Path, help="slurmctld's log, for queue and completion stamps")
    args = ap.parse_args(argv)
    ctld_log = args.ctld_log if args.ctld_log and args.ctld_log.is_file() else None
    for line in report(args.main_log, args.job_logs, ctld_log):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
