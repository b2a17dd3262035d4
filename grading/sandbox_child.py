"""The trusted side of the sandbox: a pre-started interpreter that forks one confined run per request.

Started once per calling process by `grading.sandbox` as `python -I sandbox_child.py SOCK_FD` on the
caller's own interpreter (inside `unshare --user --map-root-user` when the caller is not root). Standard
library only: under -I the project is not importable, and nothing here may depend on a program.

Why a pre-started process (a "zygote"): starting a fresh interpreter, and a second one for the
trusted init, cost 2-6x a plain `python -c`; forking this one costs about a millisecond, and the
program still gets a fresh process with every layer applied before its first line runs.

Per request (a JSON message on SOCK_FD carrying four descriptors: the program's stdout and stderr,
the status pipe, and the control pipe) the zygote forks a *runner*, which

1. closes every descriptor but those four (the zygote's socket never reaches a program);
2. with namespaces: unshares PID, network, mount, IPC and UTS namespaces and makes every mount
   private, then forks the run's *init* (PID 1 of the new namespace; without namespaces a child
   subreaper), and waits for it;

the init mounts a fresh /proc, makes the interpreter's directories reachable for the run's uid
(`reattach`: a directory below a private one such as /root or a `mktemp -d` directory is cloned and
re-attached at the same path on a tmpfs that hides the rest), mounts a size-capped tmpfs on the work
directory, and forks the *program* process, which joins the run's cgroups, starts its own session,
sets resource limits, takes the run's uid (or drops every capability), sets no_new_privs, Landlock and
a seccomp filter, and only then runs main.py as `__main__`.

The init waits for the program or for the control pipe (a byte, or end of file when the caller died),
then SIGKILLs every process of the run (kill(-1) as PID 1; otherwise every re-parented descendant,
until none is left) and writes {"exit": code} or {"signal": number} to the status pipe; a failure
before the program's first line is {"setup_error": message}: a program never runs less confined than
it was asked to be.
"""

import atexit
import ctypes
import json
import os
import resource
import runpy
import select
import signal
import socket
import struct
import sys
import time

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_SET_CHILD_SUBREAPER, PR_CAPBSET_DROP = 38, 22, 36, 24
PR_SET_SECUREBITS = 28
SECBITS_LOCKED_NOROOT_NOSETUID_KEEPCAPS = 0x3F  # NOROOT, NO_SETUID_FIXUP, KEEP_CAPS and their locks
SECCOMP_MODE_FILTER = 2
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
SYS_LANDLOCK = (444, 445, 446)  # the same numbers on x86_64 and aarch64
SYS_OPEN_TREE, SYS_MOVE_MOUNT = 428, 429
OPEN_TREE_CLONE, AT_RECURSIVE, MOVE_MOUNT_F_EMPTY_PATH, AT_FDCWD = 1, 0x8000, 4, -100
SYS_IO_URING = (425, 426, 427)  # io_uring_setup, _enter, _register; the same on x86_64 and aarch64
SYS_SOCKET = {"x86_64": (41, 53), "aarch64": (198, 199)}  # socket, socketpair
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Landlock access rights (linux/landlock.h), by the ABI version that introduced them.
FS_READ = (1 << 0) | (1 << 2) | (1 << 3)  # EXECUTE, READ_FILE, READ_DIR
FS_ALL_V1 = (1 << 13) - 1
FS_BY_ABI = {1: FS_ALL_V1, 2: FS_ALL_V1 | 1 << 13, 3: FS_ALL_V1 | 3 << 13, 5: FS_ALL_V1 | 7 << 13}
NET_ALL = 3  # BIND_TCP, CONNECT_TCP (ABI 4)
SCOPE_ALL = 3  # ABSTRACT_UNIX_SOCKET, SIGNAL (ABI 6)
FILE_RIGHTS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)  # rights a rule on a file may carry
NAMESPACES = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS


class SetupError(Exception):
    pass


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")
    return ret


# ------------------------------------------------------------------ mounts (init, in the run's mount namespace)


def mount(source, target: str, fstype, flags: int, data, what: str) -> None:
    def enc(s):
        return s.encode() if isinstance(s, str) else s

    _check(_libc.mount(enc(source), target.encode(), enc(fstype), ctypes.c_ulong(flags), enc(data)), what)


def reattach(groups: list) -> None:
    """For each [hidden_dir, [dirs below it]]: the dirs stay at their paths, readable by any uid.

    `hidden_dir` is a directory the run's uid may not traverse (e.g. /root, mode 0700). Each dir is
    cloned (open_tree), a tmpfs (mode 0755) covers `hidden_dir`, the path down to each dir is
    recreated on it and the clone is attached there read-only. The rest of `hidden_dir` stays hidden.
    """
    for hidden, dirs in groups:
        clones = []
        for d in dirs:
            flags = ctypes.c_uint(OPEN_TREE_CLONE | AT_RECURSIVE | os.O_CLOEXEC)
            fd = _check(_libc.syscall(SYS_OPEN_TREE, ctypes.c_int(AT_FDCWD), d.encode(), flags), f"open_tree {d}")
            clones.append((d, fd))
        mount("tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755", f"mount tmpfs on {hidden}")
        for d, fd in clones:
            os.makedirs(d, mode=0o755, exist_ok=True)
            _check(_libc.syscall(SYS_MOVE_MOUNT, ctypes.c_int(fd), b"", ctypes.c_int(AT_FDCWD), d.encode(),
                                 ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), f"move_mount {d}")
            os.close(fd)
            mount(None, d, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None, f"read-only {d}")


def mount_tmpfs(path: str, size_mb: int, uid: int) -> None:
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,mode=0700,uid={uid},gid={uid}",
          f"mount tmpfs on {path}")


# ------------------------------------------------------------------ the program's confinement


def set_limits(limits: dict) -> None:
    for name, value in limits.items():
        soft, hard = value if isinstance(value, list) else (value, value)
        resource.setrlimit(getattr(resource, name), (soft, hard))


def join_cgroups(procs_files: list) -> None:
    for path in procs_files:
        try:
            with open(path, "w") as f:
                f.write("0")  # "0": the writing process
        except OSError as e:
            raise SetupError(f"joining cgroup {path}: {e}") from e


def drop_capabilities() -> None:
    """Without a uid of its own (user-namespace mode) the program is root of the namespace: drop it all."""
    _check(_libc.prctl(PR_SET_SECUREBITS, ctypes.c_ulong(SECBITS_LOCKED_NOROOT_NOSETUID_KEEPCAPS), 0, 0, 0),
           "securebits")
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) == 0:
        cap += 1
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = ctypes.create_string_buffer(24)  # effective, permitted, inheritable: all zero
    _check(_libc.capset(ctypes.create_string_buffer(header, 8), data), "capset")


def landlock(abi: int, read_dirs: list, write_dir: str) -> None:
    """Confine the filesystem (and, from ABI 4, TCP; from ABI 6, signals and abstract sockets)."""
    create, add_rule, restrict = SYS_LANDLOCK
    fs_all = FS_BY_ABI[max(k for k in FS_BY_ABI if k <= abi)]
    attr = struct.pack("QQQ", fs_all, NET_ALL if abi >= 4 else 0, SCOPE_ALL if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    buf = ctypes.create_string_buffer(attr[:size], size)
    ruleset = _check(_libc.syscall(create, buf, ctypes.c_size_t(size), ctypes.c_uint32(0)), "landlock_create_ruleset")

    def allow(path: str, access: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # a path this machine does not have
        except OSError as e:
            raise SetupError(f"the program's uid cannot reach {path}: {e}") from e
        is_dir = os.path.isdir(path)
        rule = struct.pack("=Qi", access if is_dir else access & FILE_RIGHTS, fd)
        rbuf = ctypes.create_string_buffer(rule, len(rule))
        try:
            _check(_libc.syscall(add_rule, ruleset, 1, rbuf, ctypes.c_uint32(0)), f"landlock_add_rule {path}")
        finally:
            os.close(fd)

    for path in read_dirs:
        allow(path, FS_READ)
    allow("/dev/null", fs_all & FILE_RIGHTS & ~1)  # read, write, truncate, ioctl; not execute
    allow(write_dir, fs_all)
    _check(_libc.syscall(restrict, ruleset, ctypes.c_uint32(0)), "landlock_restrict_self")
    os.close(ruleset)


def deny_sockets() -> None:
    """seccomp: socket(2) and socketpair(2) fail with EACCES for every family; io_uring with ENOSYS.

    With no socket of its own, a program can reach no listener: not TCP/UDP, not abstract and not
    pathname Unix sockets (which neither Landlock nor a network namespace covers). io_uring is refused
    because its IORING_OP_SOCKET creates sockets without the socket(2) system call.
    """
    machine = os.uname().machine
    if machine not in SYS_SOCKET:
        raise SetupError(f"no seccomp filter for {machine}")
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
    allow, eacces, enosys, kill = 0x7FFF0000, 0x00050000 | 13, 0x00050000 | 38, 0x80000000
    sock, pair = SYS_SOCKET[machine]
    uring = SYS_IO_URING
    prog = [
        (ld, 0, 0, 4), (jeq, 1, 0, AUDIT_ARCH[machine]), (ret, 0, 0, kill),  # another ABI (i386, x32): kill
        (ld, 0, 0, 0), (jge, 7, 0, 0x40000000),  # x32 numbering: refuse
        (jeq, 6, 0, sock), (jeq, 5, 0, pair),
        (jeq, 2, 0, uring[0]), (jeq, 1, 0, uring[1]), (jeq, 0, 1, uring[2]),
        (ret, 0, 0, enosys),
        (ret, 0, 0, allow),
        (ret, 0, 0, eacces),
    ]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    filt = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HxxxxxxP", len(prog), ctypes.addressof(filt))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    _check(_libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), fbuf, 0, 0), "seccomp filter")


def confine(cfg: dict) -> None:
    """In the program process: apply every layer asked for, in an order where each one still can be."""
    join_cgroups(cfg["cgroup_procs"])
    os.setsid()
    os.chdir(cfg["workdir"])
    os.umask(0o077)
    set_limits(cfg["limits"])
    uid = cfg["uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    elif os.getuid() == 0:
        drop_capabilities()
    for d in cfg["check_dirs"]:  # the interpreter's files: say which one cannot be read, and why
        try:
            os.close(os.open(d, os.O_RDONLY | os.O_DIRECTORY))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise SetupError(f"the program's uid {os.getuid()} cannot read the interpreter's directory {d}: {e}; "
                             "make it and its parents readable and searchable by others (o+rx), or move the "
                             "venv") from e
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), 0, 0, 0), "no_new_privs")
    if cfg["landlock_abi"]:
        landlock(cfg["landlock_abi"], cfg["read_dirs"], cfg["workdir"])
    if cfg["seccomp"]:
        deny_sockets()


def run_main(env: dict) -> None:
    """Run main.py as `python -I main.py` would, then end this process as the interpreter would."""
    os.environ.clear()
    os.environ.update(env)
    sys.argv[:] = ["main.py"]
    code = 0
    try:
        runpy.run_path("main.py", run_name="__main__")
    except SystemExit as e:
        code = _exit_code(e)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    try:
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()  # wait for non-daemon threads, as interpreter exit does
        atexit._run_exitfuncs()
    except SystemExit as e:
        code = _exit_code(e)
    except BaseException:
        sys.excepthook(*sys.exc_info())
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = 120  # what the interpreter returns when flushing stdout fails
    os._exit(code)


def _exit_code(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    try:
        print(e.code, file=sys.stderr)
    except Exception:
        pass
    return 1


# ------------------------------------------------------------------ init: wait, sweep, report


def kill_descendants() -> None:
    """SIGKILL every process of the run until none is left (bounded by the process limit).

    As the init of a PID namespace, kill(-1) reaches every other process in it; otherwise this
    process is a child subreaper, so orphans and setsid daemons were re-parented to it and are
    found by their parent pid in /proc.
    """
    me = os.getpid()
    for _ in range(5000):
        if me == 1:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            for pid in _children_of(me):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        reaped = False
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return  # no child left
            if pid == 0:
                break
            reaped = True
        if not reaped:
            time.sleep(0.002)
    raise SetupError("processes of the run keep appearing after 5000 kill rounds")


def _children_of(me: int) -> list:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rfind(b")") + 2 :].split()[1]) == me:
            found.append(int(entry))
    return found


def init(cfg: dict, out_fd: int, err_fd: int, status_fd: int, control_fd: int) -> None:
    """The run's init: prepare the mounts, fork the program, wait for it or for the caller, sweep, report."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1), 0, 0, 0)
    workdir, uid = cfg["workdir"], cfg["uid"]
    with open(os.path.join(workdir, "main.py"), "rb") as f:
        code = f.read()
    if cfg["namespaces"]:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None, "mount /proc")
        reattach(cfg["reattach"])
        if cfg["tmpfs_mb"]:
            mount_tmpfs(workdir, cfg["tmpfs_mb"], uid if uid is not None else os.getuid())
            with open(os.path.join(workdir, "main.py"), "wb") as f:
                f.write(code)
            if uid is not None:
                os.chown(os.path.join(workdir, "main.py"), uid, uid)
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(err_r)
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
            signal.signal(signal.SIGINT, signal.default_int_handler)  # the zygote ignores it
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            for fd in (out_fd, err_fd, status_fd, control_fd):
                os.close(fd)
            os.set_inheritable(err_w, False)
            confine(cfg)
        except BaseException as e:  # report set-up failures to init, never run less confined
            os.write(err_w, f"{type(e).__name__}: {e}".encode()[:2000])
            os._exit(125)
        os.close(err_w)
        run_main(cfg["env"])
    os.close(err_w)
    os.close(out_fd)
    os.close(err_fd)
    wait_status = _wait(pid, control_fd)
    setup_error = os.read(err_r, 4096).decode(errors="replace")
    os.close(err_r)
    kill_descendants()
    if setup_error:
        report = {"setup_error": setup_error}
    elif os.WIFSIGNALED(wait_status):
        report = {"signal": os.WTERMSIG(wait_status)}
    else:
        report = {"exit": os.WEXITSTATUS(wait_status)}
    os.write(status_fd, json.dumps(report).encode())


def _wait(pid: int, control_fd: int) -> int:
    """Wait for the program; a byte (or end of file) on the control pipe kills it first."""
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd, control_fd], [], [])
        if control_fd in ready:
            os.kill(pid, signal.SIGKILL)
        return os.waitpid(pid, 0)[1]
    finally:
        os.close(pidfd)


# ------------------------------------------------------------------ the zygote and the runner


def runner(cfg: dict, fds: list) -> None:
    """Forked by the zygote for one run: namespaces, then the run's init; never returns."""
    out_fd, err_fd, status_fd, control_fd = fds
    try:
        keep = set(fds)
        for fd in _open_fds():
            if fd > 2 and fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass  # the descriptor listdir used
        if cfg["namespaces"]:
            _check(_libc.unshare(ctypes.c_int(NAMESPACES)), "unshare")
            mount(None, "/", None, MS_REC | MS_PRIVATE, None, "make mounts private")
            pid = os.fork()
            if pid:
                for fd in fds:
                    os.close(fd)
                os.waitpid(pid, 0)
                os._exit(0)
        init(cfg, out_fd, err_fd, status_fd, control_fd)
    except BaseException as e:
        try:
            os.write(status_fd, json.dumps({"setup_error": f"{type(e).__name__}: {e}"}).encode())
        except OSError:
            pass
        os._exit(125)
    os._exit(0)


def _open_fds() -> list:
    return [int(fd) for fd in os.listdir("/proc/self/fd")]


def probe() -> dict:
    """What this zygote can give a run: namespaces (tried in a forked child), and the user it runs as."""
    pid = os.fork()
    if pid == 0:
        ok = _libc.unshare(ctypes.c_int(NAMESPACES)) == 0
        if ok:
            ok = _libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) == 0
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return {"namespaces": os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "uid": os.getuid(),
            "pid": os.getpid()}


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller's Ctrl-C is the caller's to handle
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 8)
        except InterruptedError:
            continue
        _reap()
        if not msg:
            return  # the caller closed its end (or died)
        cfg = json.loads(msg)
        if cfg.get("probe"):
            sock.send(json.dumps(probe()).encode())
            continue
        try:
            pid = os.fork()
        except OSError as e:
            os.write(fds[2], json.dumps({"setup_error": f"fork: {e}"}).encode())
            pid = -1
        if pid == 0:
            sock.close()
            runner(cfg, fds)
        for fd in fds:
            os.close(fd)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


if __name__ == "__main__":
    main()
