"""The trusted start of a sandboxed run: it confines itself, then executes the model's program.

Run by `grading.sandbox` as `python -I -S sandbox_child.py CONFIG_JSON STATUS_FD` (inside
`unshare` namespaces when the machine allows them). Standard library only: under -I the project is
not importable, and nothing here may depend on the model's program.

This process is the *init* of the run: it stays outside the confinement, forks the program, waits
for it, then kills every process the program left behind (it is a child subreaper, so orphans and
daemons that called setsid are re-parented to it; in a PID namespace its own exit kills the rest),
and finally writes {"exit": code} or {"signal": number} to STATUS_FD. A set-up failure is
reported as {"setup_error": message} before the program ever runs.

The forked program, before `execve` of Python on main.py: its own session, a size-capped tmpfs
work directory (when in a mount namespace), resource limits, a separate uid (when started as root),
no_new_privs, Landlock (writes only below the work directory, reads only below system and Python
directories, no TCP bind/connect, no signals or abstract sockets outside the run) and a seccomp
filter that refuses every socket family but AF_UNIX.
"""

import ctypes
import json
import os
import resource
import signal
import struct
import sys
import time

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_SET_CHILD_SUBREAPER = 38, 22, 36
SECCOMP_MODE_FILTER = 2
SYS_LANDLOCK = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
SYS_SOCKET = {"x86_64": 41, "aarch64": 198}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Landlock access rights (linux/landlock.h), by the ABI version that introduced them.
FS_READ = (1 << 0) | (1 << 2) | (1 << 3)  # EXECUTE, READ_FILE, READ_DIR
FS_ALL_V1 = (1 << 13) - 1
FS_BY_ABI = {1: FS_ALL_V1, 2: FS_ALL_V1 | 1 << 13, 3: FS_ALL_V1 | 3 << 13, 5: FS_ALL_V1 | 7 << 13}
NET_ALL = 3  # BIND_TCP, CONNECT_TCP (ABI 4)
SCOPE_ALL = 3  # ABSTRACT_UNIX_SOCKET, SIGNAL (ABI 6)
FILE_RIGHTS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)  # rights a rule on a file may carry


class SetupError(Exception):
    pass


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")
    return ret


def mount_tmpfs(path: str, size_mb: int, uid: int) -> None:
    opts = f"size={size_mb}m,mode=0700,uid={uid},gid={uid}".encode()
    flags = 0x2 | 0x4  # MS_NOSUID | MS_NODEV
    _check(_libc.mount(b"tmpfs", path.encode(), b"tmpfs", ctypes.c_ulong(flags), opts), f"mount tmpfs on {path}")


def set_limits(limits: dict) -> None:
    for name, value in limits.items():
        soft, hard = value if isinstance(value, list) else (value, value)
        resource.setrlimit(getattr(resource, name), (soft, hard))


def landlock(abi: int, read_dirs: list, write_dir: str) -> None:
    """Confine the filesystem (and, from ABI 4, TCP; from ABI 6, signals and abstract sockets)."""
    machine = os.uname().machine
    create, add_rule, restrict = SYS_LANDLOCK[machine]
    fs_all = FS_BY_ABI[max(k for k in FS_BY_ABI if k <= abi)]
    attr = struct.pack("QQQ", fs_all, NET_ALL if abi >= 4 else 0, SCOPE_ALL if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    buf = ctypes.create_string_buffer(attr[:size], size)
    ruleset = _check(_libc.syscall(create, buf, ctypes.c_size_t(size), ctypes.c_uint32(0)), "landlock_create_ruleset")

    def allow(path: str, access: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # a path this machine does not have
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
    """seccomp: socket(2) fails with EACCES for every family except AF_UNIX."""
    machine = os.uname().machine
    if machine not in SYS_SOCKET:
        raise SetupError(f"no seccomp socket filter for {machine}")
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
    allow, deny, kill = 0x7FFF0000, 0x00050000 | 13, 0x80000000  # ALLOW, ERRNO(EACCES), KILL_PROCESS
    prog = [
        (ld, 0, 0, 4), (jeq, 1, 0, AUDIT_ARCH[machine]), (ret, 0, 0, kill),  # wrong arch: kill
        (ld, 0, 0, 0), (jge, 5, 0, 0x40000000),  # x32 syscalls: refuse
        (jeq, 0, 3, SYS_SOCKET[machine]),
        (ld, 0, 0, 16), (jeq, 1, 0, 1),  # args[0] == AF_UNIX
        (ret, 0, 0, deny),
        (ret, 0, 0, allow),
        (ret, 0, 0, deny),
    ]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    filt = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HxxxxxxP", len(prog), ctypes.addressof(filt))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    _check(_libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), fbuf, 0, 0), "seccomp filter")


def confine_and_exec(cfg: dict) -> None:
    """In the forked child: apply every layer, then run main.py on the sandbox interpreter."""
    os.setsid()
    workdir, uid = cfg["workdir"], cfg["uid"]
    code = cfg.get("code")
    if cfg["tmpfs_mb"]:
        mount_tmpfs(workdir, cfg["tmpfs_mb"], uid if uid is not None else os.getuid())
    os.chdir(workdir)
    if code is not None:
        with open("main.py", "w", encoding="utf-8") as f:
            f.write(code)
    os.umask(0o077)
    set_limits(cfg["limits"])
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), 0, 0, 0), "no_new_privs")
    if cfg["landlock_abi"]:
        landlock(cfg["landlock_abi"], cfg["read_dirs"], workdir)
    if cfg["seccomp"]:
        deny_sockets()
    os.execve(cfg["python"], cfg["launch"], cfg["env"])


def kill_descendants() -> None:
    """SIGKILL every process the program left, until none is left (bounded by the process limit).

    As the init of a PID namespace, kill(-1) reaches every other process in it; otherwise this
    process is a child subreaper, so orphans and setsid daemons were re-parented to it and are
    found by their parent pid in /proc.
    """
    me = os.getpid()
    for _ in range(2000):
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
            time.sleep(0.005)


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


def main() -> None:
    cfg = json.loads(sys.argv[1])
    status_fd = int(sys.argv[2])
    os.set_inheritable(status_fd, False)
    if cfg["tmpfs_mb"]:
        with open(os.path.join(cfg["workdir"], "main.py"), encoding="utf-8") as f:
            cfg["code"] = f.read()  # the tmpfs will hide the file; the program gets a copy
    _libc.prctl(PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1), 0, 0, 0)
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(err_r)
        os.close(status_fd)
        try:
            confine_and_exec(cfg)
        except BaseException as e:  # report set-up failures to init, never run unconfined
            os.write(err_w, f"{type(e).__name__}: {e}".encode()[:2000])
        os._exit(125)
    os.close(err_w)
    _, wait_status = os.waitpid(pid, 0)
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
    os._exit(0)


if __name__ == "__main__":
    main()
