"""Launching a stage on 2 processes as the workflow does, for the multi-process tests
(tests/test_distributed.py, tests/test_distributed_rl.py)."""

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil  # accelerate's own dependency: the launch's process tree
import pytest

ROOT = Path(__file__).resolve().parents[1]
DDP = ROOT / "config" / "accelerate" / "ddp.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch2(module: str, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file config/accelerate/ddp.yaml --num_processes 2 -m <module>`, as
    pipeline/rules/common.smk `launcher()` writes it (plus a free port, so parallel tests do not meet).
    A launch still running after `timeout` seconds (a hang: a rank waiting in a collective the other never
    joins) fails the test; the launcher and every process below it are killed, so no worker is left waiting
    (torchrun starts each worker in a session of its own, out of reach of a process-group kill, and a live
    worker holds the output pipes open)."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP), "--num_processes", "2",
           "--main_process_port", str(_free_port()), "-m", module, *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        launcher = psutil.Process(proc.pid)
        for p in [*launcher.children(recursive=True), launcher]:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        out, err = proc.communicate()
        pytest.fail(f"`accelerate launch -m {module}` did not finish in {timeout:.0f} s (a hang?):\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
