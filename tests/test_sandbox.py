"""grading.sandbox: benign programs give the right answer; hostile ones are contained.

Every hostile test asserts what must *not* happen (a surviving process, a deleted canary, a leaked
secret, a killed test runner), not merely the status. Limits are small so the suite stays fast and a
failure cannot take the machine down: the fork tests run under a process limit of 8-16.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

if not sys.platform.startswith("linux"):
    pytest.skip("the sandbox's isolation layers are Linux-only", allow_module_level=True)

import grading.sandbox as sandbox  # noqa: E402
from grading.sandbox import UID_BASE, UID_SLOTS, Result, SandboxError, isolation, run_code  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _accept_this_machines_level(monkeypatch):
    """The tests check what each layer holds wherever it exists; `require` itself is tested below."""
    monkeypatch.setenv(sandbox.REQUIRE_ENV, "none")


def _mode(name: str):
    """The layers a run gets: what this machine applies, or a fallback with some layers switched off.

    "no-cgroup": namespaces and the per-run uid, no cgroup (memory = address space x processes).
    "no-namespaces": no namespaces, no per-run uid, no cgroup - an unprivileged caller without user
    namespaces (the program runs as the caller, here root without capabilities).
    """
    iso = isolation()
    if name == "applied":
        return iso
    if name == "no-cgroup":
        if not (iso.mount_namespace and iso.separate_uid):
            pytest.skip("needs namespaces and a per-run uid (root)")
        return dataclasses.replace(iso, cgroup="", level="partial")
    return dataclasses.replace(iso, pid_namespace=False, net_namespace=False, mount_namespace=False,
                               separate_uid=False, cgroup="", level="partial")


def _run_in(mode: str, code: str, **kw) -> Result:
    iso = _mode(mode)
    args = dict(timeout=10.0, memory_mb=1024, max_processes=32, max_output_bytes=1 << 20, max_file_mb=16,
                disk_mb=64)
    args.update(kw)
    return sandbox._run(iso, code, **args)


def _world_dir() -> Path:
    """A directory every uid may enter (pytest's tmp_path lies below a 0700 one)."""
    d = Path(tempfile.mkdtemp(prefix="sandbox-test-"))
    d.chmod(0o777)
    return d


def _processes_matching(marker: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd:
                found.append(f"{entry}: {cmd}")
    return found


def _sandbox_uid_processes() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                uid = os.stat(f"/proc/{entry}").st_uid
            except OSError:
                continue
            if UID_BASE <= uid < UID_BASE + UID_SLOTS:
                pids.append(int(entry))
    return pids


# ------------------------------------------------------------------ benign programs


def test_prints_the_answer():
    assert run_code("print(sum(range(10)))", timeout=10) == Result("ok", "45\n", "")


def test_math_libraries_work_inside():
    code = (
        "import math, fractions, numpy as np, sympy as sp\n"
        "x = sp.symbols('x')\n"
        "print(sp.solve(x**2 - 5*x + 6, x))\n"
        "print(fractions.Fraction(1, 3) + fractions.Fraction(1, 6))\n"
        "print(int(np.linalg.det(np.array([[2, 1], [1, 3]])).round()))\n"
        "print(math.comb(10, 3))\n"
    )
    r = run_code(code, timeout=30)
    assert r.status == "ok", r.stderr
    assert r.stdout.split("\n")[:4] == ["[2, 3]", "1/2", "5", "120"]


def test_program_may_write_its_own_directory():
    r = run_code("open('scratch.txt','w').write('hi')\nprint(open('scratch.txt').read())", timeout=10)
    assert (r.status, r.stdout) == ("ok", "hi\n"), r.stderr


def test_exception_is_an_error_with_traceback():
    r = run_code("raise ValueError('boom')", timeout=10)
    assert r.status == "error" and "ValueError: boom" in r.stderr


# ------------------------------------------------------------------ time, processes, memory, output


def test_infinite_loop_times_out():
    t0 = time.monotonic()
    r = run_code("while True:\n    pass", timeout=1)
    assert r.status == "timeout"
    assert time.monotonic() - t0 < 8


def test_sleeping_program_times_out_on_wall_clock():
    t0 = time.monotonic()
    r = run_code("import time\ntime.sleep(60)", timeout=1)
    assert r.status == "timeout"
    assert time.monotonic() - t0 < 5


def test_process_limit_holds_on_a_small_bound():
    # Verified first on a bounded loop: the limit must stop this well before 50 forks.
    code = (
        "import os, time\nn = 0\n"
        "for _ in range(50):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
        "    n += 1\n"
        "print(n)\n"
    )
    r = run_code(code, timeout=10, max_processes=8)
    assert r.status == "ok", r.stderr
    assert int(r.stdout) < 8
    assert _sandbox_uid_processes() == []  # the sleeping children were killed with the run


def test_fork_bomb_is_bounded_and_cleaned_up():
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    t0 = time.monotonic()
    r = run_code(code, timeout=2, max_processes=16)
    assert r.status in ("timeout", "killed")
    assert time.monotonic() - t0 < 15
    assert _sandbox_uid_processes() == []


def test_memory_bomb_fails_inside_the_limit():
    r = run_code("chunks = []\nwhile True:\n    chunks.append(bytearray(50 << 20))", timeout=20, memory_mb=512)
    assert r.status in ("error", "killed")
    assert "MemoryError" in r.stderr or r.status == "killed"


def test_stdout_flood_is_cut_and_killed():
    t0 = time.monotonic()
    r = run_code("while True:\n    print('x' * 1000)", timeout=20, max_output_bytes=100_000)
    assert r.status == "killed" and "output limit" in r.stderr
    assert len(r.stdout) <= 100_000
    assert time.monotonic() - t0 < 10


def test_file_size_limit():
    r = run_code("open('big','wb').write(b'0' * (8 << 20))", timeout=10, max_file_mb=1)
    assert r.status in ("error", "killed")


# ------------------------------------------------------------------ filesystem, secrets, network, signals


def test_cannot_delete_or_modify_a_canary_outside(tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("alive")
    tmp_path.chmod(0o777)  # only the sandbox, not file permissions, may stop the deletion
    canary.chmod(0o666)
    code = (
        "import os\n"
        f"for act in (lambda: os.remove({str(canary)!r}), lambda: open({str(canary)!r}, 'w').write('dead'),\n"
        "            lambda: open('/tmp/sandbox-escape.txt', 'w').write('x')):\n"
        "    try:\n        act()\n        print('done')\n"
        "    except OSError as e:\n        print('blocked', type(e).__name__)\n"
    )
    r = run_code(code, timeout=10)
    assert r.status == "ok", r.stderr
    assert r.stdout.count("blocked") == 3 and "done" not in r.stdout
    assert canary.read_text() == "alive"
    assert not Path("/tmp/sandbox-escape.txt").exists()


def test_environment_secrets_are_not_inherited(monkeypatch):
    secret = f"s3cret-{uuid.uuid4().hex}"
    monkeypatch.setenv("MATHPIPE_TEST_TOKEN", secret)
    code = (
        "import os\nprint(dict(os.environ))\n"
        f"for pid in ('1', 'self', {str(os.getpid())!r}):\n"
        "    try:\n        print(open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except OSError as e:\n        print('blocked', pid, type(e).__name__)\n"
    )
    r = run_code(code, timeout=10)
    assert r.status == "ok", r.stderr
    assert secret not in r.stdout and "MATHPIPE_TEST_TOKEN" not in r.stdout


def test_no_network():
    code = (
        "import socket\n"
        "for family, kind, addr in ((socket.AF_INET, socket.SOCK_STREAM, ('1.1.1.1', 80)),\n"
        "                           (socket.AF_INET, socket.SOCK_DGRAM, ('8.8.8.8', 53)),\n"
        "                           (socket.AF_INET6, socket.SOCK_STREAM, ('::1', 80)),\n"
        "                           (socket.AF_INET, socket.SOCK_STREAM, ('127.0.0.1', 22))):\n"
        "    try:\n"
        "        s = socket.socket(family, kind)\n        s.settimeout(2)\n"
        "        s.connect(addr) if kind == socket.SOCK_STREAM else s.sendto(b'x', addr)\n"
        "        print('open')\n"
        "    except OSError as e:\n        print('blocked', type(e).__name__)\n"
    )
    r = run_code(code, timeout=15)
    assert r.status == "ok", r.stderr
    assert "open" not in r.stdout and r.stdout.count("blocked") == 4


def test_cannot_kill_the_caller():
    me = os.getpid()
    code = (
        "import os, signal\n"
        f"for target in ({me}, os.getppid(), -1, 1):\n"
        "    try:\n        os.kill(target, signal.SIGKILL)\n        print('sent', target)\n"
        "    except OSError as e:\n        print('blocked', target, type(e).__name__)\n"
        "print('survived')\n"
    )
    r = run_code(code, timeout=10)
    assert os.getpid() == me  # we are still here to assert
    assert f"sent {me}" not in r.stdout


def test_daemon_that_called_setsid_is_killed():
    marker = f"sandbox-daemon-{uuid.uuid4().hex}"
    code = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(120)', {marker!r}])\n"
        "    os._exit(0)\n"
        "time.sleep(0.5)\nprint('parent done')\n"
    )
    r = run_code(code, timeout=10)
    assert r.status == "ok", r.stderr
    time.sleep(0.2)
    assert _processes_matching(marker) == []


def test_isolation_report_names_the_layers():
    iso = isolation()
    assert iso.python
    if os.geteuid() == 0:
        assert iso.separate_uid


# ------------------------------------------------------------------ CLI


def test_cli_prints_one_json_line(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text("print(6 * 7)\n")
    out = subprocess.run([sys.executable, "-m", "grading.sandbox", str(program), "--timeout", "10"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {"status": "ok", "stdout": "42\n", "stderr": "",
                                    "isolation": isolation().level}


# ------------------------------------------------------------------ issue #15: one hostile program per attack class

MODES = ["applied", "no-cgroup", "no-namespaces"]


@pytest.mark.parametrize("mode", MODES)
def test_pathname_unix_socket_on_the_host_is_unreachable(mode):
    d = _world_dir()
    path = str(d / "host.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(1)
    server.settimeout(0.2)
    accepted, done = [], threading.Event()

    def serve():
        while not done.is_set() and not accepted:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(conn)
            conn.sendall(b"host-secret")

    t = threading.Thread(target=serve)
    t.start()
    code = (
        "import socket\n"
        "for make in (lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),\n"
        "             lambda: socket.socketpair()[0]):\n"
        "    try:\n"
        "        s = make()\n"
        f"        s.connect({path!r})\n"
        "        print('reply', s.recv(100))\n"
        "    except OSError as e:\n        print('blocked', type(e).__name__)\n"
    )
    try:
        r = _run_in(mode, code)
    finally:
        done.set()
        t.join()
        server.close()
        for c in accepted:
            c.close()
        os.unlink(path)
        d.rmdir()
    assert r.status == "ok", r.stderr
    assert accepted == []  # the host listener saw no connection
    assert "host-secret" not in r.stdout and r.stdout.count("blocked") == 2


@pytest.mark.parametrize("mode", MODES)
def test_io_uring_is_refused_and_udp_does_not_reach_the_host(mode):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    code = (
        "import ctypes, ctypes.util, os, socket\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "params = ctypes.create_string_buffer(120)\n"
        "for nr in (425, 426, 427):  # io_uring_setup, io_uring_enter, io_uring_register\n"
        "    args = (8, params) if nr == 425 else (0, 0, 0, 0)\n"
        "    ret = libc.syscall(nr, *args)\n"
        "    print('io_uring', nr, ret, os.strerror(ctypes.get_errno()) if ret < 0 else 'ring')\n"
        "try:\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"    s.sendto(b'escaped', ('127.0.0.1', {port}))\n"
        "    print('sent')\n"
        "except OSError as e:\n    print('blocked', type(e).__name__)\n"
    )
    try:
        r = _run_in(mode, code)
        try:
            got = listener.recv(100)
        except TimeoutError:
            got = None
    finally:
        listener.close()
    assert r.status == "ok", r.stderr
    assert got is None  # nothing reached the host's listener
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("io_uring")]
    assert len(lines) == 3 and all(" -1 " in ln for ln in lines), r.stdout
    assert "blocked" in r.stdout and "sent" not in r.stdout


def _memory_program(children: int, mb: int) -> str:
    """Fork `children` processes that each touch `mb` MB and hold it; print 'all held' if all did at once."""
    return (
        "import os, select, time\n"
        "r, w = os.pipe()\n"
        f"for _ in range({children}):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n"
        "        try:\n"
        f"            block = bytearray({mb} << 20)  # zero-filled: every page touched\n"
        "            os.write(w, b'1')\n"
        "        except MemoryError:\n            os._exit(3)\n"
        "        time.sleep(30)\n        os._exit(0)\n"
        "held = b''\n"
        "end = time.monotonic() + 4\n"
        f"while len(held) < {children} and time.monotonic() < end:\n"
        "    if select.select([r], [], [], 0.2)[0]:\n        held += os.read(r, 16)\n"
        f"print('all held' if len(held) >= {children} else f'held {{len(held)}}')\n"
    )


@pytest.mark.parametrize("mode", ["applied", "no-cgroup"])
def test_memory_bound_is_per_run_not_per_process(mode):
    # Control: 2 x 100 MB fits a 512 MB run, so the program itself can print "all held".
    ok = _run_in(mode, _memory_program(2, 100), memory_mb=512, timeout=15)
    if mode == "applied" and isolation().cgroup:
        assert "all held" in ok.stdout, (ok.status, ok.stdout, ok.stderr)
    # Attack: 4 x 200 MB = 800 MB, each process below the 512 MB bound.
    r = _run_in(mode, _memory_program(4, 200), memory_mb=512, timeout=15)
    assert "all held" not in r.stdout, (r.status, r.stdout)
    assert _sandbox_uid_processes() == []


def test_fallback_bound_multiplies_to_the_documented_memory():
    for memory_mb, max_processes in ((1024, 32), (512, 8), (100, 32), (4096, 4)):
        k = sandbox.fallback_processes(memory_mb, max_processes)
        assert 1 <= k <= max_processes
        assert k * ((memory_mb << 20) // k) <= memory_mb << 20


@pytest.mark.parametrize("mode", MODES)
def test_setsid_daemon_of_a_timed_out_run_does_not_survive(mode):
    marker = f"sandbox-daemon-{uuid.uuid4().hex}"
    code = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(120)', {marker!r}])\n"
        "    os._exit(0)\n"
        "time.sleep(60)\n"
    )
    r = _run_in(mode, code, timeout=1.5)
    assert r.status == "timeout"
    time.sleep(0.2)
    assert _processes_matching(marker) == []


def test_a_dead_caller_leaves_nothing_running(tmp_path):
    marker = f"sandbox-orphan-{uuid.uuid4().hex}"
    program = tmp_path / "prog.py"
    program.write_text(
        "import os, sys, time\n"
        "if os.fork() == 0:\n    os.setsid()\n"
        f"    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(120)', {marker!r}])\n"
        "time.sleep(60)\n")
    caller = subprocess.Popen([sys.executable, "-m", "grading.sandbox", str(program), "--timeout", "60"],
                              cwd=ROOT, env={**os.environ, sandbox.REQUIRE_ENV: "none"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 30
    while not _processes_matching(marker) and time.monotonic() < end:
        time.sleep(0.1)
    assert _processes_matching(marker), "the program never started"
    caller.send_signal(signal.SIGKILL)
    caller.wait()
    end = time.monotonic() + 5
    while _processes_matching(marker) and time.monotonic() < end:
        time.sleep(0.05)
    assert _processes_matching(marker) == []
    # the dead caller's work directory is removed by the next caller's start-up
    leftover = list(Path(tempfile.gettempdir()).glob(f"{sandbox.WORKDIR_PREFIX}{caller.pid}-*"))
    assert leftover, "the SIGKILLed caller left no directory (nothing to check)"
    subprocess.run([sys.executable, "-m", "grading.sandbox", str(program), "--timeout", "1"], cwd=ROOT,
                   env={**os.environ, sandbox.REQUIRE_ENV: "none"}, capture_output=True, timeout=60)
    assert not any(p.exists() for p in leftover)


def test_encoded_output_stays_under_the_cap(tmp_path):
    cap = 1 << 20
    for code in ("import sys\nsys.stdout.write('\\x01' * (1 << 20))",
                 "import sys\nsys.stdout.buffer.write(b'\\xff' * (1 << 20))",
                 "import sys\nsys.stderr.write('\\x02' * (1 << 20))"):
        r = run_code(code, timeout=10)
        assert len(json.dumps(r.stdout)) <= cap + 2 and len(json.dumps(r.stderr)) <= cap + 2
        assert len(json.dumps(r.stdout, ensure_ascii=False).encode()) <= cap + 2
        assert r.status == "killed" and "output limit" in r.stderr
    program = tmp_path / "flood.py"
    program.write_text("print('\\x01' * (1 << 20))\n")
    out = subprocess.run([sys.executable, "-m", "grading.sandbox", str(program)], capture_output=True,
                         cwd=ROOT, timeout=60, env={**os.environ, sandbox.REQUIRE_ENV: "none"})
    assert len(out.stdout) < 2 * cap + 200  # stdout and stderr capped, plus the keys


def test_output_just_under_the_cap_is_kept_whole():
    # 1000 letters and a newline are 1002 bytes in JSON ("\\n" takes two)
    r = run_code("print('a' * 1000)", timeout=10, max_output_bytes=1002)
    assert (r.status, r.stdout) == ("ok", "a" * 1000 + "\n")
    r = run_code("print('a' * 1000)", timeout=10, max_output_bytes=1001)
    assert r.status == "killed" and r.stdout == "a" * 1000


def test_a_signalled_program_is_killed_and_never_credited():
    from grading.grader import grade

    r = run_code("import os, signal\nprint(4, flush=True)\nos.kill(os.getpid(), signal.SIGKILL)", timeout=10)
    assert (r.status, r.stdout) == ("killed", "4\n")
    completion = ("Let me compute.\n```python\nimport os, signal\nprint(2 + 2, flush=True)\n"
                  "os.kill(os.getpid(), signal.SIGKILL)\n```\n")
    assert grade(completion, "4", execute_code=True).correct is False
    control = "Let me compute.\n```python\nprint(2 + 2)\n```\n"
    assert grade(control, "4", execute_code=True).correct is True


def test_every_result_records_its_isolation_level():
    r = run_code("print(1)", timeout=10)
    assert r.isolation == isolation().level and r.isolation in sandbox.LEVELS
    assert r.to_dict()["isolation"] == r.isolation


def test_less_isolation_than_required_is_refused_naming_the_layer(monkeypatch):
    weak = dataclasses.replace(isolation(), cgroup="", level="partial",
                               missing=("a cgroup per run (one memory bound): delegate a cgroup v2 subtree",))
    monkeypatch.setattr(sandbox, "_ISOLATION", weak)
    monkeypatch.delenv(sandbox.REQUIRE_ENV)
    monkeypatch.setattr(sandbox, "_REQUIRE", None)
    assert sandbox.required_level() == "full"  # the default
    with pytest.raises(SandboxError, match="cgroup per run.*eval.sandbox.require: partial"):
        run_code("open('/tmp/should-not-run', 'w')", timeout=5)
    assert run_code("print(1)", timeout=5, require="partial").isolation == "partial"
    with pytest.raises(ValueError):
        sandbox.configure(require="most")


def test_a_level_below_full_is_logged_at_warning(caplog):
    weak = dataclasses.replace(isolation(), level="none", missing=("Landlock: needs Linux >= 5.13",))
    with caplog.at_level(logging.WARNING, logger="grading.sandbox"):
        sandbox._announce(weak)
    assert any(rec.levelno == logging.WARNING and "Landlock" in rec.getMessage() for rec in caplog.records)


def test_packages_below_a_private_directory_are_readable_inside(tmp_path):
    """A venv inside a `mktemp -d` (0700) directory: its packages must import inside the sandbox."""
    private = Path(tempfile.mkdtemp(prefix="sandbox-private-"))
    try:
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        venv = private / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
        site_dir = next(venv.glob("lib/python*/site-packages"))
        (site_dir / "private_probe.py").write_text("ANSWER = 42\n")
        ours = [p for p in sys.path if p.endswith("site-packages")]
        (site_dir / "ours.pth").write_text("\n".join(ours) + "\n")  # sympy, numpy from this venv
        code = "import private_probe, sympy\nprint(private_probe.ANSWER, sympy.Integer(6) * 7)"
        driver = ("import sys; from grading.sandbox import run_code; "
                  f"r = run_code({code!r}, timeout=60); print(r.status); print(r.stdout.strip()); "
                  "print(r.stderr[-800:], file=sys.stderr)")
        out = subprocess.run([str(venv / "bin" / "python"), "-c", driver], capture_output=True, text=True,
                             cwd=ROOT, timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT),
                                                         sandbox.REQUIRE_ENV: "none"})
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split("\n")[:2] == ["ok", "42 42"], (out.stdout, out.stderr[-2000:])
    finally:
        subprocess.run(["rm", "-rf", str(private)], check=False)


def test_an_unreadable_interpreter_directory_is_named_at_start(monkeypatch):
    d = _world_dir()
    hidden = d / "site-packages"
    hidden.mkdir(mode=0o700)
    try:
        dirs = sandbox._python_dirs()
        monkeypatch.setattr(sandbox, "_python_dirs", lambda: [*dirs, str(hidden)])
        if not isolation().separate_uid:
            pytest.skip("the program runs as the caller, who may read its own directories")
        with pytest.raises(SandboxError, match=f"cannot read the interpreter's directory {hidden}"):
            run_code("print(1)", timeout=5)
    finally:
        hidden.rmdir()
        d.rmdir()
