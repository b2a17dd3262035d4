"""Hard time limits: a pool of worker processes that are killed and replaced when a task runs too long.

Grading model text can run without bound: sympy on `10^{10^{10}}` or a 100k-digit factorial, a regex
that backtracks catastrophically. Both run in C code that no Python-level alarm interrupts (and
`signal.alarm` works only in the main thread). So every task runs in a separate process: when its
deadline passes, the caller SIGKILLs that worker's process group, records TIMEOUT for the task, puts
the worker's queued tasks back and starts a replacement, while the other workers go on. Workers cap
their own address space (RLIMIT_AS), so a memory bomb becomes a MemoryError there.

Workers are plain `python -c` subprocesses speaking JSON lines over pipes (no multiprocessing: no
re-import of the caller's __main__, no pickling, safe from any thread and after fork). A worker runs
one *handler*, `module:function` taking a task dict and returning a reply dict (grading.grader's is
`handle`). The pool is persistent, so a caller that grades every RL step pays start-up once.

Concurrency: each `imap`/`run` call checks out up to `workers` idle workers (starting new ones while
the pool has fewer than `max_workers`), so calls from several threads run side by side; a call gives
a worker back as soon as it has nothing left for it.

Deadlines: a worker answers its tasks in order, one at a time, and up to WINDOW tasks are queued in
its pipe; the task at the head of the queue started when its predecessor's reply arrived (or when it
was sent to an idle worker), so each task gets exactly `timeout` seconds of its own. One-off start-up
work inside a task (a worker imports sympy the first time it needs it) is wrapped in `untimed()` and
does not count against the task.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import resource
import select
import selectors
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

TIMEOUT = "timeout"  # the result of a task that ran out of time (or crashed its worker)
STARTUP_TIMEOUT_S = 120.0  # for a worker to start, and for one `untimed()` block
WORKER_MEMORY_MB = 3072
WINDOW = 8  # tasks queued per worker: the worker never waits for the caller between tasks
IDLE_S = 0.05  # a worker idle this long runs its handler module's warm_up()
DEFAULT_HANDLER = "grading.grader:handle"
_ROOT = Path(__file__).resolve().parent.parent


class WorkerFatal(RuntimeError):
    """Raised by a handler when its worker cannot work at all (e.g. a failed self-test)."""


class _Worker:
    def __init__(self, handler: str, memory_mb: int):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "OPENBLAS_"))}
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")])))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"from grading.worker_pool import serve; serve({handler!r}, {int(memory_mb)})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, cwd=str(_ROOT), start_new_session=True,
        )
        self.out_fd, self.in_fd = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        os.set_blocking(self.out_fd, False)
        os.set_blocking(self.in_fd, False)
        self.started = time.monotonic()
        self.ready = False
        self.inflight: deque[int] = deque()  # task indices sent, in the order the worker answers them
        self.head_start = 0.0  # when the task at the head of `inflight` started
        self.untimed_since: float | None = None  # inside an untimed() block since
        self.outbuf = bytearray()
        self.inbuf = b""
        self.events = selectors.EVENT_READ

    def send(self, index: int, line: bytes) -> None:
        if not self.inflight:
            self.head_start = time.monotonic()
        self.inflight.append(index)
        self.outbuf += line

    def flush(self) -> None:
        """Write what the pipe takes now (never blocks: a stuck worker must not stall its caller)."""
        while self.outbuf:
            try:
                n = os.write(self.in_fd, self.outbuf)
            except BlockingIOError:
                return
            except (BrokenPipeError, OSError):  # it died; its end of file on stdout reports that
                self.outbuf.clear()
                return
            del self.outbuf[:n]

    def read_messages(self) -> list[dict] | None:
        """Complete JSON lines available now; None at end of file (the worker died)."""
        try:
            chunk = os.read(self.out_fd, 1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        self.inbuf += chunk
        *lines, self.inbuf = self.inbuf.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def deadline(self, timeout: float) -> float:
        if not self.ready:
            return self.started + STARTUP_TIMEOUT_S
        if not self.inflight:
            return float("inf")
        if self.untimed_since is not None:
            return self.untimed_since + STARTUP_TIMEOUT_S
        return self.head_start + timeout

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
    """`imap(tasks, workers, timeout)` yields (index, reply dict or TIMEOUT) as tasks finish."""

    def __init__(self, handler: str = DEFAULT_HANDLER, *, max_workers: int | None = None,
                 memory_mb: int = WORKER_MEMORY_MB):
        self.handler, self.memory_mb = handler, memory_mb
        self.max_workers = max_workers or max(8, os.cpu_count() or 1)
        self._idle: list[_Worker] = []
        self._live = 0  # idle + checked out
        self._cond = threading.Condition()
        self._closed = False
        self._pid = os.getpid()
        # Idle workers are killed when the pool is closed, collected, or the interpreter exits.
        self._finalize = weakref.finalize(self, _kill_all, self._idle, self._pid)

    # ---------------------------------------------------------------- workers in and out
    def _checkout(self, want: int, *, block: bool) -> list[_Worker]:
        """Up to `want` workers (idle ones first, new ones while the pool has room); waits for at
        least one when `block`."""
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the grading worker pool is closed")
                got = self._idle[-want:]
                del self._idle[len(self._idle) - len(got):]
                new = min(want - len(got), max(self.max_workers, want) - self._live)
                self._live += max(0, new)
                if got or new > 0 or not block:
                    break
                self._cond.wait()
        return got + [_Worker(self.handler, self.memory_mb) for _ in range(max(0, new))]

    def _checkin(self, w: _Worker, *, healthy: bool) -> None:
        """Back to the idle list; killed instead when it is mid-task, dead, or the pool is over size."""
        with self._cond:
            keep = healthy and not self._closed and w.proc.poll() is None and self._live <= self.max_workers
            if keep:
                self._idle.append(w)
            else:
                self._live -= 1
            self._cond.notify_all()
        if not keep:
            w.kill()

    # ---------------------------------------------------------------- running tasks
    def run(self, tasks: list[dict], *, workers: int = 1, timeout: float) -> list[dict | str]:
        """Per task its reply dict, or TIMEOUT; in task order."""
        results: list[dict | str | None] = [None] * len(tasks)
        for i, result in self.imap(tasks, workers=workers, timeout=timeout):
            results[i] = result
        return results  # type: ignore[return-value]

    def imap(self, tasks: list[dict], *, workers: int = 1, timeout: float) -> Iterator[tuple[int, dict | str]]:
        """(index, reply or TIMEOUT) for each task as it finishes, on up to `workers` processes."""
        if not tasks:
            return
        if os.getpid() != self._pid:
            raise RuntimeError("a WorkerPool cannot be used after fork; grading.worker_pool.shared_pool() makes one per process")
        want = max(1, min(workers, len(tasks)))
        pending = deque(range(len(tasks)))
        left = len(tasks)
        active: list[_Worker] = []
        sel = selectors.DefaultSelector()

        def add(ws: list[_Worker]) -> None:
            for w in ws:
                sel.register(w.out_fd, selectors.EVENT_READ, w)
                active.append(w)

        def drop(w: _Worker, *, healthy: bool) -> None:
            sel.unregister(w.out_fd)
            if w.events & selectors.EVENT_WRITE:
                sel.unregister(w.in_fd)
            active.remove(w)
            busy = bool(w.inflight or w.outbuf)
            pending.extendleft(reversed(w.inflight))  # queued behind the head, never started
            w.inflight.clear()
            self._checkin(w, healthy=healthy and not busy)

        def replace(w: _Worker) -> None:
            drop(w, healthy=False)
            add(self._checkout(1, block=False) or [])

        try:
            add(self._checkout(want, block=True))
            while left:
                if len(active) < want and len(pending) > WINDOW * len(active):
                    add(self._checkout(want - len(active), block=False))
                share = min(WINDOW, -(-left // len(active)))  # spread a short call over all its workers
                for w in list(active):
                    while w.ready and pending and len(w.inflight) < share:
                        i = pending.popleft()
                        w.send(i, (json.dumps({**tasks[i], "i": i}) + "\n").encode())
                    w.flush()
                    events = selectors.EVENT_READ | (selectors.EVENT_WRITE if w.outbuf else 0)
                    if events != w.events:
                        if w.events & selectors.EVENT_WRITE:
                            sel.unregister(w.in_fd)
                        if events & selectors.EVENT_WRITE:
                            sel.register(w.in_fd, selectors.EVENT_WRITE, w)
                        w.events = events
                    if not pending and not w.inflight and len(active) > 1:
                        drop(w, healthy=True)  # nothing left for it here: free for other callers
                if not active:  # all replaced and the pool is full of other callers' workers
                    add(self._checkout(1, block=True))
                    continue
                now = time.monotonic()
                wait = max(0.0, min(w.deadline(timeout) for w in active) - now)
                for key, _ in sel.select(min(wait, 1.0)):
                    w = key.data
                    if w not in active or key.fd == w.in_fd:
                        continue
                    messages = w.read_messages()
                    if messages is None:  # died: a crash counts as running out of resources
                        if not w.ready:
                            raise RuntimeError(f"a grading worker ({self.handler}) exited during start-up")
                        if w.inflight:
                            i = w.inflight.popleft()
                            log.warning("grading worker died on task %d; counted as a timeout", i)
                            left -= 1
                            yield i, TIMEOUT
                        replace(w)
                        continue
                    for msg in messages:
                        if "fatal" in msg:
                            raise RuntimeError(f"grading worker failed: {msg['fatal']}")
                        if msg.get("ready"):
                            w.ready = True
                        elif msg.get("untimed"):
                            w.untimed_since = time.monotonic()
                        elif msg.get("timed"):
                            w.untimed_since, w.head_start = None, time.monotonic()
                        else:
                            i = w.inflight.popleft()
                            if msg.get("i") != i:
                                raise RuntimeError(f"grading worker answered task {msg.get('i')} instead of {i}")
                            w.head_start = time.monotonic()
                            left -= 1
                            yield i, msg
                now = time.monotonic()
                for w in list(active):
                    if now <= w.deadline(timeout):
                        continue
                    if not w.ready:
                        raise RuntimeError(f"a grading worker did not start within {STARTUP_TIMEOUT_S:.0f}s")
                    i = w.inflight.popleft()
                    log.info("task %d exceeded %.1fs; killing its worker", i, timeout)
                    replace(w)
                    left -= 1
                    yield i, TIMEOUT
        finally:
            for w in list(active):  # abandoned (an exception or the caller stopped): mid-task ones are killed
                drop(w, healthy=True)
            sel.close()

    def close(self) -> None:
        """Kill the idle workers; workers still in use are killed when their call gives them back."""
        if os.getpid() != self._pid:  # a forked child must not kill its parent's workers
            return
        with self._cond:
            self._closed = True
            self._live -= len(self._idle)
            self._cond.notify_all()
        self._finalize()


def _kill_all(workers: list[_Worker], pid: int) -> None:
    if os.getpid() == pid:
        for w in workers:
            w.kill()
        workers.clear()


_SHARED: dict[str, WorkerPool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(handler: str = DEFAULT_HANDLER) -> WorkerPool:
    """The process-wide pool for `handler` (created on first use; a forked child gets its own)."""
    with _SHARED_LOCK:
        pool = _SHARED.get(handler)
        if pool is None or pool._pid != os.getpid():
            pool = _SHARED[handler] = WorkerPool(handler)
        return pool


# -------------------------------------------------------------------- the worker side


def _write(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def untimed():
    """In a worker: one-off start-up work (an import) that does not count against the task's limit."""
    _write({"untimed": True})
    try:
        yield
    finally:
        _write({"timed": True})


def serve(handler: str = DEFAULT_HANDLER, memory_mb: int = WORKER_MEMORY_MB) -> None:
    """Worker main loop: load `module:function`, then answer one JSON line per task until stdin closes.

    The first time the worker is idle for IDLE_S, it calls the module's `warm_up()` if it has one (a
    one-off import, wrapped in `untimed()` by the module), so a worker that is given tasks at once
    starts on them at once, and one that waits between calls is fully loaded when the next comes.
    """
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        module, name = handler.split(":")
        handle = getattr(importlib.import_module(module), name)
        warm_up = getattr(sys.modules[module], "warm_up", None)
    except Exception as e:  # report why, then exit: the pool raises with this message
        _write({"fatal": f"cannot load {handler}: {type(e).__name__}: {e}"})
        return
    _write({"ready": True})
    fd, buf = sys.stdin.fileno(), b""
    while True:
        while b"\n" not in buf:
            if warm_up is not None and not select.select([fd], [], [], IDLE_S)[0]:
                try:
                    warm_up()
                except WorkerFatal as e:
                    _write({"fatal": str(e)})
                    return
                warm_up = None
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        task = json.loads(line)
        try:
            reply = handle(task)
        except WorkerFatal as e:
            _write({"fatal": str(e)})
            return
        except (MemoryError, RecursionError) as e:  # out of resources: the caller treats it like a timeout
            reply = {"exhausted": True, "error": type(e).__name__}
        except Exception as e:  # a handler bug: reported to the caller, which decides
            reply = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        _write({**reply, "i": task["i"]})
