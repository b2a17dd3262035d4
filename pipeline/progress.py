"""Console progress for long workflow runs: every `interval` seconds, one line per running job.

Snakemake prints a line when a job starts or ends; a job itself writes to its log (tqdm bars, step lines)
under results/<name>/logs/. Between job ends the console would stay silent for minutes, so the workflow
starts a `ProgressReporter` (Snakefile `onstart:`) that prints, for each log written to in the last
interval, the job's name and the last thing it wrote:

    [progress 15:32:10, 6 min] sft/mined: sft:  41%|####1  | 148/360 [01:02<01:29, 2.37it/s]
    [progress 15:32:10, 6 min] eval/pretrain/world_gsm8k: generate world_gsm8k:  38%|###8 | 3/8 [00:21<00:35]
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

TAIL_BYTES = 4096
WIDTH = 160


def last_status(path: Path) -> str:
    """The last non-empty line or tqdm refresh (segments end in \\n or \\r) of a log, shortened."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - TAIL_BYTES))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    parts = [p.strip() for p in tail.replace("\r", "\n").split("\n") if p.strip()]
    line = parts[-1] if parts else ""
    return line if len(line) <= WIDTH else line[:WIDTH - 1] + "…"


class ProgressReporter(threading.Thread):
    """A daemon thread printing the running jobs' last log lines every `interval` seconds."""

    def __init__(self, logs: str | os.PathLike, interval: float = 30.0, stream: TextIO | None = None):
        super().__init__(name="mathpipe-progress", daemon=True)
        self.logs, self.interval, self.stream = Path(logs), float(interval), stream or sys.stderr
        self.started = time.time()
        self._halt = threading.Event()

    def active(self, now: float | None = None) -> list[tuple[str, str]]:
        """(job, last line) of every log under `logs` written to since the last report (and since start)."""
        now = time.time() if now is None else now
        since = max(self.started, now - self.interval)
        out = []
        for path in sorted(self.logs.rglob("*.log")) if self.logs.is_dir() else []:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if mtime >= since:
                out.append((str(path.relative_to(self.logs).with_suffix("")), last_status(path)))
        return out

    def report(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        stamp = f"[progress {time.strftime('%H:%M:%S', time.localtime(now))}, {(now - self.started) / 60:.0f} min]"
        lines = [f"{stamp} {job}: {status}" for job, status in self.active(now)]
        if not lines:
            lines = [f"{stamp} no job wrote to its log in the last {self.interval:.0f} s"]
        for line in lines:
            print(line, file=self.stream, flush=True)
        return lines

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.report()

    def stop(self) -> None:
        self._halt.set()


def start(logs: str | os.PathLike, interval: float | None = None) -> ProgressReporter:
    """Start reporting (MATHPIPE_PROGRESS_S sets the interval; 0 turns it off)."""
    interval = float(os.environ.get("MATHPIPE_PROGRESS_S", interval or 30.0))
    reporter = ProgressReporter(logs, interval=interval or 30.0)
    if interval > 0:
        reporter.start()
    return reporter
