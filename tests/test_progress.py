"""Console progress: every interval, the running jobs' last log lines (tqdm refreshes included)."""

import io
import os
import time

from pipeline.progress import ProgressReporter, last_status


def test_last_status_takes_the_last_tqdm_refresh(tmp_path):
    log = tmp_path / "sft" / "mined.log"
    log.parent.mkdir()
    log.write_text("2026 INFO sft: 240 examples\nsft:  10%|#   | 36/360\rsft:  41%|####1  | 148/360\r")
    assert last_status(log) == "sft:  41%|####1  | 148/360"
    log.write_text("x" * 500 + "\n")
    assert len(last_status(log)) == 160 and last_status(log).endswith("…")
    assert last_status(tmp_path / "missing.log") == ""


def test_reports_only_jobs_written_to_in_the_last_interval(tmp_path):
    logs = tmp_path / "logs"
    (logs / "eval" / "rl").mkdir(parents=True)
    busy, idle = logs / "eval" / "rl" / "world_math.log", logs / "world_web.log"
    busy.write_text("generate world_math:  38%|###8 | 3/8\r")
    idle.write_text("done\n")
    reporter = ProgressReporter(logs, interval=30, stream=io.StringIO())
    now = time.time()
    os.utime(idle, (now - 120, now - 120))  # finished two minutes ago
    reporter.started = now - 600
    lines = reporter.report(now)
    assert len(lines) == 1 and lines[0].endswith("eval/rl/world_math: generate world_math:  38%|###8 | 3/8")
    assert lines[0].startswith("[progress ") and ", 10 min]" in lines[0]
    os.utime(busy, (now - 120, now - 120))
    assert "no job wrote to its log in the last 30 s" in reporter.report(now)[0]
    assert "world_math" in reporter.stream.getvalue()


def test_the_thread_prints_every_interval_and_stops(tmp_path):
    (tmp_path / "a.log").write_text("step 1\n")
    out = io.StringIO()
    reporter = ProgressReporter(tmp_path, interval=0.2, stream=out)
    reporter.started -= 1
    reporter.start()
    time.sleep(0.7)
    reporter.stop()
    reporter.join(2)
    assert not reporter.is_alive()
    assert out.getvalue().count("[progress ") >= 2
