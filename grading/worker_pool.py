"""Hard time limits for symbolic grading: a pool of worker processes, killed and replaced on timeout.

Sympy can run for hours or allocate without bound on a hostile answer (10^{10^{10}}, a 100k-digit
factorial), inside C code that no Python-level alarm can interrupt; `signal.alarm` also works only in
the main thread. So each slow-path comparison runs in a separate process with a deadline: when it
passes, the parent SIGKILLs the worker's process group, records a timeout for that pair and starts a
replacement, while the other workers go on. Workers cap their own address space (RLIMIT_AS), so a
memory bomb becomes a MemoryError there instead of swapping the machine.

Workers are plain `python -c` subprocesses speaking JSON lines over pipes (no multiprocessing: no
re-import of the caller's __main__, no pickling, safe to use from any thread and after fork). The
pool is persistent, so RL can grade every step without paying sympy's import again.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

log = logging.getLogger(__name__)

TIMEOUT = "timeout"  # the result of a comparison that ran out of time (or crashed its worker)
STARTUP_TIMEOUT_S = 120.0
WORKER_MEMORY_MB = 3072
_ROOT = Path(__file__).resolve().parent.parent


class _Worker:
    def __init__(self, memory_mb: int):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "OPENBLAS_"))}
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")])))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"from grading.worker_pool import serve; serve({int(memory_mb)})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, cwd=str(_ROOT), start_new_session=True,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buffer = b""
        self.ready = False
        self.started = time.monotonic()
        self.task: int | None = None
        self.deadline = 0.0

    def send(self, message: dict) -> None:
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def read_lines(self) -> list[dict] | None:
        """Complete JSON lines available now; None at end of file (the worker died)."""
        try:
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.proc.wait()


class WorkerPool:
    """`run(pairs, timeout)` -> per pair the worker's answer dict, or TIMEOUT."""

    def __init__(self, memory_mb: int = WORKER_MEMORY_MB):
        self.memory_mb = memory_mb
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def run(self, tasks: list[dict], *, workers: int, timeout: float) -> list[dict | str]:
        if not tasks:
            return []
        with self._lock:
            return self._run(tasks, max(1, min(workers, len(tasks))), timeout)

    def _run(self, tasks: list[dict], n: int, timeout: float) -> list[dict | str]:
        while len(self._workers) < n:
            self._workers.append(_Worker(self.memory_mb))
        active = self._workers[:n]
        results: list[dict | str | None] = [None] * len(tasks)
        pending = deque(range(len(tasks)))
        done = 0
        with selectors.DefaultSelector() as sel:
            for w in active:
                sel.register(w.proc.stdout, selectors.EVENT_READ, w)
            while done < len(tasks):
                for w in active:
                    if w.ready and w.task is None and pending:
                        i = pending.popleft()
                        try:
                            w.send({"id": i, **tasks[i]})
                        except (BrokenPipeError, OSError):
                            pending.appendleft(i)
                            self._replace(w, active, sel)
                            continue
                        w.task, w.deadline = i, time.monotonic() + timeout
                now = time.monotonic()
                waits = [w.deadline - now for w in active if w.task is not None]
                waits += [w.started + STARTUP_TIMEOUT_S - now for w in active if not w.ready]
                for key, _ in sel.select(max(0.0, min(waits, default=1.0))):
                    w = key.data
                    lines = w.read_lines()
                    if lines is None:  # died: a crash counts as running out of resources
                        if w.task is not None:
                            log.warning("grader worker died on pair %d; counted as a timeout", w.task)
                            results[w.task], done = TIMEOUT, done + 1
                            w.task = None
                        elif not w.ready:
                            raise RuntimeError("a grader worker exited during start-up (cannot import grading.sympy_compare?)")
                        self._replace(w, active, sel)
                        continue
                    for msg in lines:
                        if "fatal" in msg:
                            raise RuntimeError(f"grader worker failed to start: {msg['fatal']}")
                        if msg.get("ready"):
                            w.ready = True
                        elif msg.get("id") == w.task:
                            results[w.task], done, w.task = msg, done + 1, None
                now = time.monotonic()
                for w in list(active):
                    if w.task is not None and now > w.deadline:
                        log.info("grading pair %d exceeded %.1fs; killing its worker", w.task, timeout)
                        results[w.task], done = TIMEOUT, done + 1
                        w.task = None
                        self._replace(w, active, sel)
                    elif not w.ready and now > w.started + STARTUP_TIMEOUT_S:
                        raise RuntimeError(f"a grader worker did not start within {STARTUP_TIMEOUT_S:.0f}s")
        return results  # type: ignore[return-value]

    def _replace(self, w: _Worker, active: list[_Worker], sel: selectors.BaseSelector) -> None:
        try:
            sel.unregister(w.proc.stdout)
        except (KeyError, ValueError):
            pass
        w.kill()
        fresh = _Worker(self.memory_mb)
        active[active.index(w)] = fresh
        self._workers[self._workers.index(w)] = fresh
        sel.register(fresh.proc.stdout, selectors.EVENT_READ, fresh)

    def close(self) -> None:
        if os.getpid() != self._pid:  # a forked child must not kill its parent's workers
            return
        for w in self._workers:
            w.kill()
        self._workers.clear()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def shared_pool() -> WorkerPool:
    """The process-wide pool (created on first use; a forked child gets its own)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._pid != os.getpid():
            _POOL = WorkerPool()
            atexit.register(_POOL.close)
        return _POOL


def serve(memory_mb: int = WORKER_MEMORY_MB) -> None:
    """Worker main loop: self-test, then answer {"id", "pred", "gold"} lines until stdin closes."""
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = sys.stdout
    try:
        from grading.equivalence import compare, gold_parses
        from grading.sympy_compare import self_test

        self_test()
    except Exception as e:  # report why, then exit: the pool raises with this message
        out.write(json.dumps({"fatal": f"{type(e).__name__}: {e}"}) + "\n")
        out.flush()
        return
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        task = json.loads(line)
        reply = {"id": task["id"]}
        try:
            reply["eq"] = bool(compare(task["pred"], task["gold"], use_sympy=True))
            if not reply["eq"] and task.get("check_gold"):
                reply["gold_ok"] = gold_parses(task["gold"])
        except (MemoryError, RecursionError) as e:  # out of resources: reported like a timeout
            reply.update(eq=False, exhausted=True, error=type(e).__name__)
        except Exception as e:  # sympy internals failing on odd input: not equal
            reply.update(eq=False, error=f"{type(e).__name__}: {str(e)[:200]}")
        out.write(json.dumps(reply) + "\n")
        out.flush()
