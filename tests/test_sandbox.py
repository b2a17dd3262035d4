"""grading.sandbox: benign programs give the right answer; hostile ones are contained.

Every hostile test asserts what must *not* happen (a surviving process, a deleted canary, a leaked
secret, a killed test runner), not merely the status. Limits are small so the suite stays fast and a
failure cannot take the machine down: the fork tests run under a process limit of 8-16.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

if not sys.platform.startswith("linux"):
    pytest.skip("the sandbox's isolation layers are Linux-only", allow_module_level=True)

from grading.sandbox import UID_BASE, UID_SLOTS, Result, isolation, run_code  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


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
