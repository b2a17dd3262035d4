"""Run model-written Python (program-of-thought answers, tool calls; DeepSeekMath §3.1) as hostile code.

    from grading.sandbox import run_code
    run_code("print(2 + 2)", timeout=10, memory_mb=1024)
    # Result(status="ok", stdout="4\\n", stderr="", isolation="full")

    python -m grading.sandbox FILE.py [--timeout S] [--memory-mb M]   # prints one JSON line

status: "ok" (exit 0), "error" (non-zero exit, e.g. an exception or MemoryError), "timeout" (wall or
CPU time limit), "killed" (ended by a signal - e.g. the memory bound's OOM kill - or by us for output
over the limit). Only "ok" output may ever be taken as an answer.

Each run gets a fresh work directory (a size-capped tmpfs in its own mount namespace), stdin from
/dev/null, a minimal environment, limits on CPU time, wall time, memory (one bound for the whole run:
a cgroup, else address space x processes), processes, file size, open files and output size (counted
after JSON encoding), its own session, PID, network, mount, IPC and UTS namespaces, a uid of its own
(as root), and Landlock + seccomp (no socket of any family, no io_uring). Nothing it started survives
the run. Programs are forked from a pre-started interpreter (`grading/sandbox_child.py`, which applies
the confinement) so a run costs little more than a plain `python -c`.

`isolation()` reports the layers this machine provides and the level they add up to ("full",
"partial": Landlock and seccomp but not every other layer, "none"); every Result carries it, and a level
below full is logged at WARNING. `configure(require=...)` (config `eval.sandbox.require`, environment
MATHPIPE_SANDBOX_REQUIRE; default "full") refuses to run code with less, naming what is missing and how
to get it. docs/grader_sandbox.md says what this defends against and what it does not.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import logging
import math
import os
import selectors
import shutil
import signal
import site
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grading.sandbox_cgroup import CgroupSetup

log = logging.getLogger(__name__)

STATUSES = ("ok", "error", "timeout", "killed")
LEVELS = ("none", "partial", "full")
REQUIRE_ENV = "MATHPIPE_SANDBOX_REQUIRE"
CHILD = Path(__file__).resolve().with_name("sandbox_child.py")
UID_BASE = 2_100_000_000  # per-run uids when started as root: no user on any normal system has these
UID_SLOTS = 4096
WORKDIR_PREFIX = "mathpipe-sandbox-run-"  # + the caller's pid: a dead caller's directories are removed
SETUP_GRACE_S = 0.5  # wall time allowed on top of `timeout` for setting the run up
REPORT_GRACE_S = 10.0  # how long the run's init may take to kill and sweep after we asked it to
TRUSTED_PROCESSES = 3  # pre-started interpreter, runner, init
FALLBACK_MB_PER_PROCESS = 256  # without a cgroup: each process gets memory_mb / k, k = memory_mb // this
# Bytes that json.dumps writes as 6-byte \u00XX escapes, and those it writes as 2-byte escapes.
_CTRL6 = bytes(b for b in range(32) if b not in b"\b\t\n\f\r")
_ESC2 = b'\b\t\n\f\r"\\'
_HIGH = bytes(range(128, 256))


class SandboxError(RuntimeError):
    """The sandbox could not be set up, or gives less isolation than required (the program did not run)."""


@dataclass(frozen=True)
class Result:
    status: str
    stdout: str
    stderr: str
    isolation: str = field(default="", compare=False)  # the level applied to this run: full, partial, none

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Isolation:
    """What this machine lets us use (probed once per process) and the level that adds up to."""

    unshare: tuple[str, ...]  # the command prefix the pre-started interpreter runs under
    pid_namespace: bool
    net_namespace: bool
    mount_namespace: bool
    separate_uid: bool  # running as root: each run gets its own uid
    landlock_abi: int  # 0: not available
    seccomp: bool
    python: str  # the interpreter programs run on (the caller's own)
    cgroup: str = ""  # "v2", "v1", or "" (memory bounded by address space x processes instead)
    level: str = "none"
    missing: tuple[str, ...] = ()  # one line per missing layer: what it is and how to get it
    reattached: tuple[str, ...] = ()  # interpreter directories below private ones, re-attached per run

    def summary(self) -> dict:
        """What metrics.json records: the level and what is missing."""
        return {"level": self.level, "missing": list(self.missing), "cgroup": self.cgroup or None,
                "landlock_abi": self.landlock_abi, "seccomp": self.seccomp,
                "namespaces": self.mount_namespace, "separate_uid": self.separate_uid}


_ISOLATION: Isolation | None = None
_CGROUP: CgroupSetup | None = None
_REATTACH: list = []
_REQUIRE: str | None = None
_ISOLATION_LOCK = threading.Lock()


def configure(require: str | None = None) -> None:
    """Set the lowest isolation level run_code accepts (also for child processes, via the environment)."""
    global _REQUIRE
    if require is not None:
        if require not in LEVELS:
            raise ValueError(f"sandbox require must be one of {LEVELS}, got {require!r}")
        _REQUIRE = require
        os.environ[REQUIRE_ENV] = require


def required_level() -> str:
    level = _REQUIRE or os.environ.get(REQUIRE_ENV) or "full"
    if level not in LEVELS:
        raise SandboxError(f"{REQUIRE_ENV}={level!r}: expected one of {LEVELS}")
    return level


def isolation_summary() -> dict:
    """The isolation applied to this process's runs, for metrics.json (`{"sandbox": isolation_summary()}`)."""
    return {**isolation().summary(), "required": required_level()}


def isolation() -> Isolation:
    global _ISOLATION
    with _ISOLATION_LOCK:
        if _ISOLATION is None:
            _ISOLATION = _probe()
            _announce(_ISOLATION)
        return _ISOLATION


def _announce(iso: Isolation) -> None:
    if iso.level != "full":
        log.warning("sandbox isolation is %s, missing: %s", iso.level, "; ".join(iso.missing))
    else:
        log.info("sandbox isolation: %s", iso)


def _probe() -> Isolation:
    global _CGROUP, _REATTACH
    if not sys.platform.startswith("linux"):
        raise SandboxError("the sandbox needs Linux (namespaces, Landlock, seccomp, cgroups)")
    root = os.geteuid() == 0
    prefix: tuple[str, ...] = ()
    unshare = shutil.which("unshare")
    if not root and unshare:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if subprocess.run([unshare, "--user", "--map-root-user", "true"], capture_output=True,
                              timeout=10).returncode == 0:
                prefix = (unshare, "--user", "--map-root-user")
    zygote = _zygote(prefix)  # starts while we look at the rest
    cgroup, cgroup_why = CgroupSetup.find()
    landlock_abi = _landlock_abi()
    seccomp = os.uname().machine in ("x86_64", "aarch64")
    _REATTACH = _reattach_groups() if root else []
    namespaces = zygote.probe()["namespaces"]
    if _REATTACH and not namespaces:
        hidden = ", ".join(g[0] for g in _REATTACH)
        raise SandboxError(f"the interpreter or its packages lie below {hidden}, which the run's uid may not "
                           f"traverse, and without a mount namespace they cannot be re-attached; move the "
                           f"venv (e.g. `make venv` in a checkout below a world-traversable directory)")
    missing = []
    if not namespaces:
        missing.append("namespaces (PID, network, mount: other processes hidden, a disk quota on the work "
                       "directory): unshare failed - run as root, or allow unprivileged user namespaces "
                       "(sysctl user.max_user_namespaces=15000, kernel.apparmor_restrict_unprivileged_userns=0)")
    if not root:
        missing.append("a uid of its own per run: run the evaluation as root (e.g. in a container)")
    if not landlock_abi:
        missing.append("Landlock (writes only in the run's directory, reads only system and Python dirs): "
                       "needs Linux >= 5.13 with landlock in the lsm= boot parameter")
    if not seccomp:
        missing.append(f"seccomp (no sockets, no io_uring): not written for {os.uname().machine}")
    if cgroup is None:
        missing.append(f"a cgroup per run (one memory bound for all its processes): {cgroup_why} - run as root "
                       "or delegate a cgroup v2 subtree (systemd-run --user --scope -p Delegate=yes ...); "
                       "memory is bounded by address space x a small process limit instead")
    full = namespaces and root and landlock_abi and seccomp and cgroup is not None
    level = "full" if full else "partial" if landlock_abi and seccomp else "none"
    _CGROUP = cgroup
    _sweep_stale_workdirs()
    iso = Isolation(prefix, namespaces, namespaces, namespaces, root, landlock_abi, seccomp, sys.executable,
                    cgroup.version if cgroup else "", level, tuple(missing),
                    tuple(d for _, dirs in _REATTACH for d in dirs))
    return iso


def _sweep_stale_workdirs() -> None:
    """Remove work directories of callers that died before removing them (e.g. SIGKILLed)."""
    for path in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        pid = path.name[len(WORKDIR_PREFIX):].split("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _landlock_abi() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # LANDLOCK_CREATE_RULESET_VERSION
    return max(0, int(abi))


def _python_dirs() -> list[str]:
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["stdlib"],
            sysconfig.get_paths()["platstdlib"], str(Path(sys.executable).resolve().parent.parent)}
    dirs |= set(_package_dirs())
    return sorted({os.path.realpath(d) for d in dirs} | dirs)


def _read_dirs() -> list[str]:
    """Directories the program may read: the system, the interpreter and its packages."""
    return sorted({"/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev"}
                  | set(_python_dirs()))


def _package_dirs() -> list[str]:
    """Where this interpreter finds installed packages (the venv's site-packages, added site dirs)."""
    dirs = list(site.getsitepackages())
    dirs += [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and p not in dirs]
    return dirs


def _reattach_groups() -> list:
    """[[hidden_dir, [dirs]]]: directories a per-run uid needs, below one it may not traverse.

    E.g. a venv under a `mktemp -d` directory (mode 0700), or a pyenv interpreter under /root. Inside
    the run's mount namespace the init re-attaches each such directory at its own path (read-only) on
    a tmpfs that covers the private one, so the program reads them whatever the parents' permissions.
    """
    needed = [d for d in _python_dirs() + [tempfile.gettempdir()] if os.path.isdir(d)]
    groups: dict[str, list[str]] = {}
    for d in {os.path.realpath(x) for x in needed}:
        parts = Path(d).parts
        for i in range(1, len(parts)):
            ancestor = str(Path(*parts[:i]))
            if not os.stat(ancestor).st_mode & stat.S_IXOTH:
                groups.setdefault(ancestor, []).append(d)
                break
    out = []
    for hidden in sorted(groups, key=len):
        if any(hidden.startswith(h + "/") for h, _ in out):
            continue  # below a directory already covered
        dirs = sorted(set(groups[hidden]) | {d for h, ds in groups.items() if h.startswith(hidden + "/") for d in ds})
        outer = [d for d in dirs if not any(d != o and d.startswith(o + "/") for o in dirs)]
        out.append([hidden, outer])
    return out


# ------------------------------------------------------------------ the pre-started interpreter


class _Zygote:
    """The pre-started interpreter (`sandbox_child.py`) that forks every run of this process."""

    def __init__(self, prefix: tuple[str, ...]):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8",
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([*prefix, sys.executable, "-I", str(CHILD), str(theirs.fileno())],
                                     pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, env=env, cwd="/", start_new_session=True)
        theirs.close()
        self.sock, self.owner, self.lock = ours, os.getpid(), threading.Lock()

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def probe(self) -> dict:
        with self.lock:
            self.sock.send(json.dumps({"probe": True}).encode())
            reply = self.sock.recv(1 << 16)
        if not reply:
            raise SandboxError(f"the sandbox's pre-started interpreter exited ({self.proc.poll()})")
        return json.loads(reply)

    def start(self, cfg: dict, fds: list[int]) -> None:
        with self.lock:
            socket.send_fds(self.sock, [json.dumps(cfg).encode()], fds)


_ZYGOTE: _Zygote | None = None
_ZYGOTE_LOCK = threading.Lock()


def _zygote(prefix: tuple[str, ...] | None = None) -> _Zygote:
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is None or not _ZYGOTE.alive():
            _ZYGOTE = _Zygote(prefix if prefix is not None else isolation().unshare)
        return _ZYGOTE


# ------------------------------------------------------------------ per-run uids


@contextlib.contextmanager
def _uid_slot(separate: bool):
    """A uid no other run uses right now (flock on a slot file); None when not `separate` (not root).

    The slot file says "clean" when the last run on it ended with every process gone; any other
    content (a crashed caller) makes us kill what that uid still runs before reusing it.
    """
    if not separate or os.geteuid() != 0:
        yield None
        return
    lock_dir = Path(tempfile.gettempdir()) / "mathpipe-sandbox-uids"
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    st = lock_dir.lstat()
    if st.st_uid != 0 or st.st_mode & 0o077 or not lock_dir.is_dir() or lock_dir.is_symlink():
        raise SandboxError(f"{lock_dir} must be a directory owned by root with mode 0700")
    start = (os.getpid() * 7919 + threading.get_ident()) % UID_SLOTS
    for k in range(UID_SLOTS):
        slot = (start + k) % UID_SLOTS
        fd = os.open(lock_dir / str(slot), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            uid = UID_BASE + slot
            if os.pread(fd, 16, 0) != b"clean":
                _kill_uid(uid)  # a leftover from a crashed caller must not share our process count
            os.pwrite(fd, b"busy.", 0)
            yield uid
            os.pwrite(fd, b"clean", 0)
        finally:
            os.close(fd)
        return
    raise SandboxError(f"all {UID_SLOTS} sandbox uid slots are in use")


def _kill_uid(uid: int) -> int:
    """SIGKILL every process owned by `uid` (root only), repeating until none is left."""
    killed = 0
    for _ in range(100):
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        pids.append(int(entry))
                except OSError:
                    continue
        if not pids:
            return killed
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.01)
    raise SandboxError(f"processes of sandbox uid {uid} keep appearing after 100 kill rounds")


def _environment(workdir: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1", "MPLCONFIGDIR": workdir, "MPLBACKEND": "Agg",
    }


# ------------------------------------------------------------------ a run


def run_code(code: str, timeout: float = 10.0, memory_mb: int = 1024, *, max_processes: int = 32,
             max_output_bytes: int = 1 << 20, max_file_mb: int = 16, disk_mb: int = 64,
             require: str | None = None) -> Result:
    """Run `code` as `python -I main.py` in a fresh sandbox; see the module docstring.

    `memory_mb` bounds the whole run (all its processes together); `max_output_bytes` bounds stdout
    and stderr each, as JSON-encoded text. `require` overrides `configure(require=...)` for this call.
    """
    iso = isolation()
    need = require or required_level()
    if need not in LEVELS:
        raise ValueError(f"require must be one of {LEVELS}, got {need!r}")
    if LEVELS.index(iso.level) < LEVELS.index(need):
        raise SandboxError(f"sandbox isolation here is {iso.level!r}, below the required {need!r}; missing: "
                           + "; ".join(iso.missing)
                           + f". To accept it, set eval.sandbox.require: {iso.level} (or {REQUIRE_ENV}={iso.level})")
    return _run(iso, code, timeout=timeout, memory_mb=memory_mb, max_processes=max_processes,
                max_output_bytes=max_output_bytes, max_file_mb=max_file_mb, disk_mb=disk_mb)


def fallback_processes(memory_mb: int, max_processes: int) -> int:
    """Without a cgroup: processes allowed, so that processes x address space per process = memory_mb."""
    return max(1, min(max_processes, memory_mb // FALLBACK_MB_PER_PROCESS))


def _run(iso: Isolation, code: str, *, timeout: float, memory_mb: int, max_processes: int,
         max_output_bytes: int, max_file_mb: int, disk_mb: int) -> Result:
    workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
    try:
        with _uid_slot(iso.separate_uid) as uid, _cgroup_run(iso, memory_mb, max_processes) as cgroup_procs:
            main = Path(workdir) / "main.py"
            main.write_text(code, encoding="utf-8")
            if uid is not None:
                os.chown(workdir, uid, uid)
                os.chown(main, uid, uid)
            cpu = math.ceil(timeout) + 1
            if cgroup_procs is not None:
                nproc, address_space = max_processes, memory_mb << 20
            else:
                nproc = fallback_processes(memory_mb, max_processes)
                address_space = (memory_mb << 20) // nproc
                if uid is None:
                    # the count then includes the run's trusted processes as well (pre-started
                    # interpreter, runner, init: same uid): they do not use the program's memory
                    nproc += TRUSTED_PROCESSES
            cfg = {
                "workdir": workdir, "uid": uid, "namespaces": iso.mount_namespace,
                "tmpfs_mb": disk_mb if iso.mount_namespace else 0, "reattach": _REATTACH,
                "cgroup_procs": cgroup_procs or [],
                "limits": {
                    "RLIMIT_CPU": [cpu, cpu + 1], "RLIMIT_AS": address_space, "RLIMIT_NPROC": nproc,
                    "RLIMIT_FSIZE": max_file_mb << 20, "RLIMIT_NOFILE": 64, "RLIMIT_CORE": 0,
                },
                "landlock_abi": iso.landlock_abi, "read_dirs": _read_dirs(), "seccomp": iso.seccomp,
                "check_dirs": _python_dirs(),
                "env": _environment(workdir),
            }
            return _execute(iso, cfg, timeout, max_output_bytes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _cgroup_run(iso: Isolation, memory_mb: int, max_processes: int):
    if _CGROUP is None or not iso.cgroup:
        yield None
        return
    try:
        ctx = _CGROUP.run(memory_mb, max_processes)
        procs = ctx.__enter__()
    except OSError as e:
        raise SandboxError(f"creating the run's cgroup failed although the start-up probe worked: {e}") from e
    try:
        yield procs
    finally:
        ctx.__exit__(None, None, None)


def _execute(iso: Isolation, cfg: dict, timeout: float, max_output: int) -> Result:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    status_r, status_w = os.pipe()
    control_r, control_w = os.pipe()
    theirs = [out_w, err_w, status_w, control_r]
    try:
        try:
            _zygote().start(cfg, theirs)
        except OSError:
            _zygote().start(cfg, theirs)  # the pre-started interpreter died: start a new one, once
    finally:
        for fd in theirs:
            os.close(fd)
    out, err, report = bytearray(), bytearray(), bytearray()
    sizes = {out_r: 0, err_r: 0}  # lower bounds of the JSON-encoded size
    reason = None
    deadline = time.monotonic() + timeout + SETUP_GRACE_S
    try:
        with selectors.DefaultSelector() as sel:
            streams = {out_r: out, err_r: err, status_r: report}
            for fd in streams:
                os.set_blocking(fd, False)
                sel.register(fd, selectors.EVENT_READ)
            while status_r in sel.get_map() and not reason:
                left = deadline - time.monotonic()
                if left <= 0:
                    reason = "timeout"
                    break
                for key, _ in sel.select(left):
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        sel.unregister(key.fd)
                        continue
                    buf = streams[key.fd]
                    if key.fd == status_r:
                        buf.extend(chunk)
                        continue
                    if len(buf) <= max_output:
                        buf.extend(chunk)
                    sizes[key.fd] += _encoded_lower_bound(chunk)
                    if sizes[key.fd] > max_output:
                        reason = "output"
                        break
            if reason:
                with contextlib.suppress(BrokenPipeError):  # the init already ended (its report is waiting)
                    os.write(control_w, b"k")  # the run's init kills the program and sweeps
                report = _await_report(status_r, REPORT_GRACE_S)
            else:
                for fd in (out_r, err_r):
                    _drain(fd, streams[fd], max_output + 1)  # a daemon holding our pipes must not keep us
    finally:
        for fd in (out_r, err_r, status_r, control_w):
            os.close(fd)
    return _result(bytes(out), bytes(err), bytes(report), reason, max_output, iso.level)


def _await_report(fd: int, grace: float) -> bytearray:
    report = bytearray()
    deadline = time.monotonic() + grace
    os.set_blocking(fd, True)
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if sel.select(left):
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return report
                report.extend(chunk)
    raise SandboxError(f"the run's init did not report within {grace} s of being told to stop")


def _encoded_lower_bound(chunk: bytes) -> int:
    """At least how many bytes `chunk` becomes in a JSON string (control bytes as \\u00XX, and so on)."""
    ctrl6 = len(chunk) - len(chunk.translate(None, _CTRL6))
    esc2 = len(chunk) - len(chunk.translate(None, _ESC2))
    high = len(chunk) - len(chunk.translate(None, _HIGH))  # >= 2 bytes each once escaped
    return len(chunk) + 5 * ctrl6 + esc2 + high


def _drain(fd: int, buf: bytearray, limit: int) -> None:
    """Read what is already in a pipe (without waiting for writers that may never close it)."""
    while len(buf) < limit:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            return
        buf.extend(chunk)


def encoded_size(text: str) -> int:
    """Bytes `text` takes as a JSON string without its quotes (json.dumps's default, ASCII-only escapes).

    The largest of the usual encodings: UTF-8 output with ensure_ascii=False is never longer.
    """
    return len(json.dumps(text)) - 2


def cap_text(text: str, limit: int) -> tuple[str, bool]:
    """(the longest prefix of `text` whose encoded_size is <= limit, whether anything was cut)."""
    if encoded_size(text) <= limit:
        return text, False
    lo, hi = 0, min(len(text), limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if encoded_size(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo], True


def _result(out: bytes, err: bytes, report: bytes, reason: str | None, max_output: int, level: str) -> Result:
    if not report:
        raise SandboxError(f"the run ended without a report: {err.decode('utf-8', 'replace')[-2000:]}")
    info = json.loads(report)
    if "setup_error" in info:
        raise SandboxError(f"sandbox set-up failed: {info['setup_error']}")
    stdout, cut_out = cap_text(out.decode("utf-8", "replace"), max_output)
    note = ""
    status = "ok" if info.get("exit") == 0 else "error"
    if reason == "timeout":
        status, note = "timeout", "[sandbox] wall-time limit exceeded"
    elif "signal" in info and reason != "output":
        sig = info["signal"]
        status = "timeout" if sig == signal.SIGXCPU else "killed"  # SIGXCPU: the CPU-time limit
        note = f"[sandbox] ended by signal {signal.Signals(sig).name}"
    stderr, cut_err = cap_text(err.decode("utf-8", "replace"), max(0, max_output - 200))
    if status != "timeout" and (reason == "output" or cut_out or cut_err):
        status, note = "killed", f"[sandbox] output limit of {max_output} bytes (JSON-encoded) exceeded"
    if note:
        stderr += "\n" + note
    return Result(status, stdout, stderr, level)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run a Python file in the sandbox; print {status, stdout, stderr, isolation}.")
    p.add_argument("file", type=Path)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds of wall and CPU time [10]")
    p.add_argument("--memory-mb", type=int, default=1024, help="memory bound of the whole run [1024]")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        code = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        p.error(f"{args.file}: cannot read: {e}")
    result = run_code(code, timeout=args.timeout, memory_mb=args.memory_mb)
    sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
