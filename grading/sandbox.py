"""Run model-written Python (program-of-thought answers, tool calls; DeepSeekMath §3.1) as hostile code.

    from grading.sandbox import run_code
    run_code("print(2 + 2)", timeout=10, memory_mb=1024)  # Result(status="ok", stdout="4\\n", stderr="")

    python -m grading.sandbox FILE.py [--timeout S] [--memory-mb M]   # prints one JSON line

status: "ok" (exit 0), "error" (non-zero exit, e.g. an exception or MemoryError), "timeout" (wall or
CPU time limit), "killed" (ended by a signal, or by us for flooding its output).

Each run gets: a fresh temporary directory (a size-capped tmpfs where a mount namespace is
available), stdin from /dev/null, a minimal environment (nothing inherited: no tokens, no proxies),
limits on CPU time, wall time, address space, processes, file size, open files and output size,
its own session, PID, network and mount namespaces (`unshare`, as root or through an unprivileged
user namespace), a uid of its own when we run as root, and Landlock + seccomp inside. See
`grading/sandbox_child.py` for the confinement itself and docs/grader_sandbox.md for what this defends
against and what it does not. `isolation()` reports which layers this machine provides.
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
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STATUSES = ("ok", "error", "timeout", "killed")
CHILD = Path(__file__).resolve().with_name("sandbox_child.py")
UID_BASE = 2_100_000_000  # per-run uids when started as root: no user on any normal system has these
UID_SLOTS = 4096
SETUP_GRACE_S = 1.0  # wall time allowed on top of `timeout` for the interpreter to start


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (the program did not run)."""


@dataclass(frozen=True)
class Result:
    status: str
    stdout: str
    stderr: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Isolation:
    """What this machine lets us use (probed once per process)."""

    unshare: tuple[str, ...]  # the unshare command prefix, () when none works
    pid_namespace: bool
    net_namespace: bool
    mount_namespace: bool
    separate_uid: bool  # running as root: each run gets its own uid
    landlock_abi: int  # 0: not available
    seccomp: bool
    python: str  # the interpreter the program runs on (one the run's uid may execute)


_ISOLATION: Isolation | None = None
_ISOLATION_LOCK = threading.Lock()


def isolation() -> Isolation:
    global _ISOLATION
    with _ISOLATION_LOCK:
        if _ISOLATION is None:
            _ISOLATION = _probe()
            log.info("sandbox isolation: %s", _ISOLATION)
        return _ISOLATION


def _probe() -> Isolation:
    root = os.geteuid() == 0
    prefix: tuple[str, ...] = ()
    flags: set[str] = set()
    unshare = shutil.which("unshare")
    if unshare and sys.platform.startswith("linux"):
        user = () if root else ("--user", "--map-root-user")
        candidates = [
            ({"pid", "net", "mount"}, (*user, "--pid", "--fork", "--kill-child", "--net", "--mount", "--mount-proc")),
            ({"pid", "net"}, (*user, "--pid", "--fork", "--kill-child", "--net")),
            ({"net"}, (*user, "--net")),
        ]
        for names, args in candidates:
            try:
                ok = subprocess.run([unshare, *args, "true"], capture_output=True, timeout=10).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
            if ok:
                prefix, flags = (unshare, *args), names
                break
    return Isolation(prefix, "pid" in flags, "net" in flags, "mount" in flags, root, _landlock_abi(),
                     sys.platform.startswith("linux") and os.uname().machine in ("x86_64", "aarch64"),
                     _sandbox_python(root))


def _sandbox_python(root: bool) -> str:
    """Our interpreter if the run's uid may execute it, else a system one of the same version.

    As root, a venv whose base interpreter sits below /root (pyenv) is not executable by another
    uid; the program then runs on e.g. /usr/bin/python3.11 with the venv's site-packages added
    (`_LAUNCH`), which is ABI-compatible for the same minor version.
    """
    if not root:
        return sys.executable
    want = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [sys.executable, os.path.realpath(sys.executable),
                  shutil.which(f"python{want}", path="/usr/local/bin:/usr/bin:/bin"),
                  shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")]
    probe_uid = UID_BASE + UID_SLOTS  # never handed to a run
    for cand in filter(None, candidates):
        try:
            out = subprocess.run([cand, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30, user=probe_uid, group=probe_uid,
                                 extra_groups=[], cwd="/", env={"PATH": "/usr/bin:/bin"})
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout.strip() == want:
            return cand
    raise SandboxError(f"no Python {want} interpreter that an unprivileged uid may execute "
                       f"(tried {[c for c in candidates if c]}); install one under /usr/bin")


def _landlock_abi() -> int:
    if not sys.platform.startswith("linux"):
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # LANDLOCK_CREATE_RULESET_VERSION
    return max(0, int(abi))


def _read_dirs() -> list[str]:
    """Directories the program may read: the system, the interpreter and its packages."""
    dirs = {"/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev"}
    dirs |= {sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["stdlib"]}
    dirs |= set(_package_dirs())
    dirs.add(str(Path(sys.executable).resolve().parent.parent))
    return sorted({os.path.realpath(d) for d in dirs} | dirs)


def _package_dirs() -> list[str]:
    """Where this interpreter finds installed packages (the venv's site-packages, added site dirs)."""
    dirs = list(site.getsitepackages())
    dirs += [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and p not in dirs]
    return dirs


@contextlib.contextmanager
def _uid_slot():
    """A uid no other run uses right now (flock on a slot file); None when we are not root."""
    if os.geteuid() != 0:
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
            _kill_uid(uid)  # a leftover from a crashed caller must not share our process count
            yield uid
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


# Runs main.py as __main__ on the sandbox interpreter, with this venv's packages importable
# (sympy, numpy); .pth files are honoured. -I keeps PYTHON* variables and the user site out.
_LAUNCH = ("import json, runpy, site, sys; [site.addsitedir(d) for d in json.loads(sys.argv.pop(1))]; "
           "sys.argv[0] = 'main.py'; runpy.run_path('main.py', run_name='__main__')")


def _environment(workdir: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1", "MPLCONFIGDIR": workdir, "MPLBACKEND": "Agg",
    }


def run_code(code: str, timeout: float = 10.0, memory_mb: int = 1024, *, max_processes: int = 32,
             max_output_bytes: int = 1 << 20, max_file_mb: int = 16, disk_mb: int = 64) -> Result:
    """Run `code` with `python -I main.py` in a fresh sandbox; see the module docstring."""
    iso = isolation()
    workdir = tempfile.mkdtemp(prefix="mathpipe-sandbox-")
    try:
        with _uid_slot() as uid:
            main = Path(workdir) / "main.py"
            main.write_text(code, encoding="utf-8")
            if uid is not None:
                os.chown(workdir, uid, uid)
                os.chown(main, uid, uid)
            cpu = math.ceil(timeout) + 1
            cfg = {
                "workdir": workdir, "uid": uid, "python": iso.python,
                "launch": [iso.python, "-I", "-c", _LAUNCH, json.dumps(_package_dirs())],
                "tmpfs_mb": disk_mb if iso.mount_namespace else 0,
                "limits": {
                    "RLIMIT_CPU": [cpu, cpu + 1], "RLIMIT_AS": memory_mb << 20, "RLIMIT_NPROC": max_processes,
                    "RLIMIT_FSIZE": max_file_mb << 20, "RLIMIT_NOFILE": 64, "RLIMIT_CORE": 0,
                },
                "landlock_abi": iso.landlock_abi, "read_dirs": _read_dirs(), "seccomp": iso.seccomp,
                "env": _environment(workdir),
            }
            return _execute(iso, cfg, timeout, max_output_bytes, uid)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _execute(iso: Isolation, cfg: dict, timeout: float, max_output: int, uid: int | None) -> Result:
    status_r, status_w = os.pipe()
    cmd = [*iso.unshare, sys.executable, "-I", "-S", str(CHILD), json.dumps(cfg), str(status_w)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=cfg["workdir"], env=cfg["env"], start_new_session=True, pass_fds=(status_w,))
    os.close(status_w)
    out, err, report = bytearray(), bytearray(), bytearray()
    reason = None
    deadline = time.monotonic() + timeout + SETUP_GRACE_S
    try:
        with selectors.DefaultSelector() as sel:
            streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, status_r: report}
            for fd in streams:
                os.set_blocking(fd, False)
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    reason = "timeout"
                    break
                for key, _ in sel.select(left):
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        sel.unregister(key.fd)
                        continue
                    streams[key.fd].extend(chunk)
                    if len(out) > max_output or len(err) > max_output:
                        reason = "output"
                        break
                if reason or (status_r not in sel.get_map() and report):
                    break  # the run is over; a daemon holding our pipes must not keep us waiting
            if not reason:
                for fd in (proc.stdout.fileno(), proc.stderr.fileno()):
                    _drain(fd, streams[fd], max_output + 1)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.kill()
        proc.wait()
        for f in (proc.stdout, proc.stderr):
            f.close()
        os.close(status_r)
        if uid is not None:
            _kill_uid(uid)
    return _result(proc, bytes(out[:max_output]), bytes(err[:max_output]), bytes(report), reason, max_output)


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


def _result(proc, out: bytes, err: bytes, report: bytes, reason: str | None, max_output: int) -> Result:
    stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    if reason == "timeout":
        return Result("timeout", stdout, stderr + "\n[sandbox] wall-time limit exceeded")
    if reason == "output":
        return Result("killed", stdout, stderr + f"\n[sandbox] output limit of {max_output} bytes exceeded")
    if not report:
        raise SandboxError(f"sandbox init ended without a report (exit {proc.returncode}): {stderr[-2000:]}")
    info = json.loads(report)
    if "setup_error" in info:
        raise SandboxError(f"sandbox set-up failed: {info['setup_error']}")
    if "signal" in info:
        sig = info["signal"]
        status = "timeout" if sig == signal.SIGXCPU else "killed"  # SIGXCPU: the CPU-time limit
        return Result(status, stdout, stderr + f"\n[sandbox] ended by signal {signal.Signals(sig).name}")
    return Result("ok" if info["exit"] == 0 else "error", stdout, stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run a Python file in the sandbox; print {status, stdout, stderr}.")
    p.add_argument("file", type=Path)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds of wall and CPU time [10]")
    p.add_argument("--memory-mb", type=int, default=1024, help="address-space limit [1024]")
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
